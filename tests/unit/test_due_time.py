"""A scheduled job's due time in whole ms (lifecycle/jobs.py): rounded up, so a job that falls due by a
clock read in whole ms rounded down never starts a fraction of a ms before its `run_at`."""

from datetime import datetime

from app.lifecycle.jobs import due_ms


def test_a_start_time_between_two_ms_falls_due_at_the_later_one() -> None:
    exact = datetime.fromisoformat("2026-12-07T21:00:00.123000+00:00")
    whole = int(exact.timestamp()) * 1000 + 123
    assert due_ms(exact.isoformat()) == whole
    assert due_ms("2026-12-07T21:00:00.123001+00:00") == whole + 1
    assert due_ms("2026-12-07T21:00:00.123999+00:00") == whole + 1
    assert due_ms("2026-12-07T22:00:00.123600+01:00") == whole + 1  # the same instant at another offset
