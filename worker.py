"""The worker process: `python worker.py` (the Procfile's worker) or `arq worker.WorkerSettings`.

`python worker.py` runs arq's worker with reconnect-on-Redis-error; the plain arq CLI works too
but exits when Redis goes away.
"""

from app.settings import load_settings
from app.worker.main import build_worker_settings, main

if __name__ == "__main__":
    main()
else:  # `arq worker.WorkerSettings` (and a task's process, whose forkserver imports this module first)
    WorkerSettings = build_worker_settings(load_settings())
