"""LLM inference on a roofline: the KV cache, prefill versus decode, batch and capacity limits.

A decode step generates one token for each of ``B`` sequences. It reads every weight
once (shared by the batch) and each sequence's cached keys and values, and does about
two FLOPs per weight per sequence plus the attention over the context:

- FLOPs ``= B (2 P + 4 L H d_h T)`` with ``P`` the matmul weights (layers and output head),
  ``L`` layers, ``H`` query heads of width ``d_h`` and ``T`` context tokens;
- bytes ``= P b_w + B T k`` with ``k`` the KV-cache bytes per token (all layers).

The model's own arithmetic (:class:`~roofline.models.ModelConfig`) refines both for
today's architectures: a mixture-of-experts step multiplies only each token's experts
but reads every expert the batch touches; local layers attend to their window only;
latent attention caches a small latent per token and layer.

Its time is at least ``max(FLOPs / peak, bytes / bandwidth)``. Prefill processes the
whole prompt at once, like an encoder: its intensity grows with the prompt length.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .core import Cost, _out
from .hardware import get_chip
from .models import get_model
from .transformer import SOFTMAX_FLOPS, decoder_cost, encoder_cost, output_head_cost, parameter_count
from .units import check_positive, dtype_bytes


def kv_bytes_per_token(model, dtype="bf16", as_mha=False):
    """KV-cache bytes one token adds across all layers: ``2 L H_kv d_h bytes`` (MLA: ``L (latent + rotary) bytes``).

    ``as_mha=True`` counts every query head as a KV head, the mistake of treating a
    grouped-query model as multi-head.
    """
    return get_model(model).kv_bytes_per_token(dtype, as_mha)


def model_kv_cache_bytes(model, seq_len, batch=1, dtype="bf16", as_mha=False):
    """KV-cache bytes of ``batch`` sequences of ``seq_len`` tokens.

    A local (sliding-window) layer keeps at most ``sliding_window`` tokens.
    """
    m = get_model(model)
    per_sequence = m.kv_cache_bytes(check_positive("seq_len", seq_len), dtype, as_mha)
    return _out(np.multiply(per_sequence, check_positive("batch", batch)))


def matmul_params(model, tokens=1):
    """Weights the matmuls read for a step over ``tokens`` tokens: the layers' and the output head.

    Per layer :func:`~roofline.transformer.layer_matmul_params` for a dense model; a
    mixture-of-experts layer reads the experts the tokens touch
    (:meth:`~roofline.models.ModelConfig.matmul_parameters`). The head is ``vocab x d``.
    Biases, norms and the embedding lookup (one row per token) are left out.
    """
    return get_model(model).matmul_parameters(tokens)


def decode_step_cost(model, context_len, batch=1, w_dtype="bf16", kv_dtype="bf16") -> Cost:
    """One decode step of ``batch`` sequences, each attending to ``context_len`` cached tokens.

    FLOPs ``B (2 P_token + attention)``; weight bytes: the matrices the batch touches
    (every one for a dense model; an MoE model's untouched experts are not read).
    """
    m = get_model(model)
    T = check_positive("context_len", context_len)
    B = check_positive("batch", batch)
    matmuls = _matmul_cost(m, B, w_dtype)
    flops = matmuls.flops + np.multiply(B, m.attention_flops(T))
    kv = np.multiply(B, m.kv_cache_bytes(T, kv_dtype))
    return Cost(_out(flops), _out(matmuls.weight_bytes * np.ones_like(flops)), _out(kv))


def _matmul_cost(m, batch, w_dtype) -> Cost:
    """The matmuls of a decode step of ``batch`` sequences: ``2 P`` FLOPs each, the weights they touch read once."""
    return Cost(np.multiply(batch, 2.0 * m.matmul_parameters(1)),
                np.multiply(m.matmul_parameters(batch), dtype_bytes(w_dtype)))


def prefill_cost(model, prompt_len, batch=1, w_dtype="bf16", kv_dtype="bf16") -> Cost:
    """Processing ``batch`` prompts of ``prompt_len`` tokens at once (weights read once).

    FLOPs: ``2 P`` per token plus causal attention (``2 L H d_h T^2`` for global MHA/GQA
    layers, :meth:`~roofline.models.ModelConfig.causal_attention_flops`); bytes: the
    weights and the KV cache it writes (activations between layers are left out).
    """
    m = get_model(model)
    T = check_positive("prompt_len", prompt_len)
    B = check_positive("batch", batch)
    flops = np.multiply(B, 2.0 * m.matmul_parameters(1) * T + m.causal_attention_flops(T))
    weights = np.multiply(m.matmul_parameters(np.multiply(B, T)), dtype_bytes(w_dtype)) * np.ones_like(flops)
    kv = np.multiply(B, m.kv_cache_bytes(T, kv_dtype))
    return Cost(_out(flops), _out(weights), _out(kv))


def decode_attention_cost(model, context_len, batch=1, kv_dtype="bf16", fused=True, act_dtype="bf16") -> Cost:
    """Attention of one decode step (all layers): scores, softmax and the weighted sum over the cache.

    Per layer and sequence, over ``T`` cached tokens (at most the window in a local layer):
    FLOPs ``2 H (score + value) T`` plus the softmax (``SOFTMAX_FLOPS`` per score); bytes: the
    cache (``kv_bytes``), the query and the output. A fused kernel (FlashAttention, FlashDecoding)
    keeps the ``H T`` scores on chip; unfused, they go to memory and back four times (written
    by ``Q K^T``, read and written by the softmax, read by ``scores V``). Fused, the intensity
    is about ``2 g / bytes`` per cached value with ``g = n_heads / n_kv_heads`` query heads
    sharing each cached head: 1 FLOP/byte for bf16 MHA, the group size for bf16 GQA, and far
    more for latent attention, whose one latent serves every head.
    """
    m = get_model(model)
    T = check_positive("context_len", context_len)
    B = check_positive("batch", batch)
    score, value = m.attention_widths(absorbed=True)
    b_act = dtype_bytes(act_dtype)
    per_layer_token = m.n_heads * (2 * (score + value) + SOFTMAX_FLOPS)
    keys = m.attended_tokens(T)
    flops = np.multiply(B, per_layer_token * keys)
    kv = np.multiply(B, m.kv_cache_bytes(T, kv_dtype))
    activations = np.multiply(B, m.n_layers * m.n_heads * (score + value) * b_act
                              + (0 if fused else 4 * m.n_heads * keys * b_act))
    return Cost(_out(flops), kv_bytes=_out(kv), activation_bytes=_out(activations), name="decode attention")


def model_flops_utilization(model, chip, tokens_per_s, context_len=0, training=False, dtype="bf16", n_chips=1):
    """Model FLOPs utilisation (MFU): the share of the chips' peak that a measured rate's model FLOPs use.

    Model FLOPs per token: two per weight the token multiplies (its experts only) plus its
    attention over ``context_len`` tokens; training adds the backward pass, twice the
    forward: ``6 N + 12 L H d_h T`` (Chowdhery et al. 2022, PaLM, appendix B, who count
    attention over the whole sequence ``T``, not halved for the causal mask). Recomputation,
    padding and other work the hardware repeats or wastes does not count.
    """
    m, c = get_model(model), get_chip(chip)
    forward = 2.0 * m.matmul_parameters(1) + m.attention_flops(check_positive("context_len", context_len,
                                                                               allow_zero=True))
    per_token = 3 * forward if training else forward
    peak = c.peak_flops(dtype) * check_positive("n_chips", n_chips)
    return _out(np.multiply(check_positive("tokens_per_s", tokens_per_s), per_token) / peak)


class DecodeTime(NamedTuple):
    """Lower bound on one decode step and the throughput it allows."""

    t_math: float
    t_memory: float
    time: float  # max(t_math, t_memory), seconds per step
    tokens_per_s: float  # all sequences together: batch / time
    tokens_per_s_per_seq: float  # one sequence: 1 / time

    @property
    def bound(self):
        """``"compute"`` or ``"memory"`` (an array of them for array input), as :func:`~roofline.core.bound_by`."""
        result = np.where(np.asarray(self.t_math) >= np.asarray(self.t_memory), "compute", "memory")
        return str(result) if result.ndim == 0 else result


def decode_step_time(model, chip, batch=1, context_len=4096, w_dtype="bf16", kv_dtype="bf16",
                     compute_dtype="bf16", overlap="full") -> DecodeTime:
    """Lower bound on one decode step, and the throughput it allows.

    ``overlap="full"``: ``max(flops / peak, (weight bytes + KV bytes) / bandwidth)``, as if
    every FLOP could hide under every byte: a bound no schedule beats. ``overlap="phases"``:
    attention and the matmuls run one after the other (separate kernels), so their times
    add: ``max`` of the attention's FLOPs and KV reads (:func:`decode_attention_cost`, fused)
    plus ``max`` of the matmuls' FLOPs and weight reads. The KV reads then cannot hide under
    the MLP's FLOPs, which matters once a big batch makes the matmuls compute-bound.
    """
    m, c = get_model(model), get_chip(chip)
    t_math, t_memory, time = _step_bounds(_step_parts(m, context_len, batch, w_dtype, kv_dtype, overlap),
                                          c.peak_flops(compute_dtype), c.hbm_bandwidth)
    batch = np.asarray(check_positive("batch", batch), dtype=float)
    return DecodeTime(t_math, t_memory, time, _out(batch / time), _out(1 / np.asarray(time)))


def _step_parts(m, context_len, batch, w_dtype, kv_dtype, overlap) -> list[Cost]:
    """A decode step as the costs whose times add: one (``"full"``), or attention and matmuls (``"phases"``)."""
    if overlap == "full":
        return [decode_step_cost(m, context_len, batch, w_dtype, kv_dtype)]
    if overlap == "phases":
        batch = check_positive("batch", batch)
        return [decode_attention_cost(m, context_len, batch, kv_dtype), _matmul_cost(m, batch, w_dtype)]
    raise ValueError(f"overlap must be 'full' or 'phases'; got {overlap!r}")


def _step_bounds(parts, peak, bandwidth) -> tuple:
    """``(t_math, t_memory, time)`` of costs run one after another, each overlapping its own FLOPs and bytes."""
    bounds = [part.bounds(peak, bandwidth) for part in parts]
    return tuple(_out(sum(getattr(b, f) for b in bounds)) for f in ("t_math", "t_memory", "lower"))


def max_batch(model, capacity_bytes, context_len, w_dtype="bf16", kv_dtype="bf16", n_chips=1):
    """Most sequences of ``context_len`` tokens whose KV cache fits beside the weights.

    ``floor((capacity - weights / N) / (KV bytes per sequence x kv_head_share))`` on each of
    ``n_chips`` tensor-parallel chips of ``capacity_bytes`` each (:func:`kv_head_share`); 0
    when the weights alone do not fit. Weights here are all parameters (embeddings
    included), since they must be stored.
    """
    capacity = check_positive("capacity_bytes", capacity_bytes)
    n = check_positive("n_chips", n_chips)
    free = np.subtract(capacity, parameter_count(model) * dtype_bytes(w_dtype) / n)
    per_seq = model_kv_cache_bytes(model, context_len, 1, kv_dtype) * kv_head_share(model, n)
    return _out(np.maximum(np.floor(np.divide(free, per_seq)), 0))


def decode_critical_batch(model, chip, context_len=4096, w_dtype="bf16", kv_dtype="bf16", compute_dtype="bf16"):
    """Batch at which a decode step turns compute-bound (``inf`` if it never does).

    Solves ``B f / peak = (W + B k) / bw`` with ``f`` FLOPs and ``k`` KV bytes per sequence
    and ``W`` weight bytes: ``B = (W / bw) / (f / peak - k / bw)``.
    """
    c = get_chip(chip)
    one = decode_step_cost(model, context_len, 1, w_dtype, kv_dtype)
    per_seq_math = np.divide(one.flops, c.peak_flops(compute_dtype))
    per_seq_memory = np.divide(one.kv_bytes, c.hbm_bandwidth)
    gap = per_seq_math - per_seq_memory
    with np.errstate(divide="ignore"):
        batch = np.where(gap > 0, np.divide(one.weight_bytes / c.hbm_bandwidth, np.where(gap > 0, gap, 1)), np.inf)
    return _out(batch)


class TensorParallelStep(NamedTuple):
    """One decode step with every weight matrix split over ``n_chips`` (seconds per step)."""

    t_math: float
    t_memory: float
    t_link: float  # two all-reduces per layer over the interconnect
    time: float  # the step's bound (see decode_step_time) + t_link: the all-reduces sit between layers
    bytes_per_chip: float

    @property
    def link_bound(self):
        return np.asarray(self.t_link) > np.maximum(self.t_math, self.t_memory)


def kv_head_share(model, n_chips):
    """Share of the KV cache each of ``n_chips`` tensor-parallel chips keeps: ``max(1/N, 1/cache_heads)``.

    Each chip keeps the heads it computes: ``cache_heads / N`` of them while there are enough,
    otherwise one whole cached head, replicated (GQA with fewer KV heads than chips; MLA, whose
    one latent every chip needs, is not split at all).
    """
    n = check_positive("n_chips", n_chips)
    return _out(np.maximum(1 / np.asarray(n, dtype=float), 1 / get_model(model).cache_heads))


def tensor_parallel_share(cost: Cost, model, n_chips) -> Cost:
    """One chip's part of ``cost`` under ``n_chips``-way tensor parallelism.

    FLOPs, weight and activation bytes divide by ``N``; KV bytes scale by :func:`kv_head_share`,
    since a chip reads whole KV heads (a replicated one when there are fewer heads than chips).
    """
    n = check_positive("n_chips", n_chips)
    return Cost(np.divide(cost.flops, n), np.divide(cost.weight_bytes, n),
                np.multiply(cost.kv_bytes, kv_head_share(model, n)), np.divide(cost.activation_bytes, n),
                cost.link_bytes, cost.name)


def tensor_parallel_decode(model, chip, n_chips, batch=1, context_len=4096, w_dtype="bf16", kv_dtype="bf16",
                           act_dtype="bf16", compute_dtype="bf16", overlap="full") -> TensorParallelStep:
    """Decode step split over ``n_chips`` by tensor parallelism (Megatron style).

    Each chip reads ``1/N`` of the weights, does ``1/N`` of the FLOPs and reads its KV heads
    (:func:`tensor_parallel_share`). Each layer ends its attention and its MLP with a ring
    all-reduce of the ``[B, d]`` activations: ``2 (N - 1) / N * B d bytes`` per chip over the
    interconnect (per direction). ``overlap`` as in :func:`decode_step_time`.
    """
    m, c = get_model(model), get_chip(chip)
    n = check_positive("n_chips", n_chips)
    parts = [tensor_parallel_share(part, m, n) for part in _step_parts(m, context_len, batch, w_dtype, kv_dtype, overlap)]
    t_math, t_memory, time = _step_bounds(parts, c.peak_flops(compute_dtype), c.hbm_bandwidth)
    t_link = tensor_parallel_link_time(m, c, n, batch, act_dtype)
    return TensorParallelStep(t_math, t_memory, t_link, _out(np.add(time, t_link)), _out(sum(p.nbytes for p in parts)))


def tensor_parallel_link_time(model, chip, n_chips, tokens, act_dtype="bf16"):
    """Seconds one tensor-parallel step spends in its all-reduces, for ``tokens`` tokens.

    Each layer ends its attention and its MLP with a ring all-reduce of the ``[tokens, d]``
    activations: ``2 (N - 1) / N * tokens * d * b`` bytes per chip and direction (``b`` bytes
    per value), two per layer, over the chip's scale-up bandwidth per direction. Zero on one
    chip. That bandwidth is the whole domain's: right for a switched fabric (NVLink with
    NVSwitch) at any ``N``, an overestimate for a mesh of point-to-point links (MI300X's
    Infinity Fabric) below the full domain, where ``N`` chips share only ``N - 1`` links each.
    """
    m, c = get_model(model), get_chip(chip)
    n = check_positive("n_chips", n_chips)
    if np.all(np.asarray(n) == 1):
        return _out(0.0 * np.multiply(n, tokens))
    reduced = 2 * m.n_layers * np.multiply(check_positive("tokens", tokens), m.d_model) * dtype_bytes(act_dtype)
    return Cost(link_bytes=2 * np.subtract(n, 1) / n * reduced).t_link(c.interconnect_bandwidth)  # ValueError if not sourced


def tensor_parallel_max_chips(model, chip, context_len=1, compute_dtype="bf16", act_dtype="bf16"):
    """Most chips a tensor-parallel decode step can be split over before the links outlast the math.

    In :func:`tensor_parallel_decode` at a batch large enough to be compute-bound, each chip
    does ``B f / N`` FLOPs (``f`` per token: all matmuls and the attention) and each layer's
    two ring all-reduces move ``2 (N - 1)/N B d`` values per direction. The two times are
    equal at ``N - 1 = f W / (4 L d b peak)``, whatever the batch; below it the step is
    compute- or memory-bound, above it link-bound. (Chapter 1's single matmul split over its
    contracting dimension is a different, much stricter model: one layer's whole width
    is more work per all-reduce than one matrix's.)
    """
    m, c = get_model(model), get_chip(chip)
    per_token = 2.0 * m.matmul_parameters(1) + m.attention_flops(check_positive("context_len", context_len))
    link = c.interconnect_bandwidth  # per direction; ValueError where no figure is sourced
    return _out(1 + per_token * link / (4 * m.n_layers * m.d_model * dtype_bytes(act_dtype) * c.peak_flops(compute_dtype)))


def generation_cost(model, n_tokens, dtype="fp16", kv_cache=True):
    """FLOPs and bytes of generating ``n_tokens`` tokens one at a time, batch 1.

    With a KV cache, :func:`~roofline.transformer.decoder_cost`. Without one, step ``t``
    reruns the model over all ``t`` tokens (:func:`~roofline.transformer.encoder_cost`) and
    the output head over the last, so the total grows with the square of the length
    (cubically in the attention part).
    """
    T = int(check_positive("n_tokens", n_tokens))
    if kv_cache:
        return decoder_cost(model, T, dtype)
    return encoder_cost(model, np.arange(1, T + 1), dtype).total() + T * output_head_cost(model, 1, dtype)


def kv_recompute_flops(model, n_tokens, batch=1, as_mha=False):
    """FLOPs to recompute the cached keys and values of ``n_tokens`` tokens: ``2 d`` per cached value and layer.

    ``4 d d_kv`` per token and layer for MHA/GQA (the K and V projections); MLA recomputes
    its latent and rotary key. This is what the cache saves at a step with ``n_tokens``
    tokens of context.
    """
    m = get_model(model)
    tokens = np.multiply(check_positive("n_tokens", n_tokens), check_positive("batch", batch))
    return _out(2.0 * m.d_model * m.kv_elements_per_token_layer(as_mha) * m.n_layers * tokens)


def kv_flops_saved_per_byte(model, dtype="bf16"):
    """Recompute FLOPs one cached byte saves: ``4 d d_kv / (2 d_kv bytes) = 2 d / bytes``.

    Independent of the number of KV heads; per element (not byte) it is ``2 d``.
    """
    m = get_model(model)
    return kv_recompute_flops(m, 1) / kv_bytes_per_token(m, dtype)
