"""FLOPs and bytes of transformer inference at batch 1: encoder versus decoder.

An encoder (BERT) processes all ``T`` tokens of a sequence at once; a decoder (GPT-2)
generates them one at a time, reading a growing KV cache. Counts cover the
transformer layers, and for a decoder the output head that turns each generated
token's state into logits over the vocabulary (an encoder used for classification has
none; the embedding lookup reads one row per token and is left out), with every tensor
in ``dtype`` and each operand read from, and each result written to, memory once:

- projections (Q, K, V, output) and the two MLP matmuls: ``2 * m * k * n`` FLOPs for
  ``[m, k] @ [k, n]``, bytes ``(m*k + k*n + m*n) * bytes``;
- attention scores ``Q K^T`` and ``scores V``: ``2 * T_q * T_kv * H * d_head`` FLOPs each
  (``H * d_head`` is ``d_model`` in GPT-2 and BERT, not in Gemma, Qwen3 or gpt-oss);
- softmax over ``heads * T_q * T_kv`` scores: ``SOFTMAX_FLOPS`` per score, read and written once;
- elementwise work (two layer norms, the MLP activation, two residual adds) on ``T_q`` tokens.

Gated MLPs (SwiGLU, Llama and Mistral) have a third matrix, the gate.
"""

from __future__ import annotations

import numpy as np

from .core import Cost
from .hardware import get_chip
from .models import get_model
from .units import check_int, check_positive, dtype_bytes

#: FLOPs per attention score for a softmax: max, subtract, exp, sum, divide.
SOFTMAX_FLOPS = 5
#: FLOPs per element: layer norm (mean, variance, normalise, scale, shift) and GELU (tanh form).
LAYERNORM_FLOPS = 8
GELU_FLOPS = 8


#: The attention core of a layer (what selective recomputation repeats).
ATTENTION_CORE = ("Q K^T", "softmax", "scores V")


def _matmul(name, m, k, n, b, weights=1) -> Cost:
    """``[m, k] @ [k, n]``; ``weights`` copies of the matrix read (distinct experts touched)."""
    return Cost(2 * m * k * n, weight_bytes=weights * k * n * b, activation_bytes=(m * k + m * n) * b, name=name)


def layer_costs(model, q_tokens, kv_tokens, dtype="fp16", layer=None) -> list[Cost]:
    """Costs of one layer processing ``q_tokens`` new tokens that attend to ``kv_tokens`` keys.

    Encoder over a sequence: ``q_tokens = kv_tokens = T``. Decoder step with a KV cache:
    ``q_tokens = 1``, ``kv_tokens = t`` (the new token's K and V are written to the cache).
    ``layer`` (0-based; default the last) picks the layer of a model whose layers differ:
    a local layer attends to at most ``sliding_window`` keys; in a mixture-of-experts
    layer each token goes through ``experts_per_token`` experts and the shared ones, and
    the weights read are those of the experts the tokens touch
    (:meth:`~roofline.models.ModelConfig.experts_touched`). Latent attention (MLA) is
    counted as prefill runs it, with keys and values rebuilt per head.
    """
    m = get_model(model)
    tq = check_positive("q_tokens", q_tokens)
    tkv = check_positive("kv_tokens", kv_tokens)
    layer = m.n_layers - 1 if layer is None else check_int("layer", layer, minimum=0)
    if layer >= m.n_layers:
        raise ValueError(f"layer must be below n_layers ({m.n_layers}); got {layer}")
    b = dtype_bytes(dtype)
    window = m.layer_windows()[layer]
    keys = tkv if window is None else np.minimum(tkv, window)
    h, d = m.n_heads, m.d_model
    score, value = m.attention_widths(absorbed=False)
    k_width, v_width = ((h * score, h * value) if m.kv_lora_rank else
                        (m.n_kv_heads * m.head_dim, m.n_kv_heads * m.head_dim))
    scores = h * tq * keys
    attention = [_matmul(name, tq, k, n, b) for name, k, n in m.attention_matmuls()]
    output = attention.pop()  # the output projection follows the attention core
    moe = m.is_moe_layer(layer)
    if moe:
        per_token = m.experts_per_token + m.n_shared_experts
        touched = m.experts_touched(tq) + m.n_shared_experts
        mlp = [_matmul("router", tq, d, m.n_experts, b)]
        mlp += [_matmul(f"experts: {name}", np.multiply(tq, per_token), k, n, b, touched)
                for name, k, n in m.mlp_matmuls(m.expert_width)]
        width = per_token * m.expert_width
    else:
        mlp = [_matmul(name, tq, k, n, b) for name, k, n in m.mlp_matmuls()]
        width = m.d_ff
    down = mlp.pop()
    return [
        *attention,
        Cost(2 * scores * score, kv_bytes=keys * k_width * b, activation_bytes=(tq * h * score + scores) * b,
             name="Q K^T"),
        Cost(SOFTMAX_FLOPS * scores, activation_bytes=2 * scores * b, name="softmax"),
        Cost(2 * scores * value, kv_bytes=keys * v_width * b, activation_bytes=(scores + tq * h * value) * b,
             name="scores V"),
        output,
        *mlp,
        Cost(GELU_FLOPS * tq * width, activation_bytes=len(m.mlp_matmuls()) * tq * width * b, name="activation"),
        down,
        Cost((2 * LAYERNORM_FLOPS + 2) * tq * d, activation_bytes=(2 * 2 + 2 * 3) * tq * d * b,
             name="layer norms + residuals"),
    ]


def _layer_kinds(m) -> list[tuple]:
    """``(count, a layer of that kind)`` for each distinct (window, MoE) kind of layer."""
    windows = m.layer_windows()
    kinds = [(windows[i], m.is_moe_layer(i)) for i in range(m.n_layers)]
    return [(kinds.count(kind), kinds.index(kind)) for kind in dict.fromkeys(kinds)]


def encoder_cost(model, seq_len, dtype="fp16") -> Cost:
    """One forward pass over ``seq_len`` tokens at once (BERT), all layers."""
    m = get_model(model)
    return sum(count * sum(layer_costs(m, seq_len, seq_len, dtype, layer)) for count, layer in _layer_kinds(m))


def output_head_cost(model, tokens=1, dtype="fp16") -> Cost:
    """The output head on ``tokens`` tokens: ``[tokens, d] @ [d, vocab]``, the logits of the next token."""
    m = get_model(model)
    return _matmul("output head", check_positive("tokens", tokens), m.d_model, m.vocab_size, dtype_bytes(dtype))


def decoder_cost(model, seq_len, dtype="fp16") -> Cost:
    """Generating ``seq_len`` tokens one at a time with a KV cache (GPT-2): all layers and the output head.

    Step ``t`` (1-based) attends to ``t`` cached tokens (at most ``W`` in a local layer);
    every step reads all weights again. A step's cost is linear in the keys it attends
    to, ``c(t) = c(0) + s t``, so the steps up to ``n`` add up to ``n c(0) + s n (n+1) / 2``,
    and a local layer's later steps all cost ``c(W)``. Each step ends with the output head.
    """
    m = get_model(model)
    T = check_positive("seq_len", seq_len)
    total = T * output_head_cost(m, 1, dtype)
    for count, layer in _layer_kinds(m):
        window = m.layer_windows()[layer]
        c1, c2 = (sum(layer_costs(m, 1, t, dtype, layer)) for t in (1, 2))
        slope, intercept = c2 - c1, 2 * c1 - c2
        n = T if window is None else np.minimum(T, window)
        steps = np.multiply(n, 1.0) * intercept + np.multiply(n, np.add(n, 1)) / 2 * slope
        if window is not None:
            steps = steps + np.maximum(np.subtract(T, window), 0) * (intercept + window * slope)
        total = total + count * steps
    return total


def roofline_latency(cost: Cost, chip, dtype="fp16"):
    """Lower bound on run time (s): ``max(flops / peak, bytes / bandwidth)`` on ``chip``."""
    chip = get_chip(chip)
    return cost.bounds(chip.peak_flops(dtype), chip.hbm_bandwidth).lower


def layer_matmul_params(model) -> int:
    """Matmul weights of one dense layer: attention projections and MLP (MoE: see ``ModelConfig.matmul_parameters``).

    ``2 d^2`` (Q, output), ``2 d d_kv`` (K, V) and ``2 d d_ff`` (``3`` gated) for a model
    whose query width is ``d``; :meth:`~roofline.models.ModelConfig.attention_matmuls` in general.
    """
    m = get_model(model)
    return m.matrix_weights(m.attention_matmuls() + m.mlp_matmuls())


def parameter_count(model) -> int:
    """All parameters (:meth:`roofline.models.ModelConfig.parameter_count`).

    GPT-2, the Llama, Mistral, Mixtral, Qwen3, Gemma 2, gpt-oss and DeepSeek-V3 rows
    match their published counts exactly (GPT-2 124,439,808); BERT-Base comes to ~109M
    (its token-type embeddings and pooler are left out).
    """
    return get_model(model).parameter_count()
