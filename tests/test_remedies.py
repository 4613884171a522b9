import pytest

import roofline as rl


def test_int4_is_eight_times_smaller_than_fp32_but_four_times_than_bf16():
    assert rl.compression_ratio("fp32", "int4") == 8
    assert rl.compression_ratio("bf16", "int4") == 4
    assert rl.compression_ratio("bf16", "fp8") == 2
    assert rl.weight_bytes(7e9, "int4") == 3.5e9


def test_pruning_schemes():
    n = 1e6
    assert rl.pruned_weight_bytes(n, 0.5, "fp16", "structured") == 1e6
    assert rl.pruned_weight_bytes(n, 0.5, "fp16", "unstructured-dense") == 2e6
    # CSR at 50%: 0.5e6 values x (2 + 4) bytes = more than the dense 2e6
    assert rl.pruned_weight_bytes(n, 0.5, "fp16", "unstructured-csr") == 3e6
    assert rl.pruned_weight_bytes(n, 0.5, "fp16", "2:4") == 0.5e6 * 2.25
    # CSR only pays off at high sparsity: break-even at 1 - 2/6
    assert rl.pruned_weight_bytes(n, 0.7, "fp16", "unstructured-csr") < 2e6


def test_memory_bound_speedup_is_the_byte_ratio():
    before = rl.weight_bytes(7e9, "bf16")
    assert rl.memory_bound_speedup(before, rl.weight_bytes(7e9, "int4")) == 4


@pytest.mark.parametrize("call, name", [
    (lambda: rl.pruned_weight_bytes(1e6, 1.0), "sparsity"),
    (lambda: rl.pruned_weight_bytes(1e6, 0.3, scheme="2:4"), "sparsity must be 0.5"),
    (lambda: rl.pruned_weight_bytes(1e6, 0.3, scheme="random"), "scheme"),
    (lambda: rl.weight_bytes(-1), "n_params"),
    (lambda: rl.compression_ratio("fp64", "int4"), "dtype"),
    (lambda: rl.memory_bound_speedup(1, 0), "bytes_after"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_weight_remedies_table():
    rows = {r.name: r for r in rl.weight_remedies(1e9)}
    assert rows["bf16 weights"].decode_speedup == 1
    assert rows["int4 weights"].weight_bytes == 0.5e9 and rows["int4 weights"].decode_speedup == 4
    assert rows["fp32 weights"].decode_speedup == 0.5
    assert rows["structured pruning 30%"].weight_bytes == pytest.approx(1.4e9)
    assert rows["structured pruning 30%"].flops_fraction == pytest.approx(0.7)
    # scattered zeros in dense storage save neither bytes nor FLOPs
    dense = rows["unstructured 80%, dense storage"]
    assert (dense.weight_bytes, dense.flops_fraction, dense.decode_speedup) == (2e9, 1.0, 1.0)
    # CSR: 0.2e9 kept x (2 value + 4 index) bytes
    assert rows["unstructured 80%, CSR"].weight_bytes == pytest.approx(1.2e9)
    assert rows["2:4 semi-structured"].decode_speedup == pytest.approx(2 / 1.125)
    fp32_base = {r.name: r for r in rl.weight_remedies(1e9, baseline="fp32")}
    assert fp32_base["int4 weights"].decode_speedup == 8
