"""Data types, argument checks and unit formatting.

Every quantity in the package is in base SI units (FLOP, byte, second, FLOP/s,
byte/s) with decimal prefixes (1 GB = 1e9 bytes) unless a name says ``gib``.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

import numpy as np

#: Bytes per element of each supported data type; the block-scaled FP4 formats include
#: their scales (NVIDIA NVFP4: 16-element blocks; OCP MXFP4: 32-element blocks).
DTYPE_BYTES = {
    "fp32": 4.0,
    "tf32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 0.5,
    "fp4": 0.5,  # E2M1 elements alone
    "nvfp4": 0.5625,  # E2M1 + one E4M3 scale per 16 elements: 4.5 bits
    "mxfp4": 0.53125,  # E2M1 + one E8M0 scale per 32 elements (OCP MX): 4.25 bits
}


def dtype_bytes(dtype: str) -> float:
    """Bytes per element of ``dtype`` (e.g. ``"bf16"`` -> 2.0, ``"int4"`` -> 0.5)."""
    if not isinstance(dtype, str) or dtype.lower() not in DTYPE_BYTES:
        raise ValueError(
            f"dtype must be one of {sorted(DTYPE_BYTES)}; got {dtype!r}"
        )
    return DTYPE_BYTES[dtype.lower()]


def check_positive(name: str, value, allow_zero: bool = False):
    """Return ``value`` as a float array (or float) after checking it is finite and > 0.

    Raises ``ValueError`` naming ``name`` when any element is negative, zero
    (unless ``allow_zero``), NaN, infinite or not a number at all.
    """
    if isinstance(value, (bool, np.bool_)) or isinstance(value, str):
        raise ValueError(f"{name} must be a number or an array of numbers; got {value!r}")
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or an array of numbers; got {value!r}") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite; got {value!r}")
    if allow_zero:
        if np.any(arr < 0):
            raise ValueError(f"{name} must be >= 0; got {value!r}")
    elif np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0; got {value!r}")
    return arr if arr.ndim else float(arr)


def check_int(name: str, value, minimum: int = 1) -> int:
    """Return ``value`` as an int after checking it is an integer (not a bool) ``>= minimum``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {what}; got {value!r}")
    return int(value)


_PREFIXES = [(1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, "")]
_BINARY = [(2**60, "Ei"), (2**50, "Pi"), (2**40, "Ti"), (2**30, "Gi"), (2**20, "Mi"), (2**10, "Ki"), (1, "")]


def _sig(x: float, digits: int) -> str:
    """``x`` rounded half up to ``digits`` significant figures (562.5 -> 563), trailing zeros dropped."""
    if x == 0:
        return "0"
    exact = Decimal(repr(float(x)))
    rounded = exact.quantize(Decimal(1).scaleb(exact.adjusted() - digits + 1), rounding=ROUND_HALF_UP)
    text = f"{rounded:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_si(value: float, unit: str, digits: int = 3) -> str:
    """Format with a decimal prefix: ``format_si(3.35e12, "B/s")`` -> ``"3.35 TB/s"``."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"value must be finite; got {value!r}")
    magnitude = abs(value)
    for scale, prefix in _PREFIXES:
        if magnitude >= scale * (1 - 0.5 * 10 ** (1 - digits)):
            return f"{_sig(value / scale, digits)} {prefix}{unit}"
    return f"{_sig(value, digits)} {unit}"


def format_flops(flops_per_s: float, digits: int = 3) -> str:
    """``9.894e14`` -> ``"989 TFLOP/s"``."""
    return format_si(flops_per_s, "FLOP/s", digits)


def format_flop_count(flops: float, digits: int = 3) -> str:
    """``2.2e12`` -> ``"2.2 TFLOP"`` (a count, not a rate)."""
    return format_si(flops, "FLOP", digits)


def format_bandwidth(bytes_per_s: float, digits: int = 3) -> str:
    """``3.35e12`` -> ``"3.35 TB/s"``."""
    return format_si(bytes_per_s, "B/s", digits)


def format_bytes(nbytes: float, digits: int = 3, binary: bool = False) -> str:
    """``8e10`` -> ``"80 GB"``; with ``binary=True``, ``2**30 * 80`` -> ``"80 GiB"``."""
    if not binary:
        return format_si(nbytes, "B", digits)
    nbytes = float(nbytes)
    for scale, prefix in _BINARY:
        if abs(nbytes) >= scale:
            return f"{_sig(nbytes / scale, digits)} {prefix}B"
    return f"{_sig(nbytes, digits)} B"


def format_time(seconds: float, digits: int = 3) -> str:
    """``1.01e-3`` -> ``"1.01 ms"``; ``90`` -> ``"90 s"``."""
    seconds = float(seconds)
    if not math.isfinite(seconds):
        raise ValueError(f"seconds must be finite; got {seconds!r}")
    for scale, unit in [(1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns")]:
        if abs(seconds) >= scale * (1 - 0.5 * 10 ** (1 - digits)):
            return f"{_sig(seconds / scale, digits)} {unit}"
    return f"{_sig(seconds / 1e-12, digits)} ps"


def format_intensity(flops_per_byte: float, digits: int = 3) -> str:
    """``240.537`` -> ``"241 FLOP/B"``; from ``10**digits`` up, whole FLOP/B (``1125`` -> ``"1,125 FLOP/B"``)."""
    x = float(flops_per_byte)
    return f"{x:,.0f} FLOP/B" if abs(x) >= 10**digits else f"{_sig(x, digits)} FLOP/B"


def format_factor(ratio: float, digits: int = 3) -> str:
    """A growth factor or ratio to ``digits`` significant figures, no exponent: "3.03x", "64,300x"."""
    rounded = float(f"{ratio:.{digits}g}")
    return f"{rounded:,.0f}x" if rounded >= 10 ** (digits - 1) else f"{rounded:.{digits}g}x"
