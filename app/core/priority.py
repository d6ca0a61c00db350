"""Task priorities, and the band of arq's queue each one's jobs are scored in.

arq reads its one queue, a sorted set, in score order up to "now" (the score is the time a job may
start). A due job's score is its time minus a band per priority, so every queued job of a higher
priority sorts before any job of a lower one and, within a priority, the older first.
"""

from enum import StrEnum

BAND_MS = 10**13  # ~317 years of milliseconds: wider than any time a job can wait


class Priority(StrEnum):
    HIGH = "high"
    DEFAULT = "default"
    LOW = "low"


BANDS = {Priority.HIGH: 2, Priority.DEFAULT: 1, Priority.LOW: 0}


def queue_score(priority: str, due_ms: int) -> int:
    return due_ms - BANDS[Priority(priority)] * BAND_MS


def band_range(priority: Priority) -> tuple[float, float]:
    """The scores of a priority's due jobs in arq's queue."""
    band = BANDS[priority]
    low = float("-inf") if band == max(BANDS.values()) else -(band + 0.5) * BAND_MS
    high = float("inf") if band == min(BANDS.values()) else -(band - 0.5) * BAND_MS
    return low, high


def of_score(score: float) -> Priority:
    """The priority of a job queued with this score."""
    return next(priority for priority, low, high in _RANGES if low <= score < high)


_RANGES = tuple((priority, *band_range(priority)) for priority in Priority)  # asked for each job a worker runs


def due_of(score: float) -> int:
    """The time (ms) a job queued with this score was due: its score without its priority's band."""
    return int(score) + BANDS[of_score(score)] * BAND_MS
