"""Self-tests of racelab.harness.history and racelab.harness.checker."""
import pytest

from racelab.harness.checker import Anomaly, Checker, all_completed, monotonic, read_your_writes
from racelab.harness.history import History

STATUS = ("pending", "processing", ("completed", "failed"))


def sample():
    history = History()
    with history.op("writer#1", "import", {"key": 7}) as op:
        op.ok({"key": 7, "tasks": 3})
    with history.op("reader#2", "read", {"key": 7}) as op:
        op.ok({"key": 7, "tasks": 0, "status": "completed"})
    with history.op("reader#3", "read", {"key": 7}) as op:
        op.ok({"key": 7, "tasks": 3, "status": "processing"})
    return history


def test_op_records_ok_fail_and_info():
    history = History()
    with history.op("p", "import", 1):
        pass
    with pytest.raises(ValueError):
        with history.op("p", "import", 2):
            raise ValueError("bad file")
    with history.op("p", "import", 3, reraise=False):
        raise TimeoutError("worker lost")
    assert [(op.type, op.value) for op in history] == [
        ("invoke", 1), ("ok", 1), ("invoke", 2), ("fail", 2), ("invoke", 3), ("info", 3)]
    assert history.ops[3].error == "ValueError: bad file"
    assert all(a.time <= b.time for a, b in zip(history.ops, history.ops[1:]))


def test_a_process_has_one_operation_in_flight():
    history = History()
    history.invoke("p", "import")
    with pytest.raises(RuntimeError, match="give each concurrent actor its own process name"):
        history.invoke("p", "read")
    with pytest.raises(RuntimeError, match="never invoked"):
        history.ok("q")


def test_history_round_trips_through_json_lines(tmp_path):
    history = sample()
    history.invoke("w", "import", {"key": 8})
    history.dump(tmp_path / "h.jsonl")
    loaded = History.load(tmp_path / "h.jsonl")
    assert loaded.ops == history.ops
    assert (tmp_path / "h.jsonl").read_text().count("\n") == len(history)
    loaded.ok("w")  # the open invocation is still open after loading
    assert loaded.pairs()[-1][1].type == "ok"
    assert loaded.ops[-1].time >= loaded.ops[-2].time


def test_checker_explains_each_anomaly_naming_the_operations():
    history = sample()
    history.invoke("writer#4", "import", {"key": 9})
    checker = Checker({"done": all_completed,
                       "visible": read_your_writes("import", "read", sees=lambda w, r: r["tasks"] == w["tasks"]),
                       "status": monotonic("read", STATUS, value=lambda v: v["status"])})
    result = checker.check(history)
    assert not result.valid
    by_name = {a.invariant: a for a in result.anomalies}
    assert set(by_name) == {"done", "visible", "status"}
    assert by_name["visible"].message.startswith("reader#2's read of 7 returned")
    assert "after writer#1's import of it returned ok with" in by_name["visible"].message
    assert [op.process for op in by_name["visible"].ops] == ["writer#1", "writer#1", "reader#2", "reader#2"]
    assert "reader#3's read of 7 saw 'processing'" in by_name["status"].message
    assert "after reader#2's read of it saw 'completed'" in by_name["status"].message
    assert "writer#4's import of" in by_name["done"].message
    assert result.report().startswith("History invalid: 3 anomalies over 7 operations.")
    with pytest.raises(AssertionError, match="read_your_writes|visible"):
        result.assert_valid()


def test_overlapping_operations_are_not_held_against_each_other():
    history = History()
    history.invoke("reader", "read", {"key": 1})
    history.invoke("writer", "write", {"key": 1})
    history.ok("writer", {"key": 1, "v": 2})
    history.ok("reader", {"key": 1, "v": 1})
    assert Checker({"ryw": read_your_writes()}).check(history).valid


def test_custom_invariants_and_the_valid_report():
    checker = Checker(history=History())

    @checker.add("never")
    def never(history, state):
        return [Anomaly("x", f"state is {state}")] if state else []

    assert checker.check().report() == "History valid: 1 invariant held over 0 operations (never)."
    assert str(checker.check(state=3).anomalies[0]) == "[never] state is 3"


def test_race_fixtures_record_and_check(race_history, race_checker):
    with race_history.op("a", "import", {"key": 1}) as op:
        op.ok()
    race_checker.check().assert_valid()
