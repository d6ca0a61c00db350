"""SeqOrder: events leave in seq order, gaps close on skips, a stuck gap is given up after a timeout."""

from app.core.wire import Event
from app.web.live.ordering import SeqOrder


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def ev(seq: int, change: str = "status", task: str = "t") -> Event:
    return Event(seq, change, task, "RUNNING", f"frame{seq}")


def seqs(events: list[Event]) -> list[int]:
    return [e.seq for e in events]


def test_in_order_events_flow_through() -> None:
    order = SeqOrder(1.0)
    order.reset(10)
    assert seqs(order.push(ev(11))) == [11]
    assert seqs(order.push(ev(12))) == [12]
    assert order.head == 12


def test_later_seq_waits_for_the_gap_then_both_leave_in_order() -> None:
    order = SeqOrder(1.0)
    order.reset(0)
    assert order.push(ev(2)) == []
    assert order.push(ev(3)) == []
    assert seqs(order.push(ev(1))) == [1, 2, 3]


def test_skip_fills_a_gap_without_being_released() -> None:
    order = SeqOrder(1.0)
    order.reset(0)
    assert order.push(ev(2)) == []
    assert seqs(order.push(ev(1, "skip"))) == [2]


def test_stuck_gap_is_given_up_after_timeout_and_floor_covers_it() -> None:
    clock = Clock()
    order = SeqOrder(1.0, remember=60, clock=clock)
    order.reset(0)
    order.push(ev(3))
    assert order.due() == []
    assert 0 < order.wait_time() <= 1.0
    clock.now = 1.5
    assert seqs(order.due()) == [3]
    assert order.floor(3) == 0  # seqs 1 and 2 were given up: a replay must start before them
    assert seqs(order.push(ev(2))) == [2]  # late: released at once
    assert order.floor(3) == 0
    order.push(ev(1, "skip"))
    assert order.floor(3) == 3
    clock.now = 100
    assert order.floor(5) == 5


def test_events_before_the_subscription_head_are_late_not_lost() -> None:
    order = SeqOrder(1.0)
    order.reset(100)
    assert seqs(order.push(ev(99))) == [99]
    assert order.head == 100


def test_a_given_up_change_read_back_from_the_database_is_released_once() -> None:
    clock = Clock()
    order = SeqOrder(1.0, clock=clock)
    order.reset(0)
    order.push(ev(2))
    clock.now = 2
    assert seqs(order.due()) == [2] and order.newly_given_up == [1]
    assert seqs(order.repaired(ev(1))) == [1]  # found in the database
    assert order.push(ev(1)) == []  # its own event, arriving after all, is not delivered twice
    assert order.repaired(ev(1)) == []
    assert order.floor(5) == 5


def test_a_repair_that_finds_a_newer_seq_does_not_release_it_twice() -> None:
    order = SeqOrder(1.0)
    order.reset(10)
    assert order.repaired(ev(9)) == []  # never given up: its event was (or will be) delivered
