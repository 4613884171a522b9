"""KV cache, prefill and decode on a roofline, checked against hand computation from published configs."""

import numpy as np
import pytest

import roofline as rl
from roofline import decode


def test_kv_sizes_from_the_llama_2_70b_config():
    # 80 layers, 8 KV heads (GQA) of 128 dims; the seed treats it as 64 heads (MHA)
    assert decode.kv_bytes_per_token("llama-2-70b", "bf16") == 2 * 80 * 8 * 128 * 2
    assert decode.kv_bytes_per_token("llama-2-70b", "bf16", as_mha=True) == 2 * 80 * 64 * 128 * 2
    seed = decode.model_kv_cache_bytes("llama-2-70b", 4096, batch=8, dtype="fp16", as_mha=True)
    assert seed == 80 * 2**30  # the seed's "80 GB" is 80 GiB
    assert decode.model_kv_cache_bytes("llama-2-70b", 4096, batch=8, dtype="fp16") == 10 * 2**30
    # agrees with the table-free formula of DESIGN.md
    assert decode.model_kv_cache_bytes("llama-2-70b", 4096, 8) == rl.kv_cache_bytes(80, 8, 128, 4096, 8)
    # MHA (GPT-2: 12 heads of 64) and fp8
    assert decode.kv_bytes_per_token("gpt-2", "fp8") == 2 * 12 * 12 * 64


def test_sliding_window_caps_the_cache():
    per_token = decode.kv_bytes_per_token("mistral-7b")
    sizes = decode.model_kv_cache_bytes("mistral-7b", [1000, 4096, 32768])
    assert list(sizes) == [1000 * per_token, 4096 * per_token, 4096 * per_token]


def test_what_the_cache_saves():
    # the seed: 4 * 8192^2 FLOPs per token and layer, 4096 tokens, 80 layers, batch 8 = "640 T"
    assert decode.kv_recompute_flops("llama-2-70b", 4096, 8, as_mha=True) == 640 * 2**40
    # per cached fp16 byte: 2 d / 2 = d FLOPs (16K per element), whatever the KV-head count
    assert decode.kv_flops_saved_per_byte("llama-2-70b", "fp16") == 8192
    assert decode.kv_flops_saved_per_byte("llama-2-7b", "fp16") == 4096
    cached, uncached = (decode.generation_cost("gpt-2", 256, kv_cache=k) for k in (True, False))
    assert uncached.flops > 50 * cached.flops
    longer = decode.generation_cost("gpt-2", 512, kv_cache=False)
    assert longer.flops / uncached.flops > 3.5  # roughly quadratic (cubic attention part)


def test_decode_step_matches_the_worked_example_to_the_byte():
    # Llama-2-7B: d 4096, 32 layers, 32 KV heads of 128, d_ff 11008 (SwiGLU), vocab 32000
    weights = 32 * (2 * 4096**2 + 2 * 4096 * 4096 + 3 * 4096 * 11008) + 32000 * 4096
    assert decode.matmul_params("llama-2-7b") == weights
    cost = decode.decode_step_cost("llama-2-7b", context_len=1000, batch=4, w_dtype="int8", kv_dtype="bf16")
    assert cost.weight_bytes == weights * 1
    assert cost.kv_bytes == 4 * 1000 * (2 * 32 * 32 * 128 * 2)
    assert cost.flops == 4 * (2 * weights + 4 * 32 * 32 * 128 * 1000)
    h100 = rl.get_chip("h100-sxm")
    t = decode.decode_step_time("llama-2-7b", "h100-sxm", 4, 1000, "int8", "bf16")
    assert t.t_memory == pytest.approx(cost.nbytes / h100.hbm_bandwidth)
    assert t.time == max(t.t_math, t.t_memory) and str(t.bound) == "memory"
    assert t.tokens_per_s == pytest.approx(4 / t.time) and t.tokens_per_s_per_seq == pytest.approx(1 / t.time)


def test_prefill_is_far_more_intense_than_decode():
    prefill = decode.prefill_cost("llama-2-7b", 2048)
    step = decode.decode_step_cost("llama-2-7b", 2048)
    assert prefill.intensity > 500 * step.intensity
    assert prefill.kv_bytes == decode.model_kv_cache_bytes("llama-2-7b", 2048)


def test_largest_batch_and_critical_batch():
    per_seq = decode.model_kv_cache_bytes("llama-2-7b", 4096)
    weights = rl.parameter_count("llama-2-7b") * 2
    assert decode.max_batch("llama-2-7b", 80e9, 4096) == (80e9 - weights) // per_seq
    assert decode.max_batch("llama-2-70b", 80e9, 4096) == 0  # 138 GB of weights do not fit
    b = decode.decode_critical_batch("llama-3-8b", "h20", 1024)  # GQA: small KV per sequence
    t = decode.decode_step_time("llama-3-8b", "h20", b, 1024)
    assert t.t_math == pytest.approx(t.t_memory)
    assert str(decode.decode_step_time("llama-3-8b", "h20", b * 1.1, 1024).bound) == "compute"
    # an MHA model's KV reads outgrow its FLOPs per sequence on the H20: never compute-bound
    assert decode.decode_critical_batch("llama-2-7b", "h20", 1024) == np.inf
    # at long context the KV reads grow with the batch as fast as the FLOPs: never compute-bound
    assert decode.decode_critical_batch("llama-2-70b", "h100-sxm", 4096) == np.inf


def test_tensor_parallel_decode():
    one = decode.tensor_parallel_decode("llama-2-70b", "h20", 1, batch=8)
    plain = decode.decode_step_time("llama-2-70b", "h20", 8)
    assert one.t_link == 0 and one.time == pytest.approx(plain.time)
    eight = decode.tensor_parallel_decode("llama-2-70b", "h20", 8, batch=8)
    assert eight.bytes_per_chip == pytest.approx(one.bytes_per_chip / 8)
    # two all-reduces of [8, 8192] bf16 per layer, ring: 2 (N-1)/N of the data per chip
    assert eight.t_link == pytest.approx(2 * 7 / 8 * 2 * 80 * 8 * 8192 * 2 / rl.get_chip("h20").interconnect_bandwidth)
    with pytest.raises(ValueError, match="interconnect"):
        decode.tensor_parallel_decode("llama-2-7b", "tpu-v4", 2)


def test_tensor_parallel_chips_read_whole_kv_heads():
    # Qwen3-30B-A3B caches 4 KV heads: on 8 chips each reads one whole head, a quarter of the cache
    weights, kv = (decode.decode_step_cost("qwen3-30b-a3b", 4096, 16).weight_bytes,
                   decode.model_kv_cache_bytes("qwen3-30b-a3b", 4096, 16))
    assert decode.tensor_parallel_decode("qwen3-30b-a3b", "h100-sxm", 8, 16, 4096).bytes_per_chip == pytest.approx(
        weights / 8 + kv / 4)
    assert decode.tensor_parallel_decode("qwen3-30b-a3b", "h100-sxm", 4, 16, 4096).bytes_per_chip == pytest.approx(
        weights / 4 + kv / 4)
    # DeepSeek-V3's one latent is read whole by every chip; the FLOPs still split
    step = decode.decode_step_cost("deepseek-v3", 4096, 16)
    share = decode.tensor_parallel_share(step, "deepseek-v3", 8)
    assert (share.flops, share.weight_bytes, share.kv_bytes) == pytest.approx((step.flops / 8, step.weight_bytes / 8,
                                                                               step.kv_bytes))
    # and the batch that fits on each of 8 chips counts the replicated head: (80 GB - W/8) / (KV per sequence / 4)
    per_seq, params = decode.model_kv_cache_bytes("qwen3-30b-a3b", 4096), rl.parameter_count("qwen3-30b-a3b")
    assert decode.max_batch("qwen3-30b-a3b", 80e9, 4096, n_chips=8) == (80e9 - params * 2 / 8) // (per_seq / 4)
    assert decode.max_batch("llama-2-7b", 80e9, 4096, n_chips=1) == decode.max_batch("llama-2-7b", 80e9, 4096)


@pytest.mark.parametrize("call, name", [
    (lambda: decode.model_kv_cache_bytes("llama-2-7b", 0), "seq_len"),
    (lambda: decode.max_batch("llama-2-7b", 80e9, 100, n_chips=0), "n_chips"),
    (lambda: decode.decode_step_cost("llama-2-7b", 100, batch=-1), "batch"),
    (lambda: decode.decode_step_time("llama-2-7b", "h100-sxm", 1, 100, w_dtype="int3"), "dtype"),
    (lambda: decode.max_batch("llama-2-7b", 0, 100), "capacity_bytes"),
    (lambda: decode.tensor_parallel_decode("llama-2-7b", "h20", 0), "n_chips"),
    (lambda: decode.decode_step_time("llama-9", "h20"), "model_id"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@pytest.mark.parametrize("model_id, group", [("llama-2-7b", 1), ("llama-3-8b", 4), ("llama-2-70b", 8)])
def test_fused_decode_attention_intensity_is_about_the_gqa_group(model_id, group):
    cost = rl.decode_attention_cost(model_id, 32768, kv_dtype="bf16")
    # 2 g / bytes per cached value, plus the softmax's few FLOPs per score, a little less for q and output
    assert cost.intensity == pytest.approx(group * (1 + 5 / (4 * 128)), rel=0.01)


def test_unfused_attention_sends_the_scores_through_memory():
    fused = rl.decode_attention_cost("llama-2-70b", 4096, batch=8)
    unfused = rl.decode_attention_cost("llama-2-70b", 4096, batch=8, fused=False)
    assert unfused.flops == fused.flops and unfused.kv_bytes == fused.kv_bytes
    assert unfused.activation_bytes - fused.activation_bytes == 8 * 4 * 80 * 64 * 4096 * 2  # B x 4 x L H T x bf16
    # in decode the scores (4 x 64 heads x 2 bytes per token) are small beside a GQA cache (2 x 8 x 128 x 2 bytes)
    assert unfused.intensity == pytest.approx(fused.intensity * fused.nbytes / unfused.nbytes)
    assert 0.85 < unfused.intensity / fused.intensity < 0.9


def test_latent_attention_decode_is_far_more_intense():
    mla = rl.decode_attention_cost("deepseek-v3", 32768)
    # absorbed MLA: 128 heads x 2 (576 + 512) FLOPs per cached token and layer, over 576 cached values
    assert mla.intensity == pytest.approx(128 * (2 * (576 + 512) + 5) / (576 * 2), rel=0.01)
    assert mla.intensity > 100 > rl.decode_attention_cost("llama-3-8b", 32768).intensity


def test_mfu_reproduces_palm_540b():
    # Chowdhery et al. 2022, Table 3: 238.3k tokens/s on 6144 TPU v4 chips is 46.2% MFU.
    palm = rl.ModelConfig("palm-540b", n_layers=118, d_model=18432, n_heads=48, n_kv_heads=1, head_dim=256,
                          d_ff=73728, vocab_size=256000, max_seq_len=2048, source="Chowdhery et al. 2022, Table 1",
                          gated_mlp=True)
    assert palm.parameter_count() == pytest.approx(540.35e9, rel=0.002)
    mfu = rl.model_flops_utilization(palm, "tpu-v4", 238.3e3, context_len=2048, training=True, n_chips=6144)
    assert mfu == pytest.approx(0.462, abs=0.003)


def test_mfu_of_a_decode_step_by_hand():
    m, chip = rl.get_model("llama-3-8b"), rl.get_chip("h100-sxm")
    flops_per_token = 2 * rl.matmul_params(m) + 4 * 32 * 32 * 128 * 1000
    assert rl.model_flops_utilization(m, chip, 5000.0, context_len=1000) == pytest.approx(
        5000 * flops_per_token / chip.peak_flops("bf16"))
    with pytest.raises(ValueError, match="tokens_per_s"):
        rl.model_flops_utilization(m, chip, -1.0)


def test_tensor_parallel_turns_link_bound_where_the_model_says():
    # Llama-2-70B on H20s: math and links balance at about 80 chips, whatever the batch
    n = rl.tensor_parallel_max_chips("llama-2-70b", "h20")
    assert 75 < n < 85
    for batch in (2048, 8192):
        below = rl.tensor_parallel_decode("llama-2-70b", "h20", int(n) - 8, batch=batch, context_len=1)
        above = rl.tensor_parallel_decode("llama-2-70b", "h20", int(n) + 8, batch=batch, context_len=1)
        assert below.t_link < below.t_math and above.t_link > above.t_math
    # by hand: N - 1 = f W / (4 L d b peak), f = 2 P per token
    m, chip = rl.get_model("llama-2-70b"), rl.get_chip("a800")
    f = 2 * rl.matmul_params(m) + m.attention_flops(1)
    assert rl.tensor_parallel_max_chips(m, chip) == pytest.approx(1 + f * 200e9 / (4 * 80 * 8192 * 2 * 312e12))


def test_decode_phases_add_attention_to_the_matmuls():
    m, chip = rl.get_model("llama-3-8b"), rl.get_chip("h20")
    full = rl.decode_step_time(m, chip, 512, 1024)
    phases = rl.decode_step_time(m, chip, 512, 1024, overlap="phases")
    attention = rl.decode_attention_cost(m, 1024, 512).bounds(chip.peak_flops("bf16"), chip.hbm_bandwidth)
    matmul_math = 512 * 2 * rl.matmul_params(m) / chip.peak_flops("bf16")  # compute-bound at this batch
    assert phases.time == pytest.approx(attention.lower + matmul_math)
    assert phases.time > 1.2 * full.time  # the cache reads no longer hide under the MLP's FLOPs
    small = rl.decode_step_time(m, chip, 1, 1024, overlap="phases")  # all memory-bound: the two agree
    assert small.time == pytest.approx(rl.decode_step_time(m, chip, 1, 1024).time, rel=0.01)
    with pytest.raises(ValueError, match="overlap"):
        rl.decode_step_time(m, chip, 1, 1024, overlap="some")
