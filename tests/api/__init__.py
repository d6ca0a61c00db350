"""The REST API through a real server, worker, Redis and database: tasks, files, schedules, webhooks, metrics, security, OpenAPI."""
