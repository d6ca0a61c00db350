"""The input filed in issue 19 (`text_processing` of "a" + 60,000 "!" + "x", `timeout` 2) against a real
stack (one web process, one worker, default heartbeats): how long the task took, how long
`/api/health` answered 503 meanwhile, and what a cancel sent a second into the run answered.
`python -m bench.freeze [size]`; nothing here is a test."""

import sys
import time

import httpx

from bench.stack import running_stack

POLL = 0.2  # seconds between looks at the task and the health


def main(size: int) -> None:
    with running_stack() as stack, httpx.Client(base_url=stack.url, timeout=120) as http:
        text = "a" + "!" * size + "x"
        task = http.post("/api/tasks/submit", json={"task_type": "text_processing", "parameters": {"text": text},
                                                    "timeout": 2}).json()
        started, unhealthy, cancel = time.monotonic(), 0.0, None
        while True:
            looked = time.monotonic()
            if http.get("/api/health").status_code != 200:
                unhealthy += POLL
            state = http.get(f"/api/tasks/{task['id']}").json()
            if state["status"] in ("SUCCESS", "FAILED", "CANCELLED"):
                break
            if cancel is None and looked - started > 1:
                cancel = http.delete(f"/api/tasks/{task['id']}").json()["status"]
            time.sleep(max(0.0, POLL - (time.monotonic() - looked)))
        took = time.monotonic() - started
        print(f"{size} '!': {state['status']} after {took:.1f} s ({state['error_message'] or 'no error'}); "
              f"/api/health 503 for about {unhealthy:.1f} s; a cancel 1 s in answered {cancel or '(not sent)'}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 60_000)
