import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import roofline as rl

size = st.integers(min_value=1, max_value=100_000)


def test_matmul_counts_by_hand():
    assert rl.matmul_flops(2, 3, 5) == 60
    # bf16: 2*(2*3) + 2*(3*5) + 2*(2*5)
    assert rl.matmul_bytes(2, 3, 5) == 62
    # int8 weights, bf16 activations and output: 2*6 + 15 + 2*10
    assert rl.matmul_bytes(2, 3, 5, w_dtype="int8") == 47
    assert rl.matmul_bytes(2, 3, 5, "fp32", "int4", "fp16") == 4 * 6 + 0.5 * 15 + 2 * 10
    assert rl.matmul(2, 3, 5).intensity == pytest.approx(60 / 62)


@given(B=st.integers(1, 64), D=st.integers(50_000, 10**6), F=st.integers(50_000, 10**6))
def test_small_batch_bf16_intensity_is_about_B(B, D, F):
    assert rl.matmul_intensity(B, D, F) == pytest.approx(B, rel=0.01)
    assert rl.matmul_intensity(B, D, F, "bf16", "int8", "bf16") == pytest.approx(2 * B, rel=0.01)


@given(B=size, D=size, F=size)
def test_matmul_intensity_is_flops_over_bytes(B, D, F):
    assert rl.matmul_intensity(B, D, F) == pytest.approx(rl.matmul_flops(B, D, F) / rl.matmul_bytes(B, D, F))


def test_matmul_intensity_grows_with_batch():
    i = rl.matmul_intensity(np.arange(1, 2000), 4096, 4096)
    assert np.all(np.diff(i) > 0)


def test_critical_batch_sizes_of_the_source():
    v5e, h100 = rl.get_chip("tpu-v5e"), rl.get_chip("h100-sxm")
    assert rl.critical_batch_size(v5e.peak_flops(), v5e.hbm_bandwidth) == pytest.approx(240.5, abs=0.1)
    assert rl.critical_batch_size(h100.peak_flops(), h100.hbm_bandwidth) == pytest.approx(295.3, abs=0.1)
    # seed 000 problem 1 (all int8) and problem 2 (int8 weights, bf16 compute)
    assert rl.critical_batch_size(3.94e14, 8.1e11, "int8") == pytest.approx(243.2, abs=0.1)
    assert rl.critical_batch_size(1.97e14, 8.1e11, "int8") == pytest.approx(121.6, abs=0.1)


def test_critical_batch_is_where_intensity_meets_the_ridge():
    peak, bw = 1.97e14, 8.19e11
    b = rl.critical_batch_size(peak, bw)
    huge = 10**9
    assert rl.matmul_intensity(b, huge, huge) == pytest.approx(rl.ridge_intensity(peak, bw), rel=1e-5)


def test_dot_product_and_elementwise():
    assert rl.dot_product(1).flops == 1 and rl.dot_product(1).nbytes == 6
    assert rl.dot_product(10**9).intensity == pytest.approx(0.5, rel=1e-6)
    assert rl.elementwise(1000, dtype="fp32").intensity == pytest.approx(1 / 8)
    add = rl.elementwise(1000, n_inputs=2, dtype="bf16")
    assert add.nbytes == 6000 and add.flops == 1000


def test_per_example_matmul_intensity_tends_to_two_for_int8():
    cost = rl.per_example_matmul(3, 7, 11)
    assert cost.flops == 2 * 3 * 7 * 11
    assert cost.nbytes == 3 * 7 + 3 * 7 * 11 + 3 * 11
    assert rl.per_example_matmul(np.array([1, 4096]), 10**5, 10**5).intensity == pytest.approx([2, 2], rel=1e-4)


def test_two_chip_sharded_matmul_matches_the_source():
    B, D, F = 512, 16384, 16384
    s = rl.sharded_matmul(B, D, F, 2, 1.97e14, 4.5e10)
    assert s.t_math == pytest.approx(B * D * F / 1.97e14)
    assert s.t_link == pytest.approx(2 * B * F / 4.5e10)
    assert s.comm_bytes_per_chip == 2 * B * F
    assert rl.sharded_matmul_critical_d(2, 1.97e14, 4.5e10) == pytest.approx(8755.6, abs=0.1)


@given(n=st.integers(2, 512), D=st.integers(1, 10**6))
def test_sharded_threshold_separates_the_regimes(n, D):
    d_crit = rl.sharded_matmul_critical_d(n, 1.97e14, 4.5e10)
    s = rl.sharded_matmul(64, D, 1024, n, 1.97e14, 4.5e10)
    if D > d_crit * 1.0001:
        assert s.t_math > s.t_link
    elif D < d_crit * 0.9999:
        assert s.t_math < s.t_link


def test_sharded_matmul_rejects_bad_chip_counts():
    with pytest.raises(ValueError, match="n_chips"):
        rl.sharded_matmul(1, 2, 3, 1, 1e12, 1e9)
    with pytest.raises(ValueError, match="n_chips"):
        rl.sharded_matmul_critical_d(2.5, 1e12, 1e9)


@pytest.mark.parametrize("call, name", [
    (lambda: rl.matmul_flops(0, 1, 1), "B"),
    (lambda: rl.matmul_bytes(1, -1, 1), "D"),
    (lambda: rl.matmul_intensity(1, 1, np.array([1, 0])), "F"),
    (lambda: rl.matmul_bytes(1, 1, 1, w_dtype="int3"), "dtype"),
    (lambda: rl.dot_product(0), "N"),
    (lambda: rl.critical_batch_size(1e15, 0), "bandwidth"),
])
def test_bad_sizes_name_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_kv_cache_bytes_by_hand():
    # Llama-2-70B at 4096 tokens, fp16: real layout (8 KV heads) and as if MHA (64 heads)
    assert rl.kv_cache_bytes(80, 8, 128, 4096, 1, "fp16") == 2 * 80 * 8 * 128 * 4096 * 2
    assert rl.kv_cache_bytes(80, 64, 128, 4096, 1, "fp16") == 10 * 2**30
    assert rl.kv_cache_bytes(1, 1, 1, np.array([1, 2]), 3, "int8").tolist() == [6, 12]
    with pytest.raises(ValueError, match="seq_len"):
        rl.kv_cache_bytes(1, 1, 1, 0)


def test_max_chips_inverts_the_critical_d():
    n = int(rl.sharded_matmul_max_chips(8192, 148e12, 450e9))
    assert rl.sharded_matmul_critical_d(n, 148e12, 450e9) <= 8192 < rl.sharded_matmul_critical_d(n + 1, 148e12, 450e9)
    assert rl.sharded_matmul_max_chips(8192, 148e12, 450e9) == pytest.approx(1 + 8192 * 450e9 / (2 * 148e12))
