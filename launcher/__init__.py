"""`make run`'s plumbing: the embedded Redis, the database prepared, web and worker under honcho, a respawning supervisor."""
