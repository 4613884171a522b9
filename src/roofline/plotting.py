"""Log-log roofline plots with labelled operation points and ridge markers."""

from __future__ import annotations

import numpy as np

from .core import attainable_flops, ridge_intensity
from .hardware import Chip, get_chip
from .hierarchy import LevelPoint
from .units import check_positive, format_flops, format_intensity

_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


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


def new_axes(figsize=(7.0, 4.2)):
    """A figure and axes with a white background (legible on light and dark pages)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize, facecolor="white", layout="constrained")
    ax.set_facecolor("white")
    return fig, ax


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
        color = _COLORS[i % len(_COLORS)]
        ridge = ridge_intensity(peak, bandwidth)
        ax.loglog(x, attainable_flops(x, peak, bandwidth), color=color, lw=2, label=label)
        if lo <= ridge <= hi:
            ax.axvline(ridge, color=color, ls=":", lw=1)
            ax.text(ridge, 0.02 + 0.05 * i, f" ridge {format_intensity(ridge)}", color=color, fontsize=8,
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
    return _finish(ax, max(peak for _, peak, _ in roofs), "arithmetic intensity (FLOP/byte)", "upper left", title)


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
        color = _COLORS[i % len(_COLORS)]
        ax.loglog(x, attainable_flops(x, peak_flops, p.bandwidth), color=color, lw=2,
                  label=f"{p.level} roof")
        ax.plot([p.intensity], [p.attainable], "o", color=color, ms=7, zorder=5)
        ax.annotate(f"{p.level}: {format_intensity(p.intensity)}", (p.intensity, p.attainable),
                    xytext=(6, -14 - 11 * i), textcoords="offset points", fontsize=8, color=color)
    return _finish(ax, peak_flops, "arithmetic intensity at each level (FLOP/byte)", "lower right", title)


def _finish(ax, top_peak, xlabel, legend_loc, title):
    """Shared axis labels, grid, legend and head-room above the highest roof."""
    ax.set_ylim(top=top_peak * 4)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("attainable FLOP/s")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc=legend_loc, fontsize=8)
    if title:
        ax.set_title(title)
    return ax
