"""Answers out, verdicts in: the two nbgrader preprocessors around execution.

- :class:`CollectAnswers` (before execution) reads each test cell's hidden checks from
  the gradebook (the instructor's source, never the submission), evaluates them in the
  grader (:func:`coursegrade.checks.declared`), and gives the kernel the cell's visible
  part followed by the collector (:mod:`coursegrade.collector`): names and inputs only.
- :class:`JudgeAnswers` (after execution, before ``SaveAutoGrades``) reads the answers
  the cell published, judges them in the grader, and rewrites the cell's outputs so that
  nbgrader's score follows the verdict alone: the printed text, then one error output
  if a check failed (or the cell's own error, or a note that no answers came back).
  The cell gets its original source back for the autograded copy and the feedback.
"""

from __future__ import annotations

import functools
import json
import re

from nbgrader.api import Gradebook
from nbgrader.preprocessors import NbGraderPreprocessor

from . import checks, collector
from .execute import error_output

KEY = "coursegrade_tests"
_HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS[^\n]*\n(.*?)^[ \t]*### END HIDDEN TESTS[^\n]*\n?", re.S | re.M)
_COLLECTOR_SOURCE = open(collector.__file__, encoding="utf-8").read()
NO_ROOFLINE = ("The course package `roofline` is not available while your work is graded: problem sets are "
               "solved from first principles, with plain Python and numpy, so an answer that needs it earns "
               "no credit.")


def split_hidden(source: str) -> tuple[str, str]:
    """A test cell's visible code and its hidden block(s)."""
    hidden = "\n".join(match.group(1) for match in _HIDDEN.finditer(source))
    return _HIDDEN.sub("", source).rstrip() + "\n", hidden


@functools.lru_cache(maxsize=256)
def _checks(hidden: str) -> tuple:
    """The checks a hidden block declares (the same text gives the same checks: read once per process)."""
    return tuple(checks.declared(hidden))


def kernel_source(visible: str, requests: list[dict]) -> str:
    """What the kernel runs for a test cell: its visible checks, then the collector."""
    call = (f"(lambda namespace: (exec({_COLLECTOR_SOURCE!r}, namespace), "
            f"namespace['publish']({json.dumps(requests)!r}, globals())))({{}})")
    return f"{visible}\n# The grader collects your answers here and checks them.\n{call}\n"


def _test_cells(resources) -> dict[str, str]:
    """grade id -> trusted source of every test cell of this notebook, from the gradebook."""
    info = resources["nbgrader"]
    with Gradebook(info["db_url"]) as gb:
        notebook = gb.find_notebook(info["notebook"], info["assignment"])
        solutions = {cell.name for cell in notebook.solution_cells}
        tests = {cell.name for cell in notebook.grade_cells if cell.cell_type == "code"} - solutions
        return {cell.name: cell.source for cell in notebook.source_cells if cell.name in tests}


class CollectAnswers(NbGraderPreprocessor):
    """Before execution: each test cell's hidden checks stay in the grader; the kernel gets a collector."""

    def preprocess(self, nb, resources):
        trusted = _test_cells(resources)
        cells = resources.setdefault(KEY, {})
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if cell.cell_type != "code" or grade_id not in trusted:
                continue
            visible, hidden = split_hidden(trusted[grade_id])
            declared = _checks(hidden)
            cells[grade_id] = {"checks": declared, "source": trusted[grade_id]}
            cell.source = kernel_source(visible, [check.request() for check in declared])
        return nb, resources


class JudgeAnswers(NbGraderPreprocessor):
    """After execution: judge each test cell's answers in the grader and leave only the verdict."""

    def preprocess(self, nb, resources):
        tests = resources.get(KEY, {})
        no_roofline = any(_imports_roofline(cell) for cell in nb.cells if cell.cell_type == "code")
        student = resources.get("nbgrader", {}).get("student")
        for cell in nb.cells:
            test = tests.get(cell.metadata.get("nbgrader", {}).get("grade_id"))
            if cell.cell_type == "code" and test is not None:
                cell.source = test["source"]
                cell.outputs = _verdict(cell.outputs, test["checks"], no_roofline, student)
        return nb, resources


def _verdict(outputs, declared, no_roofline: bool, student: str | None = None) -> list:
    """The outputs nbgrader scores: printed text (as stdout), then one error unless every check passed."""
    printed = [output for output in outputs if output.output_type == "stream"]
    for output in printed:
        output.name = "stdout"  # a warning printed by a correct answer costs nothing
    errors = [output for output in outputs if output.output_type == "error"]
    if errors:
        error = errors[0]
        if no_roofline and error.ename in ("NameError", "ModuleNotFoundError"):
            error.evalue = f"{error.evalue}. {NO_ROOFLINE}"
            error.traceback = [*error.traceback, NO_ROOFLINE]
        return printed + [error]
    try:
        entries = _answers(outputs)
        if len(entries) != len(declared):
            raise checks.WrongAnswer("The grader received answers for other questions than this cell asks.")
        for check, entry in zip(declared, entries):
            checks.judge(check, entry, student)
    except checks.WrongAnswer as wrong:
        message = str(wrong)
        if no_roofline or "roofline" in message:
            message = f"{message} {NO_ROOFLINE}"
        return printed + [error_output("AssertionError", message)]
    return printed


def _answers(outputs) -> list:
    """The answer entries, in the order of the checks, from the one answers output the collector published."""
    published = [output for output in outputs
                 if output.output_type == "display_data" and collector.MIME in output.get("data", {})]
    if len(published) != 1:
        raise checks.WrongAnswer("The grader did not receive your answers from this cell exactly once "
                                 f"({len(published)} times): the cell did not run as written.")
    data = published[0]["data"][collector.MIME]
    if not isinstance(data, dict) or not isinstance(data.get("answers"), list):
        raise checks.WrongAnswer("The grader could not read your answers.")
    return data["answers"]


def _imports_roofline(cell) -> bool:
    return any(output.output_type == "error" and "roofline" in output.get("evalue", "")
               and output.get("ename") in ("ModuleNotFoundError", "ImportError") for output in cell.outputs)
