"""Roofline figures: one roof per chip or memory level, operations placed on them."""

from __future__ import annotations

import numpy as np

from .core import attainable_flops, ridge_intensity
from .hardware import Chip, get_chip
from .hierarchy import LevelPoint
from .plot_style import color, finish, new_axes
from .units import check_positive, format_flops, format_intensity


def _roof(item, dtype):
    """(label, peak FLOP/s, byte/s) from a chip id, a Chip, or a (label, peak, bandwidth) tuple."""
    if isinstance(item, str):
        item = get_chip(item)
    if isinstance(item, Chip):
        return f"{item.name} ({dtype})", item.peak_flops(dtype), item.hbm_bandwidth
    if isinstance(item, tuple) and len(item) == 3:
        label, peak, bandwidth = item
        return str(label), check_positive("peak_flops", peak), check_positive("bandwidth", bandwidth)
    raise ValueError(
        f"chips must hold chip ids, Chip objects or (label, peak_flops, bandwidth) tuples; got {item!r}"
    )


def plot_roofline(chips, dtype="bf16", points=(), ax=None, intensity_range=(0.1, 1e4), title=None):
    """Draw the roofline of each chip on log-log axes and place ``points`` on it.

    ``chips``: one or a list of chip ids, :class:`Chip` objects or ``(label, peak, bandwidth)``.
    ``points``: ``(label, intensity)`` pairs, placed on the first chip's roof, or
    ``(label, intensity, flops_per_s)`` triples placed at a measured rate.
    Each ridge point is marked with a dotted line and its intensity. Returns the axes.
    """
    if isinstance(chips, (str, Chip, tuple)):
        chips = [chips]
    roofs = [_roof(c, dtype) for c in chips]
    if not roofs:
        raise ValueError("chips must name at least one chip")
    lo, hi = (check_positive("intensity_range", v) for v in intensity_range)
    if lo >= hi:
        raise ValueError(f"intensity_range must be (low, high) with low < high; got {intensity_range!r}")
    if ax is None:
        _, ax = new_axes()
    x = np.logspace(np.log10(lo), np.log10(hi), 400)
    for i, (label, peak, bandwidth) in enumerate(roofs):
        c = color(i)
        ridge = ridge_intensity(peak, bandwidth)
        ax.loglog(x, attainable_flops(x, peak, bandwidth), color=c, lw=2, label=label)
        if lo <= ridge <= hi:
            ax.axvline(ridge, color=c, ls=":", lw=1)
            ax.text(ridge, 0.02 + 0.05 * i, f" ridge {format_intensity(ridge)}", color=c, fontsize=8,
                    transform=ax.get_xaxis_transform())
    _, peak0, bw0 = roofs[0]
    for point in points:
        if len(point) == 2:
            label, intensity = point
            rate = attainable_flops(intensity, peak0, bw0)
        elif len(point) == 3:
            label, intensity, rate = point
        else:
            raise ValueError(f"points must hold (label, intensity[, flops_per_s]) tuples; got {point!r}")
        ax.plot([intensity], [rate], "o", color="black", ms=6, zorder=5)
        ax.annotate(f"{label}\n{format_flops(rate)}", (intensity, rate), xytext=(-4, 8),
                    textcoords="offset points", fontsize=8, ha="right")
    return _finish_roofline(ax, max(peak for _, peak, _ in roofs), "arithmetic intensity (FLOP/byte)", "upper left", title)


def plot_hierarchical_roofline(points: list[LevelPoint], peak_flops, ax=None, title=None):
    """One slope per memory level and the op's point on each (see :func:`hierarchical_roofline`)."""
    if not points:
        raise ValueError("points must hold at least one LevelPoint")
    peak_flops = check_positive("peak_flops", peak_flops)
    if ax is None:
        _, ax = new_axes()
    intensities = [p.intensity for p in points]
    x = np.logspace(np.log10(min(intensities) / 30), np.log10(max(intensities) * 30), 400)
    for i, p in enumerate(points):
        c = color(i)
        ax.loglog(x, attainable_flops(x, peak_flops, p.bandwidth), color=c, lw=2,
                  label=f"{p.level} roof")
        ax.plot([p.intensity], [p.attainable], "o", color=c, ms=7, zorder=5)
        ax.annotate(f"{p.level}: {format_intensity(p.intensity)}", (p.intensity, p.attainable),
                    xytext=(6, -14 - 11 * i), textcoords="offset points", fontsize=8, color=c)
    return _finish_roofline(ax, peak_flops, "arithmetic intensity at each level (FLOP/byte)", "lower right", title)


def _finish_roofline(ax, top_peak, xlabel, legend_loc, title):
    """Head-room above the highest roof, then the shared labels, grid and legend."""
    ax.set_ylim(top=top_peak * 4)
    return finish(ax, xlabel, "attainable FLOP/s", title, legend=legend_loc, grid="both")
