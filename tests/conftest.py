import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(cmd, cwd, timeout=600):
    """Run a command with the test environment's tools first on PATH; return the completed process."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def copy_course(root):
    """Copy the course (solutions, exercises, nbgrader config, Makefile) into ``root``; return it."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("solutions", "exercises"):
        shutil.copytree(REPO / name, root / name)
    for name in ("nbgrader_config.py", "Makefile"):
        shutil.copy(REPO / name, root / name)
    return root


@pytest.fixture(scope="session")
def course(tmp_path_factory):
    """A throw-away copy of the course."""
    return copy_course(tmp_path_factory.mktemp("course"))


@pytest.fixture(scope="session")
def html(tmp_path_factory):
    """The whole book, built once per test run (executing every chapter, warnings as errors)."""
    out = tmp_path_factory.mktemp("book")
    result = run([str(BIN / "jupyter-book"), "build", str(REPO), "--path-output", str(out),
                  "--builder", "html", "-W", "--keep-going"], cwd=REPO)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    return out / "_build" / "html"


def book_pages(html_root):
    """Every page of the built book (not Sphinx's static or source copies)."""
    return sorted(p.relative_to(html_root).as_posix() for p in html_root.rglob("*.html")
                  if not p.relative_to(html_root).parts[0].startswith("_"))
