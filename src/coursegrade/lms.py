"""Turn an LMS download (a zip, or a folder of files named ``<student>_<notebook>.ipynb``)
into nbgrader's ``submitted/<student>/<assignment>/`` layout with ``nbgrader zip_collect``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

#: ``.../alice_ps1_rooflines.ipynb`` -> student ``alice``, file ``ps1_rooflines.ipynb``
#: (nbgrader matches the regexp against the whole extracted path).
NAMED_REGEXP = r".*/(?P<student_id>[A-Za-z0-9.-]+)_(?P<file_id>[^/]+\.ipynb)$"


def collect(course, assignment: str, source: Path) -> None:
    """Copy ``source`` into ``downloaded/<assignment>/archive`` and run zip_collect on it."""
    if not source.exists():
        raise ValueError(f"lms must be a zip file or a folder; {source} does not exist")
    archive = course.root / "downloaded" / assignment / "archive"
    archive.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        for path in source.iterdir():
            if path.is_file():
                shutil.copy(path, archive / path.name)
    else:
        shutil.copy(source, archive / source.name)
    nbgrader = Path(sys.executable).with_name("nbgrader")
    result = subprocess.run(
        [str(nbgrader), "zip_collect", assignment, "--force",
         f"--FileNameCollectorPlugin.named_regexp={NAMED_REGEXP}"],
        cwd=course.root, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"nbgrader zip_collect failed for {assignment}:\n{result.stderr[-2000:]}")
