"""The command line of `make grade`: ``python -m coursegrade [--assignment ID] [--jobs N] [--force]
[--lms ZIP] [--csv FILE] [--root FOLDER]``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from . import engine, zygote
from .course import Course
from .report import summary


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
        rows = engine.grade(course, assignments, args.jobs, args.force, course.root / args.csv, kernel_zygote)
    finally:
        kernel_zygote.stop()
    print(summary(rows))
    print(f"{len(rows)} rows written to {args.csv} in {time.perf_counter() - start:.1f} s; feedback in "
          f"{course.feedback.relative_to(course.root)}/")
    return 0
