"""KV-cache sizes (chapter 4 builds on this)."""

from __future__ import annotations

import numpy as np

from .core import _out
from .units import check_positive, dtype_bytes


def kv_cache_bytes(n_layers, n_kv_heads, head_dim, seq_len, batch=1, dtype="bf16"):
    """Bytes of cached keys and values: ``2 * L * H_kv * d_head * T * B * bytes(dtype)``.

    The factor 2 counts K and V. Use the model's KV-head count, not its query heads:
    grouped-query attention (GQA) shrinks the cache by ``n_heads / n_kv_heads``.
    """
    sizes = [check_positive(name, value) for name, value in (
        ("n_layers", n_layers), ("n_kv_heads", n_kv_heads), ("head_dim", head_dim),
        ("seq_len", seq_len), ("batch", batch))]
    return _out(2 * np.prod(np.broadcast_arrays(*sizes), axis=0) * dtype_bytes(dtype))
