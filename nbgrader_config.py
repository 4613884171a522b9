"""nbgrader configuration for the course (run nbgrader from this folder, or use `make`)."""

import os

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (
    AssignLatePenalties,
    ClearOutput,
    GetGrades,
    IgnorePattern,
    LimitOutput,
    OverwriteCells,
    OverwriteKernelspec,
    SaveAutoGrades,
)

from coursegrade.cells import CheckCellMetadataOnce, DropDuplicateIds
from coursegrade.execute import RecordGradingEvents, SandboxedExecute
from coursegrade.feedback import FeedbackExporter, HideHiddenTests
from coursegrade.verdicts import CollectAnswers, JudgeAnswers

c = get_config()  # noqa: F821 (provided by nbgrader)
root = os.path.dirname(os.path.abspath(__file__))

c.CourseDirectory.root = root
c.CourseDirectory.course_id = "roofline-course"
# Folder names under the root: authored notebooks (with solutions and hidden tests)
# are the nbgrader "source"; the student versions are the "release".
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
# Parallel graders write to one SQLite file: wait for its lock instead of failing.
c.CourseDirectory.db_url = f"sqlite:///{os.path.join(root, 'gradebook.db')}?timeout=120"

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# An infinite loop in a submission is interrupted after this many seconds per cell.
c.Execute.timeout = 60

# Autograding, hardened (see src/coursegrade/): each kernel runs alone in a sandbox
# (its own namespaces and user, no course files, no network, resource limits); a test
# cell's hidden checks never enter it: the kernel only reports the answers they need
# (CollectAnswers) and the grader judges them (JudgeAnswers) before nbgrader records the
# score. A dead kernel does not abort the notebook; output is bounded per cell.
# The cell metadata is checked once, before execution (which cannot change it);
# nbgrader's default checks it again afterwards. Each distinct cell metadata is
# checked once per grading process (CheckCellMetadataOnce).
c.Autograde.sanitize_preprocessors = [
    ClearOutput,
    DropDuplicateIds,
    OverwriteKernelspec,
    OverwriteCells,
    CheckCellMetadataOnce,
]
c.Autograde.autograde_preprocessors = [
    CollectAnswers,
    SandboxedExecute,
    JudgeAnswers,
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    SaveAutoGrades,
    AssignLatePenalties,
    RecordGradingEvents,
]
# nbconvert checks the whole notebook against its schema after every preprocessor (17
# times per submission here); once, after the last one, still stops a broken notebook.
c.Exporter.optimistic_validation = True
# A deleted or edited test cell is put back from the gradebook and graded.
c.OverwriteCells.add_missing_cells = True
# Kernels see the system, Python and its environment (.venv) read-only, nothing else of
# the course: the `roofline` package (src/) cannot be imported while grading.
c.SandboxedKernelManager.memory_bytes = 4 * 2**30
# `make grade` forks every kernel from one process that has already imported these
# (and IPython's own modules), instead of paying about a second of imports per notebook.
c.KernelZygote.preload = ["numpy", "numpy.testing"]

# Feedback shows which checks failed and why, never the hidden test code.
c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]
c.GenerateFeedback.exporter_class = FeedbackExporter
