"""Problem sets: solutions pass their own tests, releases are in sync, nbgrader grades correctly."""

import csv
import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import BIN, REPO, run
from test_grading_engine import DETACH, IMPORT_HOOK, KILL_EVERYONE, REPATCHING_THREAD

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


def _points(assignment):
    nb = nbformat.read(REPO / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    return sum(c.metadata.get("nbgrader", {}).get("points", 0) for c in nb.cells)


def _solution_cells(nb):
    return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_hides_solutions_and_hidden_tests(assignment):
    text = (REPO / "exercises" / assignment / f"{assignment}.ipynb").read_text()
    assert "BEGIN HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text
    assert "import roofline" not in text
    solution = nbformat.read(REPO / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    answers = _solution_cells(nbformat.reads(text, as_version=4))
    assert len(answers) == len(_solution_cells(solution)) > 0
    assert all("raise NotImplementedError()" in c.source for c in answers)


def _submit(course, student, notebook, assignment="ps1_rooflines"):
    folder = course / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, folder / f"{assignment}.ipynb")


def _answer_cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _read(folder, assignment):
    return nbformat.read(REPO / folder / assignment / f"{assignment}.ipynb", as_version=4)


def _submit_slip(course, student, assignment, edits):
    """Submit the solution with ``(grade_id, old, new)`` text replacements in its answer cells."""
    nb = _read("solutions", assignment)
    for grade_id, old, new in edits:
        cell = _answer_cell(nb, grade_id)
        assert old in cell.source, f"{assignment} {grade_id} no longer contains {old!r}"
        cell.source = cell.source.replace(old, new)
    _submit(course, student, nb, assignment)


@pytest.fixture(scope="module")
def graded(course):
    """`make grade` over every assignment: the solution (alice), the untouched release (bob),
    and submissions with specific faults; returns grade rows by (student, assignment)."""
    attacks = "\n".join((KILL_EVERYONE, REPATCHING_THREAD, IMPORT_HOOK, DETACH))
    for assignment in ASSIGNMENTS:
        _submit(course, "alice", _read("solutions", assignment), assignment)
        _submit(course, "bob", _read("exercises", assignment), assignment)
        # right answers, after a cell that kills what it can, patches from a thread, hooks imports and detaches
        mallory = _read("solutions", assignment)
        mallory.cells.insert(1, nbformat.v4.new_code_cell(attacks))
        _submit(course, "mallory", mallory, assignment)
        # a kernel that loops forever in the last answer cell: interrupted, every earlier task kept
        looping_last = _read("solutions", assignment)
        _solution_cells(looping_last)[-1].source = "while True:\n    pass"
        _submit(course, "paula", looping_last, assignment)
        folder = course / "submitted" / "quentin" / assignment  # not a notebook at all
        folder.mkdir(parents=True)
        (folder / f"{assignment}.ipynb").write_text('{"cells": [')
    cheat = _read("solutions", "ps1_rooflines")
    _answer_cell(cheat, "q1_answer").source = (
        "import roofline\nint8_critical_batch = roofline.critical_batch_size(3.94e14, 8.19e11, 'int8')")
    _answer_cell(cheat, "q2_answer").source = "mixed_critical_batch = 1.97e14 / 8.19e11"  # forgot the /2
    _submit(course, "carol", cheat)
    looping = _read("solutions", "ps1_rooflines")
    _answer_cell(looping, "q4_answer").source = "while True:\n    pass"
    _submit(course, "dave", looping)
    # ps2: K and V counted as two matmuls (reading X twice), and int4 speed-up without the KV cache
    _submit_slip(course, "erin", "ps2_memory_wall", [
        ("q3_answer", "shapes = [(d, d), (d, 2 * d), (d, d), (d, f), (f, d)]", "shapes = [(d, d)] * 4 + [(d, f), (f, d)]"),
        ("q6_answer", "int4_decode_speedup = (n * 2 + kv) / (n * 0.5 + kv)", "int4_decode_speedup = 4.0"),
    ])
    # ps3: the H100 knee computed with the FMA peak instead of the multiply-only rate
    _submit_slip(course, "frank", "ps3_overhead", [
        ("q3_answer", "knee_h100 = (6.69e13 / 2) * 8 / 3.35e12", "knee_h100 = 6.69e13 * 8 / 3.35e12")])
    # ps4: the cache sized as if every query head had its own K and V (the seed's mistake)
    _submit_slip(course, "gina", "ps4_kv_cache", [
        ("q1_answer", "kv_cache_size(80, 8, 128, 4096, 8, 2)", "kv_cache_size(80, 64, 128, 4096, 8, 2)")])
    # ps5: the log-sum-exp merge without subtracting the maximum (overflows at large scores)
    _submit_slip(course, "hana", "ps5_long_context", [("q1_answer", "np.exp(lses - lses.max())", "np.exp(lses)")])
    # ps1: the multi-level roofline with the best level's roof instead of the worst
    _submit_slip(course, "ivan", "ps1_rooflines", [("q9_answer", "np.minimum.reduce(roofs)", "np.maximum.reduce(roofs)")])
    # ps3: launches always synchronous
    _submit_slip(course, "judy", "ps3_overhead", [("q6_answer", "if asynchronous:", "if False:")])
    # ps4: NVLink's bidirectional figure, full attention in prefill, two experts read at batch 16
    _submit_slip(course, "kim", "ps4_kv_cache", [
        ("q7_answer", "4.5e11", "9e11"), ("q8_answer", "2 * L * H * D_HEAD * T**2", "4 * L * H * D_HEAD * T**2"),
        ("q9_answer", "mixtral_bytes_b16 = float(_mixtral_bytes(16))", "mixtral_bytes_b16 = float(_mixtral_bytes(1))")])
    # ps5: occupancy without waves; the KV cache of every query head
    _submit_slip(course, "leo", "ps5_long_context", [
        ("q6_answer", "blocks / (waves * sms)", "min(1.0, blocks / sms)"),
        ("q7_answer", "2 * _L * _H_KV * _D * 2", "2 * _L * _H * _D * 2")])
    # ps6: carol serves her own scenario; erin hands in alice's notebook (alice's deployment, erin's scenario);
    # judy lets her search accept 1% over the targets, so her deployment misses one by a hair
    capstone = "ps6_serving_capstone"
    _submit_slip(course, "carol", capstone, [("q5_answer", 'student_id = "alice"', 'student_id = "carol"')])
    _submit(course, "erin", _read("solutions", capstone), capstone)
    _submit_slip(course, "judy", capstone, [
        ("q5_answer", 'student_id = "alice"', 'student_id = "judy"'),
        ("q5_answer", 'ttft <= s["ttft_target"] and itl <= s["itl_target"]',
         'ttft <= 1.01 * s["ttft_target"] and itl <= 1.01 * s["itl_target"]')])
    # The committed timeout is 60 s; a shorter one keeps this test quick.
    config = course / "nbgrader_config.py"
    config.write_text(config.read_text().replace("c.Execute.timeout = 60", "c.Execute.timeout = 5"))
    result = run(["make", "grade", f"BIN={BIN}", "STAMP=", "GRADE_ARGS=--jobs 4"], cwd=course)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with open(course / "grades.csv") as f:
        rows = {(row["student_id"], row["assignment"]): row for row in csv.DictReader(f)}
    return rows, course


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_solution_scores_full_marks(graded, assignment):
    rows, _ = graded
    row = rows["alice", assignment]
    assert float(row["score"]) == float(row["max_score"]) == _points(assignment) > 0


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_attacks_on_the_grader_and_the_others_change_nothing(graded, assignment):
    rows, _ = graded
    assert float(rows["mallory", assignment]["score"]) == float(rows["alice", assignment]["score"]) == _points(assignment)


def _points_after(assignment, grade_id):
    """Points of the test cells after the answer cell ``grade_id``: what a kernel stuck there loses."""
    nb = _read("solutions", assignment)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
    return sum(c.metadata.get("nbgrader", {}).get("points", 0) for c in nb.cells[ids.index(grade_id):])


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_a_broken_submission_costs_only_what_it_breaks(graded, assignment):
    rows, _ = graded
    last = _solution_cells(_read("solutions", assignment))[-1].metadata["nbgrader"]["grade_id"]
    assert rows["paula", assignment]["status"] == "timeout"
    assert float(rows["paula", assignment]["score"]) == _points(assignment) - _points_after(assignment, last) > 0
    assert rows["quentin", assignment]["status"] == "invalid notebook"
    assert float(rows["quentin", assignment]["score"]) == 0


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_untouched_release_scores_zero(graded, assignment):
    rows, _ = graded
    assert float(rows["bob", assignment]["score"]) == 0


def _feedback(course, student, assignment, grade_id):
    nb = nbformat.read(course / f"autograded/{student}/{assignment}/{assignment}.ipynb", as_version=4)
    return "".join(o.get("evalue", "") for o in _answer_cell(nb, grade_id).outputs)


@pytest.mark.parametrize("student, assignment, points_lost, grade_id, message", [
    # K and V as two matmuls (Task 3, 4 points) and int4 without the KV cache (Task 6, 5 points)
    ("erin", "ps2_memory_wall", 4 + 5, "q3_test", "counts K and V as two matmuls"),
    ("erin", "ps2_memory_wall", 4 + 5, "q6_test", "the KV cache stays in bf16"),
    ("frank", "ps3_overhead", 2, "q3_test", "uses the FMA peak"),
    ("gina", "ps4_kv_cache", 3, "q1_test", "caches only its 8 KV heads"),
    ("hana", "ps5_long_context", 4, "q1_test", "or exp(800) overflows"),
    ("ivan", "ps1_rooflines", 4, "q9_test", "takes the best level's roof"),
    ("judy", "ps3_overhead", 5, "q6_test", "ignores asynchronous=True"),
    ("kim", "ps4_kv_cache", 5 + 4 + 4, "q7_test", "uses NVLink's 900 GB/s as the bandwidth per direction"),
    ("kim", "ps4_kv_cache", 5 + 4 + 4, "q8_test", "counts full attention"),
    ("kim", "ps4_kv_cache", 5 + 4 + 4, "q9_test", "reads only two experts per layer"),
    ("leo", "ps5_long_context", 4 + 5, "q6_test", "ignores the waves"),
    ("leo", "ps5_long_context", 4 + 5, "q7_test", "sizes the KV cache with all 32 query heads"),
    # the capstone: a deployment 1% over a target loses both of its parts
    ("judy", "ps6_serving_capstone", 4 + 4, "q5_test_targets", "By your own model, my_deployment misses a latency target"),
    ("judy", "ps6_serving_capstone", 4 + 4, "q5_test_throughput", "misses its targets: inter-token latency"),
    # a classmate's deployment meets erin's targets but is far from her scenario's best
    ("erin", "ps6_serving_capstone", 4, "q5_test_throughput",
     "more than 10% below the best the reference finds. (You serve rag-qwen3-moe: the scenario of the ID you "
     "submitted under, 'erin'.)"),
])
def test_a_plausible_slip_loses_exactly_its_tasks_and_says_why(graded, student, assignment, points_lost,
                                                                grade_id, message):
    rows, course = graded
    assert float(rows[student, assignment]["score"]) == _points(assignment) - points_lost
    assert message in _feedback(course, student, assignment, grade_id)


def test_delegating_to_roofline_loses_only_that_task(graded):
    rows, course = graded
    # Task 1 (2 points) used roofline, Task 2 (2 points) is wrong; everything else is right.
    assert float(rows["carol", "ps1_rooflines"]["score"]) == 28 - 2 - 2
    nb = nbformat.read(course / "autograded/carol/ps1_rooflines/ps1_rooflines.ipynb", as_version=4)
    q1 = "".join(o.get("evalue", "") for o in _answer_cell(nb, "q1_test").outputs)
    assert "int8_critical_batch" in q1 and "is not available while your work is graded" in q1
    q2 = "".join(o.get("evalue", "") for o in _answer_cell(nb, "q2_test").outputs)
    assert "mixed_critical_batch is twice too large" in q2  # the visible check names the mistake


def test_an_infinite_loop_is_interrupted_and_the_rest_is_graded(graded):
    rows, _ = graded
    assert float(rows["dave", "ps1_rooflines"]["score"]) == 28 - 3  # only Task 4 lost
    assert "c.Execute.timeout = 60" in (REPO / "nbgrader_config.py").read_text()


def test_feedback_is_generated_for_every_student(graded):
    rows, course = graded
    # one row per student and assignment, whichever sets each handed in
    assert len(rows) == 15 * len(ASSIGNMENTS)
    assert rows["erin", "ps1_rooflines"]["status"] == "missing"
    for (student, assignment), row in rows.items():
        if row["status"] == "graded":
            assert (course / "feedback" / student / assignment / f"{assignment}.html").is_file()


def test_each_student_is_graded_on_their_own_scenario(graded):
    rows, _ = graded
    # carol's ID maps to another scenario than alice's; her notebook serves her own, in full
    assert float(rows["carol", "ps6_serving_capstone"]["score"]) == _points("ps6_serving_capstone")
