"""The web process: `python web.py` (the Procfile's web) serves `app.main:create_app` with uvicorn on
HOST:PORT, its own log lines (access lines included) in the process's LOG_FORMAT (core/logs.py); the
same as the `taskqueue-web` script (app/web/server.py).

`uvicorn app.main:create_app --factory --ws app.web.live.frames:FramesProtocol` works too, with uvicorn's
own log format; add `--http app.web.httpheads:BoundedHeadsProtocol` for the bound on request heads, and
mind that uvicorn alone trusts X-Forwarded-For from `127.0.0.1,::1` unless FORWARDED_ALLOW_IPS is set
(`--no-proxy-headers` trusts none).
"""

from app.web.server import main

if __name__ == "__main__":
    main()
