"""Text glued into prose is shown as it is: it must not carry math or code markup.

``{glue:text}`` inserts a string verbatim, so ``$R$`` or a backquoted ``x * 2`` in a glued
sentence appears raw on the page. Sentences chosen by the code (for example from a live
measurement) can take a branch the last build did not; this test reads every branch.
"""

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((REPO / "chapters").glob("*.md"))
CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.S | re.M)
GLUE_CALLS = {"g", "glue"}


def _glued_strings(path: Path) -> list[str]:
    code = "\n\n".join(re.sub(r"^:.*$", "", m.group(1), flags=re.M) for m in CELL.finditer(path.read_text()))
    found = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") in GLUE_CALLS and len(node.args) > 1:
            found += [c.value for c in ast.walk(node.args[1]) if isinstance(c, ast.Constant) and isinstance(c.value, str)]
    return found


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_glued_text_has_no_markup(chapter):
    strings = _glued_strings(chapter)
    assert strings, f"{chapter.name} glues no text: has the glue helper been renamed?"
    assert [s for s in strings if "$" in s or "`" in s] == []
