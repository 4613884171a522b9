"""The instructor guide's planning table states each problem set's tasks and points as the solutions have them."""

import re
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
SETS = sorted(p.name for p in (REPO / "solutions").iterdir() if p.is_dir())


def _tasks_and_points(assignment: str) -> tuple[int, int]:
    nb = nbformat.read(REPO / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    headings = [re.match(r"## Task \d+: .*\((\d+) points?\)", c.source.lstrip())
                for c in nb.cells if c.cell_type == "markdown"]
    points = [int(h.group(1)) for h in headings if h]
    graded = sum(c.metadata.get("nbgrader", {}).get("points", 0) for c in nb.cells)
    assert sum(points) == graded, f"{assignment}: task headings add to {sum(points)}, the graded cells to {graded}"
    return len(points), graded


@pytest.mark.parametrize("assignment", SETS)
def test_the_planning_table_matches_the_solutions(assignment):
    guide = (REPO / "instructors.md").read_text(encoding="utf-8")
    row = re.search(rf"^\| `{assignment}` \| [^|]+ \| (\d+) \| (\d+) \|", guide, re.M)
    assert row, f"{assignment} has no row in the planning table"
    assert (int(row.group(1)), int(row.group(2))) == _tasks_and_points(assignment)
