"""The worker process: `python worker.py` (the Procfile's worker) or `arq worker.WorkerSettings`.

`python worker.py` runs arq's worker with reconnect-on-Redis-error; the plain arq CLI works too
but exits when Redis goes away.
"""

from app.settings import load_settings
from app.worker.main import build_worker_settings, main

WorkerSettings = build_worker_settings(load_settings())

if __name__ == "__main__":
    main()
