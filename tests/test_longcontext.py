"""Split-K attention merges exactly; FP8 rounding lands on the formats' representable values."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roofline import longcontext as lc


def _reference_attention(q, k, v):
    """Textbook softmax attention, written out independently of the package."""
    scores = k @ q / np.sqrt(len(q))
    weights = np.exp(scores - scores.max())
    return (weights / weights.sum()) @ v


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 64), d=st.integers(1, 16), data=st.data(), seed=st.integers(0, 2**32 - 1),
       spread=st.sampled_from([0.1, 1.0, 30.0]))
def test_split_k_equals_full_attention(n, d, data, seed, spread):
    rng = np.random.default_rng(seed)
    q, k, v = rng.normal(0, spread, d), rng.normal(0, spread, (n, d)), rng.normal(size=(n, 3))
    blocks = data.draw(st.integers(1, n))
    expected = _reference_attention(q, k, v)
    np.testing.assert_allclose(lc.attention(q, k, v), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(lc.split_k_attention(q, k, v, blocks), expected, rtol=1e-12, atol=1e-12)


def test_merge_is_order_free_and_validates():
    rng = np.random.default_rng(1)
    q, k, v = rng.normal(size=4), rng.normal(size=(10, 4)), rng.normal(size=(10, 2))
    parts = [lc.block_attention(q, k[a:b], v[a:b]) for a, b in ((0, 3), (3, 7), (7, 10))]
    np.testing.assert_allclose(lc.merge_partials(parts), lc.merge_partials(parts[::-1]), rtol=1e-14)
    with pytest.raises(ValueError, match="partials"):
        lc.merge_partials([])
    with pytest.raises(ValueError, match="n_blocks"):
        lc.split_k_attention(q, k, v, 11)


def _all_values(fmt):
    """Every finite value of an FP8 format, from its bit patterns, with the parity of its code."""
    f = lc.FP8_FORMATS[fmt]
    values = []
    for e in range(2 ** f.exponent_bits):
        for m in range(2 ** f.mantissa_bits):
            if e == 0:
                value = m * 2.0 ** (1 - f.bias - f.mantissa_bits)
            else:
                value = (1 + m / 2**f.mantissa_bits) * 2.0 ** (e - f.bias)
            if value <= f.max_normal:
                values.append((value, m % 2))
    return values


@pytest.mark.parametrize("fmt, largest, smallest", [("e4m3", 448.0, 2.0**-9), ("e5m2", 57344.0, 2.0**-16)])
def test_fp8_edges(fmt, largest, smallest):
    values = [v for v, _ in _all_values(fmt)]
    assert max(values) == largest and min(v for v in values if v > 0) == smallest
    assert lc.FP8_FORMATS[fmt].min_subnormal == smallest
    # every representable value (and its negative) rounds to itself
    grid = np.array(values)
    assert np.array_equal(lc.fp8_round(grid, fmt), grid) and np.array_equal(lc.fp8_round(-grid, fmt), -grid)
    # saturation, infinities, NaN, and the halfway point below the smallest subnormal (ties to even: 0)
    assert lc.fp8_round(1e9, fmt) == largest and lc.fp8_round(-np.inf, fmt) == -largest
    assert np.isnan(lc.fp8_round(np.nan, fmt))
    assert lc.fp8_round(smallest / 2, fmt) == 0.0 and lc.fp8_round(smallest * 0.51, fmt) == smallest


def test_fp8_ties_go_to_the_even_code():
    # e4m3 in [1, 2) has a step of 1/8: 1.0625 lies between 1 (code ...000) and 1.125 (...001)
    assert lc.fp8_round(1.0625) == 1.0 and lc.fp8_round(1.1875) == 1.25
    # e5m2 in [1, 2) has a step of 1/4
    assert lc.fp8_round(1.125, "e5m2") == 1.0 and lc.fp8_round(1.375, "e5m2") == 1.5


@settings(max_examples=200, deadline=None)
@given(x=st.floats(-600, 600, allow_nan=False), fmt=st.sampled_from(["e4m3", "e5m2"]))
def test_fp8_rounds_to_the_nearest_value(x, fmt):
    candidates = _all_values(fmt)
    candidates += [(-v, p) for v, p in candidates]
    best = min(abs(v - x) for v, _ in candidates)
    nearest = [(v, p) for v, p in candidates if abs(v - x) == best]
    if len(nearest) > 1:  # a tie: the even code wins
        nearest = [(v, p) for v, p in nearest if p == 0]
    got = lc.fp8_round(x, fmt)
    if abs(x) > lc.FP8_FORMATS[fmt].max_normal:
        assert got == np.sign(x) * lc.FP8_FORMATS[fmt].max_normal
    else:
        assert got == nearest[0][0]


def test_scaling_uses_the_whole_range():
    x = np.array([0.001, -0.02, 0.03])
    scale = lc.fp8_scale(x)
    assert np.max(np.abs(lc.fp8_round(x, scale=scale))) == pytest.approx(0.03)
    assert np.max(np.abs(lc.fp8_round(x) - x)) > np.max(np.abs(lc.fp8_round(x, scale=scale) - x))
    with pytest.raises(ValueError, match="fmt"):
        lc.fp8_round(1.0, "e3m4")
    with pytest.raises(ValueError, match="scale"):
        lc.fp8_round(1.0, scale=0)
