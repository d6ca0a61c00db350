"""The example module of docs/tasks.md (examples/own_tasks/reports.py), served and run as its README says."""

import io
from pathlib import Path

import httpx
import pytest
from PIL import Image

from app.settings import Settings
from app.worker.resilient import ResilientWorker
from tests.support.servers import make_settings
from tests.support.waits import submit, wait_for_status


@pytest.fixture
def settings(redis_url: str, db_url: str, tmp_path: Path) -> Settings:
    return make_settings(redis_url, db_url, tmp_path / "data", TASK_MODULES="examples.own_tasks.reports")


async def test_the_sales_report_of_the_sample_csv(client: httpx.AsyncClient, worker: ResilientWorker) -> None:
    done = await wait_for_status(client, (await submit(client, "sales_report", top=3))["id"], {"SUCCESS"})
    result = done["result_data"]
    assert (result["file"], result["rows"], result["currency"]) == ("sales.csv", 240, "EUR")
    assert set(result["by_region"]) == {"north", "south", "east", "west"}
    assert result["revenue"] == pytest.approx(sum(result["by_region"].values()), abs=0.05)
    assert len(result["top_products"]) == 3
    quantities = [product["quantity"] for product in result["top_products"]]
    assert quantities == sorted(quantities, reverse=True)


async def test_thumbnails_of_uploaded_images_come_back_as_the_tasks_files(
        client: httpx.AsyncClient, worker: ResilientWorker) -> None:
    ids = []
    for width, height in ((800, 400), (300, 600)):
        data = io.BytesIO()
        Image.linear_gradient("L").resize((width, height)).convert("RGB").save(data, "PNG")
        answer = await client.post("/api/uploads", params={"filename": f"{width}.png"}, content=data.getvalue(),
                                   headers={"content-type": "image/png"})
        ids.append(answer.json()["id"])
    task = await submit(client, "thumbnails", images=ids, size=100, format="JPEG")
    done = await wait_for_status(client, task["id"], {"SUCCESS"}, timeout=30)
    sizes = [(made["width"], made["height"]) for made in done["result_data"]["thumbnails"]]
    assert sizes == [(100, 50), (50, 100)]
    files = {item["name"]: item for item in done["result_data"]["artifacts"]}
    assert set(files) == {"thumb_1.jpeg", "thumb_2.jpeg"}
    image = Image.open(io.BytesIO((await client.get(f"/api/tasks/{task['id']}/artifacts/thumb_1.jpeg")).content))
    assert (image.format, image.size) == ("JPEG", (100, 50))
    missing = await client.post("/api/tasks/submit", json={"task_type": "thumbnails", "parameters": {}})
    assert missing.status_code == 422 and missing.json()["field"] == "images"
