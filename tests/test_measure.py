"""The measurement module: timing discipline, benchmark bookkeeping and the overhead model.

Benchmarks run here on tiny sizes and tight budgets; nothing asserts how fast this machine is.
"""

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import roofline as rl
from roofline import measure


def test_time_call_warms_up_repeats_and_respects_its_budget():
    calls = []
    timing = measure.time_call(lambda: calls.append(1), repeats=7, warmup=2)
    assert len(calls) == 9 and timing.runs == 7
    assert 0 <= timing.best <= timing.median
    start = time.perf_counter()
    slow = measure.time_call(lambda: time.sleep(0.05), repeats=100, warmup=0, budget_s=0.2)
    assert time.perf_counter() - start < 0.5 and 1 <= slow.runs < 100
    assert slow.best >= 0.05
    with pytest.raises(ValueError, match="repeats"):
        measure.time_call(lambda: None, repeats=0)
    with pytest.raises(ValueError, match="fn"):
        measure.time_call(42)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("n", [1, 1000, measure.FUSED_BLOCK + 3])
def test_fused_and_unfused_kernels_compute_the_same_thing(n, fused):
    x = np.arange(n, dtype=np.float32)
    out = np.zeros_like(x)
    measure.repeat_kernel(x, out, 5, fused)
    assert np.array_equal(out, x * 32)


def test_repeat_benchmark_bookkeeping_and_budget():
    n, repeats = 50_000, [1, 2, 4, 8]
    start = time.perf_counter()
    for fused in (False, True):
        r = measure.repeat_benchmark(n, repeats, "fp32", fused, budget_s=0.2)
        assert list(r.repeats) == repeats and r.fused == fused
        assert np.array_equal(r.flops, n * np.array(repeats, dtype=float))
        passes = np.ones(4) if fused else np.array(repeats)
        assert np.array_equal(r.nbytes, 2 * 4 * n * passes)
        blocks = -(-n // measure.FUSED_BLOCK)
        assert np.array_equal(r.calls, blocks * (np.array(repeats) + 1) if fused else repeats)
        assert np.array_equal(r.calls, measure.repeat_calls(n, repeats, fused))
        assert np.allclose(r.flops_per_s * r.seconds, r.flops) and np.allclose(r.bytes_per_s * r.seconds, r.nbytes)
        assert np.all(r.seconds > 0) and np.all(r.spread >= 0)
    assert time.perf_counter() - start < 2.0
    with pytest.raises(ValueError, match="dtype"):
        measure.repeat_benchmark(10, [1], "int3")


def test_probes_return_positive_rates_quickly():
    start = time.perf_counter()
    bw = measure.bandwidth_probe(100_000, budget_s=0.1)
    assert set(bw) == {"copy", "scale", "triad"} and all(v > 0 for v in bw.values())
    assert measure.compute_probe(64, budget_s=0.1) > 0
    assert measure.python_add_rate(10_000, budget_s=0.1) > 0
    assert measure.numpy_call_rate(4, calls=1000, budget_s=0.1) > 0
    st_ = measure.scaling_test(lambda s: (lambda a=np.ones(s): a + a), sizes=[1, 2, 4], budget_s=0.1)
    assert st_.seconds.shape == (3,) and np.allclose(st_.doubling_ratio, st_.seconds[1:] / st_.seconds[:-1])
    assert time.perf_counter() - start < 3.0
    with pytest.raises(ValueError, match="sizes"):
        measure.scaling_test(lambda s: (lambda: None), sizes=[1, 3])


@settings(max_examples=15, deadline=None)
@given(overhead=st.floats(1e-7, 1e-4), bandwidth=st.floats(1e9, 1e12), ratio=st.floats(0.5, 50))
def test_the_model_fit_recovers_its_parameters(overhead, bandwidth, ratio):
    peak = bandwidth * ratio
    n = np.logspace(0, 9, 14)
    # intensities 1/8, 128 and 1/8 FLOP/byte: every regime is present whatever the ridge (0.5 to 50)
    flops = np.concatenate([n, 1024 * n, 4 * n])
    nbytes = np.concatenate([8 * n, 8 * n, 32 * n])
    seconds = rl.model_time(flops, nbytes, overhead, bandwidth, peak)
    fit = rl.fit_overhead_model(flops, nbytes, seconds)
    assert fit.overhead == pytest.approx(overhead, rel=0.03)
    assert fit.bandwidth == pytest.approx(bandwidth, rel=0.03)
    assert fit.peak_flops == pytest.approx(peak, rel=0.03)


def test_the_fit_charges_overhead_per_call():
    n = np.logspace(0, 8, 12)
    flops, nbytes = np.concatenate([n, 1024 * n]), np.concatenate([8 * n, 8 * n])
    calls = np.concatenate([np.ones(12), np.full(12, 100.0)])
    seconds = rl.model_time(flops, nbytes, 1e-6, 1e10, 1e11, calls)
    assert seconds[12] == pytest.approx(100e-6 + max(8 / 1e10, 1024 / 1e11))
    fit = rl.fit_overhead_model(flops, nbytes, seconds, calls)
    assert fit.overhead == pytest.approx(1e-6, rel=0.03)
    assert fit.classify(1, 8, calls=1) == "overhead" and fit.classify(1e5, 8e5, calls=1) == "memory"
    assert fit.classify(1e5, 8e5, calls=1000) == "overhead"


def test_noisy_fit_and_classification():
    rng = np.random.default_rng(0)
    n = np.logspace(1, 8, 12)
    flops, nbytes = np.concatenate([n, 64 * n]), np.concatenate([8 * n, 8 * n])
    seconds = rl.model_time(flops, nbytes, 2e-6, 20e9, 50e9) * np.exp(rng.normal(0, 0.02, flops.size))
    fit = rl.fit_overhead_model(flops, nbytes, seconds)
    assert fit.bandwidth == pytest.approx(20e9, rel=0.05) and fit.peak_flops == pytest.approx(50e9, rel=0.05)
    model = rl.OverheadModel(1e-6, 1e10, 1e11)
    assert model.classify(10, 80) == "overhead"
    assert list(model.classify([1e3, 1e9, 1e9], [8e3, 8e9, 1e6])) == ["overhead", "memory", "compute"]
    with pytest.raises(ValueError, match="length"):
        rl.fit_overhead_model([1, 2], [1, 2], [1, 2])


def test_knee_fusion_and_batching_by_hand():
    # the source's A100: multiply-only rate 9.75 TFLOP/s, 1.5 TB/s, fp32: knee at 52 repeats
    assert rl.repeat_knee(9.75e12, 1.5e12, "fp32") == pytest.approx(52)
    # memory-bound per pass (8 B at 1 B/s vs 1 FLOP at 100 FLOP/s): fusing 10 passes gains 10x
    assert rl.fusion_speedup(10, 100.0, 1.0) == pytest.approx(10)
    # past the knee the fused version is compute-bound: 1000 * 8 / (1000 / 100) = 800
    assert rl.fusion_speedup(1000, 100.0, 1.0) == pytest.approx(800)
    assert rl.batching_speedup(100, 1e-5, 1e-7) == pytest.approx(100 * (1e-5 + 1e-7) / (1e-5 + 1e-5))
    assert rl.batching_speedup(1, 1e-5, 1e-7) == pytest.approx(1)
    with pytest.raises(ValueError, match="overhead"):
        rl.batching_speedup(10, -1, 1)


def test_the_recorded_table_is_complete_and_self_consistent():
    t = rl.recorded_measurements()
    assert set(t) == {"benchmark", "n", "repeats", "calls", "flops", "nbytes", "seconds"}
    assert len({len(v) for v in t.values()}) == 1 and np.all(t["seconds"] > 0)
    unfused = t["benchmark"] == "repeat-unfused"
    assert np.array_equal(t["nbytes"][unfused], rl.repeat_bytes(t["n"][unfused], t["repeats"][unfused]))
    assert np.array_equal(t["flops"], t["n"] * t["repeats"])
    with pytest.raises(ValueError, match="name"):
        rl.recorded_measurements("gpu_1999")


def test_elementwise_sweep_bookkeeping_and_budget():
    start = time.perf_counter()
    sweep = rl.elementwise_sweep(sizes=[1, 16, 4096], budget_s=0.2)
    assert time.perf_counter() - start < 2.0
    assert list(sweep.sizes) == [1, 16, 4096] and list(sweep.flops) == [1.0, 16.0, 4096.0]
    assert list(sweep.nbytes) == [12.0, 192.0, 49152.0] and list(sweep.calls) == [1.0, 1.0, 1.0]
    assert np.all(sweep.seconds > 0)
    with pytest.raises(ValueError, match="sizes"):
        rl.elementwise_sweep(sizes=[0])


def test_synchronous_and_asynchronous_launches():
    # 10 us of launch overhead, 2 us kernels: asynchronous, the launches set the pace
    assert rl.device_busy_fraction(10e-6, 2e-6) == pytest.approx(0.2)
    assert rl.device_busy_fraction(10e-6, 2e-6, asynchronous=False) == pytest.approx(2 / 12)
    assert rl.device_busy_fraction(10e-6, 20e-6) == 1.0  # kernels longer than launches: overhead hidden
    assert rl.launch_bound_time(100, 10e-6, 2e-6) == pytest.approx(10e-6 + 99 * 10e-6 + 2e-6)
    assert rl.launch_bound_time(100, 10e-6, 2e-6, asynchronous=False) == pytest.approx(100 * 12e-6)
    assert rl.launch_bound_time(100, 1e-6, 5e-6) == pytest.approx(1e-6 + 100 * 5e-6)
    with pytest.raises(ValueError, match="kernel_seconds"):
        rl.device_busy_fraction(1e-6, 0.0)
