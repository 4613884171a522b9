"""What low precision and pruning save: weight bytes, and the speed-up of memory-bound work.

A memory-bound operation runs in ``bytes / bandwidth``, so shrinking the bytes it moves
speeds it up by the same factor; a compute-bound one gains only if the arithmetic itself
gets faster.
"""

from __future__ import annotations

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
