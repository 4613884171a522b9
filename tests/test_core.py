import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import roofline as rl

positive = st.floats(min_value=1e-6, max_value=1e18, allow_nan=False, allow_infinity=False)
non_negative = st.floats(min_value=0, max_value=1e18, allow_nan=False, allow_infinity=False)


def test_ridge_of_tpu_v5e():
    assert rl.ridge_intensity(1.97e14, 8.19e11) == pytest.approx(240.54, abs=0.01)


def test_attainable_below_and_above_the_ridge():
    assert rl.attainable_flops(10, 1e15, 1e12) == 1e13
    assert rl.attainable_flops(5000, 1e15, 1e12) == 1e15


@given(intensity=non_negative, peak=positive, bandwidth=positive)
def test_attainable_never_exceeds_either_roof(intensity, peak, bandwidth):
    rate = rl.attainable_flops(intensity, peak, bandwidth)
    assert rate <= peak
    assert rate <= bandwidth * intensity * (1 + 1e-12)


@given(a=non_negative, b=non_negative, peak=positive, bandwidth=positive)
def test_attainable_is_monotone_in_intensity(a, b, peak, bandwidth):
    lo, hi = sorted([a, b])
    assert rl.attainable_flops(lo, peak, bandwidth) <= rl.attainable_flops(hi, peak, bandwidth)


@given(flops=non_negative, nbytes=non_negative, peak=positive, bandwidth=positive)
def test_time_bounds_are_within_a_factor_two(flops, nbytes, peak, bandwidth):
    t = rl.time_bounds(flops, nbytes, peak, bandwidth)
    assert t.lower == max(t.t_math, t.t_memory)
    assert t.lower <= t.upper <= 2 * t.lower * (1 + 1e-12)


def test_time_bounds_values():
    t = rl.time_bounds(1e12, 3.35e9, 9.894e14, 3.35e12)
    assert t.t_math == pytest.approx(1.0107e-3, rel=1e-4)
    assert t.t_memory == pytest.approx(1e-3)
    assert t.upper == pytest.approx(t.t_math + t.t_memory)


def test_functions_broadcast_over_arrays():
    intensity = np.logspace(-1, 4, 1_000_000)
    rate = rl.attainable_flops(intensity, 1.97e14, 8.19e11)
    assert rate.shape == intensity.shape
    assert np.all(np.diff(rate) >= 0)
    t = rl.time_bounds(np.array([1e9, 1e12]), 1e9, np.array([[1e12], [1e15]]), 1e12)
    assert np.shape(t.lower) == (2, 2)


def test_bound_by():
    assert rl.bound_by(100, 1.97e14, 8.19e11) == "memory"
    assert rl.bound_by(300, 1.97e14, 8.19e11) == "compute"
    assert list(rl.bound_by(np.array([1, 1000]), 1e15, 1e12)) == ["memory", "compute"]


@pytest.mark.parametrize("call, name", [
    (lambda: rl.ridge_intensity(0, 1e12), "peak_flops"),
    (lambda: rl.ridge_intensity(1e15, -1), "bandwidth"),
    (lambda: rl.attainable_flops(-1, 1e15, 1e12), "intensity"),
    (lambda: rl.attainable_flops(1, 1e15, 0), "bandwidth"),
    (lambda: rl.time_bounds(-5, 1, 1, 1), "flops"),
    (lambda: rl.time_bounds(5, -1, 1, 1), "nbytes"),
    (lambda: rl.time_bounds(5, 1, 1, [1, 0]), "bandwidth"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_package_names_load_on_first_use():
    import subprocess
    import sys

    code = ("import sys, roofline\n"
            "print(sorted(m for m in sys.modules if m.startswith('roofline.')))\n"
            "assert all(getattr(roofline, name) is not None for name in roofline.__all__)\n"
            "assert roofline.hardware.CHIPS is roofline.CHIPS and 'ridge_intensity' in dir(roofline)\n"
            "try:\n    roofline.no_such_name\nexcept AttributeError as error:\n    print(error)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["[]", "module 'roofline' has no attribute 'no_such_name'"]


_costs = st.builds(rl.Cost, non_negative, non_negative, non_negative, non_negative, non_negative)


@given(_costs, _costs)
def test_costs_add_field_by_field(a, b):
    total = a + b
    for field in ("flops", "weight_bytes", "kv_bytes", "activation_bytes", "link_bytes"):
        assert getattr(total, field) == pytest.approx(getattr(a, field) + getattr(b, field))
    assert total.nbytes == pytest.approx(a.nbytes + b.nbytes)
    assert sum([a, b]) == total  # sum() starts from 0


@given(_costs, st.floats(min_value=1e-3, max_value=1e3))
def test_scaling_a_cost_keeps_its_intensity(cost, k):
    scaled = k * cost
    assert scaled.flops == pytest.approx(k * cost.flops) and scaled.nbytes == pytest.approx(k * cost.nbytes)
    if cost.nbytes > 1e-9 and cost.flops > 1e-9:
        assert scaled.intensity == pytest.approx(cost.intensity)


@given(_costs, st.floats(min_value=1e9, max_value=1e16), st.floats(min_value=1e9, max_value=1e13))
def test_bounds_are_never_below_either_roofs_time(cost, peak, bandwidth):
    t = cost.bounds(peak, bandwidth)
    assert t.lower >= cost.flops / peak * (1 - 1e-12) and t.lower >= cost.nbytes / bandwidth * (1 - 1e-12)
    assert t.upper == pytest.approx(cost.flops / peak + cost.nbytes / bandwidth)


def test_link_bytes_are_not_memory_traffic():
    cost = rl.Cost(flops=1e12, weight_bytes=1e9, link_bytes=5e9)
    assert cost.nbytes == 1e9 and cost.intensity == 1e3
    assert cost.t_link(1e11) == pytest.approx(0.05)


def test_array_costs_index_and_total_like_their_arrays():
    steps = rl.Cost(np.array([1.0, 2.0, 3.0]), weight_bytes=10.0, kv_bytes=np.array([1.0, 1.0, 2.0]))
    assert steps[1] == rl.Cost(2.0, 10.0, 1.0)
    assert steps.total() == rl.Cost(6.0, 30.0, 4.0)
    doubled = np.array([1.0, 2.0]) * rl.Cost(3.0, 1.0)
    assert list(doubled.flops) == [3.0, 6.0] and list(doubled.weight_bytes) == [1.0, 2.0]
