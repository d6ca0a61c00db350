"""Priorities as score bands of arq's one queue: a job's priority and due time read back from its score."""

import pytest

from app.core.priority import Priority, due_of, of_score, queue_score


@pytest.mark.parametrize("priority", list(Priority))
@pytest.mark.parametrize("due", [0, 1_796_601_125_025, 1_796_601_125_025 + 366 * 86_400_000])
def test_a_score_gives_back_its_priority_and_due_time(priority: Priority, due: int) -> None:
    score = queue_score(priority, due)
    assert (of_score(score), due_of(score)) == (priority, due)


def test_every_due_job_of_a_higher_priority_sorts_first() -> None:
    late_high, early_default = queue_score(Priority.HIGH, 2_000_000_000_000), queue_score(Priority.DEFAULT, 0)
    assert late_high < early_default < queue_score(Priority.LOW, 0)
