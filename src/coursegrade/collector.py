"""What runs in the grading kernel: collect a test cell's answers as plain data.

A hidden test cell never runs its checks in the student's kernel. The grader replaces
its hidden part with this module's source and one call to :func:`publish`, which looks
up the answers the checks need (values, and a function's results on the check's
inputs) and publishes them as one JSON output of type :data:`MIME`. The grader then
compares them with the reference (:mod:`coursegrade.checks`). Nothing here knows an
expected value, so a kernel that is tampered with can only misreport its own answers.

The same plain-data encoding carries the inputs into the kernel and the answers out:
JSON, with tagged objects for what JSON lacks (tuples, non-finite floats, numpy arrays
as raw little-endian bytes, anything else as its type name and ``repr``).
"""

import base64
import json
import math

import numpy as np

MIME = "application/vnd.coursegrade.answers+json"
_ARRAY_DTYPES = {"b": "|b1", "i": "<i8", "u": "<u8", "f": "<f8"}


def encode(value):
    """``value`` as JSON-compatible plain data (see the module docstring)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, list):
        return [encode(item) for item in value]
    if isinstance(value, tuple):
        return {"$tuple": [encode(item) for item in value]}
    if isinstance(value, np.ndarray) and value.dtype.kind in _ARRAY_DTYPES:
        raw = np.ascontiguousarray(value, dtype=_ARRAY_DTYPES[value.dtype.kind])
        return {"$array": base64.b64encode(raw.tobytes()).decode(), "dtype": raw.dtype.str, "shape": list(raw.shape)}
    return {"$object": type(value).__name__, "repr": repr(value)[:200]}


def decode(data):
    """The value :func:`encode` made ``data`` from (objects come back as a dict naming their type)."""
    if isinstance(data, list):
        return [decode(item) for item in data]
    if not isinstance(data, dict):
        return data
    if "$float" in data:
        return float(data["$float"])
    if "$tuple" in data:
        return tuple(decode(item) for item in data["$tuple"])
    if "$array" in data:
        dtype = np.dtype(data["dtype"])
        if dtype.str not in _ARRAY_DTYPES.values():
            raise ValueError(f"array dtype must be one of {sorted(_ARRAY_DTYPES.values())}; got {dtype.str}")
        raw = base64.b64decode(data["$array"])
        return np.frombuffer(raw, dtype=dtype).reshape(data["shape"]).copy()
    return dict(data)


def answers(requests, namespace):
    """The answers ``requests`` ask for, from ``namespace`` (the notebook's globals).

    Each request is ``{"name": N}`` (the value bound to N) or ``{"name": N, "cases": [...]}``
    (N called on each case's encoded arguments: its result, or the exception it raised).
    """
    found = []
    for request in requests:
        name = request["name"]
        entry = {"name": name}
        if name not in namespace:
            entry["missing"] = True
        elif request.get("cases") is None:
            entry["value"] = encode(namespace[name])
        elif not callable(namespace[name]):
            entry["not_callable"] = type(namespace[name]).__name__
        else:
            entry["results"] = [_call(namespace[name], decode(case)) for case in request["cases"]]
        found.append(entry)
    return {"answers": found}


def _call(function, args):
    try:
        return {"value": encode(function(*args))}
    except Exception as error:  # the student's bug, reported to the grader in plain words
        return {"error": f"{type(error).__name__}: {error}"[:500]}


def publish(requests_json, namespace):
    """In the kernel: publish the answers as one display output of type :data:`MIME`."""
    from IPython.display import publish_display_data

    publish_display_data({MIME: answers(json.loads(requests_json), namespace)})
