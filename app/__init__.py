"""Task queue with a live dashboard: Starlette web, arq workers, Redis events, SQL persistence."""
