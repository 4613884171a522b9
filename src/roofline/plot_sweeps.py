"""Sweep figures: a cost, a time or a rate against one swept parameter (length, repeats, batch,
chunk size, cache size, time), one line per configuration."""

from __future__ import annotations

import numpy as np

from .longcontext import CACHE_POLICIES, SinkExperiment, best_split_k, split_k_decode_time
from .plot_style import color, finish, new_axes, new_panels
from .prefix_cache import replay_prefix_cache
from .serving import chunked_prefill
from .transformer import decoder_cost, encoder_cost, roofline_latency
from .units import check_positive, format_time


def plot_inference_profiles(encoders, decoder, seq_lens, chip, dtype="fp16"):
    """The four panels of an encoder/decoder comparison against sequence length (batch 1).

    FLOPs, bytes moved, arithmetic intensity and roofline latency on ``chip``, the last
    normalised to the first encoder at the shortest length. Returns the figure.
    """
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
    fig, axes = new_panels(4, figsize=(12, 3.2))
    for ax, (title, value) in zip(axes, panels):
        for i, (name, cost) in enumerate(costs.items()):
            ax.loglog(seq_lens, value(cost), "o-", color=color(i), ms=3, label=name)
        ax.set_xticks(seq_lens, [f"{n:g}" for n in seq_lens], fontsize=8)
        ax.xaxis.set_minor_locator(NullLocator())
        finish(ax, "sequence length", title=title, legend="best" if ax is axes[0] else None)
    return fig


def plot_repeat_panels(series, axes=None):
    """Time, achieved FLOP/s and achieved bandwidth against the repeat count ``R``.

    ``series``: ``(label, repeats, seconds, flops, nbytes)`` tuples, measured or modelled.
    Returns the three axes.
    """
    if not series:
        raise ValueError("series must hold at least one (label, repeats, seconds, flops, nbytes) tuple")
    if axes is None:
        _, axes = new_panels(3)
    panels = [("time per run (s)", lambda s, f, b: s), ("achieved FLOP/s", lambda s, f, b: f / s),
              ("achieved bandwidth (byte/s)", lambda s, f, b: b / s)]
    for ax, (title, value) in zip(axes, panels):
        for i, (label, repeats, seconds, flops, nbytes) in enumerate(series):
            seconds, flops, nbytes = (np.asarray(v, dtype=float) for v in (seconds, flops, nbytes))
            ax.loglog(repeats, value(seconds, flops, nbytes), "o-", ms=3, color=color(i), label=label)
        ax.set_xscale("log", base=2)
        finish(ax, "repeats R", title=title, legend="best" if ax is axes[0] else None)
    return axes


def plot_sink_attention(experiment: SinkExperiment, window=64, ax=None):
    """The last query's attention under each cache policy: the first positions and the last ``window``."""
    if ax is None:
        _, ax = new_axes()
    n = len(experiment.weights["full"])
    shown = np.r_[0:8, n - window:n]
    x = np.arange(len(shown))
    for i, policy in enumerate(CACHE_POLICIES):
        w = experiment.weights[policy][shown]
        ax.plot(x, np.where(w > 0, w, np.nan), "o-", ms=3, color=color(i), alpha=0.8,
                label=f"{policy} (mean output error {np.mean(experiment.error[policy]):.1%})")
    ax.set_yscale("log")
    ax.set_ylim(1e-6, 1.5)
    ax.axvline(7.5, color="grey", ls=":", lw=1)
    ax.set_xticks([0, 7, 8 + window // 2, len(shown) - 1], ["0", "7", str(n - window // 2), str(n - 1)])
    title = f"Evicting the first tokens moves their {np.mean(experiment.sink_mass):.0%} share onto recent ones"
    return finish(ax, "key position (the first 8, then the most recent; the middle is cut out)",
                   "attention probability", title, legend="lower right")


def plot_split_k(model, chip, contexts, batches, ax=None):
    """Speed-up of the best split over no split, against batch, for several context lengths."""
    if ax is None:
        _, ax = new_axes()
    for i, T in enumerate(contexts):
        speedup = [split_k_decode_time(model, chip, T, b).time / best_split_k(model, chip, T, b).time for b in batches]
        ax.plot(batches, speedup, "o-", ms=3, color=color(i), label=f"context {T:,}")
    ax.set_xscale("log", base=2)
    return finish(ax, "batch (sequences)", "decode attention speed-up from splitting K/V",
                   f"{model} on {chip}: splitting pays only while batch x KV heads < SMs", legend="upper right")


def plot_serving(results: dict, ax=None):
    """Tokens delivered over time for each ``{label: ServingResult}`` of :func:`~roofline.serving.simulate`."""
    if ax is None:
        _, ax = new_axes()
    for i, (label, r) in enumerate(results.items()):
        times = np.sort(np.concatenate([np.asarray(t.token_times) for t in r.traces]))
        p = r.percentiles()
        ax.plot(times, np.arange(1, times.size + 1), color=color(i),
                label=f"{label}: {r.throughput:,.0f} tok/s, TTFT p99 {format_time(p['ttft'][99])}, "
                      f"ITL p99 {format_time(p['itl'][99])}, padding {r.padding_fraction:.0%}")
    return finish(ax, "time (s)", "output tokens delivered", legend_size=7)


def plot_chunked_prefill(model, chip, prompt_len, chunks, n_decode=16, decode_context=2048, latency_limit=None, ax=None):
    """Time to first token of a long prompt and the decode latency of the others, against chunk size."""
    if ax is None:
        _, ax = new_axes()
    rows = [chunked_prefill(model, chip, prompt_len, int(c), n_decode, decode_context) for c in chunks]
    ax.loglog(chunks, [r.ttft * 1e3 for r in rows], "o-", ms=3, color=color(0),
              label="time to first token of the long prompt")
    ax.loglog(chunks, [r.decode_latency * 1e3 for r in rows], "s-", ms=3, color=color(1),
              label=f"per-token latency of {n_decode} decoding sequences")
    if latency_limit is not None:
        ax.axhline(latency_limit * 1e3, color="black", ls="--", lw=1, label=f"latency limit {format_time(latency_limit)}")
    ax.set_xscale("log", base=2)
    return finish(ax, "chunk size (prompt tokens per iteration)", "milliseconds",
                   f"{model} on {chip}: a {prompt_len:,}-token prompt in chunks")


def plot_prefix_reuse(model, prompts, capacities, block_size=16, ax=None):
    """Block hit rate and share of prefill FLOPs saved against the prefix cache's size."""
    if ax is None:
        _, ax = new_axes()
    reports = [replay_prefix_cache(model, prompts, block_size, int(c)) for c in capacities]
    ax.plot(capacities, [r.hit_rate for r in reports], "o-", ms=3, color=color(0), label="blocks found in the cache")
    ax.plot(capacities, [r.prefill_flops_saved / r.prefill_flops for r in reports], "s-", ms=3, color=color(2),
            label="prefill FLOPs saved")
    ax.set_xscale("log", base=2)
    ax.set_ylim(0, 1)
    return finish(ax, f"cache capacity (blocks of {block_size} tokens)", "fraction",
                   f"Prefix cache on {len(prompts)} chat requests")
