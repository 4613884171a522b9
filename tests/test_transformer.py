import numpy as np
import pytest

import roofline as rl

TINY = rl.ModelConfig("tiny", n_layers=2, d_model=4, n_heads=2, n_kv_heads=2, head_dim=2, d_ff=8,
                      vocab_size=10, max_seq_len=16, source="test")


def test_tiny_layer_by_hand():
    costs = {c.name: (c.flops, c.weight_bytes, c.kv_bytes, c.activation_bytes)
             for c in rl.layer_costs(TINY, 3, 3, "fp16")}
    # [3, 4] @ [4, 4]: 2*3*4*4 FLOPs; 16 weights, 12 + 12 activations, 2 bytes each
    assert costs["Q projection"] == (96, 16 * 2, 0, 24 * 2)
    assert costs["K, V projections"] == (192, 32 * 2, 0, (12 + 24) * 2)
    # 2 heads x 3 x 3 scores; Q K^T: 2 * 3 * 3 * 4 FLOPs, reads Q (12) and K (12), writes 18 scores
    assert costs["Q K^T"] == (72, 0, 12 * 2, (12 + 18) * 2)
    assert costs["softmax"] == (5 * 18, 0, 0, 2 * 18 * 2)
    assert costs["scores V"] == (72, 0, 12 * 2, (18 + 12) * 2)
    assert costs["MLP up"] == (2 * 3 * 4 * 8, 32 * 2, 0, (12 + 24) * 2)
    assert costs["MLP down"] == (2 * 3 * 8 * 4, 32 * 2, 0, (24 + 12) * 2)
    assert "MLP gate" not in costs


def test_gated_mlp_adds_a_matrix():
    gated = rl.ModelConfig("tiny-gated", 2, 4, 2, 2, 2, 8, 10, 16, "test", gated_mlp=True)
    names = [c.name for c in rl.layer_costs(gated, 3, 3)]
    assert "MLP gate" in names
    # layers + token embeddings + final norm (the head is tied by default)
    assert rl.parameter_count(gated) - 10 * 4 - 4 == 2 * (2 * 16 + 2 * 16 + 3 * 32 + 8)


def test_decoder_total_equals_the_sum_of_its_steps():
    for T in (1, 2, 7, 100):
        steps = [rl.layer_costs(TINY, 1, t) for t in range(1, T + 1)]
        head = rl.output_head_cost(TINY, 1)  # [1, 4] @ [4, 10]: every step ends with the logits
        assert (head.flops, head.nbytes) == (2 * 4 * 10, (4 + 40 + 10) * 2)
        flops = TINY.n_layers * sum(c.flops for s in steps for c in s) + T * head.flops
        nbytes = TINY.n_layers * sum(c.nbytes for s in steps for c in s) + T * head.nbytes
        total = rl.decoder_cost(TINY, T)
        assert total.flops == pytest.approx(flops) and total.nbytes == pytest.approx(nbytes)


def test_encoder_total_is_layers_times_one_layer():
    one = rl.layer_costs(TINY, 5, 5)
    total = rl.encoder_cost(TINY, 5)
    assert total.flops == 2 * sum(c.flops for c in one) and total.nbytes == 2 * sum(c.nbytes for c in one)


@pytest.mark.parametrize("model_id, published, rel", [
    ("bert-base", 110e6, 0.02), ("bert-large", 335e6, 0.01), ("gpt-2", 124.4e6, 0.002),
])
def test_parameter_counts_match_published_figures(model_id, published, rel):
    assert rl.parameter_count(model_id) == pytest.approx(published, rel=rel)


@pytest.mark.parametrize("model_id, published", [
    # total parameters of the Hugging Face checkpoints (sum of the tensor sizes)
    ("gpt-2", 124_439_808), ("llama-2-7b", 6_738_415_616), ("llama-2-13b", 13_015_864_320),
    ("llama-2-70b", 68_976_648_192), ("llama-3-8b", 8_030_261_248), ("mistral-7b", 7_241_732_096),
])
def test_exact_parameter_counts(model_id, published):
    assert rl.parameter_count(model_id) == published


def test_an_untied_output_head_adds_one_embedding_matrix():
    tied = rl.ModelConfig("t", 2, 4, 2, 2, 2, 8, 10, 16, "test", gated_mlp=True)
    untied = rl.ModelConfig("u", 2, 4, 2, 2, 2, 8, 10, 16, "test", gated_mlp=True, tied_embeddings=False)
    assert rl.parameter_count(untied) - rl.parameter_count(tied) == 10 * 4


def test_encoder_flops_follow_the_two_flops_per_parameter_rule():
    m = rl.get_model("bert-base")
    weights = rl.parameter_count(m) - (m.vocab_size + m.max_seq_len + 2) * m.d_model
    assert rl.encoder_cost(m, 8).flops == pytest.approx(2 * weights * 8, rel=0.02)


def test_decoder_moves_far_more_bytes_for_similar_flops():
    T = np.array([128, 512, 1024])
    enc, dec = rl.encoder_cost("bert-base", T), rl.decoder_cost("gpt-2", T)
    assert np.all(dec.flops / enc.flops < 2) and np.all(dec.flops / enc.flops > 0.5)
    assert np.all(dec.nbytes / enc.nbytes > 50)
    assert np.all(dec.intensity < 2) and np.all(enc.intensity > 50)
    assert np.all(rl.roofline_latency(dec, "a100-80gb") > 20 * rl.roofline_latency(enc, "a100-80gb"))


def test_bad_lengths_name_the_argument():
    with pytest.raises(ValueError, match="seq_len"):
        rl.decoder_cost("gpt-2", 0)
    with pytest.raises(ValueError, match="q_tokens"):
        rl.encoder_cost("gpt-2", -3)
    with pytest.raises(ValueError, match="model_id"):
        rl.encoder_cost("gpt-5", 8)


def test_layer_matmul_weights_by_hand():
    # Llama-2-70B: d 8192, 8 KV heads of 128, d_ff 28672, gated
    assert rl.transformer.layer_matmul_params("llama-2-70b") == 2 * 8192**2 + 2 * 8192 * 1024 + 3 * 8192 * 28672
    assert rl.transformer.layer_matmul_params("gpt-2") == 2 * 768**2 + 2 * 768 * 768 + 2 * 768 * 3072
