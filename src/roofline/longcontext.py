"""Long-context inference techniques as working numerics (chapter 5 builds on this).

- Split-K ("multi-block") attention: one query against keys and values split into blocks;
  each block returns its partial output with its running maximum and log-sum-exp, and the
  partial results merge exactly into full softmax attention.
- FP8: exact round-to-nearest-even emulation of the E4M3 and E5M2 formats, with scaling.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .units import check_positive


class PartialAttention(NamedTuple):
    """One block's contribution: its normalised output, and the log-sum-exp of its scores."""

    output: np.ndarray
    lse: float


def block_attention(q, k, v) -> PartialAttention:
    """Attention of ``q`` over one block of keys/values, with the block's log-sum-exp."""
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    if k.shape[0] == 0:
        raise ValueError("k must hold at least one key")
    scores = k @ q / np.sqrt(q.shape[-1])
    m = scores.max()
    weights = np.exp(scores - m)
    total = weights.sum()
    return PartialAttention(weights @ v / total, float(m + np.log(total)))


def attention(q, k, v):
    """Softmax attention of one query: ``softmax(k @ q / sqrt(d)) @ v`` (numerically stable)."""
    return block_attention(q, k, v).output


def merge_partials(partials) -> np.ndarray:
    """Combine block results exactly: ``sum_i exp(lse_i - LSE) * out_i`` with ``LSE = logsumexp(lse_i)``."""
    partials = list(partials)
    if not partials:
        raise ValueError("partials must hold at least one PartialAttention")
    lses = np.array([p.lse for p in partials])
    top = lses.max()
    scale = np.exp(lses - top)
    return sum(s * p.output for s, p in zip(scale, partials)) / scale.sum()


def split_k_attention(q, k, v, n_blocks: int) -> np.ndarray:
    """Attention computed over ``n_blocks`` contiguous blocks of the keys, then merged."""
    k = np.asarray(k)
    if not isinstance(n_blocks, (int, np.integer)) or not 1 <= n_blocks <= k.shape[0]:
        raise ValueError(f"n_blocks must be an integer between 1 and the number of keys ({k.shape[0]}); got {n_blocks!r}")
    bounds = np.linspace(0, k.shape[0], n_blocks + 1).astype(int)
    v = np.asarray(v)
    return merge_partials(block_attention(q, k[a:b], v[a:b]) for a, b in zip(bounds[:-1], bounds[1:]))


class FP8Format(NamedTuple):
    """A binary floating-point format: exponent and mantissa bits, bias and largest finite value."""

    name: str
    exponent_bits: int
    mantissa_bits: int
    bias: int
    max_normal: float

    @property
    def min_normal(self):
        return 2.0 ** (1 - self.bias)

    @property
    def min_subnormal(self):
        return 2.0 ** (1 - self.bias - self.mantissa_bits)


#: OCP 8-bit floating point (the formats of Hopper's tensor cores). E4M3 has no infinities and
#: uses its top codes for a larger range (max 448); E5M2 follows IEEE 754 (max 57344).
FP8_FORMATS = {
    "e4m3": FP8Format("e4m3", 4, 3, 7, 448.0),
    "e5m2": FP8Format("e5m2", 5, 2, 15, 57344.0),
}


def fp8_round(x, fmt="e4m3", scale=1.0):
    """Round ``x / scale`` to the nearest ``fmt`` value (ties to even), saturating at the largest
    finite value (infinities included), and multiply back by ``scale``. NaN stays NaN.
    """
    if fmt not in FP8_FORMATS:
        raise ValueError(f"fmt must be one of {list(FP8_FORMATS)}; got {fmt!r}")
    f = FP8_FORMATS[fmt]
    scale = check_positive("scale", scale)
    y = np.asarray(x, dtype=np.float64) / scale
    magnitude = np.abs(y)
    # spacing of representable values around |y|: 2^(e - mantissa_bits), never below the subnormal step
    with np.errstate(invalid="ignore"):  # inf / inf for infinite input, replaced below
        exponent = np.floor(np.log2(np.maximum(magnitude, f.min_normal)))
        step = 2.0 ** (exponent - f.mantissa_bits)
        rounded = np.round(magnitude / step) * step  # numpy rounds halves to even
    rounded = np.where(np.isinf(magnitude), f.max_normal, np.minimum(rounded, f.max_normal))
    out = np.sign(y) * rounded * scale
    return out if out.ndim else float(out)


def fp8_scale(x, fmt="e4m3"):
    """Per-tensor scale that maps the largest ``|x|`` onto the format's largest value."""
    if fmt not in FP8_FORMATS:
        raise ValueError(f"fmt must be one of {list(FP8_FORMATS)}; got {fmt!r}")
    amax = float(np.max(np.abs(x)))
    return amax / FP8_FORMATS[fmt].max_normal if amax > 0 else 1.0
