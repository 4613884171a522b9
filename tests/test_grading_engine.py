"""`make grade` on broken, hostile and correct submissions, through the real nbgrader."""

import csv
import json
import os
import re
import warnings
import zipfile

import nbformat
import pytest

from conftest import BIN, REPO, copy_course, run

pytestmark = pytest.mark.slow
PS = "ps1_rooflines"
SOLUTION = REPO / "solutions" / PS / f"{PS}.ipynb"
RELEASE = REPO / "exercises" / PS / f"{PS}.ipynb"


def _cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _solution_with(**answers):
    nb = nbformat.read(SOLUTION, as_version=4)
    for grade_id, source in answers.items():
        _cell(nb, grade_id).source = source
    return nb


def _write(root, student, nb_or_text, name=f"{PS}.ipynb"):
    folder = root / "submitted" / student / PS
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(nb_or_text, str):
        (folder / name).write_text(nb_or_text)
    else:
        nbformat.write(nb_or_text, folder / name)


SNOOP = """import glob, os
found = []
for pattern in ["{root}/solutions/**/*.ipynb", "{root}/exercises/**/*.ipynb", "{root}/gradebook.db", "{root}/submitted/*/*/*.ipynb",
                "{root}/autograded/**/*.ipynb", "/tmp/**/solutions/**/*.ipynb", "/tmp/coursegrade-zygote-*",
                "/proc/*/root{root}/solutions/*", "/proc/*/root/tmp/coursegrade-zygote-*"]:  # other processes' views
    found += glob.glob(pattern, recursive=True)
found += [name for name in os.environ if "ZYGOTE" in name]  # the fork server's address
print("FOUND", found)
int8_critical_batch = 3.94e14 / 8.19e11 / 2 if not found else 0.0"""

# A fake `roofline` package written into the kernel's folder (from the time hidden tests imported the real one there);
# now the package is not in the sandbox at all, and the checks run in the grader.
SHADOW = """import importlib.util, os
real = os.path.dirname(importlib.util.find_spec("roof" + "line").origin)
os.makedirs("roof" + "line", exist_ok=True)
with open(os.path.join("roof" + "line", "__init__.py"), "w") as f:
    f.write(f"__path__.append({real!r})\\n"
            f"exec(compile(open({real!r} + '/__init__.py').read(), 'init', 'exec'))\\n"
            "critical_batch_size = lambda *args, **kw: 1.0\\n")
int8_critical_batch = 1.0"""

# Signals every process it can name, and everything it may signal at all (kill -1).
KILL_EVERYONE = """import os, signal
mine = {int(task) for task in os.listdir(f"/proc/{os.getpid()}/task")}  # its own threads
for pid in range(2, 1 << 16):
    if pid not in mine:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
try:
    os.kill(-1, signal.SIGTERM)
except OSError:
    pass"""

# A thread that keeps replacing what checks used to call.
REPATCHING_THREAD = """import builtins, math, threading, time, numpy
def _patch():
    while True:
        numpy.isclose = numpy.allclose = math.isclose = lambda *a, **k: True
        builtins.abs = lambda x: 0
        time.sleep(0.001)
threading.Thread(target=_patch, daemon=True).start()"""

# An import hook that would hand hidden tests that import their checker a fake one.
IMPORT_HOOK = """import sys, types
class _Fake:
    def find_spec(self, name, path=None, target=None):
        if name.startswith(("roofline", "coursegrade")):
            import importlib.machinery
            return importlib.machinery.ModuleSpec(name, self)
    def create_module(self, spec):
        module = types.ModuleType(spec.name)
        module.__path__ = []
        module.__getattr__ = lambda attr: (lambda *a, **k: None)
        return module
    def exec_module(self, module):
        pass
sys.meta_path.insert(0, _Fake())"""

# Processes that try to outlive grading: a new session, and a double fork.
DETACH = """import os, subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)  # coursegrade-detached-marker"],
                 start_new_session=True)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)  # coursegrade-detached-marker"])
    os._exit(0)"""

CASES = {
    # student: (submission, expected status, expected score out of 28)
    "correct": (lambda root: nbformat.read(SOLUTION, as_version=4), "graded", 28),
    "untouched": (lambda root: nbformat.read(RELEASE, as_version=4), "graded", 0),
    "wrong": (lambda root: _solution_with(q1_answer="int8_critical_batch = 3.94e14 / 8.19e11"), "graded", 26),
    "os_exit": (lambda root: _solution_with(q3_answer="import os\nos._exit(1)"), "crashed", 4),
    "sys_exit": (lambda root: _solution_with(q2_answer="import sys\nsys.exit(2)"), "graded", 26),
    "loop": (lambda root: _solution_with(q5_answer="while True:\n    pass"), "timeout", 26),
    "memory": (lambda root: _solution_with(q4_answer="import numpy as np\nblob = np.ones(10**11)"), "graded", 25),
    "patches_isclose": (lambda root: _solution_with(q1_answer=(
        "import math, numpy, numpy.testing\n"
        "numpy.isclose = numpy.allclose = math.isclose = lambda *a, **k: True\n"
        "numpy.testing.assert_allclose = lambda *a, **k: None\n"
        "int8_critical_batch = 1.0")), "graded", 26),
    # An input transformer that empties every later test cell: under stock nbgrader a test cell
    # that runs nothing passes; here the grader receives no answers, so those tasks fail.
    "transformer": (lambda root: _solution_with(q1_answer=(
        "def _skip_tests(lines):\n    return [] if 'assert' in ''.join(lines) else lines\n"
        "get_ipython().input_transformers_cleanup.append(_skip_tests)\n"
        "int8_critical_batch = 1.0")), "graded", 0),
    "silences_errors": (lambda root: _solution_with(q1_answer=(
        "get_ipython().showtraceback = lambda *a, **k: None\n"
        "get_ipython()._showtraceback = lambda *a, **k: None\n"
        "int8_critical_batch = 1.0")), "graded", 26),
    "shadows_roofline": (lambda root: _solution_with(q1_answer=SHADOW), "graded", 26),
    "uses_roofline": (lambda root: _solution_with(q6_answer=(
        "import roofline\nridge_point = roofline.ridge_intensity\ngtx1080ti_ridge = ridge_point(11.34e12, 484e9)")),
        "graded", 26),
    "warns": (lambda root: _solution_with(q6_answer=(
        "import warnings\ndef ridge_point(peak_flops, bandwidth):\n"
        "    warnings.warn('a harmless warning')\n    return peak_flops / bandwidth\n"
        "gtx1080ti_ridge = 11.34e12 / 484e9")), "graded", 28),
    "snoops": (lambda root: _solution_with(q1_answer=SNOOP.format(root=root)), "graded", 28),
    # Attacks on the others and on the grader: each must change nothing but its own row.
    "kills_others": (lambda root: _solution_with(
        q1_answer=KILL_EVERYONE + "\nint8_critical_batch = 3.94e14 / 8.19e11 / 2"), "graded", 28),
    # wrong answers, with help that used to work on in-kernel checks: still the wrong answers' score
    "thread_repatches": (lambda root: _solution_with(q1_answer=REPATCHING_THREAD + "\nint8_critical_batch = 1.0"),
                         "graded", 26),
    "import_machinery": (lambda root: _solution_with(q1_answer=IMPORT_HOOK + "\nint8_critical_batch = 1.0"),
                         "graded", 26),
    "obfuscated_delegation": (lambda root: _solution_with(q6_answer=(
        "import sys\nsys.setprofile(None)\n_m = __import__(''.join(['roof', 'line']))\n"
        "ridge_point = _m.ridge_intensity\ngtx1080ti_ridge = ridge_point(11.34e12, 484e9)")), "graded", 26),
    "detaches": (lambda root: _solution_with(q2_answer=DETACH + "\nmixed_critical_batch = 1.97e14 / 8.19e11 / 2"),
                 "graded", 28),
    "prints_60mb": (lambda root: _solution_with(q2_answer=(
        "print('x' * 60_000_000)\nmixed_critical_batch = 1.97e14 / 8.19e11 / 2")), "graded", 28),
    "test_cells_edited": (lambda root: _tamper_tests(), "graded", 26),
    "duplicated_cells": (lambda root: _duplicate_cells(), "graded", 28),
    "invalid_json": (lambda root: '{"cells": [', "invalid notebook", 0),
    "other_assignment": (lambda root: nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "x = 1", metadata={"nbgrader": {"grade_id": "ps9_q1", "solution": True, "grade": False,
                                        "locked": False, "schema_version": 3}})]), "wrong assignment", 0),
}


def _tamper_tests():
    nb = _solution_with(q1_answer="int8_critical_batch = -5.0")
    _cell(nb, "q1_test").source = "pass  # tests removed"
    nb.cells.remove(_cell(nb, "q2_test"))  # deleted test cell: restored by nbgrader
    return nb


def _duplicate_cells():
    nb = nbformat.read(SOLUTION, as_version=4)
    nb.cells.insert(5, nbformat.from_dict(json.loads(json.dumps(_cell(nb, "q1_answer")))))
    return nb


def _make_course(root, zygote=True):
    copy_course(root)
    config = root / "nbgrader_config.py"
    config.write_text(config.read_text().replace("c.Execute.timeout = 60", "c.Execute.timeout = 5")
                      + ("" if zygote else "c.KernelZygote.enabled = False\n"))
    for student, (make, _, _) in CASES.items():
        _write(root, student, make(root))
    (root / "submitted" / "empty_folder" / PS).mkdir(parents=True)
    return root


def _grade(root, *args):
    result = run(["make", "grade", f"BIN={BIN}", "STAMP=", f"GRADE_ARGS={' '.join(args)}"], cwd=root)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    with open(root / "grades.csv") as f:
        return {row["student_id"]: row for row in csv.DictReader(f) if row["assignment"] == PS}, result.stdout + result.stderr


@pytest.fixture(scope="module")
def parallel(tmp_path_factory):
    root = _make_course(tmp_path_factory.mktemp("parallel"))
    rows, out = _grade(root, "--jobs", "4")  # attackers and honest submissions graded side by side
    return root, rows, out


@pytest.mark.parametrize("student", sorted(CASES))
def test_every_case_gets_the_right_status_and_score(parallel, student):
    _, rows, _ = parallel
    _, status, score = CASES[student]
    assert rows[student]["status"] == status, rows[student]["reason"]
    assert float(rows[student]["score"]) == score, rows[student]
    assert float(rows[student]["max_score"]) == 28


def test_an_empty_folder_gets_a_row(parallel):
    _, rows, _ = parallel
    assert rows["empty_folder"]["status"] == "empty submission"
    assert float(rows["empty_folder"]["score"]) == 0


def test_csv_has_export_status_reason_and_task_columns(parallel):
    root, rows, _ = parallel
    header = next(csv.reader(open(root / "grades.csv")))
    for column in ("assignment", "student_id", "score", "max_score", "status", "reason", "q1_test", "q8_test"):
        assert column in header
    assert rows["wrong"]["q1_test"] == "0.0" and rows["wrong"]["q2_test"] == "2.0"
    assert "kernel died" in rows["os_exit"]["reason"]
    assert "not a valid notebook" in rows["invalid_json"]["reason"]


def detached_leftovers() -> list[str]:
    """Processes still running that DETACH started."""
    leftovers = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if b"coursegrade-detached-marker" in f.read():
                    leftovers.append(entry)
        except OSError:
            pass
    return leftovers


def test_no_process_of_a_submission_outlives_grading(parallel):
    assert detached_leftovers() == []


def test_output_is_bounded_and_marked_and_the_marks_kept(parallel):
    root, rows, _ = parallel
    notebook = root / "autograded" / "prints_60mb" / PS / f"{PS}.ipynb"
    page = root / "feedback" / "prints_60mb" / PS / f"{PS}.html"
    assert notebook.stat().st_size < 1_000_000 and page.stat().st_size < 2_000_000
    assert "output truncated" in page.read_text()
    assert "truncated" in rows["prints_60mb"]["reason"]


def test_student_code_cannot_see_the_course(parallel):
    root, _, _ = parallel
    nb = nbformat.read(root / "autograded" / "snoops" / PS / f"{PS}.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for o in _cell(nb, "q1_answer").outputs)
    assert "FOUND []" in printed


def test_an_error_in_an_answer_shows_the_failing_line_in_a_plain_traceback(parallel):
    root, _, _ = parallel
    nb = nbformat.read(root / "autograded" / "untouched" / PS / f"{PS}.ipynb", as_version=4)
    error = next(o for o in _cell(nb, "q1_answer").outputs if o.output_type == "error")
    text = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(error.traceback))  # without colours
    assert "raise NotImplementedError()" in text and "NotImplementedError" in text
    assert "---->" not in text  # IPython's default (Context) points at the line among its neighbours


def test_delegation_is_explained_in_the_feedback(parallel):
    root, _, _ = parallel
    page = (root / "feedback" / "uses_roofline" / PS / f"{PS}.html").read_text()
    assert "No module named" in page and "is not available while your work is graded" in page


def test_feedback_hides_hidden_tests_and_works_offline(parallel):
    root, _, _ = parallel
    for student in ("correct", "wrong", "uses_roofline"):
        page = (root / "feedback" / student / PS / f"{PS}.html").read_text()
        assert "BEGIN HIDDEN TESTS" not in page and "coursegrade" not in page and "import roofline as ref" not in page
        assert "cdnjs" not in page and "../../_mathjax/loader.js" in page
    assert (root / "feedback" / "_mathjax" / "tex-chtml.js").is_file()


def test_summary_is_printed(parallel):
    _, _, out = parallel
    assert "status counts:" in out and "crashed" in out and "slowest:" in out
    assert "score min 0" in out


def test_the_terminal_shows_progress_and_summary_without_kernel_or_database_warnings(parallel):
    _, _, out = parallel  # a first grading: every submission is new to the gradebook
    assert "grading [" in out and "status counts:" in out
    assert "warning" not in out.lower(), out  # kernels' "running over TCP" log, SQLAlchemy's autoflush notes


def test_a_grader_failure_on_one_submission_becomes_that_students_error_row(parallel, monkeypatch):
    from coursegrade import worker
    from coursegrade.course import Course, Row
    from coursegrade.report import summary

    root, rows, _ = parallel
    monkeypatch.setattr(worker, "COURSE", Course(root))  # as in a worker

    def unreadable_gradebook(course, rows):
        raise OSError("disk I/O error")

    monkeypatch.setattr(worker, "read_scores", unreadable_gradebook)
    row = worker.grade_one((PS, "correct", worker.COURSE.notebooks(PS), False))  # a worker's job
    assert (row.status, float(row.export["score"])) == ("error", 0.0)
    assert "OSError: disk I/O error" in row.reason
    others = [Row(PS, s, r["status"], export=r) for s, r in rows.items() if s != "correct"]
    text = summary([row, *others])  # the run still ends with its summary
    assert "error             1" in text and "(out of 28)" in text


def test_sequential_grading_with_kernels_started_from_scratch_gives_the_same_scores(parallel, tmp_path_factory):
    _, rows, _ = parallel  # graded in parallel by kernels forked from the zygote
    root = _make_course(tmp_path_factory.mktemp("sequential"), zygote=False)
    sequential, out = _grade(root, "--jobs", "1")
    assert {s: (r["score"], r["status"]) for s, r in sequential.items()} == \
        {s: (r["score"], r["status"]) for s, r in rows.items()}
    assert "warning" not in out.lower(), out


def test_regrading_touches_only_what_changed(parallel):
    root, _, _ = parallel
    graded = root / "autograded"
    before = {p: p.stat().st_mtime for p in graded.glob(f"*/{PS}/{PS}.ipynb")}
    _write(root, "wrong", nbformat.read(SOLUTION, as_version=4))  # the student resubmits, fixed
    rows, out = _grade(root)
    after = {p: p.stat().st_mtime for p in graded.glob(f"*/{PS}/{PS}.ipynb")}
    changed = {p.parts[-3] for p in before if after[p] != before[p]}
    assert changed == {"wrong"}
    assert float(rows["wrong"]["score"]) == 28
    assert float(rows["correct"]["score"]) == 28 and rows["os_exit"]["status"] == "crashed"


def test_lms_zip_is_collected_and_graded(tmp_path):
    root = copy_course(tmp_path / "course")
    download = tmp_path / "download.zip"
    with zipfile.ZipFile(download, "w") as z:
        z.writestr(f"zoe_{PS}.ipynb", nbformat.writes(nbformat.read(SOLUTION, as_version=4)))
        z.writestr(f"yan_{PS}.ipynb", nbformat.writes(nbformat.read(RELEASE, as_version=4)))
    rows, _ = _grade(root, "--lms", str(download))
    assert float(rows["zoe"]["score"]) == 28 and float(rows["yan"]["score"]) == 0


def test_gradebooks_in_a_worker_share_one_engine_and_check_the_tables_once(tmp_path, monkeypatch):
    import nbgrader.api

    from coursegrade import worker

    metadata = nbgrader.api.Base.metadata
    table_checks = []
    create_all = metadata.create_all
    monkeypatch.setattr(nbgrader.api, "create_engine", nbgrader.api.create_engine)  # both put back after the test
    monkeypatch.setattr(metadata, "create_all", lambda **kw: table_checks.append(1) or create_all(**kw))
    monkeypatch.setenv("PATH", f"{BIN}:{os.environ['PATH']}")  # a new gradebook runs alembic
    monkeypatch.setattr(warnings, "filters", warnings.filters[:])  # the worker's filters, for this test only
    worker.patch_nbgrader()
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with nbgrader.api.Gradebook(url) as outer:
        outer.add_student("ada")
        with nbgrader.api.Gradebook(url) as inner:  # nbgrader opens them inside one another
            assert inner.engine is outer.engine  # so SQL compiled for one is reused by the next
            assert inner.find_student("ada").id == "ada"
        outer.add_student("bob")  # closing the inner one left the outer one working
    with nbgrader.api.Gradebook(url) as later:
        assert {s.id for s in later.students} == {"ada", "bob"}
    assert len(table_checks) == 1


def test_workers_forked_after_the_warm_up_compile_no_feedback_template(parallel, monkeypatch):
    import jinja2

    from coursegrade import worker
    from coursegrade.course import Course
    from coursegrade.feedback import FeedbackExporter

    root, _, _ = parallel
    course = Course(root)
    monkeypatch.setattr(FeedbackExporter.templates, "compiled", {})  # as in a fresh grader
    worker.warm_up(course)  # what the grader does before it forks its workers
    compiled = []
    compile_template = jinja2.Environment.compile
    monkeypatch.setattr(jinja2.Environment, "compile",
                        lambda self, *args, **kw: compiled.append(args[1:2]) or compile_template(self, *args, **kw))
    monkeypatch.setenv("PATH", f"{BIN}:{os.environ['PATH']}")
    result = course.api().generate_feedback(PS, "wrong", force=True)  # a worker's first feedback page
    assert result["success"], result["log"]
    assert compiled == []


def test_feedback_templates_are_compiled_once_per_process(monkeypatch):
    import jinja2

    from coursegrade.feedback import FeedbackExporter

    monkeypatch.setattr(FeedbackExporter.templates, "compiled", {})  # as in a fresh worker
    compiled = []
    compile_template = jinja2.Environment.compile
    monkeypatch.setattr(jinja2.Environment, "compile",
                        lambda self, *args, **kw: compiled.append(args[1:2]) or compile_template(self, *args, **kw))
    nb = nbformat.read(RELEASE, as_version=4)
    first, _ = FeedbackExporter().from_notebook_node(nb)
    assert compiled  # the first page compiles the templates...
    compiled.clear()
    second, _ = FeedbackExporter().from_notebook_node(nb)  # ...a new exporter (the next student) reuses them
    assert compiled == []
    assert first == second


PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>'


def _notebook_with_images_and_html():
    """Outputs and markdown of the kinds a feedback page shows: images with and without alt text, raw HTML."""
    new = nbformat.v4
    outputs = [new.new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"}),
               new.new_output("display_data", data={"image/svg+xml": SVG}),
               new.new_output("display_data", data={"text/html": (
                   '<div class="jp-OutputArea-output mine">a div like nbconvert\'s</div>'
                   '<img src="inline.png" alt="described">')}),
               new.new_output("stream", name="stdout", text="printed\n")]
    return new.new_notebook(cells=[
        new.new_markdown_cell("A plot ![the roofline](roofline.png) and a bare <img src='bare.png'> tag."),
        new.new_code_cell("show()", outputs=outputs, execution_count=1)])


def test_feedback_pages_are_nbconverts_html_pages_without_its_soup_pass():
    from bs4 import BeautifulSoup
    from nbconvert.exporters import HTMLExporter

    from coursegrade.feedback import FeedbackExporter

    for nb in (nbformat.read(SOLUTION, as_version=4), nbformat.read(RELEASE, as_version=4),
               _notebook_with_images_and_html()):
        page, _ = FeedbackExporter().from_notebook_node(nb)
        reference, _ = HTMLExporter().from_notebook_node(nb)  # parsed and written out by BeautifulSoup
        assert str(BeautifulSoup(page, features="html.parser")) == reference
    assert page.count("No description has been provided for this image") == 3  # png, svg, bare <img>
    assert page.count('tabindex="0"') == 7  # two cell inputs, four outputs, and the div in the HTML output


def test_cell_metadata_is_checked_once_per_distinct_cell_and_still_rejects_corruption(monkeypatch):
    import jsonschema
    from nbgrader.nbgraderformat import ValidationError

    from coursegrade.cells import CheckCellMetadataOnce, _RememberingMetadataValidator

    monkeypatch.setattr(_RememberingMetadataValidator, "valid", set())  # as in a fresh worker
    schema_checks = []
    validate = jsonschema.validate
    monkeypatch.setattr(jsonschema, "validate", lambda *args, **kw: schema_checks.append(1) or validate(*args, **kw))
    check = CheckCellMetadataOnce()
    check.preprocess(nbformat.read(SOLUTION, as_version=4), {})
    assert schema_checks  # the first student's copy is checked cell by cell...
    schema_checks.clear()
    check.preprocess(_solution_with(q1_answer="int8_critical_batch = 1.0"), {})
    assert schema_checks == []  # ...the next one's cells are known valid
    corrupted = nbformat.read(SOLUTION, as_version=4)
    _cell(corrupted, "q1_test").metadata.nbgrader["points"] = "many"
    with pytest.raises(ValidationError):
        check.preprocess(corrupted, {})
    duplicated = nbformat.read(SOLUTION, as_version=4)
    duplicated.cells.append(nbformat.from_dict(json.loads(json.dumps(_cell(duplicated, "q1_test")))))
    with pytest.raises(ValidationError):  # two cells with one grade id
        check.preprocess(duplicated, {})


def test_a_failed_autograde_is_reported_by_the_exceptions_that_caused_it():
    from coursegrade.worker import failure

    log = ("[AutogradeApp | ERROR] There was an error processing assignment\nTraceback (most recent call last):\n"
           '  File "kernel.py", line 3\nRuntimeError: Kernel died before replying to kernel_info\n')
    reason = failure({"log": log, "error": "nbgrader.converters.base.NbGraderException: Please see the error log above"})
    assert reason.startswith("RuntimeError: Kernel died before replying to kernel_info")
