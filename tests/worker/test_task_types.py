"""Task types: the registry, and each type's run checked against independent computations."""

import csv
import hashlib
import io
import json
import mailbox
import math
import os
import random
import shutil
import socket
import ssl
import statistics
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from PIL import Image

from app.core.errors import InvalidParameters
from app.tasks import TaskCancelled, load_task_types
from app.tasks.builtin import csvstats
from app.tasks.builtin.csvstats import quantile
from app.tasks.builtin.data_processing import generate_chunks, generate_csv
from app.tasks.builtin.email_simulation import failures
from app.tasks.builtin.mailers import SmtpError
from launcher.redis_server import free_port

TASK_TYPES = load_task_types()

# parameters that keep every type's run short in tests
FAST = {
    "data_processing": {"rows": 300, "chunk_size": 100, "processing_time": 0},
    "email_simulation": {"recipient_count": 5, "delay_per_email": 0},
    "image_processing": {"image_count": 2, "target_size": [64, 48]},
    "text_processing": {},
    "ai_summarization": {},
    "batch_processing": {"delay_per_item": 0},
}


@dataclass
class FakeUpload:
    id: str
    filename: str
    path: Path
    size: int
    content_type: str


def write_upload(folder: Path, filename: str, data: bytes, content_type: str) -> FakeUpload:
    """A file as the upload store would hand it over: stored under its id, named by the user."""
    upload_id = uuid.uuid4().hex
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / upload_id
    path.write_bytes(data)
    return FakeUpload(upload_id, filename, path, len(data), content_type)


class FakeReporter:
    def __init__(self, data_dir: Path, cancel_after: int | None = None, smtp_url: str | None = None,
                 uploads: tuple[FakeUpload, ...] = ()) -> None:
        self.task_id = "task0123abcd"
        self.data_dir = data_dir
        self.artifacts = data_dir / "artifacts" / self.task_id
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.smtp_url = smtp_url
        self.uploads = {upload.id: upload for upload in uploads}
        self.calls: list[tuple[float, str]] = []
        self.lines: list[str] = []
        self.cancel_after = cancel_after

    async def __call__(self, progress: float, stage: str = "") -> None:
        if self.cancel_after is not None and len(self.calls) >= self.cancel_after:
            raise TaskCancelled()
        self.calls.append((progress, stage))

    async def log(self, line: str) -> None:
        self.lines.append(line)

    def upload(self, upload_id: str) -> FakeUpload:
        return self.uploads[upload_id]


async def run(task_type: str, tmp_path: Path, *, smtp_url: str | None = None, files: tuple[FakeUpload, ...] = (),
              cancel_after: int | None = None, **raw: Any) -> tuple[dict[str, Any], FakeReporter]:
    kind = TASK_TYPES[task_type]
    report = FakeReporter(tmp_path, cancel_after, smtp_url, files)
    result = await kind.run(kind.validate(raw), report)
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


# --- email_simulation -------------------------------------------------------------------------

def recipients_of(count: int, rate: float, seed: int) -> list[str]:
    """The recipients the task should really send to: all but the simulated failures."""
    return [f"user{n}@example.test" for n, failed in enumerate(failures(count, rate, seed), 1) if not failed]


@pytest.mark.asyncio
async def test_email_delivers_exactly_the_sent_messages(tmp_path: Path) -> None:
    result, report = await run("email_simulation", tmp_path, recipient_count=101, delay_per_email=0,
                               failure_rate=0.3, seed=3, subject="Quarterly news")
    expected = recipients_of(101, 0.3, 3)
    assert 0 < len(expected) < 101
    assert (result["transport"], result["sent"], result["failed"]) == ("maildir", len(expected), 101 - len(expected))
    assert len(result["recipients"]) == 100 and result["recipients_truncated"] is True
    maildir = mailbox.Maildir(tmp_path / "mail", create=False)
    messages = list(maildir)
    assert result["total_bytes"] == sum(len(maildir.get_bytes(key)) for key in maildir.keys())
    assert sorted(message["To"] for message in messages) == sorted(expected)
    assert all(message["Subject"] == "Quarterly news" and message["Message-ID"] for message in messages)
    assert all(message["To"] in message.get_payload() for message in messages)
    assert len(report.lines) == 102 and report.lines[-1] == f"{len(expected)} sent, {101 - len(expected)} failed"


@pytest.mark.asyncio
async def test_email_failures_are_deterministic(tmp_path: Path) -> None:
    first, _ = await run("email_simulation", tmp_path / "a", recipient_count=30, delay_per_email=0,
                         failure_rate=0.5, seed=9)
    second, _ = await run("email_simulation", tmp_path / "b", recipient_count=30, delay_per_email=0,
                          failure_rate=0.5, seed=9)
    assert [o["status"] for o in first["recipients"]] == [o["status"] for o in second["recipients"]]
    assert first["recipients"][0]["recipient"] == "user1@example.test"


class Collector:
    """An aiosmtpd handler keeping the envelopes it accepts; it refuses `refuse` at RCPT and answers
    421 (closing) to the first `drops` DATA commands."""

    def __init__(self, refuse: tuple[str, ...] = (), drops: int = 0) -> None:
        self.envelopes: list[Envelope] = []
        self.refuse = refuse
        self.drops = drops
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_RCPT(self, server: Any, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if self.drops:
            self.drops -= 1
            return "421 4.3.2 service shutting down"
        self.envelopes.append(envelope)
        return "250 2.0.0 queued"

    def authenticate(self, server: Any, session: Session, envelope: Envelope, mechanism: str,
                     auth_data: LoginPassword) -> AuthResult:
        self.logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"p@ss word")


@pytest.fixture
def smtp_server() -> Iterator[Any]:
    """Starts a real SMTP server (aiosmtpd, in its own thread) on 127.0.0.1 for a handler."""
    started: list[Controller] = []

    def start(handler: Collector, **options: Any) -> str:
        controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **options)
        controller.start()
        started.append(controller)
        return f"127.0.0.1:{controller.port}"

    yield start
    for controller in started:
        controller.stop()


@pytest.mark.asyncio
async def test_email_over_smtp_reaches_exactly_the_recipients_not_failed(tmp_path: Path, smtp_server: Any) -> None:
    handler = Collector()
    address = smtp_server(handler)
    result, report = await run("email_simulation", tmp_path, smtp_url=f"smtp://{address}", recipient_count=12,
                               delay_per_email=0, failure_rate=0.3, seed=3, subject="Quarterly news")
    expected = recipients_of(12, 0.3, 3)
    assert (result["transport"], result["server"], result["tls"]) == ("smtp", address, "none")
    assert (result["sent"], result["failed"]) == (len(expected), 12 - len(expected))
    assert [envelope.rcpt_tos for envelope in handler.envelopes] == [[to] for to in expected]
    for envelope in handler.envelopes:
        message = message_from_bytes(envelope.content, policy=policy.default)
        number = int(envelope.rcpt_tos[0].removeprefix("user").split("@")[0])
        assert envelope.mail_from == "noreply@example.test"
        assert b"\n" not in envelope.original_content.replace(b"\r\n", b"")  # no bare LF on the wire
        assert (message["To"], message["Subject"]) == (envelope.rcpt_tos[0], "Quarterly news")
        body = message.get_content().replace("\r\n", "\n")
        assert body.startswith(f"Hello user {number},\n\nthis is message {number} of 12, sent to {envelope.rcpt_tos[0]}")
    sent = [o for o in result["recipients"] if o["status"] == "sent"]
    assert [o["recipient"] for o in sent] == expected
    assert all((o["code"], o["answer"]) == (250, "2.0.0 queued") for o in sent)
    assert result["total_bytes"] == sum(o["bytes"] for o in sent)
    assert not (tmp_path / "mail").exists()
    assert f"{expected[0]}: sent (250 2.0.0 queued)" in report.lines


@pytest.mark.asyncio
async def test_a_refused_recipient_is_a_per_recipient_failure(tmp_path: Path, smtp_server: Any) -> None:
    handler = Collector(refuse=("user2@example.test",))
    address = smtp_server(handler)
    result, report = await run("email_simulation", tmp_path, smtp_url=f"smtp://{address}", recipient_count=4,
                               delay_per_email=0)
    assert (result["sent"], result["failed"]) == (3, 1)
    refused = result["recipients"][1]
    assert (refused["recipient"], refused["status"], refused["step"], refused["code"]) == (
        "user2@example.test", "failed", "RCPT", 550)
    assert refused["error"] == "5.1.1 mailbox unavailable"
    assert [envelope.rcpt_tos for envelope in handler.envelopes] == [[f"user{n}@example.test"] for n in (1, 3, 4)]
    assert "user2@example.test: failed: 550 5.1.1 mailbox unavailable" in report.lines


@pytest.mark.asyncio
async def test_smtp_logs_in_with_the_url_credentials(tmp_path: Path, smtp_server: Any) -> None:
    handler = Collector()
    address = smtp_server(handler, authenticator=handler.authenticate, auth_require_tls=False)
    result, _ = await run("email_simulation", tmp_path, smtp_url=f"smtp://sender:p%40ss%20word@{address}",
                          recipient_count=2, delay_per_email=0)
    assert result["sent"] == 2 and handler.logins == [(b"sender", b"p@ss word")]
    assert "p@ss" not in json.dumps(result)


@pytest.mark.asyncio
async def test_smtp_reconnects_once_when_the_server_hangs_up(tmp_path: Path, smtp_server: Any) -> None:
    handler = Collector(drops=1)
    result, _ = await run("email_simulation", tmp_path, smtp_url=f"smtp://{smtp_server(handler)}",
                          recipient_count=3, delay_per_email=0)
    assert result["sent"] == 3
    assert [envelope.rcpt_tos for envelope in handler.envelopes] == [[f"user{n}@example.test"] for n in (1, 2, 3)]
    handler = Collector(drops=2)
    with pytest.raises(SmtpError, match="dropped the connection twice: 421 4.3.2 service shutting down"):
        await run("email_simulation", tmp_path, smtp_url=f"smtp://{smtp_server(handler)}", recipient_count=3,
                  delay_per_email=0)


@pytest.mark.asyncio
@pytest.mark.parametrize(("url", "message"), [
    ("smtp://127.0.0.1:{closed}", r"SMTP server 127.0.0.1:\d+: .*refused"),
    ("http://127.0.0.1:{closed}", "SMTP_URL must look like"),
    ("smtp://{server}?starttls=1", "does not offer STARTTLS"),
])
async def test_smtp_problems_fail_with_a_clear_message(url: str, message: str, tmp_path: Path,
                                                       smtp_server: Any) -> None:
    # The closed port stays bound (never listening) until the end: a server started meanwhile (this
    # test's own, on a port the system picks) cannot be handed the same port.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        server = smtp_server(Collector()) if "{server}" in url else ""
        smtp_url = url.format(closed=closed.getsockname()[1], server=server)
        with pytest.raises(SmtpError, match=message):
            await run("email_simulation", tmp_path, smtp_url=smtp_url, recipient_count=1, delay_per_email=0)


@pytest.fixture
def tls_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, trusted by this test's TLS clients (SSL_CERT_FILE)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    return cert, key


@pytest.mark.asyncio
@pytest.mark.parametrize(("scheme", "query", "option", "tls"), [
    ("smtp", "?starttls=1", "tls_context", "starttls"), ("smtps", "", "ssl_context", "implicit")])
async def test_smtp_over_tls(scheme: str, query: str, option: str, tls: str, tmp_path: Path, smtp_server: Any,
                             tls_files: tuple[Path, Path]) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*tls_files)
    handler = Collector()
    address = smtp_server(handler, **{option: context})
    result, _ = await run("email_simulation", tmp_path, smtp_url=f"{scheme}://{address}{query}", recipient_count=2,
                          delay_per_email=0)
    assert (result["sent"], result["tls"], len(handler.envelopes)) == (2, tls, 2)


# --- image_processing -------------------------------------------------------------------------

def open_outputs(result: dict[str, Any], folder: Path) -> list[Image.Image]:
    """Every output, opened from its file with Pillow after checking it against its record."""
    images = []
    for record, name in zip(result["images"], result["files"], strict=True):
        assert record["file"] == name
        data = (folder / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == record["sha256"] and len(data) == record["bytes"]
        image = Image.open(io.BytesIO(data))
        image.load()
        assert (image.width, image.height, image.mode, image.format) == (
            record["width"], record["height"], record["mode"], record["format"])
        images.append(image)
    assert sorted(path.name for path in folder.iterdir()) == sorted(result["files"])
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
    extension = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "GIF": "gif", "BMP": "bmp"}[raw.get("format", "PNG")]
    assert result["files"] == [f"image_1.{extension}", f"image_2.{extension}"]
    images = open_outputs(result, report.artifacts)
    assert all(check(image) for image in images)
    assert all(record["source_size"] == [640, 480] for record in result["images"])
    assert [record["source"] for record in result["images"]] == ["generated"] * 2 and len(report.lines) == 2


@pytest.mark.asyncio
async def test_images_are_deterministic_by_seed_and_index(tmp_path: Path) -> None:
    first, _ = await run("image_processing", tmp_path / "a", image_count=2, seed=5)
    second, _ = await run("image_processing", tmp_path / "b", image_count=2, seed=5)
    other, _ = await run("image_processing", tmp_path / "c", image_count=2, seed=6)
    hashes = [record["sha256"] for record in first["images"]]
    assert hashes == [record["sha256"] for record in second["images"]]
    assert hashes[0] != hashes[1] and hashes != [record["sha256"] for record in other["images"]]


def encoded(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def picture(mode: str, size: tuple[int, int]) -> Image.Image:
    """A gradient with a square, in the given mode: some structure for the operations to work on."""
    image = Image.linear_gradient("L").resize(size).convert(mode)
    image.paste(Image.new(mode, (size[0] // 3, size[1] // 3), "white" if mode != "RGBA" else (200, 30, 30, 0)),
                (size[0] // 4, size[1] // 4))
    return image


@pytest.fixture
def photos(tmp_path: Path) -> tuple[FakeUpload, ...]:
    """Uploads as users send them, and the upright size each one shows at."""
    folder = tmp_path / "uploads"
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: stored sideways, shown rotated a quarter turn (a phone photo)
    return (
        write_upload(folder, "holiday.jpg", encoded(picture("RGB", (320, 200)), "JPEG", quality=85), "image/jpeg"),
        write_upload(folder, "logo.png", encoded(picture("RGBA", (120, 160)), "PNG"), "image/png"),
        write_upload(folder, "scan.gif", encoded(picture("L", (200, 200)).convert("P"), "GIF"), "image/gif"),
        write_upload(folder, "portrait.jpg", encoded(picture("RGB", (300, 200)), "JPEG", exif=exif), "image/jpeg"),
    )


SHOWN = {"holiday.jpg": (320, 200), "logo.png": (120, 160), "scan.gif": (200, 200), "portrait.jpg": (200, 300)}


def within_box_keeping_aspect(image: Image.Image, shown: tuple[int, int], box: int) -> bool:
    width, height = image.size
    return max(width, height) == box and abs(width / height - shown[0] / shown[1]) < 0.02


@pytest.mark.asyncio
@pytest.mark.parametrize(("raw", "check"), [
    ({"operation": "resize", "target_size": [100, 60]}, lambda image, shown: image.size == (100, 60)),
    ({"operation": "thumbnail", "target_size": 100},
     lambda image, shown: within_box_keeping_aspect(image, shown, 100)),
    ({"operation": "grayscale"}, lambda image, shown: image.mode == "L" and image.size == shown),
    ({"operation": "rotate", "angle": 90}, lambda image, shown: image.size == shown[::-1]),
    ({"operation": "blur"}, lambda image, shown: image.size == shown and image.mode in ("L", "RGB", "RGBA")),
    ({"operation": "convert", "format": "JPEG"},
     lambda image, shown: image.format == "JPEG" and image.mode in ("RGB", "L") and image.size == shown),
    ({"operation": "convert", "format": "WEBP"}, lambda image, shown: image.format == "WEBP" and image.size == shown),
])
async def test_uploaded_images_are_processed(raw: dict[str, Any], check: Any, tmp_path: Path,
                                             photos: tuple[FakeUpload, ...]) -> None:
    result, report = await run("image_processing", tmp_path, files=photos, uploads=[p.id for p in photos], **raw)
    assert (result["source"], result["image_count"]) == ("upload", 4)
    images = open_outputs(result, report.artifacts)
    for record, image in zip(result["images"], images, strict=True):
        shown = SHOWN[record["source"]]
        assert record["source_size"] == list(shown)
        assert check(image, shown), (record["source"], image.size, image.mode)
    assert [record["source"] for record in result["images"]] == list(SHOWN)
    assert report.lines[2].startswith("image 3/4 (scan.gif): image_3.")


@pytest.mark.asyncio
async def test_transparency_is_kept_where_the_format_holds_it(tmp_path: Path, photos: tuple[FakeUpload, ...]) -> None:
    result, report = await run("image_processing", tmp_path, files=photos[1:2], uploads=[photos[1].id],
                               operation="resize", target_size=[60, 80])
    (image,) = open_outputs(result, report.artifacts)
    assert image.mode == "RGBA" and image.getextrema()[3][0] == 0  # some pixels still fully transparent


@pytest.mark.asyncio
@pytest.mark.parametrize(("name", "data"), [
    ("photo.png", os.urandom(2000)),
    ("fake.png", b"\x89PNG\r\n\x1a\n" + os.urandom(500)),
    ("cut.jpg", encoded(picture("RGB", (320, 200)), "JPEG")[:1500]),
    ("notes.txt", b"not a picture at all\n"),
])
async def test_an_upload_that_is_not_an_image_fails_naming_it(name: str, data: bytes, tmp_path: Path,
                                                              photos: tuple[FakeUpload, ...]) -> None:
    bad = write_upload(tmp_path / "uploads", name, data, "image/png")
    with pytest.raises(ValueError, match=f"^upload '{name}' is not a readable image: .") as caught:
        await run("image_processing", tmp_path, files=(photos[0], bad), uploads=[photos[0].id, bad.id])
    assert str(tmp_path) not in str(caught.value)  # the user's name for the file, never where it is stored


@pytest.mark.asyncio
async def test_a_cancel_stops_between_images(tmp_path: Path, photos: tuple[FakeUpload, ...]) -> None:
    with pytest.raises(TaskCancelled):
        await run("image_processing", tmp_path, files=photos, uploads=[p.id for p in photos], cancel_after=2)
    assert sorted(path.name for path in (tmp_path / "artifacts" / "task0123abcd").iterdir()) == [
        "image_1.png", "image_2.png"]


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
