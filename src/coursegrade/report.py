"""What the run reports: scores read back from the gradebook, grading events read from the
autograded notebooks, the grades CSV (nbgrader's export columns, status, reason, one column per
task) and the summary printed at the end."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import nbformat

from .course import STATUSES, Course, Row

EXPORT_COLUMNS = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
                  "raw_score", "late_submission_penalty", "score", "max_score"]


def status_from_notebooks(course: Course, row: Row) -> None:
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


def unscored_export(row: Row, max_score: float) -> dict:
    """The export columns of a row that has earned no points (yet)."""
    return dict.fromkeys(EXPORT_COLUMNS, "") | {"assignment": row.assignment, "student_id": row.student,
                                                "raw_score": 0.0, "late_submission_penalty": 0.0, "score": 0.0,
                                                "max_score": max_score}


def read_scores(course: Course, rows: list[Row]) -> None:
    """Fill scores (export columns and per-task) from the gradebook."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(course.config.CourseDirectory.db_url) as gb:
        for row in rows:
            row.export = unscored_export(row, gb.find_assignment(row.assignment).max_score)
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


def absent_students(course: Course, assignments: list[str], seen: set) -> list[Row]:
    """'missing' rows for students in the gradebook who submitted nothing at all."""
    from nbgrader.api import Gradebook

    with Gradebook(course.config.CourseDirectory.db_url) as gb:
        absent = sorted(s.id for s in gb.students if s.id not in seen)
    return [Row(a, s, "missing", "no submission folder") for a in assignments for s in absent]


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
