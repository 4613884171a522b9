"""Execution for grading: sandboxed kernels, dead kernels that do not abort, bounded output.

- :class:`SandboxedExecute` (replaces nbgrader's ``Execute``) runs the notebook in a
  :class:`coursegrade.kernels.SandboxedKernelManager` kernel. A kernel that dies
  (``os._exit``, memory) no longer aborts the notebook: the cell gets an error and the
  remaining cells are marked as not run. Each cell keeps at most ``max_output_chars``
  of output, with a visible note where the rest was dropped, so a submission that
  prints megabytes keeps its marks and its notebook and feedback stay small.
- :class:`RecordGradingEvents` writes what happened (kernel death, timeouts) into the
  notebook's metadata for the grading report.
"""

from __future__ import annotations

from nbclient.exceptions import DeadKernelError
from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import CaselessStrEnum, Integer

from . import collector
from .kernels import SandboxedKernelManager

EVENTS_KEY = "coursegrade"


class SandboxedExecute(Execute):
    """nbgrader's Execute in sandboxed kernels, surviving kernel death, with bounded output."""

    kernel_manager_class = SandboxedKernelManager
    traceback_mode = CaselessStrEnum(
        ("Plain", "Context", "Verbose", "Minimal"), "Plain",
        help="IPython's traceback mode (%xmode) in grading kernels. Plain quotes the failing line of each "
             "frame; IPython's default, Context, also quotes and highlights the lines around it, which "
             "costs several times the CPU on a notebook full of errors.").tag(config=True)
    max_output_chars = Integer(100_000, help="Characters of output kept per cell (text, data and tracebacks); "
                                             "the rest is dropped with a note.").tag(config=True)
    max_answer_chars = Integer(8_000_000, help="Largest answers output a test cell may send to the grader.").tag(config=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The kernel app's own warnings (one per kernel) would fill the instructor's terminal; errors still show.
        self.extra_arguments = [*self.extra_arguments, f"--InteractiveShell.xmode={self.traceback_mode}",
                                "--IPKernelApp.log_level=ERROR"]

    def preprocess(self, nb, resources=None, km=None):
        self._dead = False
        self._kept = {}  # cell index -> characters of output kept
        self._events = {"kernel_died_in_cell": None, "timeouts": [], "truncated": []}
        nb, resources = super().preprocess(nb, resources, km=km)
        resources.setdefault(EVENTS_KEY, {}).update(self._events)
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        if self._dead:
            cell.outputs = [error_output("NotRun", "not run: the kernel died in an earlier cell")]
            return cell, resources
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._dead = True
            self._events["kernel_died_in_cell"] = index
            cell.outputs.append(error_output(
                "DeadKernelError",
                "the kernel died while running this cell (os._exit, a crash, or memory exhausted); "
                "later cells were not run"))
            return cell, resources
        if any(o.output_type == "error" and o.get("ename") == "CellTimeoutError" for o in cell.outputs):
            self._events["timeouts"].append(index)
        return cell, resources

    def output(self, outs, msg, display_id, cell_index):
        """Keep an output only while the cell's outputs stay within ``max_output_chars``."""
        content, msg_type = msg["content"], msg["msg_type"]
        if msg_type == "display_data" and collector.MIME in content.get("data", {}):  # the answers: own limit
            return super().output(outs, msg, display_id, cell_index) if _size(msg_type, content) <= \
                self.max_answer_chars else None
        kept = self._kept.get(cell_index, 0)
        self._kept[cell_index] = kept + _size(msg_type, content)
        if self._kept[cell_index] <= self.max_output_chars:
            return super().output(outs, msg, display_id, cell_index)
        if kept <= self.max_output_chars:
            self._events["truncated"].append(cell_index)
            outs.append(new_output("stream", name="stdout", text=(
                f"\n[output truncated: the grader keeps the first {self.max_output_chars:,} characters "
                "of a cell's output]\n")))
        if msg_type != "error":
            return None
        content["evalue"] = str(content.get("evalue", ""))[:500]  # an error still counts: kept, shortened
        content["traceback"] = [f"{content.get('ename', 'Error')}: {content['evalue']}"]
        return super().output(outs, msg, display_id, cell_index)


def _size(msg_type: str, content: dict) -> int:
    if msg_type == "stream":
        return len(content.get("text", ""))
    if msg_type == "error":
        return len(content.get("evalue", "")) + sum(len(line) for line in content.get("traceback", []))
    return sum(len(str(value)) for value in content.get("data", {}).values())


def error_output(ename: str, evalue: str):
    """An error output as nbgrader scores it (a failed cell), with a one-line traceback."""
    return new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


class RecordGradingEvents(NbGraderPreprocessor):
    """Write the events SandboxedExecute collected into the notebook metadata."""

    def preprocess(self, nb, resources):
        nb.metadata[EVENTS_KEY] = resources.get(EVENTS_KEY, {})
        return nb, resources
