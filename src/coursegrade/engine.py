"""`make grade`: autograde every submission with nbgrader, in parallel, and report on each student.

For each assignment (``solutions/<id>``) and each student folder under
``submitted/``, a worker process (forked after nbgrader is imported, so no worker
pays its start-up) first checks the submission (present, valid JSON, the right
assignment); good ones are autograded by nbgrader's own ``autograde`` and
``generate_feedback`` (configured in ``nbgrader_config.py`` with the hardened
preprocessors of this package), in kernels forked from a
:mod:`coursegrade.zygote`, so no notebook pays a kernel's start-up either.
Every student gets one row in the grades CSV, with a ``status`` and a ``reason``."""

from __future__ import annotations

import argparse
import contextlib
import csv
import functools
import multiprocessing
import os
import re
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import zygote
from .feedback import offline_feedback

STATUSES = ("graded", "timeout", "crashed", "invalid notebook", "wrong assignment", "empty submission",
            "missing", "error")
EXPORT_COLUMNS = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
                  "raw_score", "late_submission_penalty", "score", "max_score"]


@dataclass
class Row:
    """One student's result for one assignment."""

    assignment: str
    student: str
    status: str = "graded"
    reason: str = ""
    seconds: float = 0.0
    tasks: dict = field(default_factory=dict)  # grade_id -> score
    export: dict = field(default_factory=dict)  # nbgrader export columns


class Course:
    """The course folder: nbgrader configuration, source notebooks, submissions."""

    def __init__(self, root: Path):
        from traitlets.config.loader import PyFileConfigLoader

        self.root = root.resolve()
        if not (self.root / "nbgrader_config.py").is_file():
            raise ValueError(f"root must be a course folder with nbgrader_config.py; got {root}")
        sys.path.insert(0, str(self.root))
        self.config = PyFileConfigLoader("nbgrader_config.py", path=str(self.root)).load_config()
        self.source = self.root / self.config.CourseDirectory.source_directory
        self.submitted = self.root / self.config.CourseDirectory.submitted_directory
        self.autograded = self.root / self.config.CourseDirectory.autograded_directory
        self.feedback = self.root / self.config.CourseDirectory.feedback_directory

    def api(self, **overrides):
        """An in-process nbgrader API over this course (``overrides``: CourseDirectory traits)."""
        from nbgrader.apps import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory

        config = self.config.copy()
        for key, value in overrides.items():
            setattr(config.CourseDirectory, key, value)
        return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)

    def assignments(self) -> list[str]:
        return sorted(p.name for p in self.source.iterdir() if p.is_dir() and not p.name.startswith("."))

    def notebooks(self, assignment: str) -> dict[str, set]:
        """Notebook name -> grade ids of its cells, from the source version."""
        result = {}
        for path in sorted((self.source / assignment).glob("*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            result[path.stem] = {c.metadata["nbgrader"]["grade_id"] for c in nb.cells
                                 if c.metadata.get("nbgrader", {}).get("grade_id")}
        return result

    def students(self) -> list[str]:
        if not self.submitted.is_dir():
            return []
        return sorted(p.name for p in self.submitted.iterdir() if p.is_dir() and not p.name.startswith("."))


def triage(course: Course, assignment: str, student: str, expected: dict) -> Row | None:
    """A row for a submission that cannot be autograded, or ``None`` if it can."""
    folder = course.submitted / student / assignment
    row = Row(assignment, student)
    if not folder.is_dir():
        row.status, row.reason = "missing", f"no folder {folder.relative_to(course.root)}"
        return row
    files = [p for p in folder.iterdir() if not p.name.startswith(".")]
    if not files:
        row.status, row.reason = "empty submission", "the submission folder is empty"
        return row
    for name, grade_ids in expected.items():
        path = folder / f"{name}.ipynb"
        if not path.is_file():
            others = ", ".join(sorted(p.name for p in files)) or "nothing"
            row.status, row.reason = "missing", f"{name}.ipynb not submitted (found: {others})"
            return row
        try:
            nb = nbformat.read(path, as_version=4)
            nbformat.validate(nb)
        except Exception as error:  # noqa: BLE001 - any unreadable file is reported, not raised
            row.status, row.reason = "invalid notebook", f"{name}.ipynb is not a valid notebook ({type(error).__name__}: {str(error)[:120]})"
            return row
        found = {c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells}
        if grade_ids and not grade_ids & found:
            row.status, row.reason = "wrong assignment", f"{name}.ipynb has none of this assignment's cells"
            return row
    return None


def up_to_date(course: Course, assignment: str, student: str) -> bool:
    """Whether the autograded copy is newer than every submitted file."""
    graded = course.autograded / student / assignment
    submitted = course.submitted / student / assignment
    if not graded.is_dir():
        return False
    newest_submission = max((p.stat().st_mtime for p in submitted.rglob("*") if p.is_file()), default=0)
    oldest_graded = min((p.stat().st_mtime for p in graded.glob("*.ipynb")), default=0)
    return oldest_graded >= newest_submission


_COURSE: Course | None = None


def _start_worker() -> None:
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


def _warm_up(course: Course) -> None:
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


def _grade_one(job) -> Row:
    """Worker: check one submission; autograde it and write its feedback (nbgrader in-process)
    unless it cannot be graded or is up to date; return its row, scores included."""
    assignment, student, expected, force = job
    try:
        row = triage(_COURSE, assignment, student, expected)
        if row is None:
            row = Row(assignment, student)
            if force or not up_to_date(_COURSE, assignment, student):
                _autograde(row)
            if row.status == "graded":
                _status_from_notebooks(_COURSE, row)
        _scores(_COURSE, [row])
    except Exception as error:  # noqa: BLE001 - reported in the row; the other submissions go on
        row = Row(assignment, student, "error", f"the grader failed on this submission: {type(error).__name__}: "
                                               f"{str(error)[:300]}")
        row.export = _unscored_export(row, max_score=0.0)  # the gradebook may be what failed
    return row


def _autograde(row: Row) -> None:
    """nbgrader's autograde, then its feedback; a failure becomes the row's status and reason."""
    start = time.perf_counter()
    api = _COURSE.api()
    result = api.autograde(row.assignment, row.student, force=True, create=True)
    if result["success"]:
        feedback = api.generate_feedback(row.assignment, row.student, force=True)
        if not feedback["success"]:
            result = {"success": True, "log": feedback["log"], "warning": "feedback failed: " + str(feedback["error"])}
    row.seconds = time.perf_counter() - start
    if not result["success"]:
        row.status = "error"
        row.reason = f"nbgrader could not autograde: {_failure(result)}"


_EXCEPTION_LINE = re.compile(r"^\s*(?:[\w.]+\.)?\w*(?:Error|Exception|Exit|Interrupt)\b(?::.*)?$", re.M)


def _failure(result: dict) -> str:
    """What went wrong in a failed nbgrader call: the exceptions its log and error name, innermost last."""
    text = f"{result.get('log') or ''}\n{result.get('error') or ''}"
    found = list(dict.fromkeys(line.strip() for line in _EXCEPTION_LINE.findall(text)))
    return ("; ".join(found[-3:]) or text.strip()[-300:])[-500:]


def _status_from_notebooks(course: Course, row: Row) -> None:
    """Read the grading events stored by RecordGradingEvents into the row."""
    reasons = []
    for path in sorted((course.autograded / row.student / row.assignment).glob("*.ipynb")):
        events = nbformat.read(path, as_version=4).metadata.get("coursegrade", {})
        if events.get("kernel_died_in_cell") is not None:
            row.status = "crashed"
            reasons.append(f"{path.stem}: the kernel died in cell {events['kernel_died_in_cell']} "
                           "(os._exit, a crash or memory); later cells not run")
        if events.get("timeouts"):
            row.status = "timeout" if row.status == "graded" else row.status
            reasons.append(f"{path.stem}: cells {events['timeouts']} hit the time limit")
        if events.get("truncated"):
            reasons.append(f"{path.stem}: the output of cells {events['truncated']} was truncated")
    row.reason = "; ".join(reasons)


def _unscored_export(row: Row, max_score: float) -> dict:
    """The export columns of a row that has earned no points (yet)."""
    return dict.fromkeys(EXPORT_COLUMNS, "") | {"assignment": row.assignment, "student_id": row.student,
                                                "raw_score": 0.0, "late_submission_penalty": 0.0, "score": 0.0,
                                                "max_score": max_score}


def _scores(course: Course, rows: list[Row]) -> None:
    """Fill scores (export columns and per-task) from the gradebook."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(course.config.CourseDirectory.db_url) as gb:
        for row in rows:
            row.export = _unscored_export(row, gb.find_assignment(row.assignment).max_score)
            try:
                student = gb.find_student(row.student)
                row.export.update(last_name=student.last_name or "", first_name=student.first_name or "",
                                  email=student.email or "")
            except MissingEntry:
                pass
            if row.status not in ("graded", "timeout", "crashed"):
                continue
            try:
                submission = gb.find_submission(row.assignment, row.student)
            except MissingEntry:
                row.status, row.reason = "error", "autograding left no gradebook entry"
                continue
            row.export.update(timestamp=submission.timestamp or "", raw_score=submission.score,
                              late_submission_penalty=submission.late_submission_penalty,
                              score=max(0.0, submission.score - submission.late_submission_penalty),
                              duedate=submission.duedate or "")
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    row.tasks[grade.name] = grade.score


def _absent_students(course: Course, assignments: list[str], seen: set) -> list[Row]:
    """'missing' rows for students in the gradebook who submitted nothing at all."""
    from nbgrader.api import Gradebook

    with Gradebook(course.config.CourseDirectory.db_url) as gb:
        absent = sorted(s.id for s in gb.students if s.id not in seen)
    return [Row(a, s, "missing", "no submission folder") for a in assignments for s in absent]


def _progress(done: int, total: int, label: str) -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    line = f"grading [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label}"
    end = "\r" if sys.stderr.isatty() and done < total else "\n"
    if sys.stderr.isatty() or done == total or done % 10 == 0:
        print(line.ljust(100), end=end, file=sys.stderr, flush=True)


def write_csv(rows: list[Row], path: Path) -> None:
    task_columns = sorted({name for row in rows for name in row.tasks})
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(EXPORT_COLUMNS + ["status", "reason"] + task_columns)
        for row in sorted(rows, key=lambda r: (r.assignment, r.student)):
            writer.writerow([row.export.get(c, "") for c in EXPORT_COLUMNS] + [row.status, row.reason]
                            + [row.tasks.get(c, "") for c in task_columns])


def summary(rows: list[Row]) -> str:
    """Counts by status, score distribution and the slowest notebooks, as text."""
    lines = ["", "status counts:"]
    for status in STATUSES:
        count = sum(r.status == status for r in rows)
        if count:
            lines.append(f"  {status:<17s} {count}")
    for assignment in sorted({r.assignment for r in rows}):
        scores = [float(r.export["score"]) for r in rows if r.assignment == assignment]
        top = max(float(r.export["max_score"]) for r in rows if r.assignment == assignment)
        lines.append(f"{assignment}: {len(scores)} students, score min {min(scores):g} / median "
                     f"{statistics.median(scores):g} / mean {statistics.fmean(scores):.1f} / max {max(scores):g} "
                     f"(out of {top:g})")
    slow = sorted((r for r in rows if r.seconds), key=lambda r: -r.seconds)[:5]
    if slow:
        lines.append("slowest: " + ", ".join(f"{r.student}/{r.assignment} {r.seconds:.1f} s" for r in slow))
    return "\n".join(lines)


def grade(course: Course, assignments: list[str], jobs: int, force: bool, csv_path: Path,
          kernel_zygote: zygote.Zygote | None = None) -> list[Row]:
    """Grade every submission of ``assignments``; return one row per student and assignment.

    Kernels are forked from ``kernel_zygote`` (one is started if not given) unless
    ``c.KernelZygote.enabled`` is False.
    """
    global _COURSE
    _COURSE = course
    settings = zygote.KernelZygote(config=course.config)
    with contextlib.ExitStack() as stack:
        if settings.enabled:  # first: the zygote imports its modules while the assignment is registered
            if kernel_zygote is None:
                kernel_zygote = zygote.Zygote()
                stack.callback(kernel_zygote.stop)
            stack.enter_context(kernel_zygote.serving(settings.preload))
        import nbgrader.apps  # noqa: F401 - imported once here, inherited by forked workers

        for assignment in assignments:  # registers the assignment and its cells in the gradebook
            result = course.api(release_directory=str(Path("_build") / "release_check")).generate_assignment(
                assignment, force=True, create=True)
            if not result["success"]:
                raise RuntimeError(f"could not register {assignment} in the gradebook:\n{result['log']}")
        submissions = [(assignment, student, expected, force) for assignment in assignments
                       for expected in [course.notebooks(assignment)] for student in course.students()]
        _warm_up(course)
        rows = []
        with multiprocessing.get_context("fork").Pool(processes=max(1, jobs), initializer=_start_worker) as pool:
            for row in pool.imap_unordered(_grade_one, submissions):
                rows.append(row)
                _progress(len(rows), len(submissions), f"{row.student}/{row.assignment}")
    absent = _absent_students(course, assignments, {r.student for r in rows})
    _scores(course, absent)
    rows += absent
    write_csv(rows, csv_path)
    offline_feedback(course.feedback)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursegrade", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="course folder (default: here)")
    parser.add_argument("--assignment", action="append", help="assignment id (repeatable; default: all)")
    # Each grader waits on its kernel part of the time, and the kernel on it: three per core keep the cores busy.
    parser.add_argument("--jobs", type=int, default=3 * os.cpu_count(), help="parallel graders (default: three per core)")
    parser.add_argument("--force", action="store_true", help="re-grade submissions that have not changed")
    parser.add_argument("--lms", type=Path, help="a zip or folder of files named by student, for zip_collect")
    parser.add_argument("--csv", type=Path, default=Path("grades.csv"), help="grades file (default: grades.csv)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1; got {args.jobs}")
    # nbgrader runs `alembic` from its own environment
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    # debugpy, which every kernel imports, warns about frozen modules unless told not to; no one debugs here
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    kernel_zygote = zygote.Zygote()  # imports the kernel's modules while the course is read
    try:
        course = Course(args.root)
        assignments = args.assignment or course.assignments()
        unknown = sorted(set(assignments) - set(course.assignments()))
        if unknown:
            parser.error(f"--assignment must be one of {course.assignments()}; got {unknown}")
        if args.lms:
            from .lms import collect

            for assignment in assignments:
                collect(course, assignment, args.lms)
        start = time.perf_counter()
        rows = grade(course, assignments, args.jobs, args.force, course.root / args.csv, kernel_zygote)
    finally:
        kernel_zygote.stop()
    print(summary(rows))
    print(f"{len(rows)} rows written to {args.csv} in {time.perf_counter() - start:.1f} s; feedback in "
          f"{course.feedback.relative_to(course.root)}/")
    return 0
