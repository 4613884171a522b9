import pytest

import roofline as rl

DESIGN_CHIPS = ["h100-sxm", "h100-pcie", "h200", "h20", "a100-40gb", "a100-80gb", "a800", "rtx-4090",
                "l40s", "gtx-1080ti", "v100", "tpu-v4", "tpu-v5e", "tpu-v5p", "tpu-v6e", "mi300x",
                "b200", "gb200", "mi355x", "tpu-v7"]
DESIGN_MODELS = ["gpt-2", "bert-base", "bert-large", "gpt-3-175b", "llama-2-7b", "llama-2-13b",
                 "llama-2-70b", "llama-3-8b", "llama-3-70b", "mistral-7b", "llama-3.1-405b", "mixtral-8x7b",
                 "qwen3-8b", "qwen3-30b-a3b", "gemma-2-9b", "gpt-oss-120b", "deepseek-v3"]


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


def test_every_design_model_is_in_the_table_with_its_source_and_published_size():
    assert rl.list_models() == DESIGN_MODELS
    for model_id in DESIGN_MODELS:
        m = rl.get_model(model_id)
        assert m.source.strip() and m.published_parameters.strip(), model_id


def test_query_width_is_decoupled_where_the_config_says_so():
    decoupled = {m for m in DESIGN_MODELS if rl.get_model(m).n_heads * rl.get_model(m).head_dim != rl.get_model(m).d_model}
    # Gemma 2 9B: 16 x 256 = 4096 vs 3584; Qwen3-30B-A3B: 32 x 128 vs 2048; gpt-oss: 64 x 64 vs 2880;
    # DeepSeek-V3's MLA heads are 128 wide (plus 64 rotary) with 128 heads vs 7168
    assert decoupled == {"gemma-2-9b", "qwen3-30b-a3b", "gpt-oss-120b", "deepseek-v3"}


@pytest.mark.parametrize("chip_id, bf16, fp8, fp4, capacity, bandwidth", [
    # per GPU, dense: the vendors' sparse figures halved, rack or board totals divided
    ("b200", 2.25e15, 4.5e15, 9e15, 180e9, 8e12),       # DGX B200: 72 PF FP4 dense / 8 GPUs, 1,440 GB, 64 TB/s
    ("gb200", 2.5e15, 5e15, 10e15, 186e9, 8e12),        # NVL72: 720 PF NVFP4 dense / 72, 13.4 TB, 576 TB/s
    ("mi355x", 2.5166e15, 5.0332e15, 1.00663e16, 288e9, 8e12),  # 256 CUs x 4096 FLOP/clk x 2.4 GHz (AMD: 2.5 PF)
])
def test_blackwell_and_cdna4_rows(chip_id, bf16, fp8, fp4, capacity, bandwidth):
    chip = rl.get_chip(chip_id)
    assert (chip.peak_flops("bf16"), chip.peak_flops("fp8"), chip.peak_flops("fp4")) == (bf16, fp8, fp4)
    assert (chip.hbm_capacity, chip.hbm_bandwidth) == (capacity, bandwidth)
    assert chip.peak_flops("mxfp4") == fp4


def test_fp4_formats_follow_the_hardware():
    assert rl.get_chip("b200").peak_flops("nvfp4") == 9e15  # Blackwell runs NVFP4 and MXFP4
    with pytest.raises(ValueError, match="nvfp4.*mi355x"):
        rl.get_chip("mi355x").peak_flops("nvfp4")  # CDNA 4 runs the OCP MX formats only
    with pytest.raises(ValueError, match="fp4.*h100-sxm"):
        rl.get_chip("h100-sxm").peak_flops("fp4")  # Hopper has no FP4 tensor cores
    # block-scaled FP4 stores a scale per block: 4.5 bits (16-element E4M3 scales) and 4.25 bits (32, E8M0)
    assert (rl.dtype_bytes("nvfp4"), rl.dtype_bytes("mxfp4"), rl.dtype_bytes("fp4")) == (4.5 / 8, 4.25 / 8, 0.5)


def test_scale_up_domains():
    assert rl.get_chip("gb200").scale_up_chips == 72  # one NVL72 rack is one NVLink domain
    assert rl.get_chip("b200").scale_up_chips == 8
    assert rl.get_chip("gb200").interconnect_bandwidth == 900e9  # 1.8 TB/s is both directions
    assert rl.get_chip("tpu-v7").scale_up_chips == 9216 and rl.get_chip("tpu-v7").peak_flops("fp8") == 4.614e15


def test_every_chip_has_a_source_and_fp8_at_most_doubles_bf16():
    for chip in rl.CHIPS.values():
        assert chip.source.strip() and chip.notes.strip(), chip.chip_id
        assert chip.dense_flops, chip.chip_id
        rates = chip.dense_flops
        if "bf16" in rates and "fp8" in rates:
            # a sparse figure taken for dense would show as 4x; the L40S datasheet's own dense pair
            # (BF16 362.05, FP8 733 TFLOP/s) is 2.02x
            assert rates["fp8"] <= 2.03 * rates["bf16"], chip.chip_id
        if chip.sm_count is not None:
            assert chip.sm_source.strip(), chip.chip_id


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
