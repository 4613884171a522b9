import base64

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import roofline as rl  # noqa: E402
from roofline.widgets import (  # noqa: E402
    draw_matmul_explorer,
    draw_training_memory,
    matmul_explorer,
    matmul_summary,
    training_memory_explorer,
)


def teardown_function():
    plt.close("all")


def test_roofline_plot_draws_each_chip_and_marks_the_ridge():
    ax = rl.plot_roofline(["tpu-v5e", "h100-sxm"], points=[("dot", 0.5), ("measured", 100, 1e13)])
    lines = [l for l in ax.get_lines() if l.get_label() in ("Google TPU v5e (bf16)", "NVIDIA H100 SXM (bf16)")]
    assert len(lines) == 2
    v5e_y = lines[0].get_ydata()
    assert v5e_y.max() == pytest.approx(1.97e14)
    ridges = sorted(l.get_xdata()[0] for l in ax.get_lines() if l.get_linestyle() == ":")
    assert ridges == pytest.approx(sorted([rl.get_chip("tpu-v5e").ridge_intensity(),
                                          rl.get_chip("h100-sxm").ridge_intensity()]))
    dots = [l for l in ax.get_lines() if l.get_marker() == "o"]
    assert dots[0].get_ydata()[0] == pytest.approx(0.5 * 8.19e11)  # placed on the first roof
    assert dots[1].get_ydata()[0] == 1e13  # placed at the measured rate
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"


def test_roofline_plot_accepts_custom_roofs():
    ax = rl.plot_roofline(("my chip", 1e12, 1e9), intensity_range=(1, 1e4))
    assert ax.get_lines()[0].get_ydata().max() == pytest.approx(1e12)


@pytest.mark.parametrize("kwargs, name", [
    (dict(chips=["nope"]), "chip_id"),
    (dict(chips=[]), "chips"),
    (dict(chips=[42]), "chips"),
    (dict(chips="h100-sxm", intensity_range=(10, 1)), "intensity_range"),
    (dict(chips="h100-sxm", points=[("a",)]), "points"),
    (dict(chips="a100-80gb", dtype="fp8"), "fp8"),
])
def test_roofline_plot_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        rl.plot_roofline(**kwargs)


def test_hierarchical_plot_has_one_roof_per_level():
    points = rl.hierarchical_roofline(1e12, {"L1": 1e11, "HBM": 1e9}, {"L1": 2e13, "HBM": 1.5e12}, 3e14)
    ax = rl.plot_hierarchical_roofline(points, 3e14)
    assert {l.get_label() for l in ax.get_lines()} >= {"L1 roof", "HBM roof"}


def test_matmul_summary_agrees_with_the_core_functions():
    s = matmul_summary("h100-sxm", "bf16", 64, 8192, 8192)
    assert s["intensity"] == pytest.approx(rl.matmul_intensity(64, 8192, 8192))
    assert s["bound"] == "memory"
    assert s["fraction_of_peak"] == pytest.approx(s["intensity"] / s["ridge"])
    assert matmul_summary("h100-sxm", "bf16", 4096, 8192, 8192)["bound"] == "compute"


def test_explorer_shows_a_widget_in_jupyter_and_a_png_in_html():
    explorer = matmul_explorer("tpu-v5e", "bf16", 256, 4096, 4096)
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    png = base64.b64decode(bundle["image/png"])
    assert png.startswith(b"\x89PNG")
    assert len(png) < 200_000


def test_explorer_redraws_and_follows_the_chip():
    explorer = matmul_explorer("h100-sxm", "fp8", 256, 4096, 4096)
    chip, dtype = explorer.widget.children[0].children
    chip.value = "a100-80gb"  # no fp8 on the A100: the dtype falls back to one it has
    assert dtype.value in rl.get_chip("a100-80gb").dense_flops
    assert "fp8" not in dtype.options


def test_draw_explorer_title_states_the_regime():
    _, ax = plt.subplots()
    draw_matmul_explorer("tpu-v5e", "bf16", 8, 4096, 4096, ax=ax)
    assert "memory-bound" in ax.get_title()


def test_growth_trend_plot_legend_gives_the_fitted_factor():
    ax = rl.plot_growth_trends(["peak_flops", "dram_bandwidth"])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    expected = rl.fit_series("dram_bandwidth").growth()
    assert labels[1].startswith(f"DRAM bandwidth: {expected:.3g}x / 2 yrs")
    # normalised to the earliest point: each series' first marker sits at 1
    markers = [line for line in ax.get_lines() if line.get_linestyle() == "None"]
    assert [line.get_ydata()[0] for line in markers] == [1.0, 1.0]
    with pytest.raises(ValueError, match="name"):
        rl.plot_growth_trends(["moores_law"])


def test_inference_profiles_have_four_panels_with_the_decoder_below_one_flop_per_byte():
    fig = rl.plot_inference_profiles(["bert-base"], "gpt-2", [128, 512], "a100-80gb")
    assert len(fig.axes) == 4
    intensity = {line.get_label(): line.get_ydata() for line in fig.axes[2].get_lines()}
    assert max(intensity["gpt-2"]) < 1.5 < min(intensity["bert-base"])
    latency = {line.get_label(): line.get_ydata() for line in fig.axes[3].get_lines()}
    assert latency["bert-base"][0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="seq_lens"):
        rl.plot_inference_profiles(["bert-base"], "gpt-2", [128], "a100-80gb")


def test_memory_bars_stack_components_and_draw_the_limit():
    ax = rl.plot_memory_bars([("a", {"weights": 1e9, "activations": 2e9}), ("b", {"weights": 4e9})], limit=[3e9, 6e9])
    tops = sorted(p.get_y() + p.get_height() for p in ax.patches if p.get_height() > 0)
    assert tops == pytest.approx([1.0, 3.0, 4.0])  # bytes in, GB drawn
    assert ax.get_ylabel() == "memory (GB)"
    assert ax.get_legend() is not None and "memory limit" in [t.get_text() for t in ax.get_legend().get_texts()]
    with pytest.raises(ValueError, match="bars"):
        rl.plot_memory_bars([])


def test_training_explorer_says_whether_the_setup_fits():
    _, ax = plt.subplots()
    draw_training_memory("gpt-3-175b", "mixed-adam", "full", 3, 1024, 1, 2048, "h100-sxm", ax=ax)
    assert "fits in 80 GB" in ax.get_title() and "+33% FLOPs" in ax.get_title()
    _, ax = plt.subplots()
    draw_training_memory("gpt-3-175b", "mixed-adam", "none", 0, 1, 1, 2048, "h100-sxm", ax=ax)
    assert "does not fit" in ax.get_title()
    explorer = training_memory_explorer()
    assert "application/vnd.jupyter.widget-view+json" in explorer._repr_mimebundle_()
    rows = explorer.widget.children
    zero = rows[1].children[1]
    zero.value = 3  # the redraw after a change must not fail
    assert zero.value == 3


def test_repeat_panels_show_time_rate_and_bandwidth():
    r = [1, 2, 4]
    axes = rl.plot_repeat_panels([("model", r, [1.0, 1.0, 2.0], [10.0, 20.0, 40.0], [80.0, 80.0, 80.0])])
    assert [ax.get_title() for ax in axes] == ["time per run (s)", "achieved FLOP/s", "achieved bandwidth (byte/s)"]
    assert list(axes[1].get_lines()[0].get_ydata()) == [10.0, 20.0, 20.0]
    assert list(axes[2].get_lines()[0].get_ydata()) == [80.0, 80.0, 40.0]
    with pytest.raises(ValueError, match="series"):
        rl.plot_repeat_panels([])


def test_overhead_explorer_states_knee_and_fusion_gain():
    from roofline.measure import repeat_model
    from roofline.widgets import draw_repeat_model, overhead_explorer

    repeats, flops, unfused, fused = repeat_model(2**20, 0.0, 1e10, 1e11)
    # no overhead, memory-bound passes: unfused time is R passes of 8 bytes per element
    assert unfused == pytest.approx(repeats * 8 * 2**20 / 1e10)
    _, ax = plt.subplots()
    draw_repeat_model(2**20, 0.0, 1e10, 1e11, ax=ax)
    assert f"knee at R = {rl.repeat_knee(1e11, 1e10):.3g}" in ax.get_title()
    explorer = overhead_explorer()
    assert "application/vnd.jupyter.widget-view+json" in explorer._repr_mimebundle_()
    explorer.widget.children[0].children[1].value = 1e-4  # overhead slider: redraw must not fail


def test_decode_explorer_reports_fit_and_bound():
    from roofline.widgets import decode_explorer, draw_decode_memory

    _, ax = plt.subplots()
    draw_decode_memory("llama-3-8b", "h100-sxm", "bf16", "bf16", 16, 4096, ax=ax)
    t = rl.decode_step_time("llama-3-8b", "h100-sxm", 16, 4096)
    assert "fits" in ax.get_title() and rl.format_time(t.time) in ax.get_title() and "memory-bound" in ax.get_title()
    _, ax = plt.subplots()
    draw_decode_memory("llama-2-70b", "h100-sxm", "bf16", "bf16", 1, 4096, ax=ax)
    assert "does NOT fit" in ax.get_title()
    explorer = decode_explorer()
    assert "application/vnd.jupyter.widget-view+json" in explorer._repr_mimebundle_()
    explorer.widget.children[1].children[0].value = "fp8"  # weights dropdown: redraw must not fail


def test_serving_explorer_compares_three_schedulers_and_explains_a_misfit():
    from roofline.widgets import draw_serving, serving_explorer

    _, ax = plt.subplots()
    draw_serving("llama-3-8b", "h100-sxm", 20.0, 32, 512, False, n_requests=40, ax=ax)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert [s.split(":")[0] for s in labels] == ["static", "in-flight", "in-flight, chunks of 512"]
    assert all("tok/s" in s and "TTFT p99" in s for s in labels)
    _, ax = plt.subplots()
    draw_serving("llama-2-70b", "h100-sxm", 20.0, 32, 512, False, n_requests=5, ax=ax)
    assert "cannot fit" in ax.texts[0].get_text()
    explorer = serving_explorer(rate=50.0)
    assert "application/vnd.jupyter.widget-view+json" in explorer._repr_mimebundle_()
    explorer.widget.children[1].children[2].value = True  # long prompts: redraw must not fail


def test_long_context_figures_draw_their_series():
    assert len(rl.plot_streaming_memory("llama-2-7b", 5000, 1024).get_lines()) == 2
    sink = rl.plot_sink_attention(rl.attention_sink_experiment(n_tokens=512, cache_size=128, n_queries=4))
    assert [t.get_text().split(" ")[0] for t in sink.get_legend().get_texts()] == ["full", "window", "sinks"]
    assert len(rl.plot_split_k("llama-3-8b", "h100-sxm", [4096, 32768], [1, 4, 16]).get_lines()) == 2
    chunked = rl.plot_chunked_prefill("llama-3-8b", "h100-sxm", 4096, [256, 1024, 4096], latency_limit=0.02)
    assert len(chunked.get_lines()) == 3
    reuse = rl.plot_prefix_reuse("llama-3-8b", rl.chat_workload(5, 2, system_len=128), [4, 64])
    assert reuse.get_lines()[0].get_ydata()[1] >= reuse.get_lines()[0].get_ydata()[0]


def test_every_figure_takes_its_colours_from_one_palette():
    ax = rl.plot_roofline(["tpu-v5e", "h100-sxm"])
    roofs = [line for line in ax.get_lines() if line.get_label().endswith("(bf16)")]
    assert [line.get_color() for line in roofs] == [rl.color(0), rl.color(1)]
    assert rl.color(len(rl.plot_style.PALETTE)) == rl.color(0)
    fig = rl.plot_inference_profiles(["bert-base"], "gpt-2", [128, 512], "a100-80gb")
    assert [line.get_color() for line in fig.axes[0].get_lines()] == [rl.color(0), rl.color(1)]


def test_matmul_explorer_lays_out_chip_and_dtype_then_the_sizes():
    explorer = matmul_explorer("h100-sxm", "bf16", 256, 4096, 4096)
    first, second = explorer.widget.children[0].children, explorer.widget.children[1].children
    assert [c.description for c in first] == ["chip", "dtype"]
    assert [c.description for c in second] == ["B", "D", "F"]
