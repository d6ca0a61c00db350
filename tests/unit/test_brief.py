"""`brief`: the task as lists and live frames carry it, large fields cut short and named."""

from typing import Any

from app.core.wire import BRIEF_MAX, FIELD_MAX, brief, dumps, task_frame


def task(**fields: Any) -> Any:
    return {"id": "t1", "seq": 3, "status": "SUCCESS", "parameters": {}, "result_data": None, "error_message": None,
            "error_traceback": None, **fields}


def test_a_task_within_the_bound_is_carried_whole() -> None:
    small = task(parameters={"text": "x" * 50_000}, result_data={"n": 1})
    assert brief(small) is small
    assert task_frame(small, "status") == dumps({"type": "task", "seq": 3, "change": "status", "task": small})


def test_large_fields_are_cut_keeping_the_small_parts_and_saying_what_was_cut() -> None:
    columns = {f"c{i}": {"mean": i, "values": list(range(20))} for i in range(5000)}
    large = task(parameters={"text": "é" * 300_000, "rows": 5}, result_data={"rows": 5, "columns": columns},
                 error_message="short")
    cut = brief(large)
    assert cut["truncated"] == ["parameters", "result_data"]
    assert cut["parameters"]["rows"] == 5 and cut["parameters"]["text"].endswith(" …")
    assert cut["result_data"] == {"rows": 5, "columns": f"… {len(dumps(columns).encode())} bytes of JSON"}
    assert cut["error_message"] == "short" and "truncated" not in large
    assert len(dumps(cut).encode()) < BRIEF_MAX
    many = brief(task(result_data={f"k{i}": i for i in range(100_000)}))["result_data"]
    assert len(dumps(many).encode()) <= FIELD_MAX + 100 and many["…"].endswith("more entries: open the task to see them")
    frame = task_frame(large, "replay")
    assert len(frame.encode()) < BRIEF_MAX and '"truncated":["parameters","result_data"]' in frame
