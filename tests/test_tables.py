import pytest

import roofline as rl

DESIGN_CHIPS = ["h100-sxm", "h100-pcie", "h200", "h20", "a100-40gb", "a100-80gb", "a800", "rtx-4090",
                "l40s", "gtx-1080ti", "v100", "tpu-v4", "tpu-v5e", "tpu-v5p", "tpu-v6e", "mi300x"]
DESIGN_MODELS = ["gpt-2", "bert-base", "bert-large", "gpt-3-175b", "llama-2-7b", "llama-2-13b",
                 "llama-2-70b", "llama-3-8b", "llama-3-70b", "mistral-7b"]


def test_every_design_chip_is_in_the_table_with_a_source():
    assert rl.list_chips() == DESIGN_CHIPS
    for chip_id in DESIGN_CHIPS:
        chip = rl.get_chip(chip_id)
        assert chip.source.strip(), chip_id
        assert chip.hbm_bandwidth > 1e11 and chip.hbm_capacity > 1e9
        assert chip.dense_flops, chip_id


def test_peaks_are_dense_not_sparse():
    # NVIDIA quotes 1,979 TFLOP/s bf16 "with sparsity" for the H100 SXM; dense is half.
    assert rl.get_chip("h100-sxm").peak_flops("bf16") == pytest.approx(1.979e15 / 2, rel=1e-3)
    assert rl.get_chip("a100-80gb").peak_flops("bf16") == 312e12
    assert rl.get_chip("tpu-v5e").peak_flops("bf16") == 1.97e14


def test_a100_40gb_matches_the_whitepaper():
    chip = rl.get_chip("a100-40gb")
    assert chip.hbm_bandwidth == 1.555e12 and chip.hbm_capacity == 40e9
    assert chip.peak_flops("fp32") == 19.5e12
    assert [lv.name for lv in chip.memory_levels()] == ["L1", "L2", "HBM"]
    bandwidths = [lv.bandwidth for lv in chip.memory_levels()]
    assert bandwidths == sorted(bandwidths, reverse=True)


def test_interconnect_is_per_direction():
    assert rl.get_chip("h100-sxm").interconnect_bandwidth == 450e9
    with pytest.raises(ValueError, match="tpu-v4"):
        _ = rl.get_chip("tpu-v4").interconnect_bandwidth


def test_missing_peak_is_a_clear_error():
    with pytest.raises(ValueError, match="fp8.*a100-80gb"):
        rl.get_chip("a100-80gb").peak_flops("fp8")
    with pytest.raises(ValueError, match="dtype"):
        rl.get_chip("h100-sxm").peak_flops("fp64")


def test_unknown_ids_name_the_argument():
    with pytest.raises(ValueError, match="chip_id"):
        rl.get_chip("h1000")
    with pytest.raises(ValueError, match="model_id"):
        rl.get_model("llama-9")


def test_every_design_model_is_in_the_table():
    assert rl.list_models() == DESIGN_MODELS
    for model_id in DESIGN_MODELS:
        m = rl.get_model(model_id)
        assert m.source.strip()
        assert m.n_heads * m.head_dim == m.d_model, model_id


@pytest.mark.parametrize("model_id, layout", [("llama-2-7b", "MHA"), ("llama-2-70b", "GQA"),
                                              ("llama-3-8b", "GQA"), ("gpt-2", "MHA")])
def test_attention_layout(model_id, layout):
    assert rl.get_model(model_id).attention == layout


def test_model_config_validates():
    with pytest.raises(ValueError, match="n_kv_heads"):
        rl.ModelConfig("x", 2, 64, 8, 3, 8, 256, 100, 128, "test")
    with pytest.raises(ValueError, match="n_layers"):
        rl.ModelConfig("x", 0, 64, 8, 8, 8, 256, 100, 128, "test")


def test_lookups_pass_objects_through():
    chip, model = rl.get_chip("h20"), rl.get_model("gpt-2")
    assert rl.get_chip(chip) is chip and rl.get_model(model) is model
