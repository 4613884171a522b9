"""Visible self-checks that name a student's mistake without showing any answer.

A problem set's visible test cell may call ``_self_check(name, answer, diagnoses)``, where
``diagnoses`` maps a message ("you used the sparse peak: ...") to the *fingerprints* of
the wrong answer that mistake produces. The cell fails with that message when the
student's answer matches, and says nothing otherwise. A fingerprint is a salted hash of
the wrong value's position on a logarithmic grid of 400 steps per decade, so an answer
within about 1% of the wrong value matches (``exact=True``: the exact value, for
integers such as batch sizes, where one unit matters). The cell shows neither the wrong
value nor, from it, the right one. Hidden checks still decide the grade.

This is a guard against reading, not against search: a student who calls
``_self_check`` on many values can find a fingerprinted wrong answer, as any visible
check answers questions. The grading kernel cannot import this package, so each problem
set's set-up cell carries a copy of :data:`NOTEBOOK_SOURCE` (the tests keep the copies
identical); authors compute fingerprints with :func:`fingerprints`.
"""

from __future__ import annotations

import inspect

import numpy as np


# --- copied into each problem set's set-up cell (NOTEBOOK_SOURCE) ------------------------
def _fingerprint(name, x, shift=0, exact=False):
    """Salted hash of ``x``'s step on a log grid (400 per decade), moved by ``shift`` steps."""
    import hashlib
    import math
    if not math.isfinite(x):
        return ""
    key = repr(float(x)) if exact or x == 0 else f"{x > 0}{round(math.log10(abs(x)) * 400) + shift}"
    return hashlib.sha256(f"{name}|{key}".encode()).hexdigest()[:12]


def _self_check(name, answer, diagnoses, exact=False):
    """Fail with the message of the first known mistake ``answer`` matches (``diagnoses``: message -> fingerprints)."""
    try:
        values = [float(v) for v in np.ravel(np.asarray(answer, dtype=float))]
        shifts = (0,) if exact else (-1, 0, 1)
        found = [message for message, prints in diagnoses.items() if len(prints) == len(values) and all(
            p in {_fingerprint(name, v, s, exact) for s in shifts} for v, p in zip(values, prints))]
    except Exception:  # not numbers, or a kernel whose builtins were replaced: nothing to diagnose
        return
    if found:
        raise AssertionError(found[0])
# --- end of the copied part --------------------------------------------------------------


NOTEBOOK_SOURCE = inspect.getsource(_fingerprint) + "\n\n" + inspect.getsource(_self_check)


def fingerprints(name: str, wrong, exact: bool = False) -> list[str]:
    """The fingerprints of a known wrong answer (a number or an array) checked under ``name``."""
    values = np.ravel(np.asarray(wrong, dtype=float))
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError(f"wrong must be finite numbers; got {wrong!r}")
    return [_fingerprint(name, float(v), 0, exact) for v in values]
