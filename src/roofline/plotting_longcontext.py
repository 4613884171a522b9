"""Figures of the long-context chapter: each draws on one axes and returns it."""

from __future__ import annotations

import numpy as np

from .longcontext import CACHE_POLICIES, SinkExperiment, best_split_k, split_k_decode_time, streaming_cost
from .plotting import _COLORS, new_axes
from .prefix_cache import replay_prefix_cache
from .serving import chunked_prefill
from .units import format_time


def _finish(ax, xlabel, ylabel, title=None, legend_size=8, legend_loc="upper left"):
    """Axis labels, title, light grid and legend."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=legend_size, loc=legend_loc)
    return ax


def plot_streaming_memory(model, n_tokens, cache_size, ax=None):
    """KV-cache GB against generated tokens: full attention grows, a fixed cache plateaus."""
    if ax is None:
        _, ax = new_axes()
    for i, (policy, label) in enumerate([("full", "full attention"), ("sinks", f"window + sinks ({cache_size:,} tokens)")]):
        cost = streaming_cost(model, n_tokens, policy, cache_size)
        ax.plot(np.arange(1, n_tokens + 1), cost.kv_bytes / 1e9, color=_COLORS[i], label=label)
    return _finish(ax, "tokens generated", "KV cache of one sequence (GB)", f"{model}: KV memory over a long generation")


def plot_sink_attention(experiment: SinkExperiment, window=64, ax=None):
    """The last query's attention under each cache policy: the first positions and the last ``window``."""
    if ax is None:
        _, ax = new_axes()
    n = len(experiment.weights["full"])
    shown = np.r_[0:8, n - window:n]
    x = np.arange(len(shown))
    for i, policy in enumerate(CACHE_POLICIES):
        w = experiment.weights[policy][shown]
        ax.plot(x, np.where(w > 0, w, np.nan), "o-", ms=3, color=_COLORS[i], alpha=0.8,
                label=f"{policy} (mean output error {np.mean(experiment.error[policy]):.1%})")
    ax.set_yscale("log")
    ax.set_ylim(1e-6, 1.5)
    ax.axvline(7.5, color="grey", ls=":", lw=1)
    ax.set_xticks([0, 7, 8 + window // 2, len(shown) - 1], ["0", "7", str(n - window // 2), str(n - 1)])
    title = f"Evicting the first tokens moves their {np.mean(experiment.sink_mass):.0%} share onto recent ones"
    return _finish(ax, "key position (the first 8, then the most recent; the middle is cut out)",
                   "attention probability", title, legend_loc="lower right")


def plot_split_k(model, chip, contexts, batches, ax=None):
    """Speed-up of the best split over no split, against batch, for several context lengths."""
    if ax is None:
        _, ax = new_axes()
    for i, T in enumerate(contexts):
        speedup = [split_k_decode_time(model, chip, T, b).time / best_split_k(model, chip, T, b).time for b in batches]
        ax.plot(batches, speedup, "o-", ms=3, color=_COLORS[i % len(_COLORS)], label=f"context {T:,}")
    ax.set_xscale("log", base=2)
    return _finish(ax, "batch (sequences)", "decode attention speed-up from splitting K/V",
                   f"{model} on {chip}: splitting pays only while batch x KV heads < SMs", legend_loc="upper right")


def plot_serving(results: dict, ax=None):
    """Tokens delivered over time for each ``{label: ServingResult}`` of :func:`~roofline.serving.simulate`."""
    if ax is None:
        _, ax = new_axes()
    for i, (label, r) in enumerate(results.items()):
        times = np.sort(np.concatenate([np.asarray(t.token_times) for t in r.traces]))
        p = r.percentiles()
        ax.plot(times, np.arange(1, times.size + 1), color=_COLORS[i % len(_COLORS)],
                label=f"{label}: {r.throughput:,.0f} tok/s, TTFT p99 {format_time(p['ttft'][99])}, "
                      f"ITL p99 {format_time(p['itl'][99])}, padding {r.padding_fraction:.0%}")
    return _finish(ax, "time (s)", "output tokens delivered", legend_size=7)


def plot_chunked_prefill(model, chip, prompt_len, chunks, n_decode=16, decode_context=2048, latency_limit=None, ax=None):
    """Time to first token of a long prompt and the decode latency of the others, against chunk size."""
    if ax is None:
        _, ax = new_axes()
    rows = [chunked_prefill(model, chip, prompt_len, int(c), n_decode, decode_context) for c in chunks]
    ax.loglog(chunks, [r.ttft * 1e3 for r in rows], "o-", ms=3, color=_COLORS[0],
              label="time to first token of the long prompt")
    ax.loglog(chunks, [r.decode_latency * 1e3 for r in rows], "s-", ms=3, color=_COLORS[1],
              label=f"per-token latency of {n_decode} decoding sequences")
    if latency_limit is not None:
        ax.axhline(latency_limit * 1e3, color="black", ls="--", lw=1, label=f"latency limit {format_time(latency_limit)}")
    ax.set_xscale("log", base=2)
    return _finish(ax, "chunk size (prompt tokens per iteration)", "milliseconds",
                   f"{model} on {chip}: a {prompt_len:,}-token prompt in chunks")


def plot_prefix_reuse(model, prompts, capacities, block_size=16, ax=None):
    """Block hit rate and share of prefill FLOPs saved against the prefix cache's size."""
    if ax is None:
        _, ax = new_axes()
    reports = [replay_prefix_cache(model, prompts, block_size, int(c)) for c in capacities]
    ax.plot(capacities, [r.hit_rate for r in reports], "o-", ms=3, color=_COLORS[0], label="blocks found in the cache")
    ax.plot(capacities, [r.prefill_flops_saved / r.prefill_flops for r in reports], "s-", ms=3, color=_COLORS[2],
            label="prefill FLOPs saved")
    ax.set_xscale("log", base=2)
    ax.set_ylim(0, 1)
    return _finish(ax, f"cache capacity (blocks of {block_size} tokens)", "fraction",
                   f"Prefix cache on {len(prompts)} chat requests")
