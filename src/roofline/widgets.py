"""Interactive explorers (ipywidgets) that also render as a static figure in the HTML book.

An explorer's display bundle carries both the live widget and a PNG of its
default state. Jupyter shows the widget; the book is configured to drop the
widget mime type, so the HTML page shows the PNG instead of a dead widget.
"""

from __future__ import annotations

import base64
import io

from .core import bound_by, time_bounds
from .hardware import get_chip, list_chips
from .ops import critical_batch_size, matmul
from .plotting import new_axes, plot_roofline
from .units import format_intensity, format_time

_POWERS_OF_TWO = [2**k for k in range(0, 17)]


def matmul_summary(chip_id, dtype, B, D, F) -> dict:
    """Roofline figures for ``X[B, D] @ W[D, F]`` in ``dtype`` on a chip (all in SI units)."""
    chip = get_chip(chip_id)
    peak, bandwidth = chip.peak_flops(dtype), chip.hbm_bandwidth
    cost = matmul(B, D, F, dtype, dtype, dtype)
    t = time_bounds(cost.flops, cost.nbytes, peak, bandwidth)
    return {
        "flops": cost.flops,
        "nbytes": cost.nbytes,
        "intensity": cost.intensity,
        "ridge": chip.ridge_intensity(dtype),
        "critical_batch": critical_batch_size(peak, bandwidth, dtype),
        "t_math": t.t_math,
        "t_comms": t.t_comms,
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
    import matplotlib.pyplot as plt

    chip = w.Dropdown(options=list_chips(), value=chip_id, description="chip")
    dtypes = w.Dropdown(options=sorted(get_chip(chip_id).dense_flops), value=dtype, description="dtype")
    sizes = {
        name: w.SelectionSlider(options=_POWERS_OF_TWO, value=value, description=name,
                                continuous_update=False)
        for name, value in (("B", B), ("D", D), ("F", F))
    }
    out = w.Output()

    def redraw(*_):
        out.clear_output(wait=True)
        with out:
            fig, ax = new_axes()
            draw_matmul_explorer(chip.value, dtypes.value, *(sizes[n].value for n in "BDF"), ax=ax)
            plt.show()

    def on_chip(change):
        available = sorted(get_chip(change["new"]).dense_flops)
        dtypes.options = available
        dtypes.value = dtype if dtype in available else available[0]
        redraw()

    chip.observe(on_chip, names="value")
    for control in (dtypes, *sizes.values()):
        control.observe(redraw, names="value")
    redraw()
    ui = w.VBox([w.HBox([chip, dtypes]), w.HBox(list(sizes.values())), out])
    return Explorer(ui, _png(draw_matmul_explorer, chip_id, dtype, B, D, F))
