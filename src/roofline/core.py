"""Core roofline maths: ridge point, attainable FLOP/s, time bounds.

All functions broadcast over numpy arrays and return floats for scalar input.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    """Seconds: ``t_math = flops / peak``, ``t_memory = bytes / bandwidth``.

    ``lower = max(t_math, t_memory)`` assumes perfect overlap of compute and data
    movement, ``upper = t_math + t_memory`` assumes none; ``upper <= 2 * lower``.
    (Chapter 1 writes the memory time T_comms, after its source.)
    """

    t_math: float
    t_memory: float
    lower: float
    upper: float


def time_bounds(flops, nbytes, peak_flops, bandwidth) -> TimeBounds:
    """Lower and upper bounds on the run time of an op (see :class:`TimeBounds`)."""
    flops = check_positive("flops", flops, allow_zero=True)
    nbytes = check_positive("nbytes", nbytes, allow_zero=True)
    peak_flops = check_positive("peak_flops", peak_flops)
    bandwidth = check_positive("bandwidth", bandwidth)
    t_math = np.divide(flops, peak_flops)
    t_memory = np.divide(nbytes, bandwidth)
    return TimeBounds(
        _out(t_math), _out(t_memory), _out(np.maximum(t_math, t_memory)), _out(t_math + t_memory)
    )


_BYTES = ("weight_bytes", "kv_bytes", "activation_bytes", "link_bytes")


@dataclass(frozen=True)
class Cost:
    """FLOPs of an operation and the bytes it moves, by where they come from.

    ``weight_bytes``: parameters read; ``kv_bytes``: keys and values attention reads or
    writes (the KV cache in a decoder); ``activation_bytes``: inputs, outputs and
    intermediates; ``link_bytes``: sent over the interconnect, per chip and direction.
    Memory traffic ``nbytes`` is the first three. Fields are numbers or arrays (they
    broadcast); costs add, subtract, scale by numbers and index like their arrays.
    Every op, layer, step and iteration cost in the package is one of these.
    """

    flops: float = 0.0
    weight_bytes: float = 0.0
    kv_bytes: float = 0.0
    activation_bytes: float = 0.0
    link_bytes: float = 0.0
    name: str = ""

    __array_ufunc__ = None  # array * cost scales the cost (numpy defers to __rmul__)

    def _map(self, f, other=None) -> Cost:
        names = ("flops", *_BYTES)
        values = [f(getattr(self, n)) if other is None else f(getattr(self, n), getattr(other, n)) for n in names]
        name = self.name if other is None or other.name == self.name else ""
        return Cost(*(_out(v) for v in values), name=name)

    def __add__(self, other: Cost) -> Cost:
        if not isinstance(other, Cost):
            return NotImplemented
        return self._map(np.add, other)

    def __radd__(self, other):  # sum() starts from 0
        return self if isinstance(other, (int, float)) and other == 0 else NotImplemented

    def __sub__(self, other: Cost) -> Cost:
        if not isinstance(other, Cost):
            return NotImplemented
        return self._map(np.subtract, other)

    def __mul__(self, factor) -> Cost:
        if isinstance(factor, Cost):
            return NotImplemented
        return self._map(lambda v: np.multiply(v, factor))

    __rmul__ = __mul__

    def _shape(self) -> tuple:
        return np.broadcast_shapes(*(np.shape(getattr(self, n)) for n in ("flops", *_BYTES)))

    def __getitem__(self, index) -> Cost:
        return self._map(lambda v: np.broadcast_to(v, self._shape())[index])

    def total(self) -> Cost:
        """The sum of an array-valued cost's elements (e.g. of every step of a generation)."""
        return self._map(lambda v: np.sum(np.broadcast_to(v, self._shape())))

    @property
    def nbytes(self):
        """Bytes moved to and from memory: weights, KV and activations."""
        return _out(np.add(np.add(self.weight_bytes, self.kv_bytes), self.activation_bytes))

    @property
    def intensity(self):
        """Arithmetic intensity, FLOP per byte of memory traffic."""
        return _out(np.divide(self.flops, self.nbytes))

    def bounds(self, peak_flops, bandwidth) -> TimeBounds:
        """:func:`time_bounds` of these FLOPs and memory bytes on a roof of ``peak_flops`` and ``bandwidth``."""
        return time_bounds(self.flops, self.nbytes, peak_flops, bandwidth)

    def t_link(self, link_bandwidth):
        """Seconds on the interconnect: ``link_bytes / link_bandwidth`` (per direction)."""
        return _out(np.divide(self.link_bytes, check_positive("link_bandwidth", link_bandwidth)))


def bound_by(intensity, peak_flops, bandwidth):
    """``"compute"`` where ``intensity >= ridge``, else ``"memory"`` (array of str for arrays)."""
    ridge = ridge_intensity(peak_flops, bandwidth)
    intensity = check_positive("intensity", intensity, allow_zero=True)
    result = np.where(np.asarray(intensity) >= ridge, "compute", "memory")
    return str(result) if result.ndim == 0 else result
