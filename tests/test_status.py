"""The status machine table matches the contract's moves, and nothing moves backwards."""

from app.status import CANCELLABLE, FINAL, MOVES, Status

CONTRACT_MOVES = {
    (Status.PENDING, Status.RUNNING), (Status.RUNNING, Status.SUCCESS), (Status.RUNNING, Status.FAILED),
    (Status.RUNNING, Status.CANCELLED), (Status.RUNNING, Status.RETRYING), (Status.RETRYING, Status.RUNNING),
    (Status.PENDING, Status.CANCELLED), (Status.FAILED, Status.PENDING), (Status.CANCELLED, Status.PENDING),
    (Status.RETRYING, Status.CANCELLED),
}


def test_moves_are_exactly_the_contract() -> None:
    table = {(source, target) for target, sources in MOVES.items() for source in sources}
    assert table == CONTRACT_MOVES


def test_success_is_never_left_and_finals_only_go_back_by_retry() -> None:
    for target, sources in MOVES.items():
        assert Status.SUCCESS not in sources
        if target != Status.PENDING:
            assert not (sources & FINAL)
    assert FINAL.isdisjoint(CANCELLABLE)
