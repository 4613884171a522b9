"""Problem sets: solutions pass their own tests, releases are in sync, nbgrader grades correctly."""

import csv
import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import BIN, REPO, run

pytestmark = pytest.mark.slow
ASSIGNMENTS = sorted(p.name for p in (REPO / "solutions").iterdir() if p.is_dir())


def execute(path):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(Path(path).parent)}}).execute()
    return nb


def errors(nb):
    return {c.metadata.get("nbgrader", {}).get("grade_id"): o.get("evalue", "") or o.get("ename")
            for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_passes_all_its_tests(assignment):
    nb = execute(REPO / "solutions" / assignment / f"{assignment}.ipynb")
    assert errors(nb) == {}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_is_in_sync_with_solutions(course, assignment):
    result = run([str(BIN / "nbgrader"), "generate_assignment", assignment, "--force",
                  "--CourseDirectory.release_directory=release_check"], cwd=course)
    assert result.returncode == 0, result.stderr[-3000:]
    fresh = json.loads((course / "release_check" / assignment / f"{assignment}.ipynb").read_text())
    committed = json.loads((REPO / "exercises" / assignment / f"{assignment}.ipynb").read_text())
    assert fresh == committed, "exercises/ is stale: run `make release` and commit the result"


def test_release_hides_solutions_and_hidden_tests():
    text = (REPO / "exercises/ps1_rooflines/ps1_rooflines.ipynb").read_text()
    assert "BEGIN HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text
    assert "import roofline" not in text
    nb = nbformat.reads(text, as_version=4)
    answers = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert len(answers) == 8
    assert all("raise NotImplementedError()" in c.source for c in answers)


def _submit(course, student, notebook):
    folder = course / "submitted" / student / "ps1_rooflines"
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, folder / "ps1_rooflines.ipynb")


def _answer_cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


@pytest.fixture(scope="module")
def graded(course):
    """`make grade` over three submissions; returns the grade rows and the course folder."""
    solution = nbformat.read(REPO / "solutions/ps1_rooflines/ps1_rooflines.ipynb", as_version=4)
    release = nbformat.read(REPO / "exercises/ps1_rooflines/ps1_rooflines.ipynb", as_version=4)
    _submit(course, "alice", solution)
    _submit(course, "bob", release)
    cheat = nbformat.read(REPO / "solutions/ps1_rooflines/ps1_rooflines.ipynb", as_version=4)
    _answer_cell(cheat, "q1_answer").source = (
        "import roofline\nint8_critical_batch = roofline.critical_batch_size(3.94e14, 8.1e11, 'int8')")
    _answer_cell(cheat, "q2_answer").source = "mixed_critical_batch = 1.97e14 / 8.1e11"  # forgot the /2
    _submit(course, "carol", cheat)
    looping = nbformat.read(REPO / "solutions/ps1_rooflines/ps1_rooflines.ipynb", as_version=4)
    _answer_cell(looping, "q4_answer").source = "while True:\n    pass"
    _submit(course, "dave", looping)
    # The committed timeout is 60 s; a shorter one keeps this test quick.
    config = course / "nbgrader_config.py"
    config.write_text(config.read_text().replace("c.Execute.timeout = 60", "c.Execute.timeout = 5"))
    result = run(["make", "grade", f"BIN={BIN}", "STAMP="], cwd=course)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with open(course / "grades.csv") as f:
        rows = {row["student_id"]: row for row in csv.DictReader(f)}
    return rows, course


def test_the_solution_scores_full_marks(graded):
    rows, _ = graded
    assert float(rows["alice"]["score"]) == float(rows["alice"]["max_score"]) == 24


def test_the_untouched_release_scores_zero(graded):
    rows, _ = graded
    assert float(rows["bob"]["score"]) == 0


def test_delegating_to_roofline_loses_only_that_task(graded):
    rows, course = graded
    # Task 1 (2 points) used roofline, Task 2 (2 points) is wrong; everything else is right.
    assert float(rows["carol"]["score"]) == 24 - 2 - 2
    nb = nbformat.read(course / "autograded/carol/ps1_rooflines/ps1_rooflines.ipynb", as_version=4)
    q1 = "".join(o.get("evalue", "") for o in _answer_cell(nb, "q1_test").outputs)
    assert "No credit for `int8_critical_batch`" in q1 and "reference package" in q1
    q2 = "".join(o.get("evalue", "") for o in _answer_cell(nb, "q2_test").outputs)
    assert "mixed_critical_batch = 243.21 is not correct" in q2


def test_an_infinite_loop_is_interrupted_and_the_rest_is_graded(graded):
    rows, _ = graded
    assert float(rows["dave"]["score"]) == 24 - 3  # only Task 4 lost
    assert "c.Execute.timeout = 60" in (REPO / "nbgrader_config.py").read_text()


def test_feedback_is_generated_for_every_student(graded):
    _, course = graded
    for student in ("alice", "bob", "carol", "dave"):
        assert (course / "feedback" / student / "ps1_rooflines" / "ps1_rooflines.html").is_file()
