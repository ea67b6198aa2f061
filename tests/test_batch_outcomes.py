"""A batch report's outcomes are held as numbers in arrays; what comes back must be the
outcome recorded, a replaced one included, in the order first recorded."""

from batch.runner import BatchReport, Outcome


def test_outcomes_come_back_as_recorded_and_replaced() -> None:
    report = BatchReport(1, "v1")
    first = Outcome("b", 7, "ASL-3", "deploy", ("x", "y"), True, ("ASL-2", "hold"), 5)
    other = Outcome("a", 2**40, "ASL-2", "hold", (), False, None, None, True)
    report.outcomes["b"] = first
    report.outcomes["a"] = other
    assert (report.outcomes["b"], report.outcomes["a"]) == (first, other)
    assert (list(report.outcomes), report.assessed, report.skipped) == (["b", "a"], 1, 1)
    assert [o.model for o in report.changed()] == ["a"]
    again = Outcome("b", 9, "ASL-4", "stop", ("z",), False, None, None, True)
    report.outcomes["b"] = again
    assert (len(report.outcomes), report.outcomes["b"]) == (2, again)
    assert [o.model for o in report.changed()] == ["a", "b"]
    assert "c" not in report.outcomes and "a" in report.outcomes
