"""Grading speed: stock sequential `nbgrader autograde` against `make grade` on the same submissions.

Generates N submissions of problem set 1 (correct, untouched and partly wrong
copies) in two scratch copies of the course, grades one with the stock nbgrader
command line (``autograde``, then ``generate_feedback``) and the other with
``python -m coursegrade``, checks that every student gets the same score, and
prints ``grading speed-up: N.Nx``: stock ``autograde`` alone against ``make grade``,
which also writes the feedback. It then grades the same submissions once more with the
sandbox switched off (``c.SandboxedKernelManager.enabled = False``) and prints what the
isolation costs per notebook. Both use the course's ``nbgrader_config.py``, and both
courses start as after ``make release``: the assignment released, so the gradebook exists
(creating one runs nbgrader's ``alembic`` check, about a second, which neither side is timed on).
"""

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
PS = "ps1_rooflines"
BIN = Path(sys.executable).parent
WRONG = {"q1_answer": "int8_critical_batch = 3.94e14 / 8.19e11", "q7_answer": "resnet18_a100 = 25.6e12"}


def make_course(root: Path, n: int) -> None:
    for name in ("solutions", "exercises"):
        shutil.copytree(REPO / name, root / name)
    shutil.copy(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    solution = nbformat.read(REPO / "solutions" / PS / f"{PS}.ipynb", as_version=4)
    release = nbformat.read(REPO / "exercises" / PS / f"{PS}.ipynb", as_version=4)
    for i in range(n):
        nb = [solution, release][i % 5 == 4]
        nb = nbformat.from_dict(nb)
        if i % 3 == 1:
            for cell in nb.cells:
                grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
                if grade_id in WRONG:
                    cell.source = WRONG[grade_id]
        folder = root / "submitted" / f"student{i:03d}" / PS
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{PS}.ipynb")


def run(cmd, cwd) -> float:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def rows_from(path: Path) -> dict:
    with open(path) as f:
        return {row["student_id"]: row for row in csv.DictReader(f)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=40, help="number of submissions (default 40)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stock, ours, bare = Path(tmp) / "stock", Path(tmp) / "ours", Path(tmp) / "bare"
        for root in (stock, ours, bare):
            make_course(root, args.n)
        with open(bare / "nbgrader_config.py", "a") as f:
            f.write("\nc.SandboxedKernelManager.enabled = False\n")
        for root in (stock, ours, bare):  # as after `make release`: the gradebook exists, the assignment is in it
            run([str(BIN / "nbgrader"), "generate_assignment", PS, "--force",
                 "--CourseDirectory.release_directory=release_check"], root)
        t_stock = run([str(BIN / "nbgrader"), "autograde", PS], stock)
        t_feedback = run([str(BIN / "nbgrader"), "generate_feedback", PS], stock)
        run([str(BIN / "nbgrader"), "export", "--to", "grades.csv"], stock)
        t_ours = run([sys.executable, "-m", "coursegrade", "--assignment", PS], ours)
        t_bare = run([sys.executable, "-m", "coursegrade", "--assignment", PS], bare)
        our_rows = rows_from(ours / "grades.csv")
        stock_scores = {s: float(row["score"]) for s, row in rows_from(stock / "grades.csv").items()}
        our_scores = {s: float(row["score"]) for s, row in our_rows.items()}
    differ = sorted(s for s in stock_scores.keys() | our_scores.keys() if stock_scores.get(s) != our_scores.get(s))
    print(f"submissions: {args.n}, cores: {os.cpu_count()}")
    print(f"stock nbgrader autograde (sequential):       {t_stock:7.1f} s")
    print(f"stock nbgrader generate_feedback:            {t_feedback:7.1f} s")
    print(f"make grade (autograde + feedback, parallel): {t_ours:7.1f} s")
    print(f"make grade without the sandbox:              {t_bare:7.1f} s")
    print(f"isolation cost: {1000 * (t_ours - t_bare) / args.n:.0f} ms of wall time per notebook "
          f"({os.cpu_count()} cores, {3 * os.cpu_count()} graders)")
    print(f"identical scores: {'yes' if not differ else 'NO'}")
    for student in differ:
        ours_row = our_rows.get(student, {})
        print(f"  {student}: stock {stock_scores.get(student)}, make grade {our_scores.get(student)} "
              f"({ours_row.get('status')}: {ours_row.get('reason')})")
    print(f"same work (stock autograde + generate_feedback vs make grade): {(t_stock + t_feedback) / t_ours:.1f}x")
    print(f"grading speed-up: {t_stock / t_ours:.1f}x")
    if differ:
        sys.exit(1)


if __name__ == "__main__":
    main()
