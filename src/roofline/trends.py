"""Growth trends behind the memory wall: log-linear fits with confidence intervals.

Data: the points of Gholami et al., "AI and Memory Wall" (2024), digitized from the
figures of the authors' repository (``data/memory_wall/PROVENANCE.md``). A series
grows exponentially when ``log10(value) = a + b * year``; its growth factor over
``span`` years is ``10 ** (b * span)``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .core import _out
from .hardware import CHIPS
from .tables import read_csv
from .units import check_positive

#: series name -> (file, filter column, filter value, value column)
_SERIES = {
    "peak_flops": ("hw_scaling_points.csv", "series", "peak_flops", "implied_value"),
    "dram_bandwidth": ("hw_scaling_points.csv", "series", "dram_bandwidth", "implied_value"),
    "interconnect_bandwidth": ("hw_scaling_points.csv", "series", "interconnect_bandwidth", "implied_value"),
    "transformer_params": ("model_size_scaling_points.csv", "series", "transformer_params", "value"),
    "accelerator_memory": ("model_size_scaling_points.csv", "series", "ai_hw_memory", "value"),
    "training_compute": ("training_compute_points.csv", "in_transformer_fit", "yes", "training_pflops"),
}
#: The growth per two years the paper prints for each series.
PAPER_GROWTH_PER_2YRS = {"peak_flops": 3.0, "dram_bandwidth": 1.6, "interconnect_bandwidth": 1.4,
                         "transformer_params": 410.0, "accelerator_memory": 2.0, "training_compute": 750.0}


def list_series() -> list[str]:
    """Names accepted by :func:`load_series`."""
    return list(_SERIES)


def load_series(name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(year, value)`` arrays of one series, sorted by date (value units as in the CSV)."""
    if name not in _SERIES:
        raise ValueError(f"name must be one of {list_series()}; got {name!r}")
    filename, column, wanted, value_column = _SERIES[name]
    rows = [r for r in read_csv(f"memory_wall/{filename}") if r[column] == wanted]
    points = sorted((float(r["year_decimal"]), float(r[value_column])) for r in rows)
    years, values = (np.array(v) for v in zip(*points))
    return years, values


class GrowthFit(NamedTuple):
    """Least-squares fit of ``log10(value) = intercept + slope * year``.

    ``slope_ci`` is the two-sided confidence interval of the slope (Student t, n - 2
    degrees of freedom) at the fit's confidence level.
    """

    slope: float  # log10 units per year
    intercept: float
    slope_ci: tuple
    n_points: int

    def growth(self, years=2.0):
        """Growth factor over ``years``: ``10 ** (slope * years)``."""
        return _out(10 ** (self.slope * np.asarray(years, dtype=float)))

    def growth_ci(self, years=2.0) -> tuple:
        """Confidence interval of :meth:`growth` over ``years``."""
        low, high = self.slope_ci
        return 10 ** (low * years), 10 ** (high * years)

    def predict(self, year):
        """Fitted value at ``year`` (decimal years)."""
        return _out(10 ** (self.intercept + self.slope * np.asarray(year, dtype=float)))


def _t_quantile(p: float, dof: int) -> float:
    """Quantile of Student's t distribution, by bisection on its CDF (numerical integration)."""
    def pdf(t):
        return np.exp(math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2)
                      - 0.5 * math.log(dof * math.pi) - (dof + 1) / 2 * np.log1p(t * t / dof))

    def cdf(t):
        x = np.linspace(0.0, t, 4001)
        y = pdf(x)
        return 0.5 + float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2)

    low, high = 0.0, 1e3
    for _ in range(100):
        mid = (low + high) / 2
        low, high = (mid, high) if cdf(mid) < p else (low, mid)
    return (low + high) / 2


def fit_growth(years, values, confidence: float = 0.95) -> GrowthFit:
    """Fit exponential growth to ``values`` (all > 0) observed at decimal ``years``."""
    years = np.asarray(years, dtype=float)
    values = np.asarray(values, dtype=float)
    if years.shape != values.shape or years.ndim != 1:
        raise ValueError(f"years and values must be 1-d arrays of one length; got {years.shape} and {values.shape}")
    if years.size < 3:
        raise ValueError(f"years must hold at least 3 points to fit a line with an interval; got {years.size}")
    if np.any(values <= 0) or not np.all(np.isfinite(values)):
        raise ValueError("values must be finite and > 0 (they are fitted on a log scale)")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1; got {confidence!r}")
    if np.ptp(years) == 0:
        raise ValueError("years must not all be equal")
    y = np.log10(values)
    slope, intercept = np.polyfit(years, y, 1)
    residuals = y - (intercept + slope * years)
    dof = years.size - 2
    stderr = math.sqrt(float(residuals @ residuals) / dof / float(((years - years.mean()) ** 2).sum()))
    half = _t_quantile(0.5 + confidence / 2, dof) * stderr
    return GrowthFit(float(slope), float(intercept), (float(slope - half), float(slope + half)), int(years.size))


def fit_series(name: str, confidence: float = 0.95) -> GrowthFit:
    """:func:`fit_growth` on one packaged series."""
    return fit_growth(*load_series(name), confidence=confidence)


def gap_doubling_years(fast_growth, slow_growth, period_years=2.0):
    """Years for the ratio of two exponentially growing quantities to double.

    Growth factors are per ``period_years``; the gap grows by ``fast / slow`` per period,
    so it doubles in ``period_years * log(2) / log(fast / slow)`` years.
    """
    fast = check_positive("fast_growth", fast_growth)
    slow = check_positive("slow_growth", slow_growth)
    period = check_positive("period_years", period_years)
    if np.any(np.asarray(fast) <= np.asarray(slow)):
        raise ValueError(f"fast_growth must exceed slow_growth for the gap to grow; got {fast_growth!r} and {slow_growth!r}")
    return _out(period * np.log(2) / np.log(np.divide(fast, slow)))


class RidgePoint(NamedTuple):
    """A chip's ridge point (FLOP/byte) with the dtype its peak is quoted in."""

    year: int
    chip_id: str
    dtype: str
    ridge: float


def ridge_points_over_time(dtypes=("bf16", "fp16", "fp32")) -> list[RidgePoint]:
    """Ridge point of every chip in the hardware table, by release year.

    Each chip uses the first dtype of ``dtypes`` it has a sourced peak for (tensor-core
    bf16 where it exists), so older chips without tensor cores fall back to fp32.
    """
    points = []
    for chip in CHIPS.values():
        dtype = next((d for d in dtypes if d in chip.dense_flops), None)
        if dtype is not None:
            points.append(RidgePoint(chip.year, chip.chip_id, dtype, chip.ridge_intensity(dtype)))
    return sorted(points)
