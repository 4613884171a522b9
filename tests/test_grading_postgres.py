"""Parallel grading against a real PostgreSQL gradebook (a server this test starts on 127.0.0.1)."""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import nbformat
import pytest

from conftest import copy_course
from test_grading_engine import SOLUTION, _grade, _solution_with, _write

pytestmark = pytest.mark.slow


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    assert binaries, "PostgreSQL server is missing: install Debian's `postgresql` (`make test` does this as root)"
    bin_dir = binaries[-1]
    data = Path(tempfile.mkdtemp(prefix="pgdata-"))  # pytest's own folders are closed to other users
    as_user = []
    if os.geteuid() == 0:  # the server refuses to run as root
        shutil.chown(data, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run(as_user + [f"{bin_dir}/initdb", "-D", str(data), "-A", "trust", "-U", "grader"],
                   check=True, capture_output=True)
    subprocess.run(as_user + [f"{bin_dir}/pg_ctl", "-D", str(data), "-w", "-l", str(data / "log"), "-o",
                              f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True)
    subprocess.run([f"{bin_dir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "grader", "gradebook"],
                   check=True, capture_output=True)
    yield f"postgresql+psycopg2://grader@127.0.0.1:{port}/gradebook"
    subprocess.run(as_user + [f"{bin_dir}/pg_ctl", "-D", str(data), "-w", "stop"], capture_output=True)
    shutil.rmtree(data, ignore_errors=True)


def test_parallel_grading_with_a_postgresql_gradebook(postgres, tmp_path):
    root = copy_course(tmp_path / "course")
    config = root / "nbgrader_config.py"
    config.write_text(config.read_text() + f'\nc.CourseDirectory.db_url = "{postgres}"\n')
    expected = {}
    for i in range(3):
        _write(root, f"right{i}", nbformat.read(SOLUTION, as_version=4))
        _write(root, f"wrong{i}", _solution_with(q1_answer="int8_critical_batch = 1.0"))
        _write(root, f"crash{i}", _solution_with(q2_answer="import os\nos._exit(1)"))
        expected.update({f"right{i}": 28.0, f"wrong{i}": 26.0, f"crash{i}": 2.0})
    rows, _ = _grade(root, "--jobs", "2")
    assert {s: float(r["score"]) for s, r in rows.items()} == expected, {s: (r["status"], r["reason"]) for s, r in rows.items()}
    assert not (root / "gradebook.db").exists(), "the SQLite gradebook was used instead of PostgreSQL"
    # a second, forced run over the same database changes nothing
    again, _ = _grade(root, "--jobs", "2", "--force")
    assert {s: float(r["score"]) for s, r in again.items()} == expected
