"""Trend figures: quantities over the years, with their fitted growth."""

from __future__ import annotations

import numpy as np

from .plot_style import color, finish, new_axes
from .trends import fit_growth, load_series
from .units import format_factor


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
        c = color(i)
        low, high = fit.growth_ci()
        label = (f"{SERIES_LABELS.get(name, name)}: {format_factor(fit.growth())} / 2 yrs "
                 f"(95% CI {format_factor(low)}-{format_factor(high)})")
        ax.semilogy(years, values / values[0], "o", color=c, ms=4, alpha=0.8)
        x = np.linspace(years.min(), years.max(), 50)
        ax.semilogy(x, fit.predict(x) / values[0], "-", color=c, lw=1.8, label=label)
    return finish(ax, "year", "growth since the first point", title)
