"""The one plotting layer under every figure and explorer: axes, colours, labels, grid, legend.

Figures are split by kind (``plot_rooflines``, ``plot_memory``, ``plot_trends``,
``plot_sweeps``); each draws on one axes (or a row of panels), takes SI units and
returns what it drew on.
"""

from __future__ import annotations

#: Line colours, in the order a figure's series take them.
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
#: Stacked-bar colours of the memory components.
MEMORY_COLORS = {"weights": "#1f77b4", "gradients": "#9467bd", "optimizer": "#ff7f0e", "activations": "#2ca02c",
                 "KV cache": "#d62728"}


def color(i: int) -> str:
    """The colour of a figure's ``i``-th series."""
    return PALETTE[i % len(PALETTE)]


def new_axes(figsize=(7.0, 4.2)):
    """A figure and axes with a white background (legible on light and dark pages)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize, facecolor="white", layout="constrained")
    ax.set_facecolor("white")
    return fig, ax


def new_panels(n: int, figsize=(12.0, 3.4)):
    """A figure with ``n`` side-by-side axes on a white background."""
    import matplotlib.pyplot as plt

    return plt.subplots(1, n, figsize=figsize, facecolor="white", layout="constrained")


def finish(ax, xlabel=None, ylabel=None, title=None, legend="upper left", legend_size=8, title_size=10,
           grid="major", grid_axis="both", legend_outside=False):
    """Axis labels, title, a light grid and the legend (``legend=None``: none). Returns ``ax``."""
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=title_size)
    ax.grid(True, which=grid, axis=grid_axis, alpha=0.3)
    if legend and legend_outside:
        ax.legend(fontsize=legend_size, loc=legend, bbox_to_anchor=(1.01, 1.0))
    elif legend:
        ax.legend(fontsize=legend_size, loc=legend)
    return ax
