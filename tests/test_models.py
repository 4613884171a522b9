"""The shape arithmetic of ModelConfig: parameter counts against published checkpoints, KV bytes and
attention FLOPs by hand for every attention layout, mixture-of-experts weights read per batch."""

import numpy as np
import pytest

import roofline as rl


@pytest.mark.parametrize("model_id, published", [
    # sums of the checkpoints' tensor sizes, as published (Hugging Face model pages, model cards, papers)
    ("llama-3-70b", 70_553_706_496),
    ("llama-3.1-405b", 405_853_388_800),  # 126 layers of 3,187,703,808 + untied 128256 x 16384 embedding and head
    ("mixtral-8x7b", 46_702_792_704),  # "46.7B"
    ("qwen3-8b", 8_190_735_360),  # "8.2B"
    ("qwen3-30b-a3b", 30_532_122_624),  # "30.5B"
    ("gemma-2-9b", 8_324_201_984 + 917_504_000),  # Gemma 2 paper, Table 1: non-embedding + embedding
    ("gpt-oss-120b", 116_829_156_672),  # model card Table 1: 116.83B
    ("deepseek-v3", 671_026_419_200),  # "671B" main model (the 14B MTP module is not part of it)
])
def test_parameter_counts_equal_the_published_checkpoints(model_id, published):
    assert rl.parameter_count(model_id) == published


@pytest.mark.parametrize("model_id, published, rel", [
    ("mixtral-8x7b", 12.9e9, 0.005),  # Mistral: "12.9B active"
    ("qwen3-30b-a3b", 3.3e9, 0.02),  # "3.3B activated" (3.353B, printed truncated)
    ("deepseek-v3", 37e9, 0.02),  # "37B activated"
])
def test_active_parameters_count_the_embedding_as_these_vendors_do(model_id, published, rel):
    assert rl.get_model(model_id).active_parameter_count() == pytest.approx(published, rel=rel)


def test_gpt_oss_active_parameters_as_its_model_card_counts_them():
    m = rl.get_model("gpt-oss-120b")
    # "Unembedding parameters are counted towards active, but not embeddings": 5.13B
    assert m.active_parameter_count(embedding=False) == pytest.approx(5.13e9, abs=0.005e9)
    assert m.active_parameter_count() - m.active_parameter_count(embedding=False) == 201088 * 2880
    # the card's split: attention 0.96B (biases and sinks included), MLP 114.71B
    assert 36 * m.attention_parameters() == pytest.approx(0.96e9, abs=0.005e9)
    assert 36 * (m.router_parameters() + 128 * m.expert_parameters()) == pytest.approx(114.71e9, abs=0.005e9)


def test_dense_models_use_every_parameter_for_every_token():
    for model_id in ("gpt-2", "llama-2-7b", "qwen3-8b", "gemma-2-9b"):
        m = rl.get_model(model_id)
        assert m.active_parameter_count() == m.parameter_count()


def test_a_decoupled_head_width_sizes_the_q_and_output_projections():
    m = rl.get_model("gemma-2-9b")  # 16 heads of 256 = 4096 wide, d_model 3584
    shapes = {name: (k, n) for name, k, n in m.attention_matmuls()}
    assert shapes == {"Q projection": (3584, 4096), "K, V projections": (3584, 2 * 8 * 256),
                      "output projection": (4096, 3584)}
    per_layer = 3584 * 4096 * 2 + 3584 * 4096 + 3 * 3584 * 14336 + 4 * 3584  # Q, O; K, V; GeGLU MLP; 4 RMSNorms
    assert m.layer_parameters(0) == per_layer
    # the old d_model^2 sizing of Q and O would undercount this layer
    assert rl.transformer.layer_matmul_params(m) == per_layer - 4 * 3584
    costs = {c.name: c for c in rl.layer_costs(m, 1, 100, "bf16", layer=1)}
    assert costs["Q projection"].flops == 2 * 3584 * 4096
    assert costs["Q K^T"].flops == 2 * 16 * 100 * 256  # heads x keys x head width


def test_deepseek_mla_weights_by_hand():
    m = rl.get_model("deepseek-v3")
    shapes = {name: (k, n) for name, k, n in m.attention_matmuls()}
    assert shapes == {"Q down": (7168, 1536), "Q up": (1536, 128 * 192), "KV down": (7168, 512 + 64),
                      "KV up": (512, 128 * 256), "output projection": (128 * 128, 7168)}
    assert m.attention_parameters() == 187_105_280 + 1536 + 512  # projections + the two latent RMSNorms
    assert m.layer_parameters(0) - m.attention_parameters() == 3 * 7168 * 18432 + 2 * 7168  # dense layers 0-2
    moe = 256 * 3 * 7168 * 2048 + 3 * 7168 * 2048 + 256 * 7168 + 256  # routed, shared, router, score bias
    assert m.layer_parameters(3) - m.attention_parameters() == moe + 2 * 7168


@pytest.mark.parametrize("model_id, per_token_layer", [
    ("gpt-2", 2 * 12 * 64),  # MHA: K and V for all 12 heads
    ("llama-2-70b", 2 * 8 * 128),  # GQA: 8 KV heads
    ("deepseek-v3", 512 + 64),  # MLA: one latent plus one rotary key
])
def test_kv_bytes_per_token_by_hand(model_id, per_token_layer):
    m = rl.get_model(model_id)
    assert rl.kv_bytes_per_token(m, "bf16") == m.n_layers * per_token_layer * 2
    assert rl.kv_bytes_per_token(m, "fp8") == m.n_layers * per_token_layer


def test_mqa_keeps_one_kv_head():
    mqa = rl.ModelConfig("mqa", n_layers=4, d_model=256, n_heads=8, n_kv_heads=1, head_dim=32, d_ff=1024,
                         vocab_size=100, max_seq_len=64, source="test", gated_mlp=True)
    assert mqa.attention == "MQA" and rl.kv_bytes_per_token(mqa, "fp16") == 4 * 2 * 1 * 32 * 2
    assert rl.kv_bytes_per_token(mqa, "fp16", as_mha=True) == 8 * rl.kv_bytes_per_token(mqa, "fp16")


def test_mla_caches_far_less_than_the_heads_it_rebuilds():
    m = rl.get_model("deepseek-v3")
    full = m.kv_bytes_per_token("bf16", as_mha=True)  # 128 heads x (192 key + 128 value) per layer
    assert full == 61 * 128 * (192 + 128) * 2
    assert full / m.kv_bytes_per_token("bf16") == pytest.approx(128 * 320 / 576)


def test_sliding_window_layers_stop_growing_at_the_window():
    gemma = rl.get_model("gemma-2-9b")  # 21 local layers (window 4096) and 21 global
    per_layer_token = 2 * 8 * 256 * 2
    assert gemma.layer_windows()[:3] == (4096, None, 4096)
    assert gemma.kv_cache_bytes(1000) == 42 * 1000 * per_layer_token
    assert gemma.kv_cache_bytes(8192) == (21 * 4096 + 21 * 8192) * per_layer_token
    mistral = rl.get_model("mistral-7b")  # every layer local
    assert rl.model_kv_cache_bytes(mistral, 32768) == rl.model_kv_cache_bytes(mistral, 4096)
    oss = rl.get_model("gpt-oss-120b")  # window 128 on half the layers
    assert oss.kv_cache_bytes(131072) == (18 * 128 + 18 * 131072) * 2 * 8 * 64 * 2


def test_attention_flops_by_hand():
    llama = rl.get_model("llama-3-8b")
    assert llama.attention_flops(1000) == 4 * 32 * 32 * 128 * 1000  # 4 L H d_h T
    gemma = rl.get_model("gemma-2-9b")
    assert gemma.attention_flops(10_000) == 2 * 16 * (256 + 256) * (21 * 4096 + 21 * 10_000)
    ds = rl.get_model("deepseek-v3")
    # absorbed (decode): scores over latent + rotary (576), values over the latent (512)
    assert ds.attention_flops(1000) == 2 * 128 * (576 + 512) * 61 * 1000
    assert ds.attention_flops(1000, absorbed=False) == 2 * 128 * (192 + 128) * 61 * 1000
    # causal prefill: T^2 / 2 attended pairs per global layer, T W - W^2 / 2 per local one past the window
    assert gemma.causal_attention_flops(8192) == 2 * 16 * 512 * (21 * 8192**2 / 2 + 21 * (8192 * 4096 - 4096**2 / 2))


def test_a_bigger_batch_touches_more_experts():
    m = rl.get_model("mixtral-8x7b")  # 2 of 8 experts per token
    assert m.experts_touched(1) == 2
    assert m.experts_touched(2) == pytest.approx(8 * (1 - (6 / 8) ** 2))
    touched = m.experts_touched(np.array([1, 4, 16, 64]))
    assert np.all(np.diff(touched) > 0) and touched[-1] == pytest.approx(8, rel=1e-6)
    expert = 3 * 4096 * 14336
    one, wide = rl.matmul_params(m, 1), rl.matmul_params(m, 64)
    assert wide - one == pytest.approx(32 * expert * (m.experts_touched(64) - 2))
    dense = rl.get_model("llama-3-8b")
    assert rl.matmul_params(dense, 64) == rl.matmul_params(dense, 1)


def test_moe_decode_reads_more_weights_per_token_as_the_batch_grows_but_fewer_than_a_dense_model():
    m = rl.get_model("qwen3-30b-a3b")
    steps = [rl.decode_step_cost(m, 1024, b) for b in (1, 8, 64)]
    weights = [s.weight_bytes for s in steps]
    assert weights[0] < weights[1] < weights[2] < rl.matmul_params(m, 10**9) * 2
    # FLOPs stay proportional to the batch: each token uses its 8 experts whatever the others do
    assert steps[2].flops == pytest.approx(64 * steps[0].flops)
    assert steps[0].flops == pytest.approx(2 * rl.matmul_params(m, 1) + m.attention_flops(1024))


def test_model_config_rejects_inconsistent_shapes():
    base = dict(model_id="x", n_layers=2, d_model=64, n_heads=4, n_kv_heads=4, head_dim=16, d_ff=128,
                vocab_size=100, max_seq_len=32, source="test")
    with pytest.raises(ValueError, match="experts_per_token"):
        rl.ModelConfig(**base, n_experts=4, experts_per_token=5)
    with pytest.raises(ValueError, match="sliding_window"):
        rl.ModelConfig(**base, attention_pattern="LG")
    with pytest.raises(ValueError, match="attention_pattern"):
        rl.ModelConfig(**base, sliding_window=8, attention_pattern="LX")
    with pytest.raises(ValueError, match="kv_lora_rank"):
        rl.ModelConfig(**base, rope_head_dim=8)
    with pytest.raises(ValueError, match="norm"):
        rl.ModelConfig(**base, norm="batchnorm")
    with pytest.raises(ValueError, match="layer"):
        rl.ModelConfig(**base).layer_parameters(2)


class _CountingTable(dict):
    lookups = 0

    def __getitem__(self, key):
        type(self).lookups += 1
        return super().__getitem__(key)


def test_a_model_id_is_resolved_once_through_a_serving_simulation(monkeypatch):
    import roofline.models

    table = _CountingTable(roofline.models.MODELS)
    monkeypatch.setattr(roofline.models, "MODELS", table)
    requests = rl.request_stream(20, 50.0, (128, 1024), (8, 64), seed=1)
    result = rl.simulate("llama-3-8b", "h100-sxm", requests, "inflight", 8, chunk_size=256)
    assert len(result.traces) == 20
    assert table.lookups == 1


def test_dense_and_moe_layers_of_deepseek_v3():
    m = rl.get_model("deepseek-v3")  # the first 3 of 61 layers keep a dense MLP
    assert (m.dense_mlp_layers, m.moe_layers) == (3, 58)
    assert [m.is_moe_layer(i) for i in (0, 2, 3, 60)] == [False, False, True, True]
    dense = rl.get_model("llama-3-8b")
    assert dense.dense_mlp_layers == 32 and not any(dense.is_moe_layer(i) for i in range(32))
    assert rl.ModelConfig.matrix_weights([("a", 2, 3), ("b", 4, 5)]) == 2 * 3 + 4 * 5


def test_only_the_encoders_are_marked_encoders():
    # BERT is a bidirectional encoder (Devlin et al. 2019): no generation, no KV cache
    assert sorted(m for m in rl.list_models() if rl.get_model(m).encoder) == ["bert-base", "bert-large"]
