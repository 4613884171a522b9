import numpy as np
import pytest

import roofline as rl
from roofline import serving_scale as s


def test_prefill_attention_intensity_grows_with_the_prompt_when_fused():
    # MHA, bf16: per layer 2 H d_h T^2 FLOPs over (Q, K, V, O) = 4 H d_h T values of 2 bytes: about T / 4
    for T in (1024, 4096, 16384):
        cost = s.prefill_attention_cost("llama-2-7b", T)
        assert cost.intensity == pytest.approx(T / 4 * (1 + 5 / 512), rel=0.01)
    unfused = [s.prefill_attention_cost("llama-2-7b", T, fused=False) for T in (4096, 16384)]
    assert unfused[1].flops == s.prefill_attention_cost("llama-2-7b", 16384).flops
    # each score costs 2 (128 + 128) + 5 FLOPs and four 2-byte trips through memory: capped near 64,
    # below an H100's ridge, whatever the prompt length
    for cost in unfused:
        assert cost.intensity == pytest.approx((2 * 256 + 5) / 8, rel=0.07)


def test_attention_overtakes_the_matmuls_at_a_context_set_by_the_shapes():
    m = rl.get_model("llama-3-8b")
    T = s.attention_crossover_context(m)
    assert T == pytest.approx(2 * rl.matmul_params(m) / (4 * 32 * 32 * 128), rel=1e-6)  # 2P = 4 L H d_h T
    assert s.attention_crossover_context("mistral-7b") == float("inf")  # every layer stops at its window
    # absorbed latent attention is FLOP-heavy and DeepSeek-V3's active weights are few: it crosses early
    assert s.attention_crossover_context("deepseek-v3") < T / 4


def test_the_frontier_trades_latency_for_throughput():
    f = s.serving_frontier("llama-3-8b", "h100-sxm", 4096)
    assert np.all(np.diff(f.latency) > 0) and np.all(np.diff(f.tokens_per_s_per_chip) > 0)
    assert f.batch[-1] <= rl.max_batch("llama-3-8b", rl.get_chip("h100-sxm").hbm_capacity, 4096)
    assert f.tokens_per_s_per_chip[0] == pytest.approx(1 / f.latency[0])
    tp = s.serving_frontier("llama-3-70b", "h100-sxm", 4096, n_chips=4)  # 70B needs several chips
    assert tp.batch.size and np.all(tp.tokens_per_s_per_chip == tp.batch / tp.latency / 4)
    with pytest.raises(ValueError, match="n_chips"):
        s.serving_frontier("llama-3-70b", "h100-sxm", 4096)


@pytest.mark.parametrize("a, k, expected", [(0.0, 4, 1.0), (1.0, 4, 5.0), (0.5, 1, 1.5), (0.8, 4, 3.3616)])
def test_expected_tokens_per_speculative_step(a, k, expected):
    assert s.expected_accepted_tokens(a, k) == pytest.approx(expected)


def test_speculation_pays_while_verifying_is_as_cheap_as_a_step():
    spec = s.speculative_decoding("llama-3-70b", "llama-3-8b", "h200", 0.8, 4, w_dtype="fp8", kv_dtype="fp8")
    assert spec.verify_time == pytest.approx(spec.plain_time, rel=0.01)  # memory-bound: k + 1 tokens cost one step
    assert spec.speedup == pytest.approx(spec.tokens_per_step * spec.plain_time / (spec.draft_time + spec.verify_time))
    assert spec.speedup > 1.5
    bad = s.speculative_decoding("llama-3-70b", "llama-3-8b", "h200", 0.1, 4, w_dtype="fp8", kv_dtype="fp8")
    assert bad.speedup < 1  # rejected drafts cost their draft steps for nothing
    with pytest.raises(ValueError, match="acceptance"):
        s.expected_accepted_tokens(1.5, 4)


def test_disaggregation_protects_the_inter_token_latency():
    together = s.colocated("llama-3-8b", "h100-sxm", 16384)
    apart = s.disaggregated("llama-3-8b", "h100-sxm", 16384)
    assert apart.itl < together.itl / 10
    transfer = rl.get_model("llama-3-8b").kv_cache_bytes(16384) / rl.get_chip("h100-sxm").interconnect_bandwidth
    assert apart.ttft - transfer == pytest.approx(rl.iteration_time("llama-3-8b", "h100-sxm", (), [(0, 16384)]))


def test_kv_cache_per_chip_under_tensor_parallelism():
    full = rl.model_kv_cache_bytes("llama-3-70b", 4096)
    assert s.kv_bytes_per_chip("llama-3-70b", 8, 4096) == pytest.approx(full / 8)  # one KV head per chip
    assert s.kv_bytes_per_chip("llama-3-70b", 16, 4096) == pytest.approx(full / 8)  # 8 KV heads: replicated
    assert s.kv_bytes_per_chip("deepseek-v3", 8, 4096) == pytest.approx(rl.model_kv_cache_bytes("deepseek-v3", 4096))
    # the share itself: 1/N down to one of the model's cached heads; arrays of chip counts at once
    assert list(s.kv_head_share("qwen3-30b-a3b", [1, 2, 4, 8, 16])) == [1.0, 0.5, 0.25, 0.25, 0.25]  # 4 KV heads
    assert s.kv_head_share("deepseek-v3", 8) == 1.0  # one latent: every chip keeps all of it
    with pytest.raises(ValueError, match="n_chips"):
        s.kv_head_share("llama-3-70b", 0)


def test_fsdp_moves_the_weights_every_step():
    m, chip = rl.get_model("llama-3-70b"), rl.get_chip("h100-sxm")
    t = s.fsdp_decode_link_time(m, chip, 8)
    assert t == pytest.approx(7 / 8 * m.parameter_count() * 2 / chip.interconnect_bandwidth)
    assert t > 1000 * rl.tensor_parallel_decode(m, chip, 8, 1, 4096).t_link


def test_moe_batches_and_all_to_all():
    m = rl.get_model("mixtral-8x7b")  # 2 of 8 experts: (3/4)^B < 0.1 from B = 9
    assert s.experts_batch(m) == 9 and m.experts_touched(9) >= 0.9 * 8 > m.experts_touched(8)
    assert s.moe_all_to_all_bytes("deepseek-v3", 64) == 64 * 2 * 8 * 7168 * 2 * 58
    with pytest.raises(ValueError, match="dense"):
        s.experts_batch("llama-3-8b")
