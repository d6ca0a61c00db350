"""The worker process: arq's settings, running one attempt, its reporter, heartbeat, watchdog and retention."""
