"""Measuring this machine with numpy on the CPU: repeat benchmark, roofline probes, overhead.

Every benchmark warms up, repeats, keeps the fastest run (the least disturbed by other
work) with the median and spread beside it, and stops repeating once its time budget is
spent. Results are plain arrays and floats in SI units, ready to save, plot or grade.

The model fitted to measurements is ``t = calls * overhead + max(bytes / bandwidth, flops / peak)``:
a fixed cost per call (Python and numpy dispatch), then whichever of memory traffic and
arithmetic takes longer.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np

from .core import _out
from .units import check_positive, dtype_bytes

#: numpy dtypes of the formats the benchmarks run in.
_NUMPY_DTYPES = {"fp64": np.float64, "fp32": np.float32}
#: Elements per block of the fused benchmark: 256 KiB of fp32, small enough for an L2 cache.
FUSED_BLOCK = 2**16


class Timing(NamedTuple):
    """Seconds per call: fastest, median and interquartile spread of ``runs`` calls."""

    best: float
    median: float
    spread: float
    runs: int


def time_call(fn, repeats: int = 5, warmup: int = 1, budget_s: float = 1.0) -> Timing:
    """Time ``fn()``: ``warmup`` untimed calls, then up to ``repeats`` timed ones within ``budget_s``.

    At least one timed call always runs, so a slow function still gets a measurement.
    """
    if not callable(fn):
        raise ValueError(f"fn must be callable; got {fn!r}")
    if int(repeats) < 1 or int(warmup) < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0; got {repeats!r} and {warmup!r}")
    check_positive("budget_s", budget_s)
    for _ in range(int(warmup)):
        fn()
    times = []
    deadline = time.perf_counter() + budget_s
    while len(times) < int(repeats) and (not times or time.perf_counter() < deadline):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    q1, median, q3 = np.percentile(times, [25, 50, 75])
    return Timing(float(min(times)), float(median), float(q3 - q1), len(times))


def _numpy_dtype(dtype: str):
    if dtype not in _NUMPY_DTYPES:
        raise ValueError(f"dtype must be one of {list(_NUMPY_DTYPES)}; got {dtype!r}")
    return _NUMPY_DTYPES[dtype]


class RepeatResult(NamedTuple):
    """The repeat benchmark: ``x = x * 2`` applied ``repeats[i]`` times to ``n`` elements."""

    n: int
    dtype: str
    fused: bool
    repeats: np.ndarray
    seconds: np.ndarray  # best time per run
    spread: np.ndarray  # interquartile range of the runs
    flops: np.ndarray  # n * R
    nbytes: np.ndarray  # unfused: 2 n b R (every pass reads and writes); fused: 2 n b
    calls: np.ndarray  # numpy calls per run: R unfused; (R + 1) per block fused

    @property
    def flops_per_s(self):
        return self.flops / self.seconds

    @property
    def bytes_per_s(self):
        return self.nbytes / self.seconds


def repeat_bytes(n, repeats, dtype="fp32", fused=False):
    """Bytes the repeat benchmark moves: ``2 n b`` per pass over memory (read and write).

    Unfused, each of the ``R`` multiplies is a pass; fused, all ``R`` happen in one pass.
    """
    n = check_positive("n", n)
    r = check_positive("repeats", repeats)
    passes = np.ones_like(np.asarray(r, dtype=float)) if fused else np.asarray(r, dtype=float)
    return _out(2 * np.multiply(n, dtype_bytes(dtype)) * passes)


def repeat_calls(n, repeats, fused=False):
    """numpy calls per run of the repeat benchmark: ``R`` unfused; fused, ``R`` multiplies
    and one copy back per block, ``blocks * (R + 1)``."""
    r = np.asarray(check_positive("repeats", repeats), dtype=float)
    blocks = -(-int(check_positive("n", n)) // FUSED_BLOCK)
    return _out(blocks * (r + 1.0) if fused else r)


def repeat_model(n, overhead, bandwidth, peak_flops, repeats=2 ** np.arange(0, 11), dtype="fp32"):
    """Modelled seconds of the unfused and the fused repeat benchmark (see :func:`model_time`).

    Returns ``(repeats, flops, unfused_seconds, fused_seconds)``.
    """
    repeats = np.asarray(repeats)
    flops = n * repeats.astype(float)
    unfused, fused = (model_time(flops, repeat_bytes(n, repeats, dtype, f), overhead, bandwidth, peak_flops,
                                 repeat_calls(n, repeats, f)) for f in (False, True))
    return repeats, flops, unfused, fused


def repeat_kernel(x, out, repeats: int, fused: bool = False):
    """Write ``x * 2**repeats`` into ``out`` by ``repeats`` multiplies by 2 (see :func:`repeat_benchmark`)."""
    if fused:
        block = np.empty(min(x.size, FUSED_BLOCK), dtype=x.dtype)
        for start in range(0, x.size, FUSED_BLOCK):
            chunk = block[: min(FUSED_BLOCK, x.size - start)]
            np.multiply(x[start:start + FUSED_BLOCK], 2, out=chunk)
            for _ in range(repeats - 1):
                np.multiply(chunk, 2, out=chunk)
            out[start:start + FUSED_BLOCK] = chunk
    else:
        np.multiply(x, 2, out=out)
        for _ in range(repeats - 1):
            np.multiply(out, 2, out=out)
    return out


def repeat_benchmark(n=2**24, repeats=(1, 2, 4, 8, 16, 32, 64, 128), dtype="fp32", fused=False,
                     budget_s=3.0) -> RepeatResult:
    """Run ``x = x * 2`` ``R`` times over ``n`` elements for each ``R`` in ``repeats``.

    Unfused: one numpy call per multiply, each a full pass over memory. Fused: the array
    is processed in cache-sized blocks of :data:`FUSED_BLOCK` elements, each multiplied
    ``R`` times while it sits in cache, so memory is crossed once. ``budget_s`` is shared
    across the repeat counts. Use ``n`` well above the last-level cache (the default is
    64 MiB of fp32). Values start at 2**-60 so that 128 doublings stay finite.
    """
    n = int(check_positive("n", n))
    repeats = np.asarray(check_positive("repeats", repeats), dtype=int).ravel()
    x = np.full(n, 2.0**-60, dtype=_numpy_dtype(dtype))
    out = np.zeros_like(x)
    timings = [time_call(lambda r=int(r): repeat_kernel(x, out, r, fused), repeats=5, warmup=int(r <= 8), budget_s=budget_s / len(repeats))
               for r in repeats]
    return RepeatResult(n, dtype, bool(fused), repeats, np.array([t.best for t in timings]),
                        np.array([t.spread for t in timings]), n * repeats.astype(float),
                        np.asarray(repeat_bytes(n, repeats, dtype, fused), dtype=float),
                        np.asarray(repeat_calls(n, repeats, fused), dtype=float))


def bandwidth_probe(n=2**23, budget_s=1.5) -> dict:
    """This machine's memory bandwidth (byte/s) from STREAM-like kernels on fp64 arrays.

    ``copy`` (a = b), ``scale`` (a = s b) and ``triad`` (a = b + s c), with bytes counted as
    numpy moves them: 16 bytes per element for copy and scale; 40 for triad, which numpy
    runs as two passes (a = s c, then a += b). Use arrays much larger than the caches.
    """
    n = int(check_positive("n", n))
    a, b, c = np.zeros(n), np.ones(n), np.full(n, 2.0)

    def triad():
        np.multiply(c, 3.0, out=a)
        np.add(a, b, out=a)

    kernels = {"copy": (lambda: np.copyto(a, b), 16), "scale": (lambda: np.multiply(b, 3.0, out=a), 16),
               "triad": (triad, 40)}
    return {name: n * per_element / time_call(fn, repeats=10, budget_s=budget_s / 3).best
            for name, (fn, per_element) in kernels.items()}


def compute_probe(n=1024, dtype="fp32", budget_s=1.5) -> float:
    """This machine's matmul rate (FLOP/s): ``2 n^3`` over the best time of an ``n x n`` matmul."""
    n = int(check_positive("n", n))
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(_numpy_dtype(dtype)) for _ in range(2))
    out = np.empty((n, n), dtype=a.dtype)
    return 2.0 * n**3 / time_call(lambda: np.matmul(a, b, out=out), repeats=10, budget_s=budget_s).best


def python_add_rate(n=200_000, budget_s=0.5) -> float:
    """Additions per second of a plain Python loop (``total += 1``), interpreter overhead included."""
    n = int(check_positive("n", n))

    def loop():
        total = 0
        for _ in range(n):
            total += 1
        return total

    return n / time_call(loop, repeats=5, budget_s=budget_s).best


def numpy_call_rate(size=1, calls=10_000, budget_s=0.5) -> float:
    """Calls per second of ``a + b`` on numpy arrays of ``size`` elements (dispatch cost when tiny)."""
    size, calls = int(check_positive("size", size)), int(check_positive("calls", calls))
    a, b = np.ones(size, dtype=np.float32), np.ones(size, dtype=np.float32)

    def many():
        for _ in range(calls):
            a + b

    return calls / time_call(many, repeats=5, budget_s=budget_s).best


class Sweep(NamedTuple):
    """Best time of ``c = a + b`` (fp32) at each size: ``n`` FLOPs, ``12 n`` bytes."""

    sizes: np.ndarray
    seconds: np.ndarray
    flops: np.ndarray
    nbytes: np.ndarray
    calls: np.ndarray  # one call per size


def elementwise_sweep(sizes=tuple(4**k for k in range(13)), budget_s=1.5) -> Sweep:
    """Time ``np.add(a, b, out=c)`` on fp32 arrays from one element to tens of millions.

    Tiny sizes measure the cost of a call (overhead), large ones the memory bandwidth.
    """
    sizes = np.asarray(check_positive("sizes", sizes), dtype=int).ravel()
    seconds = []
    for n in sizes:
        a, b, c = np.ones(n, np.float32), np.ones(n, np.float32), np.empty(n, np.float32)
        seconds.append(time_call(lambda: np.add(a, b, out=c), repeats=20, budget_s=budget_s / sizes.size).best)
    return Sweep(sizes, np.array(seconds), sizes.astype(float), 12.0 * sizes, np.ones(sizes.size))


class ScalingTest(NamedTuple):
    """Time at each size, and the time ratio of each doubling (2 = fully work-bound)."""

    sizes: np.ndarray
    seconds: np.ndarray
    doubling_ratio: np.ndarray  # seconds[i+1] / seconds[i], for sizes that double


def scaling_test(make_call, sizes=(1, 2, 4, 8), budget_s=1.0) -> ScalingTest:
    """Time ``make_call(size)()`` at sizes that double. A ratio near 1 means overhead-bound.

    ``make_call(size)`` returns the function to time (set-up outside the timed call).
    """
    sizes = np.asarray(check_positive("sizes", sizes), dtype=float).ravel()
    if sizes.size < 2 or not np.allclose(sizes[1:] / sizes[:-1], 2):
        raise ValueError(f"sizes must hold at least two sizes, each double the one before; got {sizes!r}")
    seconds = np.array([time_call(make_call(int(s)), budget_s=budget_s / sizes.size).best for s in sizes])
    return ScalingTest(sizes, seconds, seconds[1:] / seconds[:-1])


def model_time(flops, nbytes, overhead, bandwidth, peak_flops, calls=1):
    """Predicted seconds: ``calls * overhead + max(nbytes / bandwidth, flops / peak_flops)``."""
    overhead = check_positive("overhead", overhead, allow_zero=True)
    calls = check_positive("calls", calls)
    work = np.maximum(np.divide(check_positive("nbytes", nbytes, allow_zero=True), check_positive("bandwidth", bandwidth)),
                      np.divide(check_positive("flops", flops, allow_zero=True), check_positive("peak_flops", peak_flops)))
    return _out(np.multiply(calls, overhead) + work)


class OverheadModel(NamedTuple):
    """Fitted ``t = calls * overhead + max(bytes / bandwidth, flops / peak)`` (s, byte/s, FLOP/s)."""

    overhead: float
    bandwidth: float
    peak_flops: float

    def predict(self, flops, nbytes, calls=1):
        return model_time(flops, nbytes, self.overhead, self.bandwidth, self.peak_flops, calls)

    def classify(self, flops, nbytes, calls=1):
        """``"overhead"``, ``"memory"`` or ``"compute"``: the largest of the three terms."""
        flops, nbytes, calls = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (flops, nbytes, calls)))
        terms = np.stack([calls * self.overhead, nbytes / self.bandwidth, flops / self.peak_flops])
        labels = np.array(["overhead", "memory", "compute"])[np.argmax(terms, axis=0)]
        return str(labels) if labels.ndim == 0 else labels


def fit_overhead_model(flops, nbytes, seconds, calls=1, rounds: int = 6, grid: int = 24) -> OverheadModel:
    """Fit :class:`OverheadModel` to measurements by minimising squared log-time error.

    A zooming grid search over overhead, bandwidth and peak (no starting guess needed):
    each of ``rounds`` rounds searches a ``grid^3`` lattice and narrows it around the best.
    Bandwidth and peak start at the least values the data allow (no point can beat them).
    ``calls``: how many calls (each paying the overhead) each measurement made.
    """
    flops = np.asarray(check_positive("flops", flops, allow_zero=True), dtype=float).ravel()
    nbytes = np.asarray(check_positive("nbytes", nbytes, allow_zero=True), dtype=float).ravel()
    seconds = np.asarray(check_positive("seconds", seconds), dtype=float).ravel()
    if not flops.size == nbytes.size == seconds.size >= 3:
        raise ValueError("flops, nbytes and seconds must have one equal length of at least 3")
    calls = np.broadcast_to(np.asarray(check_positive("calls", calls), dtype=float), seconds.shape)
    log_t = np.log(seconds)
    per_call = seconds / calls
    # search box in log space: bandwidth and peak at least what any point achieved
    lo = np.array([np.log(per_call.min() * 1e-4), np.log(max((nbytes / seconds).max(), 1.0)),
                   np.log(max((flops / seconds).max(), 1.0))])
    hi = np.array([np.log(per_call.min()), lo[1] + np.log(1e4), lo[2] + np.log(1e4)])
    best = None
    for _ in range(rounds):
        axes = [np.linspace(lo[i], hi[i], grid) for i in range(3)]
        o, bw, pk = (np.exp(a)[..., None] for a in np.meshgrid(*axes, indexing="ij"))
        predicted = calls * o + np.maximum(nbytes / bw, flops / pk)
        error = ((np.log(predicted) - log_t) ** 2).sum(axis=-1)
        idx = np.unravel_index(np.argmin(error), error.shape)
        best = np.array([axes[i][idx[i]] for i in range(3)])
        step = (hi - lo) / (grid - 1)
        lo, hi = best - 2 * step, best + 2 * step
    return OverheadModel(*(float(v) for v in np.exp(best)))


def repeat_knee(peak_flops, bandwidth, dtype="fp32"):
    """Repeat count where the fused repeat benchmark turns compute-bound: ``peak * 2b / bandwidth``.

    Per element it moves ``2b`` bytes (read, write) and does ``R`` FLOPs. Pass the rate of
    the instruction used: a plain multiply runs at half a chip's fused-multiply-add peak.
    """
    return _out(np.multiply(check_positive("peak_flops", peak_flops), 2 * dtype_bytes(dtype))
                / check_positive("bandwidth", bandwidth))


def fusion_speedup(repeats, peak_flops, bandwidth, dtype="fp32"):
    """Time of ``R`` unfused passes over the time of one fused pass (per element, no overhead).

    Unfused: ``R * max(2b / bandwidth, 1 / peak)``; fused: ``max(2b / bandwidth, R / peak)``.
    """
    r = check_positive("repeats", repeats)
    move = 2 * dtype_bytes(dtype) / check_positive("bandwidth", bandwidth)
    op = 1 / check_positive("peak_flops", peak_flops)
    return _out(np.multiply(r, np.maximum(move, op)) / np.maximum(move, np.multiply(r, op)))


def batching_speedup(n_ops, overhead, seconds_per_op):
    """Gain from doing ``n_ops`` small operations as one call: ``n (o + w) / (o + n w)``."""
    n = check_positive("n_ops", n_ops)
    o = check_positive("overhead", overhead, allow_zero=True)
    w = check_positive("seconds_per_op", seconds_per_op)
    return _out(np.multiply(n, o + w) / (o + np.multiply(n, w)))


def launch_bound_time(n_kernels, overhead, kernel_seconds, asynchronous=True):
    """Seconds to run ``n`` kernels of ``w`` seconds each when launching one costs the host ``o`` seconds.

    Synchronous (the host waits for each kernel before it prepares the next: numpy, or a
    framework forced to synchronise): ``n (o + w)``, the model :func:`model_time` fits.
    Asynchronous (the host queues launches and runs ahead, as PyTorch does on a GPU): host
    and device work at once, so after the first launch the slower of the two sets the pace,
    ``o + (n - 1) max(o, w) + w``.
    """
    n = check_positive("n_kernels", n_kernels)
    o = check_positive("overhead", overhead, allow_zero=True)
    w = check_positive("kernel_seconds", kernel_seconds, allow_zero=True)
    if asynchronous:
        return _out(o + np.multiply(np.subtract(n, 1), np.maximum(o, w)) + w)
    return _out(np.multiply(n, np.add(o, w)))


def device_busy_fraction(overhead, kernel_seconds, asynchronous=True):
    """Share of a long run the device spends computing: ``w / max(o, w)`` asynchronous, ``w / (o + w)`` synchronous.

    Asynchronous launches hide the overhead completely once ``w >= o``; synchronous ones never do.
    """
    o = check_positive("overhead", overhead, allow_zero=True)
    w = check_positive("kernel_seconds", kernel_seconds)
    return _out(np.divide(w, np.maximum(o, w) if asynchronous else np.add(o, w)))


def recorded_measurements(name: str = "cpu_2026-11-22") -> dict:
    """A measurement table shipped with the package (see ``data/measurements/PROVENANCE.md``).

    Returns arrays ``benchmark``, ``n``, ``repeats``, ``calls``, ``flops``, ``nbytes``, ``seconds``.
    """
    from importlib import resources

    from .tables import read_csv

    if not isinstance(name, str) or not resources.files("roofline").joinpath(f"data/measurements/{name}.csv").is_file():
        raise ValueError(f"name must be a recorded table such as 'cpu_2026-11-22'; got {name!r}")
    rows = read_csv(f"measurements/{name}.csv")
    table = {"benchmark": np.array([r["benchmark"] for r in rows])}
    for column in ("n", "repeats", "calls", "flops", "nbytes", "seconds"):
        table[column] = np.array([float(r[column]) for r in rows])
    return table
