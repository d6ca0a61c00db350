"""Health: 200 with Redis, database and a live worker; 503 naming Redis while it is stopped; 200 again after."""

import asyncio
from pathlib import Path

import httpx

from app.worker.main import create_worker
from launcher.redis_server import RedisServer, free_port
from tests.support.servers import make_settings, serve


async def wait_health(http: httpx.AsyncClient, status: int, timeout: float = 15.0) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await http.get("/api/health")
        if response.status_code == status:
            return response.json()  # type: ignore[no-any-return]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"health stayed {response.status_code}: {response.text}")
        await asyncio.sleep(0.1)


async def test_health_follows_redis_down_and_back(tmp_path: Path, db_url: str) -> None:
    redis = RedisServer(free_port(), tmp_path / "redis", appendonly=False)
    redis.start()
    settings = make_settings(redis.url, db_url, tmp_path / "data")
    server, serving, address = await serve(settings)
    worker = create_worker(settings, handle_signals=False)
    working = asyncio.create_task(worker.async_run())
    try:
        async with httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as http:
            body = await wait_health(http, 200)
            assert body["status"] == "ok" and body["workers"]["live"] == 1 and body["database"]["ok"]
            redis.stop()
            body = await wait_health(http, 503)
            assert "redis" in body["detail"] and body["redis"]["ok"] is False and body["database"]["ok"]
            listing = await http.get("/api/tasks/")  # reads keep working from the database
            assert listing.status_code == 200
            refused = await http.post("/api/tasks/submit", json={"task_type": "text_processing"})
            assert refused.status_code == 503 and refused.headers["retry-after"]
            assert (await http.get("/api/tasks/")).json()["total"] == 0  # nothing half-accepted
            redis.start()
            body = await wait_health(http, 200)
            assert body["workers"]["live"] == 1 and body["events"]["ok"]
            task = (await http.post("/api/tasks/submit", json={"task_type": "text_processing"})).json()
            for _ in range(200):
                if (await http.get(f"/api/tasks/{task['id']}")).json()["status"] == "SUCCESS":
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("worker did not recover after Redis came back")
        assert not working.done()
    finally:
        await worker.close()
        server.should_exit = True
        await serving
        redis.stop()
