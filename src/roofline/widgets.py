"""Interactive explorers (ipywidgets) that also render as a static figure in the HTML book.

An explorer's display bundle carries both the live widget and a PNG of its
default state. Jupyter shows the widget; the book is configured to drop the
widget mime type, so the HTML page shows the PNG instead of a dead widget.
"""

from __future__ import annotations

import base64
import io

import numpy as np

from .core import bound_by
from .hardware import get_chip, list_chips
from .models import list_models
from .ops import critical_batch_size, matmul
from .decode import decode_step_time, model_kv_cache_bytes
from .measure import repeat_knee, repeat_model
from .plot_memory import plot_memory_bars
from .plot_rooflines import plot_roofline
from .plot_style import finish, new_axes
from .plot_sweeps import plot_serving
from .serving import request_stream, simulate
from .training import MODEL_STATE_BYTES, ZERO_STAGES, recompute_flops_overhead, training_memory
from .transformer import parameter_count
from .units import dtype_bytes, format_intensity, format_time

_POWERS_OF_TWO = [2**k for k in range(0, 17)]
#: The serving explorer's request stream: how many requests, and prompt lengths (tokens) long or short.
SERVING_REQUESTS = 150
SERVING_PROMPTS = {True: (1024, 16384), False: (128, 2048)}


def matmul_summary(chip_id, dtype, B, D, F) -> dict:
    """Roofline figures for ``X[B, D] @ W[D, F]`` in ``dtype`` on a chip (all in SI units)."""
    chip = get_chip(chip_id)
    peak, bandwidth = chip.peak_flops(dtype), chip.hbm_bandwidth
    cost = matmul(B, D, F, dtype, dtype, dtype)
    t = cost.bounds(peak, bandwidth)
    return {
        "flops": cost.flops,
        "nbytes": cost.nbytes,
        "intensity": cost.intensity,
        "ridge": chip.ridge_intensity(dtype),
        "critical_batch": critical_batch_size(peak, bandwidth, dtype),
        "t_math": t.t_math,
        "t_memory": t.t_memory,
        "lower": t.lower,
        "upper": t.upper,
        "bound": bound_by(cost.intensity, peak, bandwidth),
        "fraction_of_peak": cost.flops / t.lower / peak,
    }


def draw_matmul_explorer(chip_id, dtype, B, D, F, ax=None):
    """Draw the chip's roofline with the matmul placed on it; title summarises the bounds."""
    s = matmul_summary(chip_id, dtype, B, D, F)
    ax = plot_roofline(chip_id, dtype, points=[(f"matmul B={B}", s["intensity"])], ax=ax)
    ax.set_title(
        f"B={B}, D={D}, F={F}: {format_intensity(s['intensity'])}, {s['bound']}-bound, "
        f"T >= {format_time(s['lower'])} ({s['fraction_of_peak']:.0%} of peak)",
        fontsize=9,
    )
    return ax


class Explorer:
    """A live widget plus a static PNG of its default state, displayed as one output."""

    def __init__(self, widget, png: bytes):
        self.widget = widget
        self.png = png

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = self.widget._repr_mimebundle_() or {}
        bundle["image/png"] = base64.b64encode(self.png).decode("ascii")
        return bundle


def _live(controls: dict, draw, per_row) -> Explorer:
    """An explorer whose figure ``draw(**values, ax=ax)`` follows the ``controls``.

    Controls are laid out in rows of ``per_row`` (a number, or one number per row).
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt

    out = w.Output()

    def values():
        return {name: control.value for name, control in controls.items()}

    def redraw(*_):
        out.clear_output(wait=True)
        with out:
            _, ax = new_axes()
            draw(**values(), ax=ax)
            plt.show()

    for control in controls.values():
        control.observe(redraw, names="value")
    redraw()
    c = list(controls.values())
    sizes = [per_row] * -(-len(c) // per_row) if isinstance(per_row, int) else list(per_row)
    starts = np.cumsum([0, *sizes])
    rows = [w.HBox(c[a:b]) for a, b in zip(starts, starts[1:]) if a < len(c)]
    return Explorer(w.VBox([*rows, out]), _png(lambda ax: draw(**values(), ax=ax)))


def _png(draw, *args) -> bytes:
    import matplotlib.pyplot as plt

    fig, ax = new_axes()
    draw(*args, ax=ax)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def matmul_explorer(chip_id="tpu-v5e", dtype="bf16", B=256, D=4096, F=4096) -> Explorer:
    """Explore a matmul on a roofline: choose chip, dtype, B, D and F (powers of two)."""
    import ipywidgets as w

    controls = {
        "chip_id": w.Dropdown(options=list_chips(), value=chip_id, description="chip"),
        "dtype": w.Dropdown(options=sorted(get_chip(chip_id).dense_flops), value=dtype, description="dtype"),
        **{name: w.SelectionSlider(options=_POWERS_OF_TWO, value=value, description=name, continuous_update=False)
           for name, value in (("B", B), ("D", D), ("F", F))},
    }

    def on_chip(change):  # observed before the redraw: the dtype list follows the chip first
        available = sorted(get_chip(change["new"]).dense_flops)
        controls["dtype"].options = available
        controls["dtype"].value = dtype if dtype in available else available[0]

    controls["chip_id"].observe(on_chip, names="value")
    return _live(controls, draw_matmul_explorer, per_row=(2, 3))


def draw_training_memory(model, recipe, recompute, zero_stage, n_devices, batch, seq_len, chip_id, ax=None):
    """Per-device training memory of a setup beside the plain one (no ZeRO, no recomputation)."""
    capacity = get_chip(chip_id).hbm_capacity
    setups = [("plain data parallel", training_memory(model, batch, seq_len, recipe)),
              ("this setup", training_memory(model, batch, seq_len, recipe, recompute, zero_stage, n_devices))]
    ax = plot_memory_bars([(label, m._asdict()) for label, m in setups], ax=ax, limit=capacity,
                          limit_label=f"{chip_id} memory")
    total = setups[1][1].total
    verdict = "fits" if total <= capacity else "does not fit"
    extra = recompute_flops_overhead(model, seq_len, recompute)
    ax.set_title(f"{model} ({parameter_count(model) / 1e9:.3g}B params), {recipe}, ZeRO-{zero_stage} on {n_devices}\n"
                 f"{total / 1e9:.3g} GB per device: {verdict} in {capacity / 1e9:.3g} GB; recomputation +{extra:.0%} FLOPs",
                 fontsize=9)
    return ax


def training_memory_explorer(model="gpt-2", recipe="mixed-adam", recompute="none", zero_stage=0,
                             n_devices=1, batch=8, seq_len=1024, chip_id="a100-80gb") -> Explorer:
    """Explore per-device training memory: model, precision and optimizer, recomputation, ZeRO, devices."""
    import ipywidgets as w

    controls = {
        "model": w.Dropdown(options=list_models(), value=model, description="model"),
        "recipe": w.Dropdown(options=list(MODEL_STATE_BYTES), value=recipe, description="precision"),
        "recompute": w.Dropdown(options=["none", "selective", "full"], value=recompute, description="recompute"),
        "zero_stage": w.Dropdown(options=list(ZERO_STAGES), value=zero_stage, description="ZeRO stage"),
        "n_devices": w.SelectionSlider(options=[2**k for k in range(11)], value=n_devices, description="devices",
                                       continuous_update=False),
        "batch": w.SelectionSlider(options=_POWERS_OF_TWO[:9], value=batch, description="micro-batch",
                                   continuous_update=False),
        "seq_len": w.SelectionSlider(options=_POWERS_OF_TWO[7:16], value=seq_len, description="sequence",
                                     continuous_update=False),
        "chip_id": w.Dropdown(options=list_chips(), value=chip_id, description="chip"),
    }
    return _live(controls, draw_training_memory, per_row=2)


def draw_repeat_model(n, overhead, bandwidth, peak_flops, ax=None):
    """Achieved FLOP/s of the unfused and fused repeat benchmark under the overhead + roofline model."""
    repeats, flops, unfused, fused = repeat_model(n, overhead, bandwidth, peak_flops)
    if ax is None:
        _, ax = new_axes()
    ax.loglog(repeats, flops / unfused, "o-", ms=3, label="unfused (one call per multiply)")
    ax.loglog(repeats, flops / fused, "s-", ms=3, label="fused (cache-sized blocks)")
    ax.axhline(peak_flops, color="gray", ls=":", lw=1)
    knee = repeat_knee(peak_flops, bandwidth)
    ax.axvline(knee, color="gray", ls="--", lw=1)
    ax.set_xscale("log", base=2)
    gain = unfused[-1] / fused[-1]
    return finish(ax, "repeats R", "achieved FLOP/s", f"n = {n:,}: overhead {overhead * 1e6:.2g} us per call, knee at "
                  f"R = {knee:.3g}; fusion at R = {repeats[-1]}: {gain:.3g}x faster", legend="lower right", title_size=9)
    return ax


def overhead_explorer(n=2**24, overhead=1e-6, bandwidth=2e10, peak_flops=1e10) -> Explorer:
    """Explore the repeat benchmark under ``t = calls * overhead + max(bytes / bw, flops / peak)``."""
    import ipywidgets as w

    controls = {
        "n": w.SelectionSlider(options=[4**k for k in range(14)], value=n, description="elements",
                               continuous_update=False),
        "overhead": w.FloatLogSlider(value=overhead, base=10, min=-8, max=-3, description="overhead (s)",
                                     continuous_update=False),
        "bandwidth": w.FloatLogSlider(value=bandwidth, base=10, min=9, max=13, description="byte/s",
                                      continuous_update=False),
        "peak_flops": w.FloatLogSlider(value=peak_flops, base=10, min=9, max=15, description="FLOP/s",
                                       continuous_update=False),
    }
    return _live(controls, draw_repeat_model, per_row=2)


def draw_decode_memory(model, chip_id, w_dtype, kv_dtype, batch, context_len, ax=None):
    """Weights and KV cache against the chip's memory, with the decode-step bound in the title."""
    chip = get_chip(chip_id)
    weights = parameter_count(model) * dtype_bytes(w_dtype)
    kv = model_kv_cache_bytes(model, context_len, batch, kv_dtype)
    ax = plot_memory_bars([(f"{model}, batch {batch} x {context_len} tokens", {"weights": weights, "KV cache": kv})],
                          ax=ax, limit=chip.hbm_capacity, limit_label=f"{chip_id} memory")
    t = decode_step_time(model, chip_id, batch, context_len, w_dtype, kv_dtype,
                         compute_dtype=w_dtype if w_dtype in chip.dense_flops else "bf16")
    fits = "fits" if weights + kv <= chip.hbm_capacity else "does NOT fit"
    ax.set_title(f"{(weights + kv) / 1e9:.3g} GB: {fits}; step >= {format_time(t.time)} ({t.bound}-bound)\n"
                 f"{t.tokens_per_s:,.0f} tokens/s in total, {t.tokens_per_s_per_seq:,.1f} per sequence", fontsize=9)
    return ax


def decode_explorer(model="llama-3-8b", chip_id="h100-sxm", w_dtype="bf16", kv_dtype="bf16", batch=16,
                    context_len=4096) -> Explorer:
    """Explore LLM decoding: memory (weights + KV cache) against capacity, and the tokens/s bound."""
    import ipywidgets as w

    controls = {
        "model": w.Dropdown(options=list_models(), value=model, description="model"),
        "chip_id": w.Dropdown(options=list_chips(), value=chip_id, description="chip"),
        "w_dtype": w.Dropdown(options=["bf16", "fp8", "int8", "int4", "nvfp4", "mxfp4"], value=w_dtype,
                              description="weights"),
        "kv_dtype": w.Dropdown(options=["bf16", "fp8", "int8"], value=kv_dtype, description="KV cache"),
        "batch": w.SelectionSlider(options=_POWERS_OF_TWO[:11], value=batch, description="batch",
                                   continuous_update=False),
        "context_len": w.SelectionSlider(options=_POWERS_OF_TWO[7:18], value=context_len, description="context",
                                         continuous_update=False),
    }
    return _live(controls, draw_decode_memory, per_row=2)


def draw_serving(model, chip_id, rate, max_batch, chunk_size, long_prompts, n_requests=SERVING_REQUESTS, seed=0,
                 ax=None):
    """Simulate one request stream served three ways and plot tokens delivered over time."""
    prompts = SERVING_PROMPTS[bool(long_prompts)]
    requests = request_stream(n_requests, rate, prompts, (16, 512), seed)
    try:
        results = {
            "static": simulate(model, chip_id, requests, "static", max_batch),
            "in-flight": simulate(model, chip_id, requests, "inflight", max_batch),
            f"in-flight, chunks of {chunk_size}": simulate(model, chip_id, requests, "inflight", max_batch, chunk_size),
        }
    except ValueError as error:  # e.g. the model does not fit on the chip: say so in the figure
        if ax is None:
            _, ax = new_axes()
        ax.text(0.5, 0.5, str(error), ha="center", va="center", wrap=True, fontsize=9, transform=ax.transAxes)
        return ax
    ax = plot_serving(results, ax=ax)
    ax.set_title(f"{model} on {chip_id}: {n_requests} requests at {rate:g}/s, prompts {prompts[0]:,}-{prompts[1]:,} "
                 f"tokens, up to {max_batch} at once", fontsize=9)
    return ax


def serving_explorer(model="llama-3-8b", chip_id="h100-sxm", rate=20.0, max_batch=32, chunk_size=512,
                     long_prompts=False) -> Explorer:
    """Explore serving: static vs in-flight batching vs chunked prefill on a simulated request stream."""
    import ipywidgets as w

    chips = [c for c in list_chips() if "bf16" in get_chip(c).dense_flops]
    controls = {
        "model": w.Dropdown(options=list_models(), value=model, description="model"),
        "chip_id": w.Dropdown(options=chips, value=chip_id, description="chip"),
        "rate": w.SelectionSlider(options=[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0], value=rate,
                                  description="requests/s", continuous_update=False),
        "max_batch": w.SelectionSlider(options=_POWERS_OF_TWO[:9], value=max_batch, description="max batch",
                                       continuous_update=False),
        "chunk_size": w.SelectionSlider(options=_POWERS_OF_TWO[6:15], value=chunk_size, description="chunk",
                                        continuous_update=False),
        "long_prompts": w.Checkbox(value=long_prompts, description="long prompts ({:,}-{:,})".format(*SERVING_PROMPTS[True])),
    }
    return _live(controls, draw_serving, per_row=3)
