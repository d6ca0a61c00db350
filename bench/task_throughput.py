"""Throughput of the two heaviest task types, through their real `run` functions, without pacing.

`data_processing` on 1,000,000 generated rows (chunks of 10,000), then on the same CSV as an uploaded
file (the analysis alone, without the generator); `image_processing` on 100 generated 640x480 images,
resized to 256x256, then converted to JPEG. A stand-in reporter records nothing and never cancels.
Run: `.venv/bin/python bench/task_throughput.py`.
"""

import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.tasks import load_task_types  # noqa: E402
from app.tasks.builtin.data_processing import generate_chunks  # noqa: E402

ROWS = 1_000_000
IMAGES = 100


class Upload:
    def __init__(self, path: Path) -> None:
        self.id, self.filename, self.path = "0" * 32, path.name, path
        self.size, self.content_type = path.stat().st_size, "text/csv"


class Reporter:
    def __init__(self, data_dir: Path, name: str, upload: Upload | None = None) -> None:
        self.task_id = name
        self.data_dir = data_dir
        self.artifacts = data_dir / "artifacts" / name
        self.artifacts.mkdir(parents=True)
        self.smtp_url = None
        self._upload = upload

    async def __call__(self, progress: float, stage: str = "") -> None:
        pass

    async def log(self, line: str) -> None:
        pass

    def upload(self, upload_id: str) -> Upload:
        assert self._upload is not None
        return self._upload


def rate(count: int, unit: str, wall: float, cpu: float) -> str:
    def per(seconds: float) -> str:
        return f"{count / seconds:,.0f}" if count / seconds >= 100 else f"{count / seconds:.1f}"

    # CPU time too: on a shared machine the wall clock also measures the neighbours
    return f"{count:,} {unit} in {wall:.1f} s = {per(wall)} {unit}/s (CPU {cpu:.1f} s = {per(cpu)} per CPU-second)"


async def run(task_type: str, report: Reporter, **raw: Any) -> tuple[dict[str, Any], float, float]:
    """The task's result, and the wall-clock and CPU seconds it took."""
    kind = load_task_types()[task_type]
    wall, cpu = time.perf_counter(), time.process_time()
    result = await kind.run(kind.validate(raw), report)
    return result, time.perf_counter() - wall, time.process_time() - cpu


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        result, wall, cpu = await run("data_processing", Reporter(data_dir, "generated"), rows=ROWS,
                                      processing_time=0, chunk_size=10_000)
        assert result["rows"] == ROWS
        print(f"data_processing, generated: {rate(ROWS, 'rows', wall, cpu)}")
        path = data_dir / "rows.csv"
        with path.open("w") as file:
            file.writelines(generate_chunks(ROWS, 42, 10_000))
        upload = Upload(path)
        result, wall, cpu = await run("data_processing", Reporter(data_dir, "upload", upload),
                                      upload=[upload.id], processing_time=0, chunk_size=10_000)
        assert result["rows"] == ROWS
        print(f"data_processing, the same as an uploaded file ({upload.size / 1e6:.0f} MB): "
              f"{rate(ROWS, 'rows', wall, cpu)}")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  peak memory of this process so far: {peak:.0f} MB")
        for operation, fmt in (("resize", "PNG"), ("convert", "JPEG")):
            result, wall, cpu = await run("image_processing", Reporter(data_dir, f"{operation}-{fmt}"),
                                          image_count=IMAGES, operation=operation, format=fmt,
                                          target_size=[256, 256])
            assert result["image_count"] == IMAGES
            print(f"image_processing, {operation} to {fmt}: {rate(IMAGES, 'images', wall, cpu)}")


if __name__ == "__main__":
    asyncio.run(main())
