"""Feedback pages: no hidden tests, templates compiled once per process, MathJax served offline."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

from jinja2 import BytecodeCache
from nbconvert.exporters import HTMLExporter, TemplateExporter
from nbconvert.filters.highlight import Highlight2HTML, _pygments_highlight
from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter
from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader.utils import is_grade, is_solution


_HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS[ \t]*\n?", re.S | re.M)


class HideHiddenTests(NbGraderPreprocessor):
    """For feedback: drop hidden test code, and tracebacks that would quote it."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and is_grade(cell) and not is_solution(cell):
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


_CDN_MATHJAX = "https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/latest.js?config=TeX-AMS_CHTML-full,Safe"


def offline_feedback(folder: Path) -> None:
    """Make feedback pages render offline: a local MathJax 3 in feedback/_mathjax, loaded by each page.

    nbgrader's feedback template loads MathJax 2 from a CDN whatever the exporter's
    ``mathjax_url`` says, so the pages are rewritten after they are generated.
    """
    import importlib.util

    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if not folder.is_dir():
        return
    target = folder / "_mathjax"
    if spec is not None and not (target / "tex-chtml.js").is_file():
        source = Path(spec.origin).parent / "static" / "mathjax"
        fonts = Path("output") / "chtml" / "fonts" / "woff-v2"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(source / "tex-chtml.js", target / "tex-chtml.js")
        shutil.copytree(source / fonts, target / fonts, dirs_exist_ok=True)
        shutil.copy(Path(__file__).with_name("mathjax_loader.js"), target / "loader.js")
    for page in folder.glob("*/*/*.html"):
        text = page.read_text(encoding="utf-8")
        if _CDN_MATHJAX in text:
            page.write_text(text.replace(_CDN_MATHJAX, "../../_mathjax/loader.js"), encoding="utf-8")
