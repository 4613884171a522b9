"""Log-log roofline plots with labelled operation points and ridge markers."""

from __future__ import annotations

import numpy as np

from .core import attainable_flops, ridge_intensity
from .hardware import Chip, get_chip
from .hierarchy import LevelPoint
from .transformer import decoder_cost, encoder_cost, roofline_latency
from .trends import fit_growth, load_series
from .units import check_positive, format_factor, format_flops, format_intensity

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


#: Display names of the growth series.
SERIES_LABELS = {
    "peak_flops": "peak FLOP/s",
    "dram_bandwidth": "DRAM bandwidth",
    "interconnect_bandwidth": "interconnect bandwidth",
    "transformer_params": "transformer parameters",
    "accelerator_memory": "accelerator memory",
    "training_compute": "transformer training compute",
}


def plot_growth_trends(names, ax=None, title=None):
    """Each series normalised to its earliest point, with its fitted growth per two years.

    The legend gives the least-squares factor and its 95% confidence interval.
    """
    if isinstance(names, str):
        names = [names]
    if not names:
        raise ValueError("names must list at least one series")
    if ax is None:
        _, ax = new_axes()
    for i, name in enumerate(names):
        years, values = load_series(name)
        fit = fit_growth(years, values)
        color = _COLORS[i % len(_COLORS)]
        low, high = fit.growth_ci()
        label = (f"{SERIES_LABELS.get(name, name)}: {format_factor(fit.growth())} / 2 yrs "
                 f"(95% CI {format_factor(low)}-{format_factor(high)})")
        ax.semilogy(years, values / values[0], "o", color=color, ms=4, alpha=0.8)
        x = np.linspace(years.min(), years.max(), 50)
        ax.semilogy(x, fit.predict(x) / values[0], "-", color=color, lw=1.8, label=label)
    ax.set_xlabel("year")
    ax.set_ylabel("growth since the first point")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def plot_inference_profiles(encoders, decoder, seq_lens, chip, dtype="fp16"):
    """The four panels of an encoder/decoder comparison against sequence length (batch 1).

    FLOPs, bytes moved, arithmetic intensity and roofline latency on ``chip``, the last
    normalised to the first encoder at the shortest length. Returns the figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    seq_lens = np.asarray(check_positive("seq_lens", seq_lens))
    if seq_lens.ndim != 1 or seq_lens.size < 2:
        raise ValueError(f"seq_lens must list at least two sequence lengths; got {seq_lens!r}")
    costs = {name: encoder_cost(name, seq_lens, dtype) for name in encoders}
    costs[decoder] = decoder_cost(decoder, seq_lens, dtype)
    unit = roofline_latency(encoder_cost(encoders[0], seq_lens[0], dtype), chip, dtype)
    panels = [("(a) FLOPs", lambda c: c.flops), ("(b) bytes moved", lambda c: c.nbytes),
              ("(c) arithmetic intensity (FLOP/byte)", lambda c: c.intensity),
              ("(d) latency bound, relative", lambda c: roofline_latency(c, chip, dtype) / unit)]
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.2), facecolor="white", layout="constrained")
    for ax, (title, value) in zip(axes, panels):
        for i, (name, cost) in enumerate(costs.items()):
            ax.loglog(seq_lens, value(cost), "o-", color=_COLORS[i % len(_COLORS)], ms=3, label=name)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("sequence length")
        ax.set_xticks(seq_lens, [f"{n:g}" for n in seq_lens], fontsize=8)
        ax.xaxis.set_minor_locator(NullLocator())
        ax.grid(True, which="major", alpha=0.3)
    axes[0].legend(fontsize=8)
    return fig


#: Stacked-bar colours of the memory components.
_MEMORY_COLORS = {"weights": "#1f77b4", "gradients": "#9467bd", "optimizer": "#ff7f0e", "activations": "#2ca02c",
                  "KV cache": "#d62728"}


def plot_memory_bars(bars, ax=None, limit=None, limit_label="memory limit", title=None):
    """Stacked bars of memory components in GB.

    ``bars``: ``(label, {component: GB})`` pairs with components among weights,
    gradients, optimizer, activations and KV cache. ``limit``: one GB value for a horizontal line,
    or one per bar for a step line (the paper draws each model's GPU memory).
    """
    if not bars:
        raise ValueError("bars must hold at least one (label, components) pair")
    if ax is None:
        _, ax = new_axes()
    x = np.arange(len(bars))
    bottom = np.zeros(len(bars))
    for component, color in _MEMORY_COLORS.items():
        heights = np.array([parts.get(component, 0.0) for _, parts in bars])
        if heights.any():
            ax.bar(x, heights, bottom=bottom, color=color, label=component, width=0.6)
            bottom += heights
    for xi, total in zip(x, bottom):
        ax.text(xi, total, f"{total:,.0f}" if total >= 100 else f"{total:.3g}", ha="center", va="bottom", fontsize=8)
    if limit is not None:
        limits = np.broadcast_to(np.asarray(limit, dtype=float), x.shape)
        ax.step(np.append(x - 0.5, x[-1] + 0.5), np.append(limits, limits[-1]), where="post",
                color="black", ls="--", lw=1.2, label=limit_label)
    ax.set_xticks(x, [label for label, _ in bars], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("memory (GB)")
    ax.set_ylim(top=ax.get_ylim()[1] * 1.05)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def plot_repeat_panels(series, axes=None):
    """Time, achieved FLOP/s and achieved bandwidth against the repeat count ``R``.

    ``series``: ``(label, repeats, seconds, flops, nbytes)`` tuples, measured or modelled.
    Returns the three axes.
    """
    import matplotlib.pyplot as plt

    if not series:
        raise ValueError("series must hold at least one (label, repeats, seconds, flops, nbytes) tuple")
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(12, 3.4), facecolor="white", layout="constrained")
    panels = [("time per run (s)", lambda s, f, b: s), ("achieved FLOP/s", lambda s, f, b: f / s),
              ("achieved bandwidth (byte/s)", lambda s, f, b: b / s)]
    for ax, (title, value) in zip(axes, panels):
        for i, (label, repeats, seconds, flops, nbytes) in enumerate(series):
            seconds, flops, nbytes = (np.asarray(v, dtype=float) for v in (seconds, flops, nbytes))
            ax.loglog(repeats, value(seconds, flops, nbytes), "o-", ms=3, color=_COLORS[i % len(_COLORS)], label=label)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("repeats R")
        ax.set_xscale("log", base=2)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].legend(fontsize=8)
    return axes
