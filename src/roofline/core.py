"""Core roofline maths: ridge point, attainable FLOP/s, time bounds.

All functions broadcast over numpy arrays and return floats for scalar input.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .units import check_positive


def _out(x):
    """Plain float for 0-d results, array otherwise."""
    x = np.asarray(x, dtype=float)
    return float(x) if x.ndim == 0 else x


def ridge_intensity(peak_flops, bandwidth):
    """Intensity (FLOP/byte) where the roofs meet: ``peak_flops / bandwidth``."""
    peak_flops = check_positive("peak_flops", peak_flops)
    bandwidth = check_positive("bandwidth", bandwidth)
    return _out(np.divide(peak_flops, bandwidth))


def attainable_flops(intensity, peak_flops, bandwidth):
    """Roofline ceiling in FLOP/s: ``min(peak_flops, bandwidth * intensity)``."""
    intensity = check_positive("intensity", intensity, allow_zero=True)
    peak_flops = check_positive("peak_flops", peak_flops)
    bandwidth = check_positive("bandwidth", bandwidth)
    return _out(np.minimum(peak_flops, np.multiply(bandwidth, intensity)))


class TimeBounds(NamedTuple):
    """Seconds: ``t_math = flops / peak``, ``t_comms = bytes / bandwidth``.

    ``lower = max(t_math, t_comms)`` assumes perfect overlap of compute and data
    movement, ``upper = t_math + t_comms`` assumes none; ``upper <= 2 * lower``.
    """

    t_math: float
    t_comms: float
    lower: float
    upper: float


def time_bounds(flops, nbytes, peak_flops, bandwidth) -> TimeBounds:
    """Lower and upper bounds on the run time of an op (see :class:`TimeBounds`)."""
    flops = check_positive("flops", flops, allow_zero=True)
    nbytes = check_positive("nbytes", nbytes, allow_zero=True)
    peak_flops = check_positive("peak_flops", peak_flops)
    bandwidth = check_positive("bandwidth", bandwidth)
    t_math = np.divide(flops, peak_flops)
    t_comms = np.divide(nbytes, bandwidth)
    return TimeBounds(
        _out(t_math), _out(t_comms), _out(np.maximum(t_math, t_comms)), _out(t_math + t_comms)
    )


def bound_by(intensity, peak_flops, bandwidth):
    """``"compute"`` where ``intensity >= ridge``, else ``"memory"`` (array of str for arrays)."""
    ridge = ridge_intensity(peak_flops, bandwidth)
    intensity = check_positive("intensity", intensity, allow_zero=True)
    result = np.where(np.asarray(intensity) >= ridge, "compute", "memory")
    return str(result) if result.ndim == 0 else result
