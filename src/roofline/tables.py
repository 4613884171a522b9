"""The one loader of the package's data files (``src/roofline/data``): CSV and JSON tables.

Facts (chips, models, measurements, trend points) live in those files, each row with its
source; modules read them here and never type a figure themselves.
"""

from __future__ import annotations

import csv
import json
from importlib import resources


def _open(path: str):
    return resources.files("roofline").joinpath("data", path).open(encoding="utf-8")


def read_csv(path: str) -> list[dict]:
    """Rows of ``data/<path>`` as dicts of strings (column name -> cell)."""
    with _open(path) as f:
        return list(csv.DictReader(f))


def read_json(path: str):
    """The parsed contents of ``data/<path>``."""
    with _open(path) as f:
        return json.load(f)
