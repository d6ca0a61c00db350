"""Task types: the registry, and each type's run checked against independent computations."""

import csv
import hashlib
import io
import json
import mailbox
import math
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from app.errors import InvalidParameters
from app.params import Float, Int, validate_parameters
from app.tasks import TASK_TYPES, get_task_type
from app.tasks.base import TaskCancelled
from app.tasks.data_processing import CsvStats, generate_chunks, generate_csv
from app.tasks.email_simulation import failures

# parameters that keep every type's run short in tests
FAST = {
    "data_processing": {"rows": 300, "chunk_size": 100, "processing_time": 0},
    "email_simulation": {"recipient_count": 5, "delay_per_email": 0},
    "image_processing": {"image_count": 2, "target_size": [64, 48]},
    "text_processing": {},
    "ai_summarization": {},
    "batch_processing": {"delay_per_item": 0},
}


class FakeReporter:
    def __init__(self, data_dir: Path, cancel_after: int | None = None) -> None:
        self.task_id = "task0123abcd"
        self.data_dir = data_dir
        self.calls: list[tuple[float, str]] = []
        self.cancel_after = cancel_after

    async def __call__(self, progress: float, stage: str = "") -> None:
        if self.cancel_after is not None and len(self.calls) >= self.cancel_after:
            raise TaskCancelled()
        self.calls.append((progress, stage))


async def run(task_type: str, tmp_path: Path, **raw: Any) -> tuple[dict[str, Any], FakeReporter]:
    kind = TASK_TYPES[task_type]
    report = FakeReporter(tmp_path)
    result = await kind.run(validate_parameters(kind.params, raw), report)
    json.dumps(result, allow_nan=False)  # what the store and the wire will do with it
    return result, report


# --- registry and schemas ---------------------------------------------------------------------

CONTRACT = {
    "data_processing": {"rows", "processing_time"},
    "email_simulation": {"recipient_count", "delay_per_email"},
    "image_processing": {"image_count", "operation", "target_size"},
    "text_processing": {"text"},
    "ai_summarization": {"document"},
    "batch_processing": {"data"},
}


def test_registry_holds_the_contract_types_and_parameter_names() -> None:
    assert set(TASK_TYPES) == set(CONTRACT)
    for name, params in CONTRACT.items():
        assert get_task_type(name).name == name
        assert params <= set(TASK_TYPES[name].params)
    operations = TASK_TYPES["image_processing"].params["operation"].choices  # type: ignore[attr-defined]
    assert {"resize", "thumbnail", "grayscale", "convert"} <= set(operations)


@pytest.mark.parametrize("name", ["nope", None, 5, ["data_processing"], ""])
def test_unknown_task_type_names_the_known_ones(name: object) -> None:
    with pytest.raises(InvalidParameters) as caught:
        get_task_type(name)
    assert caught.value.field == "task_type"
    assert "data_processing" in caught.value.message and "batch_processing" in caught.value.message


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_defaults_validate_and_describe_as_json(name: str) -> None:
    kind = TASK_TYPES[name]
    defaults = validate_parameters(kind.params, {})
    assert list(defaults) == list(kind.params)
    described = json.loads(json.dumps(kind.describe(), allow_nan=False))
    assert {field: param["default"] for field, param in described["parameters"].items()} == defaults
    assert kind.timeout > 0


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_every_field_refuses_a_wrong_type_and_unknown_fields(name: str) -> None:
    kind = TASK_TYPES[name]
    for field, param in kind.params.items():
        with pytest.raises(InvalidParameters) as caught:
            validate_parameters(kind.params, {field: {"not": "valid"}})
        assert caught.value.field == field
        if isinstance(param, (Int, Float)):
            with pytest.raises(InvalidParameters) as caught:
                validate_parameters(kind.params, {field: True})
            assert caught.value.field == field
            with pytest.raises(InvalidParameters) as caught:
                validate_parameters(kind.params, {field: param.maximum + 1})
            assert caught.value.field == field
    with pytest.raises(InvalidParameters) as caught:
        validate_parameters(kind.params, {"bogus": 1})
    assert caught.value.field == "bogus"


@pytest.mark.asyncio
@pytest.mark.parametrize("name", sorted(CONTRACT))
async def test_progress_rises_to_100_with_stages(name: str, tmp_path: Path) -> None:
    _, report = await run(name, tmp_path, **FAST[name])
    progress = [pct for pct, _ in report.calls]
    assert progress == sorted(progress) and progress[0] >= 0 and progress[-1] == 100
    assert all(stage for _, stage in report.calls)


@pytest.mark.asyncio
@pytest.mark.parametrize("name", sorted(CONTRACT))
async def test_a_cancel_at_a_report_stops_the_run(name: str, tmp_path: Path) -> None:
    kind = TASK_TYPES[name]
    report = FakeReporter(tmp_path, cancel_after=1)
    with pytest.raises(TaskCancelled):
        await kind.run(validate_parameters(kind.params, FAST[name]), report)
    assert len(report.calls) == 1


# --- data_processing --------------------------------------------------------------------------

def test_generated_csv_is_deterministic_and_chunking_does_not_change_it() -> None:
    text = generate_csv(250, 7)
    assert text == generate_csv(250, 7) != generate_csv(250, 8)
    assert "".join(generate_chunks(250, 7, 100)) == text
    assert text.splitlines()[0] == "id,amount,quantity,category,region,score"
    assert len(text.splitlines()) == 251


@pytest.mark.asyncio
async def test_data_processing_statistics_match_an_independent_computation(tmp_path: Path) -> None:
    result, _ = await run("data_processing", tmp_path, rows=537, chunk_size=100, seed=7, processing_time=0)
    rows = list(csv.DictReader(io.StringIO(generate_csv(537, 7))))
    assert result["rows"] == 537 and result["chunks"] == 6 and result["seed"] == 7
    for name in ("id", "amount", "quantity", "score"):
        values = [float(row[name]) for row in rows if row[name] != ""]
        column = result["columns"][name]
        assert column["count"] == len(values) and column["missing"] == 537 - len(values)
        assert column["mean"] == pytest.approx(statistics.mean(values), rel=1e-9)
        assert column["std"] == pytest.approx(statistics.stdev(values), rel=1e-9)
        assert (column["min"], column["max"]) == (min(values), max(values))
    assert result["columns"]["amount"]["missing"] > 0  # the generator does leave gaps
    for name in ("category", "region"):
        counts = Counter(row[name] for row in rows if row[name] != "")
        column = result["columns"][name]
        assert column["count"] == sum(counts.values()) and column["distinct"] == len(counts)
        assert column["missing"] == 537 - sum(counts.values())
        top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:5]
        assert [(entry["value"], entry["count"]) for entry in column["top"]] == top


def test_malformed_rows_name_their_line() -> None:
    header = "id,amount,quantity,category,region,score\n"
    with pytest.raises(ValueError, match="line 3"):
        CsvStats().feed(header + "1,2.5,3,books,north,1.0\n2,2.5,3,books\n")
    with pytest.raises(ValueError, match="line 2.*amount"):
        CsvStats().feed(header + "1,lots,3,books,north,1.0\n")
    stats = CsvStats()
    stats.feed(header + "1,2.5,3,books,north,1.0\n")
    with pytest.raises(ValueError, match="line 3.*quantity"):
        stats.feed("2,2.5,3.5,books,north,1.0\n")
    with pytest.raises(ValueError, match="line 1"):
        CsvStats().feed("a,b,c,d,e,f\n")


@pytest.mark.asyncio
async def test_processing_time_is_a_minimum_pace(tmp_path: Path) -> None:
    started = time.monotonic()
    await run("data_processing", tmp_path, rows=200, chunk_size=100, processing_time=0.3)
    assert time.monotonic() - started >= 0.3


# --- email_simulation -------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_email_delivers_exactly_the_sent_messages(tmp_path: Path) -> None:
    result, _ = await run("email_simulation", tmp_path, recipient_count=101, delay_per_email=0,
                          failure_rate=0.3, seed=3, subject="Quarterly news")
    expected_failed = sum(failures(101, 0.3, 3))
    assert 0 < expected_failed < 101
    assert (result["sent"], result["failed"]) == (101 - expected_failed, expected_failed)
    assert len(result["recipients"]) == 100 and result["recipients_truncated"] is True
    maildir = mailbox.Maildir(tmp_path / "mail", create=False)
    messages = list(maildir)
    assert len(messages) == result["sent"]
    assert result["total_bytes"] == sum(len(maildir.get_bytes(key)) for key in maildir.keys())
    sent_to = {o["recipient"] for o in result["recipients"] if o["status"] == "sent"}
    delivered_to = {message["To"] for message in messages}
    assert sent_to <= delivered_to and len(delivered_to) == result["sent"]
    assert all(message["Subject"] == "Quarterly news" and message["Message-ID"] for message in messages)
    assert all(message["To"] in message.get_payload() for message in messages)


@pytest.mark.asyncio
async def test_email_failures_are_deterministic(tmp_path: Path) -> None:
    first, _ = await run("email_simulation", tmp_path / "a", recipient_count=30, delay_per_email=0,
                         failure_rate=0.5, seed=9)
    second, _ = await run("email_simulation", tmp_path / "b", recipient_count=30, delay_per_email=0,
                          failure_rate=0.5, seed=9)
    assert [o["status"] for o in first["recipients"]] == [o["status"] for o in second["recipients"]]
    assert first["recipients"][0]["recipient"] == "user1@example.test"


# --- image_processing -------------------------------------------------------------------------

def open_outputs(result: dict[str, Any], folder: Path) -> list[Image.Image]:
    images = []
    for record, name in zip(result["images"], result["files"], strict=True):
        data = (folder / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == record["sha256"] and len(data) == record["bytes"]
        image = Image.open(io.BytesIO(data))
        assert (image.width, image.height, image.mode, image.format) == (
            record["width"], record["height"], record["mode"], record["format"])
        images.append(image)
    return images


@pytest.mark.asyncio
@pytest.mark.parametrize(("raw", "check"), [
    ({"operation": "resize", "target_size": [100, 60]}, lambda image: image.size == (100, 60)),
    ({"operation": "thumbnail", "target_size": 100}, lambda image: image.size == (100, 75)),
    ({"operation": "grayscale"}, lambda image: image.mode == "L" and image.size == (640, 480)),
    ({"operation": "rotate", "angle": 90}, lambda image: image.size == (480, 640)),
    ({"operation": "blur", "format": "BMP"}, lambda image: image.size == (640, 480) and image.format == "BMP"),
    ({"operation": "convert", "format": "JPEG"}, lambda image: image.format == "JPEG" and image.mode == "RGB"),
    ({"operation": "convert", "format": "WEBP"}, lambda image: image.format == "WEBP"),
    ({"operation": "grayscale", "format": "GIF"}, lambda image: image.format == "GIF"),
])
async def test_image_outputs_open_with_what_was_asked(raw: dict[str, Any], check: Any, tmp_path: Path) -> None:
    result, report = await run("image_processing", tmp_path, image_count=2, **raw)
    folder = tmp_path / "artifacts" / report.task_id
    assert result["artifacts_dir"] == f"artifacts/{report.task_id}"
    extension = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "GIF": "gif", "BMP": "bmp"}[raw.get("format", "PNG")]
    assert result["files"] == [f"image_1.{extension}", f"image_2.{extension}"]
    images = open_outputs(result, folder)
    assert all(check(image) for image in images)
    assert all(record["source_size"] == [640, 480] for record in result["images"])


@pytest.mark.asyncio
async def test_images_are_deterministic_by_seed_and_index(tmp_path: Path) -> None:
    first, _ = await run("image_processing", tmp_path / "a", image_count=2, seed=5)
    second, _ = await run("image_processing", tmp_path / "b", image_count=2, seed=5)
    other, _ = await run("image_processing", tmp_path / "c", image_count=2, seed=6)
    hashes = [record["sha256"] for record in first["images"]]
    assert hashes == [record["sha256"] for record in second["images"]]
    assert hashes[0] != hashes[1] and hashes != [record["sha256"] for record in other["images"]]


# --- text_processing --------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_text_statistics(tmp_path: Path) -> None:
    text = "  The cat sat. The cat ran!\n\nDogs bark?   Yes.\n"
    result, _ = await run("text_processing", tmp_path, text=text)
    assert result["word_count"] == 9 and result["unique_words"] == 7
    assert result["char_count"] == len(text)
    assert result["char_count_no_spaces"] == len("".join(text.split()))
    assert (result["sentence_count"], result["paragraph_count"]) == (4, 2)
    assert result["top_words"][0] == {"word": "cat", "count": 2}
    assert "the" not in {entry["word"] for entry in result["top_words"]}
    assert result["reading_time_seconds"] == pytest.approx(9 / 200 * 60, abs=0.05)
    assert result["normalized_text"] == "The cat sat. The cat ran! Dogs bark? Yes."
    assert result["normalized_truncated"] is False


@pytest.mark.asyncio
async def test_long_normalized_text_is_capped(tmp_path: Path) -> None:
    result, _ = await run("text_processing", tmp_path, text="word " * 4000)
    assert result["word_count"] == 4000 and result["top_words"] == [{"word": "word", "count": 4000}]
    assert len(result["normalized_text"]) == 10_000 and result["normalized_truncated"] is True


# --- ai_summarization -------------------------------------------------------------------------

DOCUMENT = " ".join(f"Sentence number {n} talks about topic{n % 4} and queue{n}." for n in range(10)) + (
    " It is what it is.")


@pytest.mark.asyncio
@pytest.mark.parametrize(("raw", "expected"), [
    ({"max_sentences": 3}, 3), ({"ratio": 0.2}, 3), ({"ratio": 0.2, "max_sentences": 50}, 3),
    ({"ratio": 0.9, "max_sentences": 1}, 1), ({"max_sentences": 50}, 11),
])
async def test_summary_sentences_are_verbatim_in_order(raw: dict[str, Any], expected: int, tmp_path: Path) -> None:
    result, _ = await run("ai_summarization", tmp_path, document=DOCUMENT, **raw)
    chosen = result["sentences"]
    assert len(chosen) == result["sentence_count"] == expected
    positions = [DOCUMENT.index(sentence) for sentence in chosen]
    assert positions == sorted(positions)
    assert result["summary"] == " ".join(chosen)
    assert result["original_length"] == len(DOCUMENT) and result["summary_length"] == len(result["summary"])
    assert result["compression_ratio"] == pytest.approx(len(result["summary"]) / len(DOCUMENT), abs=1e-4)
    assert result["method"] == "tf-idf"
    if expected < 11:
        assert "It is what it is." not in chosen  # stop words only: no weight at all


@pytest.mark.asyncio
async def test_summary_keeps_to_the_topic(tmp_path: Path) -> None:
    document = (
        "The council voted to expand the bicycle lane network downtown. The plan adds twelve miles of "
        "protected bicycle lanes. A local bakery celebrated its fiftieth anniversary. Funding for the "
        "bicycle lanes comes from a state grant. Construction of the first bicycle lanes starts in spring."
    )
    result, _ = await run("ai_summarization", tmp_path, document=document, max_sentences=3)
    assert all("bicycle" in sentence for sentence in result["sentences"])


@pytest.mark.asyncio
async def test_a_document_without_sentences_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no sentences"):
        await run("ai_summarization", tmp_path, document=" ... \n\n !? ")


# --- batch_processing -------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_batch_outcomes_per_item(tmp_path: Path) -> None:
    data = ["ab", 4, -9, 2.5, True, None, 1e200]
    result, report = await run("batch_processing", tmp_path, data=data, delay_per_item=0)
    assert (result["total"], result["succeeded"], result["failed"]) == (7, 4, 3)
    items = result["items"]
    assert [item["index"] for item in items] == list(range(7))
    assert items[0]["output"] == {"length": 2, "upper": "AB", "sha256": hashlib.sha256(b"ab").hexdigest()}
    assert items[1]["output"] == {"value": 4, "square": 16, "sqrt": 2.0}
    assert items[2]["output"] == {"value": -9, "square": 81, "sqrt": None}
    assert items[3]["output"] == {"value": 2.5, "square": 6.25, "sqrt": math.sqrt(2.5)}
    assert [item["ok"] for item in items] == [True, True, True, True, False, False, False]
    assert items[4]["error"] == items[5]["error"] == "unsupported item type"
    assert result["items_truncated"] is False
    assert len(report.calls) == 8  # one per item, then done


@pytest.mark.asyncio
async def test_batch_fail_fast_names_the_item(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="item 2"):
        await run("batch_processing", tmp_path, data=["a", 1, None, "b"], delay_per_item=0, fail_fast=True)


@pytest.mark.asyncio
async def test_batch_lists_the_first_hundred_items(tmp_path: Path) -> None:
    result, _ = await run("batch_processing", tmp_path, data=list(range(150)), delay_per_item=0)
    assert result["succeeded"] == 150 and len(result["items"]) == 100 and result["items_truncated"] is True
