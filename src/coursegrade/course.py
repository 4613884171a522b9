"""The course folder (configuration, assignments, submissions) and the triage of a submission:
whether it can be autograded at all, and if not, the row that says why."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

STATUSES = ("graded", "timeout", "crashed", "invalid notebook", "wrong assignment", "empty submission",
            "missing", "error")


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
