"""Helpers for the problem sets' hidden tests.

Two guarantees a hidden test relies on:

- **Comparisons a submission cannot monkeypatch.** Values are compared with plain
  float arithmetic (``abs(a - b) <= rel * abs(b)`` written out with operators on
  the built-in ``float`` type), never through ``numpy.isclose``, ``math.isclose``
  or ``numpy.testing``, which a submission could replace.
- **No credit for delegating to the reference.** Problem sets are solved from first
  principles. :meth:`Checker.no_delegation` fails a task when the cell that defines
  its answer mentions ``roofline`` or uses a name bound to something from the
  package, and :meth:`Checker.function` fails it when calling the student's function
  enters the package's code. The message says why.

A hidden test first drops any ``roofline`` modules from ``sys.modules`` (so a
submission cannot have patched them), then imports the reference afresh.
"""

from __future__ import annotations

import ast
import os
import re
import sys
import types

import numpy as np

_FLOAT = type(0.0)  # the real float type, whatever a submission rebinds `float` to
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_THIS_FILE = os.path.abspath(__file__)
_TEST_MARKERS = ("BEGIN HIDDEN TESTS", "roofline.grading")


class DelegationError(AssertionError):
    """The answer was computed by the roofline package, not by the student."""


def _is_from_roofline(obj) -> bool:
    if isinstance(obj, types.ModuleType):
        name = obj.__name__
    else:
        name = getattr(obj, "__module__", None) or ""
        if not isinstance(name, str):
            return False
    return name == "roofline" or name.startswith("roofline.")


def _names_used(source: str) -> set[str]:
    """Identifiers a cell reads, by AST where it parses, by regex otherwise (magics)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", source))
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}


def _defines(source: str, name: str) -> bool:
    """Whether a cell binds ``name`` (assignment, def, class, import)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return re.search(rf"^\s*(def\s+{name}\b|{name}\s*=)", source, re.M) is not None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return True
        if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Store):
            return True
        if isinstance(node, ast.alias) and (node.asname or node.name.split(".")[0]) == name:
            return True
    return False


def delegation_reason(source: str, namespace: dict) -> str | None:
    """Why ``source`` counts as using the roofline package, or ``None`` if it does not."""
    if re.search(r"roofline", source):
        return "it mentions the roofline package"
    for name in sorted(_names_used(source)):
        if name in namespace and _is_from_roofline(namespace[name]):
            return f"it uses `{name}`, which comes from the roofline package"
    return None


def _floats(value, what: str) -> list:
    """``value`` (number or array-like of numbers) as a flat list of built-in floats."""
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError):
        raw = np.asarray(None)
    if raw.dtype.kind not in "iuf":
        kind = "a boolean" if raw.dtype.kind == "b" else repr(value)
        raise AssertionError(f"{what} should be a number (or an array of numbers); got {kind}.")
    return [_FLOAT(x) for x in raw.astype(np.float64).ravel().tolist()]


def _close(a, b, rel: float, abs_tol: float) -> bool:
    diff = a - b
    if diff < 0:
        diff = -diff
    scale = b if b >= 0 else -b
    return diff <= rel * scale + abs_tol  # False for NaN


class Checker:
    """Checks one problem set's answers inside the kernel that ran the submission.

    ``shell`` is the IPython shell (``get_ipython()``); its ``user_ns`` and input
    history locate the cell that defined each answer.
    """

    def __init__(self, shell):
        if shell is None:
            raise ValueError("shell must be the running IPython shell (get_ipython()); got None")
        self.namespace = shell.user_ns
        history = self.namespace.get("In") or getattr(shell.history_manager, "input_hist_raw", [])
        self.student_cells = [
            cell for cell in history
            if isinstance(cell, str) and not any(marker in cell for marker in _TEST_MARKERS)
        ]

    def no_delegation(self, *names: str) -> None:
        """Fail (``DelegationError``) if the cell defining any of ``names`` used roofline."""
        for name in names:
            for cell in reversed(self.student_cells):
                if _defines(cell, name):
                    reason = delegation_reason(cell, self.namespace)
                    if reason:
                        raise DelegationError(
                            f"No credit for `{name}`: the cell that defines it uses the course's "
                            f"reference package ({reason}). Problem sets are solved from first "
                            "principles; write the formula yourself."
                        )
                    break

    def close(self, answer, expected, what: str, rel: float = 1e-6, abs_tol: float = 0.0, hint: str = "") -> None:
        """Fail unless ``answer`` matches ``expected`` elementwise within ``rel`` (relative)."""
        got, want = _floats(answer, what), _floats(expected, "the reference")
        if len(got) == 1 and len(want) > 1:
            got = got * len(want)
        if len(got) != len(want):
            raise AssertionError(f"{what} has {len(got)} values; {len(want)} were expected.")
        for g, w in zip(got, want):
            if not _close(g, w, rel, abs_tol):
                raise AssertionError(f"{what} = {g:.6g} is not correct (relative tolerance {rel:g}). {hint}".strip())

    def function(self, fn, reference, cases, what: str, rel: float = 1e-6, hint: str = "") -> None:
        """Call ``fn`` and ``reference`` on every argument tuple in ``cases`` and compare.

        Fails with ``DelegationError`` if a call into ``fn`` runs code of the roofline package.
        """
        if not callable(fn):
            raise AssertionError(f"{what} should be a function; got {type(fn).__name__}.")
        self.no_delegation(getattr(fn, "__name__", what))
        for args in cases:
            result = self._call_watched(fn, args, what)
            self.close(result, reference(*args), f"{what}{_show(args)}", rel=rel, hint=hint)

    @staticmethod
    def _call_watched(fn, args, what):
        entered = []

        def watch(frame, event, arg):
            path = frame.f_code.co_filename
            if event == "call" and path.startswith(_PACKAGE_DIR) and path != _THIS_FILE:
                entered.append(frame.f_code.co_name)

        previous = sys.getprofile()
        sys.setprofile(watch)
        try:
            result = fn(*args)
        except Exception as error:  # the student's bug, reported in plain words
            raise AssertionError(f"{what}{_show(args)} raised {type(error).__name__}: {error}") from None
        finally:
            sys.setprofile(previous)
        if entered:
            raise DelegationError(
                f"No credit for {what}: calling it runs the course's reference package "
                f"(roofline function `{entered[0]}`). Write the formula yourself."
            )
        return result


def _show(args) -> str:
    parts = []
    for a in args:
        if isinstance(a, np.ndarray):
            parts.append(f"array of {a.size}")
        else:
            parts.append(repr(a))
    return "(" + ", ".join(parts) + ")"
