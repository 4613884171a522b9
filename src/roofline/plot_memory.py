"""Memory figures: what a workload keeps in memory against what the chip holds (bytes in, GB shown)."""

from __future__ import annotations

import numpy as np

from .longcontext import streaming_cost
from .plot_style import MEMORY_COLORS, color, finish, new_axes


def plot_memory_bars(bars, ax=None, limit=None, limit_label="memory limit", title=None):
    """Stacked bars of memory components, in bytes (drawn in GB).

    ``bars``: ``(label, {component: bytes})`` pairs with components among weights,
    gradients, optimizer, activations and KV cache. ``limit``: bytes, one value for a horizontal
    line or one per bar for a step line (the paper draws each model's GPU memory).
    """
    if not bars:
        raise ValueError("bars must hold at least one (label, components) pair")
    if ax is None:
        _, ax = new_axes()
    x = np.arange(len(bars))
    bottom = np.zeros(len(bars))
    for component, shade in MEMORY_COLORS.items():
        heights = np.array([parts.get(component, 0.0) for _, parts in bars]) / 1e9
        if heights.any():
            ax.bar(x, heights, bottom=bottom, color=shade, label=component, width=0.6)
            bottom += heights
    for xi, total in zip(x, bottom):
        ax.text(xi, total, f"{total:,.0f}" if total >= 100 else f"{total:.3g}", ha="center", va="bottom", fontsize=8)
    if limit is not None:
        limits = np.broadcast_to(np.asarray(limit, dtype=float) / 1e9, x.shape)
        ax.step(np.append(x - 0.5, x[-1] + 0.5), np.append(limits, limits[-1]), where="post",
                color="black", ls="--", lw=1.2, label=limit_label)
    ax.set_xticks(x, [label for label, _ in bars], rotation=30, ha="right", fontsize=8)
    ax.set_ylim(top=ax.get_ylim()[1] * 1.05)
    return finish(ax, ylabel="memory (GB)", title=title, grid_axis="y", legend_outside=True)


def plot_streaming_memory(model, n_tokens, cache_size, ax=None):
    """KV-cache GB against generated tokens: full attention grows, a fixed cache plateaus."""
    if ax is None:
        _, ax = new_axes()
    for i, (policy, label) in enumerate([("full", "full attention"), ("sinks", f"window + sinks ({cache_size:,} tokens)")]):
        cost = streaming_cost(model, n_tokens, policy, cache_size)
        ax.plot(np.arange(1, n_tokens + 1), cost.kv_bytes / 1e9, color=color(i), label=label)
    return finish(ax, "tokens generated", "KV cache of one sequence (GB)", f"{model}: KV memory over a long generation")
