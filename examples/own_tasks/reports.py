"""Two task types of a team's own, written with the public task API (docs/tasks.md): a sales report from
a CSV, and thumbnails of uploaded images. Nothing is fetched from the network.

    TASK_MODULES=examples.own_tasks.reports make run
"""

import csv
from collections import Counter, defaultdict
from pathlib import Path
from typing import Annotated, Literal

from PIL import Image, ImageOps
from pydantic import Field

from app.tasks import CsvUpload, ImageUpload, SyncReporter, task

SAMPLE = Path(__file__).with_name("sales.csv")
COLUMNS = ("date", "region", "product", "quantity", "unit_price")


@task(timeout=120, max_attempts=1)
def sales_report(
    report: SyncReporter,
    file: Annotated[list[CsvUpload], Field(max_length=1, description=(
        "A sales CSV (date, region, product, quantity, unit_price); none: the sample next to this module."))] = [],
    top: Annotated[int, Field(ge=1, le=50, description="How many best-selling products to list.")] = 5,
    currency: Annotated[Literal["EUR", "USD", "GBP"], Field(description="Shown with the amounts.")] = "EUR",
) -> dict:
    """Revenue by region and the best-selling products of a sales CSV."""
    source = report.upload(file[0]) if file else None
    path = source.path if source else SAMPLE
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or set(COLUMNS) - set(rows[0]):
        raise ValueError(f"{source.filename if source else SAMPLE.name}: needs the columns {', '.join(COLUMNS)}")
    by_region: defaultdict[str, float] = defaultdict(float)
    sold: Counter[str] = Counter()
    for number, row in enumerate(rows, 1):
        if number % max(1, len(rows) // 10) == 0:
            report(100 * number / len(rows), f"row {number} of {len(rows)}")
        revenue = int(row["quantity"]) * float(row["unit_price"])
        by_region[row["region"]] += revenue
        sold[row["product"]] += int(row["quantity"])
    for region, revenue in sorted(by_region.items()):
        report.log(f"{region}: {revenue:,.2f} {currency}")
    return {
        "file": source.filename if source else SAMPLE.name,
        "rows": len(rows),
        "currency": currency,
        "revenue": round(sum(by_region.values()), 2),
        "by_region": {region: round(revenue, 2) for region, revenue in sorted(by_region.items())},
        "top_products": [{"product": name, "quantity": quantity} for name, quantity in sold.most_common(top)],
    }


@task(executor="process", timeout=300)
def thumbnails(
    report: SyncReporter,
    images: Annotated[list[ImageUpload], Field(min_length=1, max_length=20, description="Images to shrink.")],
    size: Annotated[int, Field(ge=16, le=1024, description="The longest side of each thumbnail, in pixels.")] = 128,
    format: Literal["PNG", "JPEG", "WEBP"] = "PNG",
) -> dict:
    """Thumbnails of uploaded images, in a child process of its own (Pillow's work is CPU-bound)."""
    made = []
    for number, upload_id in enumerate(images, 1):
        report(100 * (number - 1) / len(images), f"image {number} of {len(images)}")
        upload = report.upload(upload_id)
        with Image.open(upload.path) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")
        image.thumbnail((size, size))
        name = f"thumb_{number}.{format.lower()}"
        image.save(report.artifacts / name, format)
        report.log(f"{upload.filename}: {image.width}x{image.height} → {name}")
        made.append({"source": upload.filename, "file": name, "width": image.width, "height": image.height})
    return {"thumbnails": made}
