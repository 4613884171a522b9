"""No number a chapter's code computes with is typed by hand in its prose.

A chapter's inputs (context lengths, batch sizes, tile sizes, limits) live in its code
cells and reach the prose through myst-nb ``glue``; typing one of them again in a
sentence, or inside inline math such as ``$B = 512$``, lets the two drift apart. This
test collects the numeric literals of every code cell and fails when the chapter's
prose, outside glue roles, display math, inline code and citations, states one of them.

Small integers (below 100) are left out: they are everywhere in ordinary prose ("two
phases", "8 bytes per element") and rarely a tuned input. Figure captions are checked too:
they are static text where glue cannot reach, so a figure states its inputs in its own
title, drawn by the code.
"""

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((REPO / "chapters").glob("*.md"))
CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.S | re.M)
HIDDEN_IN_PROSE = [
    re.compile(r"\$\$.*?\$\$", re.S),  # display math (formulas, not inputs)
    re.compile(r"\{[a-z:]+\}`[^`]*`"),  # roles: glue, func, cite, doc, numref, term
    re.compile(r"`[^`\n]*`"),  # inline code
    re.compile(r"https?://\S+"),
    re.compile(r"^:[^\n]*$", re.M),  # directive options (names, classes)
    re.compile(r"^\|[-| ]+\|$", re.M),  # table rules
]


def _code_and_prose(path: Path) -> tuple[str, str]:
    text = path.read_text(encoding="utf-8")
    text = text.split("\n---\n", 2)[-1] if text.startswith("---") else text  # front matter
    cells = [re.sub(r"^:.*$", "", m.group(1), flags=re.M) for m in CELL.finditer(text)]  # cell options
    code = "\n\n".join(cells)
    captions = re.findall(r"^:\s+caption:(.*)$", "\n".join(m.group(1) for m in CELL.finditer(text)), re.M)
    prose = CELL.sub("", text) + "\n" + "\n".join(captions)
    for pattern in HIDDEN_IN_PROSE:
        prose = pattern.sub(" ", prose)
    return code, prose


def _spellings(value) -> set[str]:
    """The ways prose might type ``value``: 16384, 16,384, 16k; 0.03."""
    if isinstance(value, bool):
        return set()
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 100):
        n = int(value)
        if abs(n) < 100:
            return set()
        forms = {str(n), f"{n:,}"}
        for unit in (1000, 1024):
            if n % unit == 0 and n >= 1000:
                forms.add(f"{n // unit}k")
        return forms
    if isinstance(value, float) and "e" not in repr(value):
        return {repr(value)}
    return set()


def _code_numbers(code: str) -> set[str]:
    tree = ast.parse(code)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            found |= _spellings(node.value)
        elif (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow) and isinstance(node.left, ast.Constant)
              and isinstance(node.right, ast.Constant) and isinstance(node.left.value, int)
              and isinstance(node.right.value, int)):
            found |= _spellings(node.left.value ** node.right.value)  # 2**14 is 16384
    return found


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_prose_does_not_retype_the_numbers_its_code_uses(path):
    code, prose = _code_and_prose(path)
    typed = []
    for spelling in sorted(_code_numbers(code)):
        for match in re.finditer(rf"(?<![\w.,]){re.escape(spelling)}(?![\w]|[.,]\d)", prose):
            line = prose[:match.start()].count("\n")
            context = prose.splitlines()[line].strip()
            typed.append(f"{spelling!r} in: {context[:160]}")
    assert not typed, "typed by hand in the prose, computed in the code (glue it):\n" + "\n".join(typed)


def test_the_check_catches_a_typed_input_and_spares_glue_formulas_and_small_numbers(tmp_path):
    page = tmp_path / "chapter.md"
    page.write_text("# A chapter\n\n```{code-cell} ipython3\n:tags: [remove-cell]\n\nT, chunks = 16384, [2**k for k in range(6, 8)]\n"
                    "g('t', f'{T:,}')\n```\n\nA prompt of 16,384 tokens, or 16k, in chunks; glued: {glue:text}`t`; inline math $T = 16384$; "
                    "two phases; `16384` in code.\n\n$$T = 16384$$\n", encoding="utf-8")
    code, prose = _code_and_prose(page)
    numbers = _code_numbers(code)
    captioned = tmp_path / "captioned.md"
    captioned.write_text("```{code-cell} ipython3\n:mystnb:\n:  figure:\n:    caption: Time at 4096 tokens.\n\nT = 4096\n```\n",
                         encoding="utf-8")
    assert "Time at 4096 tokens." in _code_and_prose(captioned)[1]  # captions are prose too
    assert {"16384", "16,384", "16k"} <= numbers and "64" not in numbers  # 2**6 is below 100
    typed = [s for s in numbers if re.search(rf"(?<![\w.,]){re.escape(s)}(?![\w]|[.,]\d)", prose)]
    assert sorted(typed) == ["16,384", "16384", "16k"]  # the inline-math one is caught, the formula block is not
    assert prose.count("16384") == 1
