"""What low precision and pruning save: weight bytes, and the speed-up of memory-bound work.

A memory-bound operation runs in ``bytes / bandwidth``, so shrinking the bytes it moves
speeds it up by the same factor; a compute-bound one gains only if the arithmetic itself
gets faster.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .core import _out
from .units import check_positive, dtype_bytes

#: Bytes of index metadata per kept weight: CSR column indices (int32), and the
#: 2-bit position code of NVIDIA's 2:4 semi-structured sparsity.
INDEX_BYTES = {"unstructured-csr": 4.0, "2:4": 0.25}
PRUNING_SCHEMES = ("structured", "unstructured-dense", "unstructured-csr", "2:4")


def weight_bytes(n_params, dtype="bf16"):
    """Bytes of ``n_params`` weights stored in ``dtype``."""
    return _out(np.multiply(check_positive("n_params", n_params), dtype_bytes(dtype)))


def compression_ratio(from_dtype, to_dtype):
    """How many times smaller weights get: ``bytes(from) / bytes(to)`` (fp32 -> int4 is 8)."""
    return dtype_bytes(from_dtype) / dtype_bytes(to_dtype)


def pruned_weight_bytes(n_params, sparsity, dtype="bf16", scheme="structured"):
    """Bytes left after removing a fraction ``sparsity`` of the weights.

    - ``structured``: whole rows, heads or channels go; the matrix is simply smaller.
    - ``unstructured-dense``: zeros scattered in a dense matrix; nothing is saved.
    - ``unstructured-csr``: kept values plus a 4-byte column index each (row pointers ignored).
    - ``2:4``: exactly half the weights kept, each with 2 bits of position metadata.
    """
    n = check_positive("n_params", n_params)
    sparsity = check_positive("sparsity", sparsity, allow_zero=True)
    if np.any(np.asarray(sparsity) >= 1):
        raise ValueError(f"sparsity must be in [0, 1); got {sparsity!r}")
    if scheme not in PRUNING_SCHEMES:
        raise ValueError(f"scheme must be one of {list(PRUNING_SCHEMES)}; got {scheme!r}")
    b = dtype_bytes(dtype)
    kept = np.multiply(n, np.subtract(1, sparsity))
    if scheme == "structured":
        return _out(kept * b)
    if scheme == "unstructured-dense":
        return _out(np.multiply(n, b) * np.ones_like(kept))
    if scheme == "2:4":
        if np.any(np.asarray(sparsity) != 0.5):
            raise ValueError(f"2:4 sparsity keeps exactly half the weights: sparsity must be 0.5; got {sparsity!r}")
    return _out(kept * (b + INDEX_BYTES[scheme]))


def memory_bound_speedup(bytes_before, bytes_after):
    """Speed-up of an operation that stays memory-bound: ``bytes_before / bytes_after``."""
    return _out(np.divide(check_positive("bytes_before", bytes_before), check_positive("bytes_after", bytes_after)))


class Remedy(NamedTuple):
    """One way to shrink a model's weights, and what it buys."""

    name: str
    weight_bytes: float
    flops_fraction: float  # share of the dense model's matmul FLOPs still executed
    decode_speedup: float  # baseline bytes / these bytes: the gain of weight-bound decoding


def weight_remedies(n_params, baseline="bf16", structured_sparsity=0.3, unstructured_sparsity=0.8) -> list[Remedy]:
    """Quantization and pruning of ``n_params`` weights, compared with ``baseline`` storage.

    The default sparsities are the paper's "little accuracy loss" limits (30% structured,
    80% unstructured). Pruned models keep the baseline dtype. ``flops_fraction`` assumes a
    kernel that skips what was pruned: dense kernels on scattered zeros skip nothing, and
    the CSR figure is the ideal a sparse kernel rarely reaches.
    """
    base = weight_bytes(n_params, baseline)
    rows = [(f"{dtype} weights", weight_bytes(n_params, dtype), 1.0)
            for dtype in ("fp32", "bf16", "fp8", "int8", "int4")]
    s, u = structured_sparsity, unstructured_sparsity
    rows += [
        (f"structured pruning {s:.0%}", pruned_weight_bytes(n_params, s, baseline, "structured"), 1 - s),
        (f"unstructured {u:.0%}, dense storage", pruned_weight_bytes(n_params, u, baseline, "unstructured-dense"), 1.0),
        (f"unstructured {u:.0%}, CSR", pruned_weight_bytes(n_params, u, baseline, "unstructured-csr"), 1 - u),
        ("2:4 semi-structured", pruned_weight_bytes(n_params, 0.5, baseline, "2:4"), 0.5),
    ]
    return [Remedy(name, nbytes, fraction, memory_bound_speedup(base, nbytes)) for name, nbytes, fraction in rows]
