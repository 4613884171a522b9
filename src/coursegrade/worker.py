"""One grading worker: a process forked from the grader after nbgrader is imported. It
triages a submission, autogrades it and writes its feedback through nbgrader's API, and
returns the student's row; whatever fails becomes that row's error, never the run's."""

from __future__ import annotations

import functools
import re
import time
import warnings

import nbformat

from .course import Course, Row, triage, up_to_date
from .report import read_scores, status_from_notebooks, unscored_export

COURSE: Course | None = None  # set by the grader before it forks the workers


def patch_nbgrader() -> None:
    """In each grading worker: one SQLAlchemy engine per database URL, shared by nbgrader's Gradebooks.

    nbgrader opens about ten Gradebooks per notebook, each on a new engine whose cache of
    compiled SQL starts empty, so every query was compiled again; a shared engine keeps that
    cache (a Gradebook's ``close`` still closes its connections: ``Engine.dispose``). Each
    Gradebook also checks that every table exists; on a shared engine, the first check is enough.
    """
    import nbgrader.api
    from nbformat.warnings import DuplicateCellId, MissingIDFieldWarning
    from sqlalchemy.exc import SAWarning

    nbgrader.api.create_engine = functools.cache(nbgrader.api.create_engine)
    metadata = nbgrader.api.Base.metadata
    metadata.create_all = functools.cache(metadata.create_all)  # called as create_all(bind=engine)
    # Notes that would fill the instructor's terminal about what is repaired anyway: a new
    # submission's rows are built through relationships that SQLAlchemy 2 does not add to the
    # session while it autoflushes (nbgrader adds them all right after); nbformat gives a cell
    # a new id when a student duplicated it or nbgrader restored a deleted test cell.
    warnings.filterwarnings("ignore", r"Object of type <Submitted\w+> not in session", SAWarning)
    warnings.filterwarnings("ignore", category=DuplicateCellId)
    warnings.filterwarnings("ignore", category=MissingIDFieldWarning)


def warm_up(course: Course) -> None:
    """Fill, before the workers fork, the caches each of them would otherwise fill on its first
    notebook (about 0.3 s of CPU per worker): the feedback page's compiled templates and code
    highlighter, nbformat's schema validator, the machine's network addresses and the kernel spec."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.localinterfaces import local_ips
    from nbgrader.converters import GenerateFeedback
    from nbgrader.coursedir import CourseDirectory

    from .kernels import SandboxedKernelManager, check_available

    new = nbformat.v4
    nb = new.new_notebook(cells=[
        new.new_markdown_cell("# A heading\nSome *text*, `code` and $x^2$."),
        new.new_code_cell("x = [1, 2]  # a comment\nprint(f'{x}')",
                          outputs=[new.new_output("stream", name="stdout", text="[1, 2]\n")])])
    nbformat.validate(nb)
    feedback = GenerateFeedback(coursedir=CourseDirectory(config=course.config), config=course.config)
    feedback.exporter_class(parent=feedback, config=feedback.config).from_notebook_node(
        nb, resources={"nbgrader": {"notebook": "warm-up", "score": 0, "max_score": 0, "late_penalty": 0}})
    local_ips()
    KernelSpecManager(config=course.config).get_all_specs()
    if SandboxedKernelManager(config=course.config).enabled:
        check_available()


def grade_one(job) -> Row:
    """Worker: check one submission; autograde it and write its feedback (nbgrader in-process)
    unless it cannot be graded or is up to date; return its row, scores included."""
    assignment, student, expected, force = job
    try:
        row = triage(COURSE, assignment, student, expected)
        if row is None:
            row = Row(assignment, student)
            if force or not up_to_date(COURSE, assignment, student):
                autograde(row)
            if row.status == "graded":
                status_from_notebooks(COURSE, row)
        read_scores(COURSE, [row])
    except Exception as error:  # noqa: BLE001 - reported in the row; the other submissions go on
        row = Row(assignment, student, "error", f"the grader failed on this submission: {type(error).__name__}: "
                                               f"{str(error)[:300]}")
        row.export = unscored_export(row, max_score=0.0)  # the gradebook may be what failed
    return row


def autograde(row: Row) -> None:
    """nbgrader's autograde, then its feedback; a failure becomes the row's status and reason."""
    start = time.perf_counter()
    api = COURSE.api()
    result = api.autograde(row.assignment, row.student, force=True, create=True)
    if result["success"]:
        feedback = api.generate_feedback(row.assignment, row.student, force=True)
        if not feedback["success"]:
            result = {"success": True, "log": feedback["log"], "warning": "feedback failed: " + str(feedback["error"])}
    row.seconds = time.perf_counter() - start
    if not result["success"]:
        row.status = "error"
        row.reason = f"nbgrader could not autograde: {failure(result)}"


_EXCEPTION_LINE = re.compile(r"^\s*(?:[\w.]+\.)?\w*(?:Error|Exception|Exit|Interrupt)\b(?::.*)?$", re.M)


def failure(result: dict) -> str:
    """What went wrong in a failed nbgrader call: the exceptions its log and error name, innermost last."""
    text = f"{result.get('log') or ''}\n{result.get('error') or ''}"
    found = list(dict.fromkeys(line.strip() for line in _EXCEPTION_LINE.findall(text)))
    return ("; ".join(found[-3:]) or text.strip()[-300:])[-500:]
