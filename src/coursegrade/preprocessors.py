"""nbgrader preprocessors and a kernel manager that make autograding robust.

Configured in ``nbgrader_config.py`` so that every nbgrader command uses them:

- :class:`SandboxedKernelManager` starts each kernel through :mod:`coursegrade.sandbox`
  (course files hidden, unprivileged user, memory cap), forked from the
  :mod:`coursegrade.zygote` when ``make grade`` runs one.
- :class:`GuardedExecute` (replaces nbgrader's ``Execute``) installs
  :mod:`coursegrade.guard` at kernel start and resets the kernel before every
  test cell; a kernel that dies (``os._exit``, memory) no longer aborts the
  notebook: the cell gets an error and the remaining cells are marked as not run.
- :class:`WarningsKeepMarks` turns stderr text in passing test cells into stdout,
  so a harmless warning does not cost the points.
- :class:`RecordGradingEvents` stores what happened (tampering reset, kernel death,
  timeouts) in the notebook's metadata for the grading report.
- :class:`HideHiddenTests` (feedback) removes hidden test code and tracebacks.
- :class:`DropDuplicateIds` fixes nbgrader's DeduplicateIds, whose emptied metadata
  makes ``OverwriteCells.add_missing_cells`` crash on a notebook with duplicated cells.
- :class:`CheckCellMetadataOnce` is nbgrader's CheckCellMetadata remembering which cell
  metadata it already found valid, instead of re-checking the JSON schema for every cell.
- :class:`FeedbackExporter` (feedback) is nbconvert's HTML exporter with the compiled
  templates kept in memory, so a process writing many students' feedback compiles them once,
  and without its BeautifulSoup pass over every page.
"""

from __future__ import annotations

import compileall
import functools
import html
import json
import re
import traceback
import uuid
from pathlib import Path

from jinja2 import BytecodeCache
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient.exceptions import DeadKernelError
from nbconvert.exporters import HTMLExporter, TemplateExporter
from nbconvert.filters.highlight import Highlight2HTML, _pygments_highlight
from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter
from nbformat.v4 import new_output
from nbgrader.nbgraderformat import MetadataValidator, ValidationError
from nbgrader.preprocessors import CheckCellMetadata, DeduplicateIds, Execute, NbGraderPreprocessor
from nbgrader.utils import is_grade, is_solution
from traitlets import Bool, CaselessStrEnum, Integer, List, Unicode

from . import sandbox, zygote

GUARD_INSTALL = "__import__('coursegrade.guard', fromlist=['install']).install(get_ipython())"
GUARD_RESET = "__import__('coursegrade.guard', fromlist=['reset']).reset(get_ipython())"
EVENTS_KEY = "coursegrade"


def _is_test_cell(cell) -> bool:
    return cell.cell_type == "code" and is_grade(cell) and not is_solution(cell)


class SandboxedKernelManager(AsyncKernelManager):
    """Starts the kernel inside :mod:`coursegrade.sandbox` when it is enabled and available."""

    enabled = Bool(True, help="Run kernels in the sandbox (mount namespace, unprivileged user).").tag(config=True)
    course_root = Unicode("", help="Folder to hide from student code (the course root).").tag(config=True)
    keep = List(Unicode(), help="Paths under hidden folders that kernels need (read-only).").tag(config=True)
    memory_bytes = Integer(4 * 2**30, help="Address-space limit of a kernel, bytes.").tag(config=True)

    def sandbox_settings(self) -> dict | None:
        """What the kernel's sandbox hides and keeps (see :func:`coursegrade.sandbox.plan`); None when disabled."""
        if not self.enabled:
            return None
        if not self.course_root:
            raise ValueError("SandboxedKernelManager.course_root must be set when the sandbox is enabled")
        if not sandbox.available():
            raise RuntimeError(
                "the grading sandbox needs mount namespaces (`unshare`); none could be created here. "
                "Set c.SandboxedKernelManager.enabled = False to grade without it (student code can "
                "then read the course files)."
            )
        keep = [Path(p) for p in self.keep] + _package_paths()
        return sandbox.plan(Path(self.course_root), keep, self.memory_bytes)

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        if zygote.address():  # a forked kernel enters the sandbox itself (ForkedProvisioner)
            return cmd
        settings = self.sandbox_settings()
        return cmd if settings is None else sandbox.wrap(cmd, settings)

    async def _async_pre_start_kernel(self, **kw):
        if self.provisioner is None and zygote.address():
            self.kernel_id = self.kernel_id or kw.pop("kernel_id", str(uuid.uuid4()))
            self.provisioner = zygote.ForkedProvisioner(kernel_id=self.kernel_id, kernel_spec=self.kernel_spec,
                                                        parent=self)
        return await super()._async_pre_start_kernel(**kw)


@functools.cache
def _package_paths() -> list[Path]:
    """Where ``roofline`` and ``coursegrade`` are imported from (src/ for an editable install).

    Their bytecode is compiled here, once per process: kernels see these folders
    read-only, and would otherwise compile the package each time a test re-imports it.
    """
    import roofline

    packages = [Path(roofline.__file__).parent, Path(__file__).parent]
    for package in packages:
        compileall.compile_dir(package, quiet=2)
    return [package.parent for package in packages]


class GuardedExecute(Execute):
    """nbgrader's Execute, hardened against kernels that are tampered with or die."""

    kernel_manager_class = SandboxedKernelManager
    traceback_mode = CaselessStrEnum(
        ("Plain", "Context", "Verbose", "Minimal"), "Plain",
        help="IPython's traceback mode (%xmode) in grading kernels. Plain quotes the failing line of each "
             "frame; IPython's default, Context, also quotes and highlights the lines around it, which "
             "costs several times the CPU on a notebook full of errors.").tag(config=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The kernel app's own warnings (one per kernel: "running over TCP without encryption")
        # would fill the instructor's terminal; its errors still show.
        self.extra_arguments = [*self.extra_arguments, f"--IPKernelApp.exec_lines={GUARD_INSTALL}",
                                f"--InteractiveShell.xmode={self.traceback_mode}", "--IPKernelApp.log_level=ERROR"]

    def preprocess(self, nb, resources=None, km=None):
        self._dead = False
        self._events = {"tampering": [], "kernel_died_in_cell": None, "timeouts": []}
        nb, resources = super().preprocess(nb, resources, km=km)
        resources.setdefault(EVENTS_KEY, {}).update(self._events)
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        if self._dead:
            cell.outputs = [_error("NotRun", "not run: the kernel died in an earlier cell")]
            return cell, resources
        try:
            if _is_test_cell(cell):
                changed = run_sync(self._reset)()
                if changed:
                    self._events["tampering"].append({"cell": cell.metadata.nbgrader.get("grade_id"), "reset": changed})
            cell, resources = super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._dead = True
            self._events["kernel_died_in_cell"] = index
            cell.outputs.append(_error(
                "DeadKernelError",
                "the kernel died while running this cell (os._exit, a crash, or memory exhausted); "
                "later cells were not run"))
            return cell, resources
        if any(o.output_type == "error" and o.get("ename") == "CellTimeoutError" for o in cell.outputs):
            self._events["timeouts"].append(index)
        return cell, resources

    async def _reset(self) -> str:
        """Undo tampering through user_expressions (not subject to input transformers)."""
        msg_id = self.kc.execute("", silent=True, store_history=False, user_expressions={"guard": GUARD_RESET})
        reply = await self.async_wait_for_reply(msg_id)
        result = (reply or {}).get("content", {}).get("user_expressions", {}).get("guard", {})
        if result.get("status") != "ok":
            return f"the guard could not run ({result.get('ename', 'no reply')}: {result.get('evalue', '')})"
        text = result.get("data", {}).get("text/plain", "''")
        return text.strip("'\"")


def _error(ename: str, evalue: str):
    return new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


class DropDuplicateIds(DeduplicateIds):
    """Like DeduplicateIds (the last copy of a cell keeps its id), removing the metadata entirely."""

    def preprocess_cell(self, cell, resources, index):
        cell, resources = super().preprocess_cell(cell, resources, index)
        if cell.metadata.get("nbgrader") == {}:
            del cell.metadata["nbgrader"]
        return cell, resources


class _RememberingMetadataValidator(MetadataValidator):
    """nbgrader's cell-metadata validator, skipping cells it already found valid in this process.

    Validity depends only on the cell's type and nbgrader metadata, which are the same in
    nearly every student's copy; nbgrader re-checks its JSON schema for every cell, which
    costs about as much as the rest of a notebook's sanitising.
    """

    valid = set()  # (cell type, nbgrader metadata as JSON) found valid

    def validate_cell(self, cell):
        key = (cell.cell_type, json.dumps(cell.metadata.get("nbgrader"), sort_keys=True))
        if key not in self.valid:
            super().validate_cell(cell)
            self.valid.add(key)


class CheckCellMetadataOnce(CheckCellMetadata):
    """nbgrader's CheckCellMetadata, validating each distinct cell metadata once per process."""

    def preprocess(self, nb, resources):
        try:
            _RememberingMetadataValidator().validate_nb(nb)
        except ValidationError:
            self.log.error(traceback.format_exc())
            raise ValidationError("Notebook failed to validate; the nbgrader metadata may be corrupted.")
        return nb, resources


class WarningsKeepMarks(NbGraderPreprocessor):
    """In test cells without an error, show stderr text as stdout so it costs no points."""

    def preprocess_cell(self, cell, resources, index):
        if _is_test_cell(cell) and not any(o.output_type == "error" for o in cell.outputs):
            for output in cell.outputs:
                if output.output_type == "stream" and output.name == "stderr":
                    output.name = "stdout"
        return cell, resources


class RecordGradingEvents(NbGraderPreprocessor):
    """Write the events GuardedExecute collected into the notebook metadata."""

    def preprocess(self, nb, resources):
        nb.metadata[EVENTS_KEY] = resources.get(EVENTS_KEY, {})
        return nb, resources


_HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS[ \t]*\n?", re.S | re.M)


class HideHiddenTests(NbGraderPreprocessor):
    """For feedback: drop hidden test code, and tracebacks that would quote it."""

    def preprocess_cell(self, cell, resources, index):
        if _is_test_cell(cell):
            cell.source = _HIDDEN.sub("# (hidden tests)\n", cell.source)
            for output in cell.outputs:
                if output.output_type == "error":
                    output.traceback = [f"{output.ename}: {output.evalue}"]
        return cell, resources


class _TemplateCache(BytecodeCache):
    """Compiled Jinja templates kept in memory for the life of the process."""

    def __init__(self):
        self.compiled = {}

    def load_bytecode(self, bucket):
        if bucket.key in self.compiled:
            bucket.bytecode_from_string(self.compiled[bucket.key])

    def dump_bytecode(self, bucket):
        self.compiled[bucket.key] = bucket.bytecode_to_string()


class _Highlighter(Highlight2HTML):
    """Highlight2HTML that makes pygments' HtmlFormatter once per language and page, not once
    per cell (each one builds a style sheet: 5% of a grading worker's time)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._formatters = {}

    def __call__(self, source, language=None, metadata=None):
        from pygments.formatters import HtmlFormatter

        language = language or self.pygments_lexer
        if language not in self._formatters:
            self._formatters[language] = HtmlFormatter(cssclass=html.escape(f" highlight hl-{language}"),
                                                       **self.extra_formatter_options)
        return _pygments_highlight(source or " ", self._formatters[language], language, metadata)


# HTMLExporter's accessibility edits, made on the page's text (see FeedbackExporter).
_IMAGE_WITHOUT_ALT = re.compile(r"<img\b(?![^>]*\salt\s*=)([^>]*?)\s*(/?)>", re.I)
_FOCUSABLE = re.compile(r'(<div\b[^>]*\sclass="(?:[^"]*\s)?(?:jp-Cell-inputWrapper|jp-OutputArea-output)(?:\s[^"]*)?"[^>]*?)\s*>')
_NO_ALT_TEXT = "No description has been provided for this image"


class FeedbackExporter(HTMLExporter):
    """HTMLExporter for feedback pages: templates compiled once per process, no BeautifulSoup pass.

    HTMLExporter parses and re-writes every page with BeautifulSoup (a fifth of a grading
    worker's time) to add alternative text to images that have none and ``tabindex`` to
    cell inputs and outputs; here the same attributes are added to the rendered text.
    """

    templates = _TemplateCache()

    def _create_environment(self):
        environment = super()._create_environment()
        environment.bytecode_cache = self.templates
        return environment

    def from_notebook_node(self, nb, resources=None, **kw):
        # HTMLExporter.from_notebook_node up to its BeautifulSoup pass (nbconvert 7)
        language = nb.metadata.get("language_info", {})
        lexer = language.get("pygments_lexer", language.get("name", None))
        highlight_code = self.filters.get("highlight_code", _Highlighter(pygments_lexer=lexer, parent=self))
        resources = self._init_resources(resources)
        filter_data_type = WidgetsDataTypeFilter(notebook_metadata=self._nb_metadata, parent=self, resources=resources)
        self.register_filter("highlight_code", highlight_code)
        self.register_filter("filter_data_type", filter_data_type)
        html, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
        html, missing_alt = _IMAGE_WITHOUT_ALT.subn(rf'<img\1 alt="{_NO_ALT_TEXT}"\2>', html)
        if missing_alt:
            self.log.warning("Alternative text is missing on %s image(s).", missing_alt)
        return _FOCUSABLE.sub(r'\1 tabindex="0">', html), resources
