"""FLOPs and bytes of transformer inference at batch 1: encoder versus decoder.

An encoder (BERT) processes all ``T`` tokens of a sequence at once; a decoder (GPT-2)
generates them one at a time, reading a growing KV cache. Counts cover the
transformer layers only (no embedding lookup or output head), with every tensor in
``dtype`` and each operand read from, and each result written to, memory once:

- projections (Q, K, V, output) and the two MLP matmuls: ``2 * m * k * n`` FLOPs for
  ``[m, k] @ [k, n]``, bytes ``(m*k + k*n + m*n) * bytes``;
- attention scores ``Q K^T`` and ``scores V``: ``2 * T_q * T_kv * d_model`` FLOPs each;
- softmax over ``heads * T_q * T_kv`` scores: ``SOFTMAX_FLOPS`` per score, read and written once;
- elementwise work (two layer norms, the MLP activation, two residual adds) on ``T_q`` tokens.

Gated MLPs (SwiGLU, Llama and Mistral) have a third matrix, the gate.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .core import _out, time_bounds
from .hardware import get_chip
from .models import ModelConfig, get_model
from .units import check_positive, dtype_bytes

#: FLOPs per attention score for a softmax: max, subtract, exp, sum, divide.
SOFTMAX_FLOPS = 5
#: FLOPs per element: layer norm (mean, variance, normalise, scale, shift) and GELU (tanh form).
LAYERNORM_FLOPS = 8
GELU_FLOPS = 8


class LayerCost(NamedTuple):
    """FLOPs and bytes of one operation of one transformer layer."""

    name: str
    flops: float
    nbytes: float


def _matmul(name, m, k, n, b):
    return LayerCost(name, 2 * m * k * n, (m * k + k * n + m * n) * b)


def layer_costs(model: ModelConfig, q_tokens, kv_tokens, dtype="fp16") -> list[LayerCost]:
    """Costs of one layer processing ``q_tokens`` new tokens that attend to ``kv_tokens`` keys.

    Encoder over a sequence: ``q_tokens = kv_tokens = T``. Decoder step with a KV cache:
    ``q_tokens = 1``, ``kv_tokens = t`` (the new token's K and V are written to the cache).
    """
    tq = check_positive("q_tokens", q_tokens)
    tkv = check_positive("kv_tokens", kv_tokens)
    b = dtype_bytes(dtype)
    d, f, h = model.d_model, model.d_ff, model.n_heads
    d_kv = model.n_kv_heads * model.head_dim
    scores = h * tq * tkv
    mlp = [_matmul("MLP up", tq, d, f, b)]
    if model.gated_mlp:  # SwiGLU: a gate matrix beside the up projection
        mlp.append(_matmul("MLP gate", tq, d, f, b))
    return [
        _matmul("Q projection", tq, d, d, b),
        _matmul("K, V projections", tq, d, 2 * d_kv, b),
        LayerCost("Q K^T", 2 * tq * tkv * d, (tq * d + tkv * d_kv) * b + scores * b),
        LayerCost("softmax", SOFTMAX_FLOPS * scores, 2 * scores * b),
        LayerCost("scores V", 2 * tq * tkv * d, scores * b + tkv * d_kv * b + tq * d * b),
        _matmul("output projection", tq, d, d, b),
        *mlp,
        LayerCost("activation", GELU_FLOPS * tq * f, (len(mlp) + 1) * tq * f * b),
        _matmul("MLP down", tq, f, d, b),
        LayerCost("layer norms + residuals", (2 * LAYERNORM_FLOPS + 2) * tq * d, (2 * 2 + 2 * 3) * tq * d * b),
    ]


class InferenceCost(NamedTuple):
    """Totals over all layers (and, for a decoder, over all generated tokens)."""

    flops: float
    nbytes: float

    @property
    def intensity(self):
        return _out(np.divide(self.flops, self.nbytes))


def encoder_cost(model, seq_len, dtype="fp16") -> InferenceCost:
    """One forward pass over ``seq_len`` tokens at once (BERT), all layers."""
    m = get_model(model)
    costs = layer_costs(m, seq_len, seq_len, dtype)
    return InferenceCost(_out(m.n_layers * sum(c.flops for c in costs)),
                         _out(m.n_layers * sum(c.nbytes for c in costs)))


def decoder_cost(model, seq_len, dtype="fp16") -> InferenceCost:
    """Generating ``seq_len`` tokens one at a time with a KV cache (GPT-2), all layers.

    Step ``t`` (1-based) attends to ``t`` cached tokens; every step reads all weights again.
    Each step's cost is linear in ``t``, so the total is ``T * c(0) + (c(1) - c(0)) * T (T+1) / 2``.
    """
    m = get_model(model)
    T = check_positive("seq_len", seq_len)
    step = [layer_costs(m, 1, t, dtype) for t in (1, 2)]
    totals = []
    for field in ("flops", "nbytes"):
        c1, c2 = (sum(getattr(c, field) for c in s) for s in step)
        slope, intercept = c2 - c1, 2 * c1 - c2
        totals.append(_out(m.n_layers * (np.multiply(T, intercept) + slope * np.multiply(T, np.add(T, 1)) / 2)))
    return InferenceCost(*totals)


def roofline_latency(cost: InferenceCost, chip, dtype="fp16"):
    """Lower bound on run time (s): ``max(flops / peak, bytes / bandwidth)`` on ``chip``."""
    chip = get_chip(chip)
    return time_bounds(cost.flops, cost.nbytes, chip.peak_flops(dtype), chip.hbm_bandwidth).lower


def layer_matmul_params(model) -> int:
    """Matmul weights of one layer: ``2 d^2`` (Q, output), ``2 d d_kv`` (K, V), ``2 d d_ff`` (``3`` gated)."""
    m = get_model(model)
    d_kv = m.n_kv_heads * m.head_dim
    return 2 * m.d_model**2 + 2 * m.d_model * d_kv + (3 if m.gated_mlp else 2) * m.d_model * m.d_ff


def parameter_count(model) -> int:
    """All parameters: transformer layers, embeddings, final norm and an untied output head.

    Per layer: Q and output projections ``2 d^2``, K and V ``2 d d_kv``, MLP ``2 d d_ff``
    (``3 d d_ff`` gated), and for GPT/BERT-style models their biases and two layer norms
    (weight and bias). Embeddings: tokens, plus learned positions for GPT/BERT-style
    models; one final norm; a separate output head when embeddings are not tied.
    GPT-2 and the Llama models match their published counts exactly (GPT-2 124,439,808);
    BERT-Base comes to ~109M (its token-type embeddings and pooler are left out).
    """
    m = get_model(model)
    d, f, d_kv = m.d_model, m.d_ff, m.n_kv_heads * m.head_dim
    head = 0 if m.tied_embeddings else m.vocab_size * d
    if m.gated_mlp:  # Llama/Mistral: no biases, RMSNorm weights only, rotary positions
        per_layer = layer_matmul_params(m) + 2 * d
        return m.n_layers * per_layer + m.vocab_size * d + d + head
    biases = 2 * d + 2 * d_kv + f + d
    per_layer = layer_matmul_params(m) + biases + 4 * d
    return m.n_layers * per_layer + (m.vocab_size + m.max_seq_len) * d + 2 * d + head
