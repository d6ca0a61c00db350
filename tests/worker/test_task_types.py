"""Task types: the registry and schemas, and the data, text, summary and batch runs checked against
independent computations (e-mail and images in their own modules)."""

import csv
import hashlib
import io
import json
import math
import random
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from app.core.errors import InvalidParameters
from app.tasks import TaskCancelled
from app.tasks.builtin import csvstats
from app.tasks.builtin.ai_summarization import pick
from app.tasks.builtin.csvstats import quantile
from app.tasks.builtin.data_processing import generate_chunks, generate_csv
from tests.support.task_runs import TASK_TYPES, FakeReporter, run, write_upload

# parameters that keep every type's run short in tests
FAST = {
    "data_processing": {"rows": 300, "chunk_size": 100, "processing_time": 0},
    "email_simulation": {"recipient_count": 5, "delay_per_email": 0},
    "image_processing": {"image_count": 2, "target_size": [64, 48]},
    "text_processing": {},
    "ai_summarization": {},
    "batch_processing": {"delay_per_item": 0},
}


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
        assert TASK_TYPES.named(name).name == name
        assert params <= set(TASK_TYPES[name].parameters.model_fields)
    operations = TASK_TYPES["image_processing"].describe()["parameters"]["operation"]["choices"]
    assert {"resize", "thumbnail", "grayscale", "convert"} <= set(operations)


@pytest.mark.parametrize("name", ["nope", None, 5, ["data_processing"], ""])
def test_unknown_task_type_names_the_known_ones(name: object) -> None:
    with pytest.raises(InvalidParameters) as caught:
        TASK_TYPES.named(name)
    assert caught.value.field == "task_type"
    assert "data_processing" in caught.value.message and "batch_processing" in caught.value.message


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_defaults_validate_and_describe_as_json(name: str) -> None:
    kind = TASK_TYPES[name]
    defaults = kind.validate({})
    assert list(defaults) == list(kind.parameters.model_fields)
    described = json.loads(json.dumps(kind.describe(), allow_nan=False))
    assert {field: param["default"] for field, param in described["parameters"].items()} == defaults
    assert kind.timeout > 0


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_every_field_refuses_a_wrong_type_and_unknown_fields(name: str) -> None:
    kind = TASK_TYPES[name]
    for field, param in kind.describe()["parameters"].items():
        with pytest.raises(InvalidParameters) as caught:
            kind.validate({field: {"not": "valid"}})
        assert caught.value.field == field
        if param["type"] in ("integer", "number"):
            with pytest.raises(InvalidParameters) as caught:
                kind.validate({field: True})
            assert caught.value.field == field
            with pytest.raises(InvalidParameters) as caught:
                kind.validate({field: param["maximum"] + 1})
            assert caught.value.field == field
    with pytest.raises(InvalidParameters) as caught:
        kind.validate({"bogus": 1})
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
        await kind.run(kind.validate(FAST[name]), report)
    assert len(report.calls) == 1


# --- data_processing --------------------------------------------------------------------------

def expected_columns(rows: list[dict[str, str]], names: list[str]) -> dict[str, Any]:
    """Per-column statistics computed here, with csv, statistics and Counter, to compare with the task's."""
    columns: dict[str, Any] = {}
    for name in names:
        present = [row[name].strip() for row in rows if row[name].strip()]
        try:
            numbers = [float(value) for value in present]
        except ValueError:
            counts = Counter(present)
            top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:5]
            columns[name] = {"kind": "categorical", "count": len(present), "missing": len(rows) - len(present),
                             "distinct": len(counts), "top": [{"value": v, "count": c} for v, c in top]}
            continue
        cuts = statistics.quantiles(numbers, n=20, method="inclusive")  # every 5%
        columns[name] = {"kind": "numeric", "count": len(numbers), "missing": len(rows) - len(numbers),
                         "mean": statistics.mean(numbers), "std": statistics.stdev(numbers),
                         "min": min(numbers), "max": max(numbers),
                         "quantiles": {"p5": cuts[0], "p25": cuts[4], "p50": cuts[9], "p75": cuts[14],
                                       "p95": cuts[18]}}
    return columns


def assert_columns_match(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    assert list(actual) == list(expected)
    for name, want in expected.items():
        got = actual[name]
        if want["kind"] == "categorical":
            assert got == want, name
            continue
        assert (got["kind"], got["count"], got["missing"], got["min"], got["max"]) == (
            "numeric", want["count"], want["missing"], want["min"], want["max"]), name
        assert got["mean"] == pytest.approx(want["mean"], rel=1e-12), name
        assert got["std"] == pytest.approx(want["std"], rel=1e-9), name
        assert got["quantiles"] == pytest.approx(want["quantiles"], rel=1e-12, abs=1e-12), name


def test_generated_csv_is_deterministic_and_chunking_does_not_change_it() -> None:
    text = generate_csv(250, 7)
    assert text == generate_csv(250, 7) != generate_csv(250, 8)
    assert "".join(generate_chunks(250, 7, 100)) == text
    assert text.splitlines()[0] == "id,amount,quantity,category,region,score"
    assert len(text.splitlines()) == 251


@pytest.mark.parametrize("count", [1, 2, 3, 7, 20, 101])
def test_quantiles_interpolate_like_statistics_inclusive(count: int) -> None:
    rng = random.Random(count)
    ordered = sorted(rng.uniform(-100, 100) for _ in range(count))
    cuts = statistics.quantiles(ordered * 2 if count == 1 else ordered, n=100, method="inclusive")
    for percent in range(1, 100):
        assert quantile(ordered, percent / 100) == pytest.approx(cuts[percent - 1], rel=1e-12, abs=1e-12)
    assert (quantile(ordered, 0), quantile(ordered, 1)) == (ordered[0], ordered[-1])


@pytest.mark.asyncio
async def test_data_processing_statistics_match_an_independent_computation(tmp_path: Path) -> None:
    result, report = await run("data_processing", tmp_path, rows=537, chunk_size=100, seed=7, processing_time=0)
    rows = list(csv.DictReader(io.StringIO(generate_csv(537, 7))))
    assert (result["source"], result["seed"], result["rows"], result["chunks"]) == ("generated", 7, 537, 6)
    assert result["column_names"] == ["id", "amount", "quantity", "category", "region", "score"]
    assert_columns_match(result["columns"], expected_columns(rows, result["column_names"]))
    assert result["columns"]["amount"]["missing"] > 0  # the generator does leave gaps
    assert result["definitions"]["missing"] and "inclusive" in result["definitions"]["quantiles"]
    assert "chunk 1: rows 1-100" in report.lines and "chunk 6: rows 501-537" in report.lines
    progress = [pct for pct, _ in report.calls]
    assert len(progress) >= 7 and progress == sorted(progress) and progress[-1] == 100


def spreadsheet_export(rows: int) -> bytes:
    """A CSV as a spreadsheet exports it: BOM, CRLF, quoted fields holding commas, quotes and line breaks,
    blanks, and a `code` column that is numeric for 100 rows before its first word."""
    rng = random.Random(11)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["order id", "customer", "city", "amount", "code", "note"])
    for number in range(1, rows + 1):
        writer.writerow([
            number,
            rng.choice(["Smith, John", "Doe, Jane", "Müller, Jürgen", "O'Brien, Pat"]),
            rng.choice(["Paris", "Berlin", " Lyon ", "New York", "", "  "]),
            "" if rng.random() < 0.08 else f"{rng.uniform(-50, 500):.2f}",
            rng.randint(100, 999) if number <= 100 or number % 7 else "unknown",
            rng.choice(["", "gift wrap", 'said "fragile", twice', "leave at door\nring twice"]),
        ])
    return buffer.getvalue().encode("utf-8-sig")


@pytest.mark.asyncio
@pytest.mark.parametrize("block", [csvstats.BLOCK, 100])  # a small block puts rows across block boundaries
async def test_an_uploaded_csv_is_analysed_like_an_independent_reading(block: int, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csvstats, "BLOCK", block)
    data = spreadsheet_export(450)
    upload = write_upload(tmp_path / "uploads", "orders, march.csv", data, "text/csv")
    result, report = await run("data_processing", tmp_path, files=(upload,), upload=[upload.id],
                               chunk_size=100, processing_time=0)
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    names = ["order id", "customer", "city", "amount", "code", "note"]
    assert (result["source"], result["file"], result["upload_id"]) == ("upload", "orders, march.csv", upload.id)
    assert (result["rows"], result["chunks"], result["bytes"], result["column_names"]) == (450, 5, len(data), names)
    assert_columns_match(result["columns"], expected_columns(rows, names))
    kinds = {name: column["kind"] for name, column in result["columns"].items()}
    assert kinds == {"order id": "numeric", "customer": "categorical", "city": "categorical",
                     "amount": "numeric", "code": "categorical", "note": "categorical"}
    assert result["columns"]["city"]["missing"] > 0 and result["columns"]["code"]["distinct"] > 100
    assert any("'code' is categorical: 'unknown' in rows 101-200" in line for line in report.lines)


@pytest.mark.asyncio
@pytest.mark.parametrize(("data", "message"), [
    (b"a,b,c,d,e\r\n" + b"1,2,3,4,5\r\n" * 15 + b"1,2,3\r\n", "line 17: expected 5 fields, got 3"),
    (b'a,b\n1,"two\nlines"\n' + b"3,4\n" * 200 + b"5,6,7\n", "line 204: expected 2 fields, got 3"),
    ("name,city\nAnna,Paris\nJosé,Lyon\n".encode("latin-1"), r"line 3: not UTF-8 text \(byte 0xe9 at column 4\)"),
    (b"", "line 1: no header"),
    (b'name,note\nAnna,"never closed\nBob,fine\n', "line 2: unexpected end of data"),
    (b'name,note\nAnna,"quoted"then text\n', "line 2: ',' expected after '\"'"),
    (b"id,id\n1,2\n", "line 1: the column name 'id' appears twice"),
])
@pytest.mark.parametrize("block", [csvstats.BLOCK, 7])
async def test_a_malformed_csv_fails_naming_the_line(data: bytes, message: str, block: int, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csvstats, "BLOCK", block)
    upload = write_upload(tmp_path / "uploads", "broken.csv", data, "text/csv")
    with pytest.raises(ValueError, match=f"^upload 'broken.csv', {message}"):
        await run("data_processing", tmp_path, files=(upload,), upload=[upload.id], chunk_size=100, processing_time=0)


@pytest.mark.asyncio
async def test_odd_numbers_and_blank_lines(tmp_path: Path) -> None:
    data = b"x,y,z,w\n\n1e3,nan,,1e308\n -2 ,1,,-1.7e308\n\n"
    upload = write_upload(tmp_path / "uploads", "odd.csv", data, "text/csv")
    result, _ = await run("data_processing", tmp_path, files=(upload,), upload=[upload.id], processing_time=0)
    x, y, z, w = (result["columns"][name] for name in "xyzw")
    assert (result["rows"], result["blank_lines"]) == (2, 2)
    assert (x["kind"], x["min"], x["max"], x["quantiles"]["p50"]) == ("numeric", -2.0, 1000.0, 499.0)
    assert y["kind"] == "categorical"  # "nan" is not a finite number
    assert (z["kind"], z["count"], z["missing"], z["mean"], z["std"]) == ("numeric", 0, 2, None, None)
    # near the float limit: the spread does not fit in a float, the middle does
    assert (w["mean"], w["std"], w["quantiles"]["p50"]) == (pytest.approx(-3.5e307), None, pytest.approx(-3.5e307))


@pytest.mark.asyncio
async def test_processing_time_is_a_minimum_pace(tmp_path: Path) -> None:
    started = time.monotonic()
    await run("data_processing", tmp_path, rows=200, chunk_size=100, processing_time=0.3)
    assert time.monotonic() - started >= 0.3


# --- text_processing --------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_text_statistics(tmp_path: Path) -> None:
    text = "  The cat sat. The cat ran!\n\nDogs bark?   Yes.\n"
    result, report = await run("text_processing", tmp_path, text=text)
    assert result["word_count"] == 9 and result["unique_words"] == 7
    assert result["char_count"] == len(text)
    assert result["char_count_no_spaces"] == len("".join(text.split()))
    assert (result["sentence_count"], result["paragraph_count"]) == (4, 2)
    assert result["top_words"][0] == {"word": "cat", "count": 2}
    assert "the" not in {entry["word"] for entry in result["top_words"]}
    assert result["reading_time_seconds"] == pytest.approx(9 / 200 * 60, abs=0.05)
    assert result["normalized_text"] == "The cat sat. The cat ran! Dogs bark? Yes."
    assert result["normalized_truncated"] is False
    assert report.lines == [f"analysing {len(text)} characters",
                            "9 words (7 distinct), 4 sentences, 2 paragraphs; reading time 2.7 s"]


@pytest.mark.asyncio
async def test_long_normalized_text_is_capped(tmp_path: Path) -> None:
    result, _ = await run("text_processing", tmp_path, text="word " * 4000)
    assert result["word_count"] == 4000 and result["top_words"] == [{"word": "word", "count": 4000}]
    assert len(result["normalized_text"]) == 10_000 and result["normalized_truncated"] is True


@pytest.mark.asyncio
async def test_a_text_of_one_huge_word_shows_it_shortened(tmp_path: Path) -> None:
    result, _ = await run("text_processing", tmp_path, text="a" * 1_000_000)  # was a result over 1 MB: FAILED
    assert result["word_count"] == 1 and result["top_words"] == [{"word": "a" * 99 + "…", "count": 1}]


# --- ai_summarization -------------------------------------------------------------------------

DOCUMENT = " ".join(f"Sentence number {n} talks about topic{n % 4} and queue{n}." for n in range(10)) + (
    " It is what it is.")


@pytest.mark.asyncio
@pytest.mark.parametrize(("raw", "expected"), [
    ({"max_sentences": 3}, 3), ({"ratio": 0.2}, 3), ({"ratio": 0.2, "max_sentences": 50}, 3),
    ({"ratio": 0.9, "max_sentences": 1}, 1), ({"max_sentences": 50}, 11),
])
async def test_summary_sentences_are_verbatim_in_order(raw: dict[str, Any], expected: int, tmp_path: Path) -> None:
    result, report = await run("ai_summarization", tmp_path, document=DOCUMENT, **raw)
    chosen = result["sentences"]
    assert len(chosen) == result["sentence_count"] == expected
    positions = [DOCUMENT.index(sentence) for sentence in chosen]
    assert positions == sorted(positions)
    assert result["summary"] == " ".join(chosen)
    assert result["original_length"] == len(DOCUMENT) and result["summary_length"] == len(result["summary"])
    assert result["compression_ratio"] == pytest.approx(len(result["summary"]) / len(DOCUMENT), abs=1e-4)
    assert result["method"] == "tf-idf"
    summary_length = len(result["summary"])
    assert report.lines[-1] == f"kept {expected} of 11 sentences: {summary_length} of {len(DOCUMENT)} characters"
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


@pytest.mark.asyncio
@pytest.mark.parametrize("document", ["😀a" * 499_999 + ".", "\n" * 500_000 + "a" + " " * 499_999,
                                      ("Long " * 3_999 + "end. ") * 50])
async def test_a_summary_as_long_as_the_document_is_quoted_in_part(document: str, tmp_path: Path) -> None:
    # was a result over 1 MB, FAILED: one sentence may be the whole document, quoted twice
    result, _ = await run("ai_summarization", tmp_path, document=document, max_sentences=50, ratio=1.0)
    assert result["summary_truncated"] is True and 19_000 < len(result["summary"]) <= 20_000
    assert result["summary"] == " ".join(result["sentences"]) and result["sentences"][0] in document
    assert result["summary_length"] > 20_000 and result["sentence_count"] == min(50, result["original_sentence_count"])
    assert len(json.dumps(result)) < 1_000_000


def test_the_sentences_picked_are_the_best_scored_ties_to_the_earlier() -> None:
    rng = random.Random(7)
    for _ in range(300):
        scores = [rng.choice([0.0, 0.5, 1.0, rng.random()]) for _ in range(rng.randint(1, 80))]
        keep = rng.randint(1, len(scores))
        ranked = sorted(range(len(scores)), key=lambda index: (-scores[index], index))
        assert pick(scores, keep) == sorted(ranked[:keep])


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
    assert report.lines == ["item 4 failed: unsupported item type", "item 5 failed: unsupported item type",
                            "item 6 failed: number too large", "4 of 7 items succeeded, 3 failed"]


@pytest.mark.asyncio
async def test_batch_fail_fast_names_the_item(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="item 2"):
        await run("batch_processing", tmp_path, data=["a", 1, None, "b"], delay_per_item=0, fail_fast=True)


@pytest.mark.asyncio
async def test_batch_lists_the_first_hundred_items(tmp_path: Path) -> None:
    result, _ = await run("batch_processing", tmp_path, data=list(range(150)), delay_per_item=0)
    assert result["succeeded"] == 150 and len(result["items"]) == 100 and result["items_truncated"] is True


@pytest.mark.asyncio
async def test_batch_shows_a_long_strings_upper_case_shortened(tmp_path: Path) -> None:
    # a request's 2 MiB hold 190 strings of 10,000 characters: their upper case was a result over 1 MB, FAILED
    data = ["ß" * 10_000] * 95 + ["😀" * 10_000] * 95
    result, _ = await run("batch_processing", tmp_path, data=data, delay_per_item=0)
    first, last = result["items"][0]["output"], result["items"][-1]["output"]
    assert first["upper"] == "S" * 500 and first["upper_truncated"] is True and first["length"] == 10_000
    assert last["upper"] == "😀" * 500 and first["sha256"] == hashlib.sha256(data[0].encode()).hexdigest()
    assert "upper_truncated" not in (await run("batch_processing", tmp_path, data=["ab"], delay_per_item=0))[0][
        "items"][0]["output"]
