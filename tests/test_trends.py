import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import roofline as rl


@given(rate=st.floats(1.05, 1000), start=st.floats(1e-3, 1e6), n=st.integers(3, 40))
def test_noiseless_exponential_growth_is_recovered_exactly(rate, start, n):
    years = np.linspace(1990, 2020, n)
    fit = rl.fit_growth(years, start * rate ** ((years - 1990) / 2))
    assert fit.growth(2) == pytest.approx(rate, rel=1e-6)
    assert fit.predict(1990) == pytest.approx(start, rel=1e-6)


def test_noisy_growth_is_recovered_within_its_interval():
    rng = np.random.default_rng(0)
    years = np.sort(rng.uniform(2000, 2020, 30))
    values = 7.0 * 3.0 ** ((years - 2000) / 2) * 10 ** rng.normal(0, 0.1, years.size)
    fit = rl.fit_growth(years, values)
    low, high = fit.growth_ci(2)
    assert low < 3.0 < high
    assert fit.growth(2) == pytest.approx(3.0, rel=0.05)
    narrow = rl.fit_growth(years, values, confidence=0.5).growth_ci(2)
    assert low < narrow[0] < narrow[1] < high


def test_student_t_quantiles():
    from roofline.trends import _t_quantile

    assert _t_quantile(0.975, 1) == pytest.approx(12.706, abs=1e-3)
    assert _t_quantile(0.975, 8) == pytest.approx(2.306, abs=1e-3)
    assert _t_quantile(0.975, 1000) == pytest.approx(1.962, abs=1e-3)


# Independent reference: the refits in shared/data/memory_wall/trend_fits.csv (PROVENANCE.md).
@pytest.mark.parametrize("series, per_2yrs, per_20yrs", [
    ("peak_flops", 3.026, 6.431e4), ("dram_bandwidth", 1.592, 104.3), ("interconnect_bandwidth", 1.415, 32.19),
    ("transformer_params", 413.1, None), ("accelerator_memory", 1.863, None), ("training_compute", 755, None),
])
def test_packaged_series_reproduce_the_papers_trends(series, per_2yrs, per_20yrs):
    fit = rl.fit_series(series)
    assert fit.growth(2) == pytest.approx(per_2yrs, rel=0.005)
    if per_20yrs:
        assert fit.growth(20) == pytest.approx(per_20yrs, rel=0.01)
    low, high = fit.growth_ci(2)
    assert low < fit.growth(2) < high


def test_series_have_the_documented_number_of_points():
    counts = {name: rl.load_series(name)[0].size for name in rl.list_series()}
    assert counts == {"peak_flops": 37, "dram_bandwidth": 12, "interconnect_bandwidth": 10,
                      "transformer_params": 10, "accelerator_memory": 7, "training_compute": 10}
    years, _ = rl.load_series("peak_flops")
    assert np.all(np.diff(years) >= 0)


def test_ridge_points_over_time():
    points = rl.ridge_points_over_time()
    assert [p.year for p in points] == sorted(p.year for p in points)
    by_id = {p.chip_id: p for p in points}
    assert by_id["h100-sxm"].ridge == pytest.approx(295.3, abs=0.1) and by_id["h100-sxm"].dtype == "bf16"
    assert by_id["v100"].dtype == "fp16" and by_id["v100"].ridge == pytest.approx(125e12 / 900e9)
    assert by_id["gtx-1080ti"].dtype == "fp32" and by_id["gtx-1080ti"].ridge == pytest.approx(23.43, abs=0.01)
    assert len(points) == len(rl.list_chips())


@pytest.mark.parametrize("kwargs, name", [
    (dict(years=[1, 2], values=[1, 2]), "at least 3"),
    (dict(years=[1, 2, 3], values=[1, 0, 2]), "values"),
    (dict(years=[1, 2, 3], values=[1, 2]), "years and values"),
    (dict(years=[1, 1, 1], values=[1, 2, 3]), "years"),
    (dict(years=[1, 2, 3], values=[1, 2, 3], confidence=1.5), "confidence"),
])
def test_bad_fits_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        rl.fit_growth(**kwargs)


def test_unknown_series_is_a_clear_error():
    with pytest.raises(ValueError, match="name must be one of"):
        rl.load_series("gpu_prices")


def test_gap_doubling_time():
    # A gap growing 2x per period doubles in one period; 3.0 vs 1.6 per 2 years: 2 ln2 / ln(1.875)
    assert rl.gap_doubling_years(4.0, 2.0) == pytest.approx(2.0)
    assert rl.gap_doubling_years(2.0, 1.0, period_years=1) == pytest.approx(1.0)
    assert rl.gap_doubling_years(3.0, 1.6) == pytest.approx(2 * np.log(2) / np.log(3.0 / 1.6))
    # simulate: after that many years the ratio has doubled
    years = rl.gap_doubling_years(3.0, 1.6)
    assert (3.0 ** (years / 2)) / (1.6 ** (years / 2)) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="fast_growth"):
        rl.gap_doubling_years(1.5, 1.6)
    with pytest.raises(ValueError, match="slow_growth"):
        rl.gap_doubling_years(1.5, -1)
