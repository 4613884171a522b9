"""FLOPs and bytes moved by the operations the book analyses.

Byte counts assume each operand is read from memory once and the result written
once (no cache reuse across calls). Sizes are element counts; they broadcast.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .core import Cost, _out, ridge_intensity
from .units import check_positive, dtype_bytes


def _sizes(**sizes):
    return [check_positive(name, value) for name, value in sizes.items()]


def dot_product(N, dtype="bf16") -> Cost:
    """``x . y`` for two length-N vectors: N multiplies + N-1 adds; read 2N, write 1 element.

    Intensity ``(2N - 1) / ((2N + 1) * bytes)`` tends to 1/2 FLOP/byte in bf16.
    """
    (N,) = _sizes(N=N)
    b = dtype_bytes(dtype)
    return Cost(_out(2 * N - 1), activation_bytes=_out((2 * N + 1) * b), name="dot product")


def elementwise(N, n_inputs=1, flops_per_element=1, dtype="bf16", out_dtype=None) -> Cost:
    """An elementwise op over N elements: reads ``n_inputs`` arrays, writes one.

    FLOPs ``N * flops_per_element``; bytes ``N * (n_inputs * bytes(dtype) + bytes(out_dtype))``.
    ``x * 2`` in fp32 is 1 FLOP per 8 bytes: intensity 1/8.
    """
    N, n_inputs = _sizes(N=N, n_inputs=n_inputs)
    flops_per_element = check_positive("flops_per_element", flops_per_element)
    out_b = dtype_bytes(out_dtype or dtype)
    return Cost(_out(np.multiply(N, flops_per_element)), activation_bytes=_out(N * (n_inputs * dtype_bytes(dtype) + out_b)),
                name="elementwise")


def matmul_flops(B, D, F):
    """FLOPs of ``X[B, D] @ Y[D, F]``: ``2 * B * D * F`` (one multiply and one add per term)."""
    B, D, F = _sizes(B=B, D=D, F=F)
    return _out(2 * np.multiply(np.multiply(B, D), F))


def matmul_bytes(B, D, F, x_dtype="bf16", w_dtype="bf16", out_dtype="bf16"):
    """Bytes moved by ``X[B, D] @ W[D, F] -> Z[B, F]``: read X and W, write Z.

    ``B*D*bytes(x) + D*F*bytes(w) + B*F*bytes(out)``.
    """
    return matmul(B, D, F, x_dtype, w_dtype, out_dtype).nbytes


def matmul_intensity(B, D, F, x_dtype="bf16", w_dtype="bf16", out_dtype="bf16"):
    """FLOP/byte of the matmul: ``matmul_flops / matmul_bytes`` (about ``2B / bytes(w)`` for B << D, F)."""
    return matmul(B, D, F, x_dtype, w_dtype, out_dtype).intensity


def matmul(B, D, F, x_dtype="bf16", w_dtype="bf16", out_dtype="bf16") -> Cost:
    """:class:`~roofline.core.Cost` of ``X[B, D] @ W[D, F]``: weights ``D*F``, activations ``B*D`` in and ``B*F`` out."""
    B, D, F = _sizes(B=B, D=D, F=F)
    bx, bw, bo = dtype_bytes(x_dtype), dtype_bytes(w_dtype), dtype_bytes(out_dtype)
    return Cost(matmul_flops(B, D, F), weight_bytes=_out(np.multiply(D, F) * bw),
                activation_bytes=_out(np.multiply(B, D) * bx + np.multiply(B, F) * bo), name="matmul")


def critical_batch_size(peak_flops, bandwidth, w_dtype="bf16"):
    """Smallest batch B at which a matmul with B << D, F becomes compute-bound.

    For B << D, F the intensity is ``2B / bytes(w)``; it equals the ridge
    ``peak_flops / bandwidth`` at ``B = ridge * bytes(w) / 2``. Pass the peak of
    the dtype the multiply runs in (int8 peak for an all-int8 matmul).
    """
    return _out(ridge_intensity(peak_flops, bandwidth) * dtype_bytes(w_dtype) / 2)


def per_example_matmul(B, D, F, x_dtype="int8", w_dtype="int8", out_dtype="int8") -> Cost:
    """``X[B, D] x W[B, D, F] -> Z[B, F]``: a different weight matrix per batch element.

    FLOPs ``2BDF``; bytes ``BD*bytes(x) + BDF*bytes(w) + BF*bytes(out)``. Every weight
    is used once, so the intensity stays near ``2 / bytes(w)`` whatever B is.
    """
    B, D, F = _sizes(B=B, D=D, F=F)
    bx, bw, bo = dtype_bytes(x_dtype), dtype_bytes(w_dtype), dtype_bytes(out_dtype)
    return Cost(_out(2 * B * D * F), weight_bytes=_out(B * D * F * bw), activation_bytes=_out(B * D * bx + B * F * bo),
                name="per-example matmul")


def _chip_count(n_chips):
    n = check_positive("n_chips", n_chips)
    if np.any(np.asarray(n) < 2) or np.any(np.asarray(n) % 1):
        raise ValueError(f"n_chips must be an integer >= 2; got {n_chips!r}")
    return n


class ShardedMatmul(NamedTuple):
    """Per-chip cost of a matmul whose contracting dimension D is split over ``n_chips``.

    Each chip multiplies ``X[:, D/N] @ W[D/N, :]`` (``t_math``), then the chips
    all-reduce their ``[B, F]`` partial sums over the link (``t_link``): a ring
    all-reduce sends ``2 (N-1)/N * B*F*bytes`` per chip, i.e. the whole partial sum for N = 2.
    (Chapter 1 writes the link time T_comms, after its source.)
    """

    flops_per_chip: float
    comm_bytes_per_chip: float
    t_math: float
    t_link: float
    lower: float
    upper: float


def sharded_matmul(B, D, F, n_chips, peak_flops, link_bandwidth, dtype="bf16") -> ShardedMatmul:
    """Time bounds of ``X[B, D] @ W[D, F]`` sharded over ``n_chips`` along D.

    ``link_bandwidth`` is per chip per direction (byte/s); ``peak_flops`` per chip.
    """
    n_chips = _chip_count(n_chips)
    per_chip = Cost(np.divide(matmul_flops(B, D, F), n_chips),
                    link_bytes=2 * (n_chips - 1) / n_chips * np.multiply(B, F) * dtype_bytes(dtype))
    t_math = np.divide(per_chip.flops, check_positive("peak_flops", peak_flops))
    t_link = per_chip.t_link(link_bandwidth)
    return ShardedMatmul(_out(per_chip.flops), _out(per_chip.link_bytes), _out(t_math), t_link,
                         _out(np.maximum(t_math, t_link)), _out(t_math + t_link))


def sharded_matmul_critical_d(n_chips, peak_flops, link_bandwidth, dtype="bf16"):
    """Contracting size D above which the sharded matmul is compute-bound.

    From ``2BDF / (N peak) = 2 (N-1)/N * B F bytes / W``: ``D = (N-1) * bytes * peak / W``,
    independent of B and F (8756 for 2 TPU v5e chips at 4.5e10 byte/s).
    """
    n_chips = _chip_count(n_chips)
    ratio = ridge_intensity(peak_flops, link_bandwidth)
    return _out((np.asarray(n_chips) - 1) * dtype_bytes(dtype) * ratio)


def sharded_matmul_max_chips(D, peak_flops, link_bandwidth, dtype="bf16"):
    """Most chips a matmul with contracting size ``D`` can be split over and stay compute-bound.

    The inverse of :func:`sharded_matmul_critical_d`: ``N = 1 + D * W / (bytes * peak)``.
    """
    ratio = ridge_intensity(peak_flops, link_bandwidth)
    return _out(1 + np.divide(check_positive("D", D), dtype_bytes(dtype) * ratio))
