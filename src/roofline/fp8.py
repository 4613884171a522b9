"""FP8 for inference: exact rounding emulation, the error it adds, and what it buys on a roofline.

- :func:`round_to_format` rounds to E4M3 or E5M2 (the OCP 8-bit formats of Hopper's tensor
  cores), or to bf16/fp16 for comparison, ties to even, with a per-tensor scale.
- :func:`matmul_error` and :func:`attention_error` measure the relative error on random data.
- :func:`fp8_decode_options` prices a decode step with FP8 weights, KV cache and compute.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .decode import decode_step_time, max_batch
from .hardware import get_chip
from .longcontext import attention_weights
from .models import get_model
from .units import check_positive


class FloatFormat(NamedTuple):
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

    @property
    def relative_step(self):
        """Spacing of values just above 1: ``2^-mantissa_bits`` (twice the worst relative rounding error)."""
        return 2.0 ** -self.mantissa_bits


#: OCP 8-bit floating point (OCP OFP8 spec v1.0, 2023; NVIDIA Hopper). E4M3 has no infinities and
#: uses its top codes for a larger range (max 448); E5M2 follows IEEE 754 (max 57344).
#: bf16 and fp16 (IEEE 754 binary16) are here to compare against.
FLOAT_FORMATS = {
    "e4m3": FloatFormat("e4m3", 4, 3, 7, 448.0),
    "e5m2": FloatFormat("e5m2", 5, 2, 15, 57344.0),
    "bf16": FloatFormat("bf16", 8, 7, 127, (2 - 2.0**-7) * 2.0**127),
    "fp16": FloatFormat("fp16", 5, 10, 15, 65504.0),
}


def _format(fmt) -> FloatFormat:
    if fmt not in FLOAT_FORMATS:
        raise ValueError(f"fmt must be one of {list(FLOAT_FORMATS)}; got {fmt!r}")
    return FLOAT_FORMATS[fmt]


def round_to_format(x, fmt="e4m3", scale=1.0):
    """Round ``x / scale`` to the nearest ``fmt`` value (ties to even), saturating at the largest
    finite value (infinities included, like the saturating FP8 conversions), and multiply back by
    ``scale``. NaN stays NaN.
    """
    f = _format(fmt)
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


def amax_scale(x, fmt="e4m3"):
    """Per-tensor scale that maps the largest ``|x|`` onto the format's largest value."""
    amax = float(np.max(np.abs(x)))
    return amax / _format(fmt).max_normal if amax > 0 else 1.0


def quantize(x, fmt="e4m3"):
    """``x`` rounded to ``fmt`` with its own per-tensor (amax) scale."""
    return round_to_format(x, fmt, amax_scale(x, fmt))


def _relative_error(approx, exact):
    return float(np.linalg.norm(approx - exact) / np.linalg.norm(exact))


def matmul_error(m=256, k=1024, n=256, fmt="e4m3", seed=0):
    """Relative (Frobenius) error of ``A @ B`` when both inputs are quantized to ``fmt``.

    ``A`` and ``B`` are standard normal; products are accumulated in float64, so the error is
    the inputs' rounding alone (tensor cores accumulate FP8 products in higher precision).
    """
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((int(m), int(k))), rng.standard_normal((int(k), int(n)))
    return _relative_error(quantize(a, fmt) @ quantize(b, fmt), a @ b)


def attention_error(n_tokens=1024, head_dim=128, fmt="e4m3", seed=0):
    """Relative error of one query's attention output when Q, K, V and the softmax
    probabilities are quantized to ``fmt`` (what an FP8 attention kernel rounds).
    """
    rng = np.random.default_rng(seed)
    q, k, v = rng.standard_normal(head_dim), rng.standard_normal((n_tokens, head_dim)), rng.standard_normal((n_tokens, head_dim))
    exact = attention_weights(q, k) @ v
    p = attention_weights(quantize(q, fmt), quantize(k, fmt))
    return _relative_error(quantize(p, fmt) @ quantize(v, fmt), exact)


class PrecisionOption(NamedTuple):
    """One way to run decode: dtypes of weights, KV cache and math, and what it gives."""

    name: str
    w_dtype: str
    kv_dtype: str
    compute_dtype: str
    step_time: float  # seconds per decode step
    tokens_per_s: float
    speedup: float  # over the all-bf16 option
    max_batch: int  # sequences of this context that fit in HBM


def fp8_decode_options(model, chip, context_len=8192, batch=16):
    """Decode step time and capacity with bf16 everywhere, FP8 weights, FP8 weights and KV cache,
    and FP8 throughout (FP8 tensor-core math; needs a chip with an FP8 peak, e.g. Hopper)."""
    m, c = get_model(model), get_chip(chip)
    plans = [("bf16", "bf16", "bf16", "bf16"), ("fp8 weights", "fp8", "bf16", "bf16"),
             ("fp8 weights + KV", "fp8", "fp8", "bf16"), ("fp8 throughout", "fp8", "fp8", "fp8")]
    times = [decode_step_time(m, c, batch, context_len, w, kv, compute) for _, w, kv, compute in plans]
    return [PrecisionOption(name, w, kv, compute, t.time, t.tokens_per_s, times[0].time / t.time,
                            int(max_batch(m, c.hbm_capacity, context_len, w, kv)))
            for (name, w, kv, compute), t in zip(plans, times)]
