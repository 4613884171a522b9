"""Checks judged in the grader (per-student ones) and the visible self-checks that name a mistake."""

import nbformat
import numpy as np
import pytest

from conftest import REPO
from coursegrade import checks, collector
from coursegrade.selfcheck import NOTEBOOK_SOURCE, _self_check, fingerprints

ASSIGNMENTS = sorted(p.name for p in (REPO / "solutions").iterdir() if p.is_dir())


def _entry(name, value):
    return {"name": name, "value": collector.encode(value)}


def test_a_known_wrong_answer_is_named_within_about_one_percent():
    prints = fingerprints("h100_critical_batch", 590.7)
    diagnoses = {"you used the sparse peak": prints}
    for near in (590.7, 590.7 * 1.005, 590.7 / 1.005):
        with pytest.raises(AssertionError, match="sparse peak"):
            _self_check("h100_critical_batch", near, diagnoses)
    for far in (295.35, 590.7 * 1.02, 590.7 / 1.02, -590.7, 0.0, float("nan"), "text", None):
        _self_check("h100_critical_batch", far, diagnoses)  # says nothing


def test_fingerprints_hide_the_value_and_depend_on_the_name():
    prints = fingerprints("x", [1.5e12, 2.0])
    assert len(prints) == 2 and all(len(p) == 12 for p in prints)
    assert not any(s in "".join(prints) for s in ("1.5", "2.0", "e12"))
    assert fingerprints("y", [1.5e12, 2.0]) != prints
    with pytest.raises(AssertionError):
        _self_check("x", np.array([1.5e12, 2.0]), {"m": prints})
    _self_check("x", np.array([1.5e12, 2.0, 3.0]), {"m": prints})  # another shape: no match
    _self_check("x", np.array([1.5e12, 4.0]), {"m": prints})  # every element must match


def test_exact_fingerprints_tell_neighbouring_integers_apart():
    prints = fingerprints("max_batch", 285, exact=True)
    with pytest.raises(AssertionError):
        _self_check("max_batch", 285, {"rounded up": prints}, exact=True)
    _self_check("max_batch", 284, {"rounded up": prints}, exact=True)
    with pytest.raises(ValueError, match="wrong must be finite"):
        fingerprints("x", float("inf"))


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_problem_set_carries_the_self_check_unchanged(assignment):
    nb = nbformat.read(REPO / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    setup = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "setup")
    assert NOTEBOOK_SOURCE.strip() in setup.source


def _assess(answer, student):
    if answer == "right for " + student:
        return None
    if answer == "boom":
        raise ValueError("batch must be a positive integer; got 0")
    return f"wrong for {student}"


def test_a_per_student_check_judges_the_answer_for_the_submitting_student():
    check = checks.Check("answer", _assess, per_student=True, label="my_deployment (targets)")
    checks.judge(check, _entry("answer", "right for alice"), "alice")
    with pytest.raises(checks.WrongAnswer, match="wrong for bob"):
        checks.judge(check, _entry("answer", "right for alice"), "bob")
    with pytest.raises(checks.WrongAnswer, match="my_deployment \\(targets\\): batch must be a positive integer"):
        checks.judge(check, _entry("answer", "boom"), "alice")
    with pytest.raises(checks.WrongAnswer, match="no student ID"):
        checks.judge(check, _entry("answer", "right for alice"), None)
    with pytest.raises(checks.WrongAnswer, match="is not defined"):
        checks.judge(check, {"name": "answer", "missing": True}, "alice")


def test_per_student_checks_are_declared_in_the_grader_and_run_at_once_elsewhere():
    declared = checks.declared("from coursegrade.checks import for_student\n"
                               "for_student('answer', lambda answer, student: None)")
    assert len(declared) == 1 and declared[0].per_student and declared[0].request() == {"name": "answer"}
    with pytest.raises(ValueError, match="assess must be callable"):
        checks.for_student("answer", 3)
    # outside the grader (an author running the notebook) the notebook's student_id stands in
    namespace = {"answer": "right for alice", "student_id": "alice", "for_student": checks.for_student,
                 "assess": _assess}
    exec("for_student('answer', assess)", namespace)
    namespace["student_id"] = "bob"
    with pytest.raises(checks.WrongAnswer, match="wrong for bob"):
        exec("for_student('answer', assess)", namespace)


def test_a_kernel_with_replaced_builtins_gets_no_diagnosis_rather_than_an_error(monkeypatch):
    import builtins
    import math

    prints = fingerprints("x", 590.7)
    monkeypatch.setattr(builtins, "abs", lambda x: 0)  # what a submission may do to its own kernel
    monkeypatch.setattr(math, "log10", lambda x: 1 / 0)
    _self_check("x", 590.7, {"m": prints})  # silent: the hidden checks still decide
