"""Hidden checks of the problem sets, declared in the notebook and judged by the grader.

A problem set's hidden tests are a list of declarations, for example::

    ### BEGIN HIDDEN TESTS
    from coursegrade.checks import function, value
    import roofline as ref
    function("ridge_point", ref.ridge_intensity, [(9.894e14, 3.35e12), (1.0, 1e12)], rel=1e-9)
    value("gtx1080ti_ridge", ref.ridge_intensity(11.34e12, 484e9), rel=1e-3,
          mistakes=[(lambda x: x < 1, "the ridge point is FLOP per byte, not byte per FLOP")])
    ### END HIDDEN TESTS

(:func:`for_student` judges an answer for the student it is graded under: the capstone's
deployment, on that student's own scenario.)

When ``make grade`` (or ``nbgrader autograde`` with the course's configuration) grades a
notebook, :class:`coursegrade.verdicts.CollectAnswers` runs this block **in the grader**,
where :func:`declared` records the checks instead of running them. The student's kernel
gets only the names to collect and the functions' inputs (:mod:`coursegrade.collector`);
:class:`coursegrade.verdicts.JudgeAnswers` then calls :func:`judge` on what came back.
Expected values, comparisons and diagnoses never enter the kernel.

Run anywhere else (an author executing the solution notebook), each declaration
collects the answer from the notebook at once and judges it the same way, raising
``AssertionError`` with the message a student would get.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from . import collector

_declared: list | None = None  # the list being filled while the grader reads a hidden block


class WrongAnswer(AssertionError):
    """A check failed; the message says why in plain words, without the expected value."""


@dataclass(frozen=True)
class Check:
    """One answer to judge: a value (``cases`` is None) or a function called on ``cases``.

    ``expected`` is the reference value, or for a function the reference function.
    ``mistakes`` are (known wrong answer, message) pairs: a value or a predicate on the
    answer (for a function, a wrong reference function) whose match names the mistake.
    """

    name: str
    expected: Any
    cases: tuple | None = None
    rel: float = 1e-6
    abs: float = 0.0
    hint: str = ""
    mistakes: tuple = ()
    label: str = ""
    pick: Callable | None = field(default=None, compare=False)
    per_student: bool = False  # ``expected`` is ``assess(answer, student_id)``: see :func:`for_student`

    @property
    def what(self) -> str:
        return self.label or self.name

    def request(self) -> dict:
        """What the kernel must send back for this check (no expected value in it)."""
        if self.cases is None:
            return {"name": self.name}
        return {"name": self.name, "cases": [collector.encode(tuple(case)) for case in self.cases]}


def value(name: str, expected, *, rel: float = 1e-6, abs: float = 0.0, hint: str = "", mistakes=(),
          label: str = "") -> Check:
    """Declare that the notebook's ``name`` must equal ``expected`` within ``rel`` (relative) + ``abs``.

    ``expected`` may be a number, an array or list of numbers (compared elementwise), a
    bool (the answer must be that bool) or a string (the answer must be that string).
    """
    return _declare(Check(name, expected, None, rel, abs, hint, tuple(mistakes), label))


def function(name: str, reference: Callable, cases, *, rel: float = 1e-6, abs: float = 0.0, hint: str = "",
             mistakes=(), label: str = "", pick: Callable | None = None) -> Check:
    """Declare that the notebook's function ``name`` must agree with ``reference`` on every case.

    ``cases`` are argument tuples (numbers, strings, lists, numpy arrays). ``pick`` takes a
    part of the student's result before comparing (e.g. one element of a returned tuple).
    """
    if not callable(reference):
        raise ValueError(f"reference must be callable; got {type(reference).__name__}")
    cases = tuple(tuple(case) for case in cases)
    if not cases:
        raise ValueError("cases must name at least one argument tuple")
    return _declare(Check(name, reference, cases, rel, abs, hint, tuple(mistakes), label, pick))


def for_student(name: str, assess: Callable, *, label: str = "") -> Check:
    """Declare that the notebook's ``name`` is judged by ``assess(answer, student_id)``.

    ``assess`` returns None when the answer passes, or the message saying what is wrong;
    it gets the ID the notebook was submitted under (e.g. to judge a deployment on the
    submitting student's own scenario). Run outside the grader, the notebook's
    ``student_id`` stands in for it.
    """
    if not callable(assess):
        raise ValueError(f"assess must be callable; got {type(assess).__name__}")
    return _declare(Check(name, assess, label=label, per_student=True))


def _declare(check: Check) -> Check:
    if _declared is not None:
        _declared.append(check)
        return check
    namespace = sys._getframe(2).f_globals  # the notebook that declared it
    entry = collector.answers([check.request()], namespace)["answers"][0]
    judge(check, _plain(entry), namespace.get("student_id"))
    return check


def _plain(entry: dict) -> dict:
    """An answer entry as it arrives from the kernel: through JSON."""
    return json.loads(json.dumps(entry))


def declared(source: str) -> list[Check]:
    """Run a hidden-test block in a fresh namespace of the grader; return the checks it declares."""
    global _declared
    outer, _declared = _declared, []
    try:
        exec(compile(source, "<hidden tests>", "exec"), {"__name__": "hidden_tests", "np": np})
        return _declared
    finally:
        _declared = outer


def judge(check: Check, entry, student: str | None = None) -> None:
    """Raise :class:`WrongAnswer` unless the collected ``entry`` (as the kernel sent it) satisfies ``check``.

    ``student``: the ID the notebook was submitted under (for :func:`for_student` checks).
    """
    if not isinstance(entry, dict) or entry.get("name") != check.name:
        raise WrongAnswer(f"The answer for `{check.name}` was not reported.")
    if entry.get("missing"):
        raise WrongAnswer(f"`{check.name}` is not defined: run the cell that computes it (and keep its name).")
    if check.per_student:
        _judge_for_student(check, _decoded(entry.get("value"), check.what), student)
        return
    if check.cases is None:
        _judge_value(check, _decoded(entry.get("value"), check.what))
        return
    if "not_callable" in entry:
        raise WrongAnswer(f"{check.what} should be a function; got {entry['not_callable']}.")
    results = entry.get("results")
    if not isinstance(results, list) or len(results) != len(check.cases):
        raise WrongAnswer(f"The results of {check.what} were not reported.")
    got = []
    for args, result in zip(check.cases, results):
        if not isinstance(result, dict) or "value" not in result:
            error = result.get("error", "no result") if isinstance(result, dict) else "no result"
            raise WrongAnswer(f"{check.what}{_show(args)} raised {error}")
        got.append(_decoded(result["value"], check.what))
    if check.pick is not None:
        got = [_picked(check, args, answer) for args, answer in zip(check.cases, got)]
    for wrong, message in check.mistakes:
        if all(_matches(answer, wrong(*args), check) for args, answer in zip(check.cases, got)):
            raise WrongAnswer(message)
    for args, answer in zip(check.cases, got):
        _compare(answer, check.expected(*args), f"{check.what}{_show(args)}", check)


def _decoded(data, what: str):
    try:
        return collector.decode(data)
    except Exception:  # noqa: BLE001 - whatever a tampered kernel sent
        raise WrongAnswer(f"The grader could not read the answer {what}.") from None


def _picked(check: Check, args, answer):
    try:
        return check.pick(answer)
    except Exception as error:  # noqa: BLE001 - a result of the wrong shape
        raise WrongAnswer(f"{check.what}{_show(args)} returned {_describe(answer)}, which is not of the "
                          f"expected form ({type(error).__name__}: {error}).") from None


def _judge_for_student(check: Check, answer, student) -> None:
    if not isinstance(student, str) or not student:
        raise WrongAnswer(f"{check.what} is judged for the student who submits it, and no student ID was given.")
    try:
        message = check.expected(answer, student)
    except Exception as error:  # noqa: BLE001 - an answer of the wrong form, in the assessor's words
        raise WrongAnswer(f"{check.what}: {error}") from None
    if message:
        raise WrongAnswer(str(message))


def _judge_value(check: Check, answer) -> None:
    if isinstance(check.expected, str):
        if not isinstance(answer, str):
            raise WrongAnswer(f"{check.what} should be text; got {_describe(answer)}.")
        for wrong, message in check.mistakes:
            if answer == wrong:
                raise WrongAnswer(message)
        if answer != check.expected:
            raise WrongAnswer(f"{check.what} = {answer[:40]!r} is not correct. {check.hint}".strip())
        return
    if isinstance(check.expected, (bool, np.bool_)):
        if not isinstance(answer, bool):
            raise WrongAnswer(f"{check.what} should be True or False; got {_describe(answer)}.")
        if answer != bool(check.expected):
            raise WrongAnswer(f"{check.what} is not correct. {check.hint}".strip())
        return
    for wrong, message in check.mistakes:
        if _matches(answer, wrong, check):
            raise WrongAnswer(message)
    _compare(answer, check.expected, check.what, check)


def _matches(answer, wrong, check: Check) -> bool:
    """Whether ``answer`` is the known mistake ``wrong`` (a value, or a predicate on the answer)."""
    try:
        if callable(wrong):
            return bool(wrong(_numbers(answer, check.what)[0] if np.ndim(answer) == 0 else answer))
        _compare(answer, wrong, check.what, check)
        return True
    except Exception:  # noqa: BLE001 - a mistake that does not apply to this answer
        return False


def _numbers(answer, what: str) -> list[float]:
    """``answer`` (a number, or a list, tuple or array of numbers) as a flat list of floats."""
    flat = []

    def walk(item):
        if isinstance(item, (list, tuple)):
            for x in item:
                walk(x)
        elif isinstance(item, np.ndarray):
            flat.extend(item.astype(np.float64).ravel().tolist())
        elif isinstance(item, (int, float)) and not isinstance(item, bool):
            flat.append(float(item))
        else:
            raise WrongAnswer(f"{what} should be a number (or an array of numbers); got {_describe(item)}.")

    walk(answer)
    return flat


def _compare(answer, expected, what: str, check: Check) -> None:
    """Elementwise ``|a - e| <= rel * |e| + abs``; a single answer may stand for every element."""
    got = _numbers(answer, what)
    want = [float(x) for x in np.asarray(expected, dtype=np.float64).ravel()]
    if len(got) == 1 and len(want) > 1:
        got = got * len(want)
    if len(got) != len(want):
        raise WrongAnswer(f"{what} has {len(got)} values; {len(want)} were expected.")
    for g, w in zip(got, want):
        if not (g == w or abs(g - w) <= check.rel * abs(w) + check.abs):  # NaN fails; equal infinities pass
            raise WrongAnswer(f"{what} = {g:.6g} is not correct (relative tolerance {check.rel:g}). "
                              f"{check.hint}".strip())


def _describe(item) -> str:
    if isinstance(item, dict) and "$object" in item:
        return f"a {item['$object']}"
    if isinstance(item, bool):
        return "a boolean"
    return f"a {type(item).__name__}" if not isinstance(item, str) else f"the text {item[:40]!r}"


def _show(args) -> str:
    return "(" + ", ".join(f"array of {a.size}" if isinstance(a, np.ndarray) else repr(a) for a in args) + ")"

