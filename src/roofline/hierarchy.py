"""The hierarchical (multi-level) roofline: one memory roof per cache level.

An op moves a different number of bytes across each level (L1, L2, HBM): data
reused from a cache is fetched from the level below only once. Each level gives
its own intensity ``flops / bytes_at_level`` and its own slope; the op runs at
the lowest of the ceilings, and that level is the bottleneck.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .core import _out, attainable_flops
from .units import check_positive, dtype_bytes


class LevelPoint(NamedTuple):
    """One memory level's view of an op: intensity (FLOP/byte), ceiling (FLOP/s), time (s)."""

    level: str
    bandwidth: float
    nbytes: float
    intensity: float
    attainable: float
    time: float


def hierarchical_roofline(flops, bytes_by_level: dict, bandwidth_by_level: dict, peak_flops) -> list[LevelPoint]:
    """Per-level intensity and ceiling of an op performing ``flops``.

    ``bytes_by_level`` and ``bandwidth_by_level`` map level names (e.g. "L1", "L2",
    "HBM") to bytes moved and byte/s; both must name the same levels.
    ``attainable = min(peak, bandwidth * flops / bytes)`` and ``time = bytes / bandwidth``.
    """
    flops = check_positive("flops", flops)
    peak_flops = check_positive("peak_flops", peak_flops)
    if not bytes_by_level or set(bytes_by_level) != set(bandwidth_by_level):
        raise ValueError(
            "bytes_by_level and bandwidth_by_level must name the same, non-empty levels; "
            f"got {sorted(bytes_by_level)} and {sorted(bandwidth_by_level)}"
        )
    points = []
    for level, bandwidth in bandwidth_by_level.items():
        bandwidth = check_positive(f"bandwidth_by_level[{level!r}]", bandwidth)
        nbytes = check_positive(f"bytes_by_level[{level!r}]", bytes_by_level[level])
        intensity = flops / nbytes
        points.append(LevelPoint(level, bandwidth, nbytes, intensity,
                                 attainable_flops(intensity, peak_flops, bandwidth), nbytes / bandwidth))
    return points


def bottleneck(points: list[LevelPoint]) -> LevelPoint:
    """The level with the lowest ceiling: the one that limits the op."""
    if not points:
        raise ValueError("points must hold at least one LevelPoint")
    return min(points, key=lambda p: p.attainable)


def tiled_matmul_bytes(B, D, F, tile, dtype="bf16"):
    """Bytes a memory level delivers for ``X[B, D] @ W[D, F]`` computed in ``tile x tile`` output blocks.

    The level above holds one output block at a time, so X is streamed once per
    block column and W once per block row:
    ``B*D*ceil(F/tile) + D*F*ceil(B/tile) + B*F`` elements. For large square
    problems the level's intensity is about ``tile / bytes(dtype)`` FLOP/byte.
    """
    B, D, F, tile = (check_positive(n, v) for n, v in (("B", B), ("D", D), ("F", F), ("tile", tile)))
    b = dtype_bytes(dtype)
    elements = B * D * np.ceil(np.divide(F, tile)) + D * F * np.ceil(np.divide(B, tile)) + B * F
    return _out(elements * b)


def memory_stall_fraction(hit_rate, miss_cycles, hit_cycles=1.0):
    """Share of the average access time spent waiting on main memory (Wulf and McKee, 1995).

    A fraction ``hit_rate`` of accesses costs ``hit_cycles``, the rest ``miss_cycles``:
    ``(1 - p) t_miss / (p t_hit + (1 - p) t_miss)``. It passes one half when
    ``t_miss = p t_hit / (1 - p)``.
    """
    p = check_positive("hit_rate", hit_rate, allow_zero=True)
    if np.any(np.asarray(p) > 1):
        raise ValueError(f"hit_rate must be in [0, 1]; got {hit_rate!r}")
    t_miss = check_positive("miss_cycles", miss_cycles)
    t_hit = check_positive("hit_cycles", hit_cycles)
    stall = np.multiply(np.subtract(1, p), t_miss)
    return _out(stall / (np.multiply(p, t_hit) + stall))
