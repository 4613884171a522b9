"""`make grade`: autograde every submission with nbgrader, in parallel, and report on each student.

For each assignment (``solutions/<id>``) and each student folder under
``submitted/``, a :mod:`~coursegrade.worker` process (forked after nbgrader is imported, so
no worker pays its start-up) triages the submission; good ones are autograded by nbgrader's
own ``autograde`` and ``generate_feedback`` (configured in ``nbgrader_config.py`` with the
preprocessors of this package), in kernels forked from a :mod:`coursegrade.zygote`, so no
notebook pays a kernel's start-up either. Every student gets one row in the grades CSV
(:mod:`~coursegrade.report`), with a ``status`` and a ``reason``."""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
from pathlib import Path

from . import worker, zygote
from .course import Course, Row
from .feedback import offline_feedback
from .report import absent_students, read_scores, write_csv


def progress(done: int, total: int, label: str) -> None:
    """A progress bar on standard error: redrawn in a terminal, every tenth line otherwise."""
    width = 30
    filled = int(width * done / max(total, 1))
    line = f"grading [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label}"
    end = "\r" if sys.stderr.isatty() and done < total else "\n"
    if sys.stderr.isatty() or done == total or done % 10 == 0:
        print(line.ljust(100), end=end, file=sys.stderr, flush=True)


def grade(course: Course, assignments: list[str], jobs: int, force: bool, csv_path: Path,
          kernel_zygote: zygote.Zygote | None = None) -> list[Row]:
    """Grade every submission of ``assignments``; return one row per student and assignment.

    Kernels are forked from ``kernel_zygote`` (one is started if not given) unless
    ``c.KernelZygote.enabled`` is False.
    """
    worker.COURSE = course
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
        worker.warm_up(course)
        rows = []
        with multiprocessing.get_context("fork").Pool(processes=max(1, jobs), initializer=worker.patch_nbgrader) as pool:
            for row in pool.imap_unordered(worker.grade_one, submissions):
                rows.append(row)
                progress(len(rows), len(submissions), f"{row.student}/{row.assignment}")
    absent = absent_students(course, assignments, {r.student for r in rows})
    read_scores(course, absent)
    rows += absent
    write_csv(rows, csv_path)
    offline_feedback(course.feedback)
    return rows
