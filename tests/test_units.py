import numpy as np
import pytest

import roofline as rl


@pytest.mark.parametrize("dtype, size", [("fp32", 4), ("tf32", 4), ("bf16", 2), ("fp16", 2),
                                         ("fp8", 1), ("int8", 1), ("int4", 0.5), ("BF16", 2)])
def test_dtype_bytes(dtype, size):
    assert rl.dtype_bytes(dtype) == size


@pytest.mark.parametrize("bad", ["fp64", "", None, 2])
def test_unknown_dtype_is_a_value_error_naming_the_argument(bad):
    with pytest.raises(ValueError, match="dtype"):
        rl.dtype_bytes(bad)


@pytest.mark.parametrize("value, text", [
    (3.35e12, "3.35 TB/s"), (8.19e11, "819 GB/s"), (999.7e9, "1 TB/s"), (1.5e3, "1.5 kB/s"), (12.0, "12 B/s"),
])
def test_format_bandwidth(value, text):
    assert rl.format_bandwidth(value) == text


def test_format_helpers():
    assert rl.format_flops(9.894e14) == "989 TFLOP/s"
    assert rl.format_flop_count(2.2e12) == "2.2 TFLOP"
    assert rl.format_bytes(8e10) == "80 GB"
    assert rl.format_bytes(80 * 2**30, binary=True) == "80 GiB"
    assert rl.format_time(1.01e-3) == "1.01 ms"
    assert rl.format_time(46.1e-6) == "46.1 µs"
    assert rl.format_time(90) == "90 s"
    assert rl.format_intensity(240.537) == "241 FLOP/B"
    # ties round half up, as a reader rounds (a B200's fp8 ridge, 4.5e15 / 8e12 = 562.5), and from
    # 1000 FLOP/B up the whole number is shown (its NVFP4 ridge, 1125, not a rounded "1120")
    assert rl.format_intensity(4.5e15 / 8e12) == "563 FLOP/B"
    assert rl.format_intensity(9e15 / 8e12) == "1,125 FLOP/B"
    assert rl.format_si(0, "B") == "0 B"


def test_format_rejects_non_finite():
    with pytest.raises(ValueError, match="finite"):
        rl.format_time(float("inf"))
    with pytest.raises(ValueError, match="finite"):
        rl.format_si(float("nan"), "B")


def test_check_positive_names_the_argument():
    from roofline.units import check_positive

    with pytest.raises(ValueError, match="bandwidth must be > 0"):
        check_positive("bandwidth", 0)
    with pytest.raises(ValueError, match="B must be >= 0"):
        check_positive("B", np.array([1, -1]), allow_zero=True)
    with pytest.raises(ValueError, match="peak must be finite"):
        check_positive("peak", [1, np.nan])
    with pytest.raises(ValueError, match="x must be a number"):
        check_positive("x", "12")
    with pytest.raises(ValueError, match="x must be a number"):
        check_positive("x", True)


def test_format_factor_never_uses_an_exponent():
    assert rl.format_factor(3.026) == "3.03x"
    assert rl.format_factor(96.74) == "96.7x"
    assert rl.format_factor(413.41) == "413x"
    assert rl.format_factor(999.7) == "1,000x"
    assert rl.format_factor(64306.3) == "64,300x"
    assert rl.format_factor(2918879.06) == "2,920,000x"
    assert rl.format_factor(0.5) == "0.5x"


def test_check_int_names_the_argument_and_rejects_non_integers():
    from roofline.units import check_int

    assert check_int("batch", np.int64(3)) == 3 and check_int("n", 0, minimum=0) == 0
    for bad in (0, 2.0, True, "4", None):
        with pytest.raises(ValueError, match="batch must be a positive integer"):
            check_int("batch", bad)
    with pytest.raises(ValueError, match="n must be an integer >= 0"):
        check_int("n", -1, minimum=0)
