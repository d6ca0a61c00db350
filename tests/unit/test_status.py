"""The status machine: the transitions are exactly the contract's, every move the code makes is one of
them, and nothing moves backwards."""

import ast
from pathlib import Path

import pytest

from app.core import status
from app.core.status import CANCELLABLE, FINAL, MOVES, TRANSITIONS, Move, Status

APP = Path(__file__).resolve().parents[2] / "app"
CONTRACT_MOVES = {
    (Status.PENDING, Status.RUNNING), (Status.RUNNING, Status.SUCCESS), (Status.RUNNING, Status.FAILED),
    (Status.RUNNING, Status.CANCELLED), (Status.RUNNING, Status.RETRYING), (Status.RETRYING, Status.RUNNING),
    (Status.PENDING, Status.CANCELLED), (Status.FAILED, Status.PENDING), (Status.CANCELLED, Status.PENDING),
    (Status.RETRYING, Status.CANCELLED),
}


def test_transitions_are_exactly_the_contract() -> None:
    table = {(source, target) for target, sources in TRANSITIONS.items() for source in sources}
    assert table == CONTRACT_MOVES


def test_success_is_never_left_and_finals_only_go_back_by_retry() -> None:
    for target, sources in TRANSITIONS.items():
        assert Status.SUCCESS not in sources
        if target != Status.PENDING:
            assert not (sources & FINAL)
    assert FINAL.isdisjoint(CANCELLABLE)


def test_every_move_is_a_transition_and_every_transition_is_made_by_a_move() -> None:
    made = set()
    for move in MOVES:
        if move.target is None:
            assert not move.sources & FINAL, f"{move.name} would change a finished task"
            continue
        made |= {(source, move.target) for source in move.sources}
    assert made <= CONTRACT_MOVES
    assert made == CONTRACT_MOVES, f"transitions no move makes: {CONTRACT_MOVES - made}"
    assert len({move.name for move in MOVES}) == len(MOVES)


@pytest.mark.parametrize("sources, target", [
    ({Status.PENDING}, Status.RETRYING),  # a queued task was never run: it is not retrying
    ({Status.SUCCESS}, Status.PENDING),
    ({Status.FAILED}, Status.RUNNING),
    ({Status.CANCELLED}, Status.SUCCESS),
])
def test_a_move_outside_the_transitions_cannot_be_defined(sources: set[Status], target: Status) -> None:
    with pytest.raises(ValueError, match="not an allowed transition"):
        Move("illegal", frozenset(sources), target)


def _move_arguments() -> list[tuple[str, str, str]]:
    """(module, method, the move argument's source) of every call that writes a change to a task:
    `changes.update(task_id, MOVE, …)`, `update_many(task_ids, MOVE, …)` and the store's own
    `update(task_id, seq, MOVE, …)`, `update_many(task_ids, first_seq, MOVE, …)`."""
    found = []
    for path in sorted(APP.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("update", "update_many")):
                continue
            owner = ast.unparse(node.func.value)
            if owner == "changes" or owner.endswith(".changes"):
                position = 1
            elif owner in ("store", "self.store") or owner.endswith("stores.tasks"):
                position = 2
            else:
                continue  # a dict's update, a table's UPDATE statement, a schedule's
            module = str(path.relative_to(APP))
            found.append((module, owner + "." + node.func.attr, ast.unparse(node.args[position])))
    return found


def test_every_change_the_code_writes_names_a_move_of_the_table() -> None:
    calls = _move_arguments()
    names = {name for name, value in vars(status).items() if isinstance(value, Move)}
    assert calls, "no change found: the walk over the code is broken"
    used = set()
    for module, call, argument in calls:
        # the store's own methods pass the move they were given on; everything else names a move
        if module == "store/tasks.py" or argument in ("move", "change.move"):
            continue
        assert argument in names, f"{module}: {call} writes {argument!r}, not a move of core/status.py"
        used.add(argument)
    # finish(…, move) passes SUCCEED, FAIL or STOP along: those are named at its call sites
    finish_moves = {"SUCCEED", "FAIL", "STOP"}
    for path in sorted(APP.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("finish", "_end"):
                used |= {ast.unparse(arg) for arg in node.args} & finish_moves
    assert used == {name for name, value in vars(status).items() if isinstance(value, Move) and value in MOVES}, \
        "a move of the table that no code makes, or one made that the table does not list"
