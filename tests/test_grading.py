"""The hidden tests' helpers: unpatchable comparisons and delegation detection."""

import math
import types

import numpy as np
import pytest

import roofline
from roofline.grading import Checker, DelegationError, delegation_reason


def shell(cells, namespace):
    namespace = dict(namespace)
    namespace["In"] = [""] + list(cells)
    return types.SimpleNamespace(user_ns=namespace, history_manager=None)


def test_close_accepts_within_tolerance_and_rejects_outside():
    check = Checker(shell([], {}))
    check.close(240.0, 240.5, "x", rel=0.01)
    check.close(np.array([1.0, 2.0]), [1.0, 2.0], "x")
    with pytest.raises(AssertionError, match="x = 250 is not correct"):
        check.close(250.0, 240.5, "x", rel=0.01)
    with pytest.raises(AssertionError, match="not correct"):
        check.close(float("nan"), 1.0, "x")
    with pytest.raises(AssertionError, match="got a boolean"):
        check.close(True, 1.0, "x")
    with pytest.raises(AssertionError, match="should be a number"):
        check.close("240", 240.0, "x")
    with pytest.raises(AssertionError, match="has 3 values"):
        check.close([1, 2, 3], [1, 2], "x")


def test_close_ignores_monkeypatched_comparison_functions(monkeypatch):
    monkeypatch.setattr(np, "isclose", lambda *a, **k: True)
    monkeypatch.setattr(np, "allclose", lambda *a, **k: True)
    monkeypatch.setattr(math, "isclose", lambda *a, **k: True)
    monkeypatch.setattr(np.testing, "assert_allclose", lambda *a, **k: None)
    with pytest.raises(AssertionError):
        Checker(shell([], {})).close(1.0, 2.0, "x")


def test_an_answer_cell_that_imports_roofline_gets_no_credit():
    cells = ["import numpy as np", "import roofline\nanswer = roofline.critical_batch_size(1, 1)"]
    with pytest.raises(DelegationError, match="No credit for `answer`.*mentions the roofline package"):
        Checker(shell(cells, {"answer": 0.5})).no_delegation("answer")


def test_an_alias_imported_in_another_cell_is_caught():
    from roofline import critical_batch_size as cb

    cells = ["from roofline import critical_batch_size as cb", "answer = cb(1.97e14, 8.1e11)"]
    with pytest.raises(DelegationError, match="uses `cb`"):
        Checker(shell(cells, {"cb": cb, "answer": 1.0})).no_delegation("answer")


def test_other_answers_keep_their_credit():
    cells = ["x = 1.97e14 / 8.1e11 / 2", "import roofline\ny = roofline.ridge_intensity(1, 1)"]
    check = Checker(shell(cells, {"x": 121.6, "y": 1.0, "roofline": roofline}))
    check.no_delegation("x")  # the cell that defines x does not touch roofline
    with pytest.raises(DelegationError):
        check.no_delegation("y")


def test_the_latest_definition_counts():
    cells = ["import roofline\nx = roofline.ridge_intensity(2, 1)", "x = 2 / 1"]
    Checker(shell(cells, {"x": 2.0, "roofline": roofline})).no_delegation("x")


def test_hidden_test_cells_are_not_taken_for_student_cells():
    cells = ["x = 3", "### BEGIN HIDDEN TESTS\nimport roofline as ref\nx = ref.ridge_intensity(1, 1)"]
    Checker(shell(cells, {"x": 3})).no_delegation("x")


def test_function_answers_are_checked_on_every_case():
    check = Checker(shell(["def f(a, b):\n    return a / b"], {}))

    def f(a, b):
        return a / b

    check.function(f, roofline.ridge_intensity, [(1.0, 2.0), (np.array([1e12, 1e15]), 1e12)], "f")

    def wrong(a, b):
        return a * b

    with pytest.raises(AssertionError, match=r"wrong\(1.0, 2.0\) = 2 is not correct"):
        check.function(wrong, roofline.ridge_intensity, [(1.0, 2.0)], "wrong")

    def crashes(a, b):
        raise ZeroDivisionError("oops")

    with pytest.raises(AssertionError, match="raised ZeroDivisionError: oops"):
        check.function(crashes, roofline.ridge_intensity, [(1.0, 2.0)], "crashes")
    with pytest.raises(AssertionError, match="should be a function"):
        check.function(3, roofline.ridge_intensity, [(1.0, 2.0)], "three")


def test_a_function_that_calls_roofline_at_run_time_is_caught():
    hidden = getattr(roofline, "ridge_" + "intensity")  # no trace in any cell's text

    def sneaky(a, b):
        return hidden(a, b)

    check = Checker(shell(["def sneaky(a, b):\n    return hidden(a, b)"], {}))
    with pytest.raises(DelegationError, match="runs the course's reference package"):
        check.function(sneaky, roofline.ridge_intensity, [(1.0, 2.0)], "sneaky")


def test_delegation_reason_is_none_for_plain_code():
    assert delegation_reason("y = np.minimum(1, 2)", {"np": np}) is None
    assert "mentions" in delegation_reason("import roofline", {})


def test_checker_needs_a_shell():
    with pytest.raises(ValueError, match="shell"):
        Checker(None)
