"""`make grade` run by an instructor who is not root: the same isolation, through user namespaces.

CI runs as root, so the test creates an unprivileged user, makes the interpreter and the
repository reachable to it (restoring the folders' modes afterwards) and grades as that user.
"""

import csv
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

from conftest import BIN, REPO, copy_course
from test_grading_engine import CASES, PS, _write, detached_leftovers

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="creating the unprivileged user needs root")]
USER = "coursegrade-test"
STUDENTS = ("correct", "untouched", "wrong", "kills_others", "detaches", "obfuscated_delegation", "prints_60mb")


@pytest.fixture(scope="module")
def user():
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/bin/sh", USER], check=True)
    return pwd.getpwnam(USER)


@pytest.fixture(scope="module")
def reachable():
    """Every folder above the interpreter and the repository traversable by others, for the test only."""
    folders = {parent for path in (Path(sys.executable).resolve().parent, REPO) for parent in [*path.parents, path]
               if parent != parent.parent}
    changed = {folder: folder.stat().st_mode for folder in folders if not folder.stat().st_mode & stat.S_IXOTH}
    for folder, mode in changed.items():
        folder.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
    yield
    for folder, mode in changed.items():
        folder.chmod(stat.S_IMODE(mode))


@pytest.fixture
def own_folder(user):
    """A folder of the user's own (pytest's tmp_path lies in root's private folder)."""
    folder = Path(tempfile.mkdtemp(prefix="coursegrade-unprivileged-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_an_unprivileged_instructor_gets_the_same_grades_and_isolation(own_folder, user, reachable):
    tmp_path = own_folder
    root = copy_course(tmp_path / "course")
    config = root / "nbgrader_config.py"
    config.write_text(config.read_text().replace("c.Execute.timeout = 60", "c.Execute.timeout = 5"))
    for student in STUDENTS:
        _write(root, student, CASES[student][0](root))
    home = tmp_path / "home"
    home.mkdir()
    for path in (tmp_path, *tmp_path.rglob("*")):
        os.chown(path, user.pw_uid, user.pw_gid)
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
    result = subprocess.run(["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
                             "make", "grade", f"BIN={BIN}", "STAMP=", "GRADE_ARGS=--jobs 4"],
                            cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with open(root / "grades.csv") as f:
        rows = {row["student_id"]: row for row in csv.DictReader(f) if row["assignment"] == PS}
    for student in STUDENTS:
        _, status, score = CASES[student]
        assert (rows[student]["status"], float(rows[student]["score"])) == (status, score), rows[student]["reason"]
    printed = "".join(o.get("text", "") for o in nbformat.read(
        root / "autograded" / "correct" / PS / f"{PS}.ipynb", as_version=4).cells[1].outputs)
    assert "Traceback" not in printed
    assert detached_leftovers() == []
