"""Serving at scale: attention's own roofline, the latency-throughput frontier, speculative
decoding, disaggregated prefill and decode, sharding a model for inference, mixture of experts.

Every cost comes from :class:`~roofline.models.ModelConfig` and the step models of
:mod:`roofline.decode` and :mod:`roofline.serving`; this module only combines them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .core import Cost, _out
from .decode import decode_step_time, kv_head_share, max_batch, tensor_parallel_decode
from .hardware import get_chip
from .models import get_model
from .serving import iteration_time
from .transformer import SOFTMAX_FLOPS
from .units import check_int, check_positive, dtype_bytes


def prefill_attention_cost(model, prompt_len, batch=1, fused=True, act_dtype="bf16") -> Cost:
    """Causal attention over a ``prompt_len``-token prompt, all layers (scores, softmax, weighted sum).

    FLOPs :meth:`~roofline.models.ModelConfig.causal_attention_flops` plus the softmax; bytes:
    each layer reads the prompt's queries, keys and values once and writes its outputs. A fused
    kernel (FlashAttention) keeps the ``H T^2 / 2`` scores on chip, and its intensity grows with
    the prompt; unfused, they go to memory and back four times, which caps the intensity near
    ``2 (score + value) / (4 bytes)`` FLOP/byte (about 64 for 128-wide heads in bf16) however long the prompt.
    """
    m = get_model(model)
    T = check_positive("prompt_len", prompt_len)
    B = check_positive("batch", batch)
    b = dtype_bytes(act_dtype)
    score, value = m.attention_widths(absorbed=False)
    products = m.causal_attention_flops(T)  # scores and weighted sum: 2 (score + value) FLOPs per score
    scores = products / (2 * (score + value))  # H T^2 / 2 per layer, summed
    flops = products + SOFTMAX_FLOPS * scores
    kv_width = (m.n_heads * (score + value) if m.kv_lora_rank
                else 2 * m.n_kv_heads * m.head_dim)  # keys and values as the kernel reads them
    activations = m.n_layers * np.multiply(T, m.n_heads * (score + value)) * b + (0 if fused else 4 * scores * b)
    return Cost(_out(np.multiply(B, flops)), kv_bytes=_out(np.multiply(B, m.n_layers * np.multiply(T, kv_width) * b)),
                activation_bytes=_out(np.multiply(B, activations)), name="prefill attention")


def attention_crossover_context(model, absorbed=True, max_context=2**40):
    """Context length at which one token's attention FLOPs equal its matmul FLOPs (``inf`` if never).

    Matmuls cost ``2 P`` per token whatever the context; attention grows with it, by
    ``4 L H d_h`` per token of context for global MHA/GQA layers. Local (sliding-window) layers
    stop growing at their window, so a model with few global layers crosses late or never.
    """
    m = get_model(model)
    matmuls = 2.0 * m.matmul_parameters(1)
    if m.attention_flops(max_context, absorbed) < matmuls:
        return float("inf")
    lo, hi = 0.0, float(max_context)
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if m.attention_flops(mid, absorbed) < matmuls else (lo, mid)
    return hi


class Frontier(NamedTuple):
    """Latency and throughput of one serving configuration as its batch grows."""

    batch: np.ndarray
    latency: np.ndarray  # seconds per output token (one decode step)
    tokens_per_s_per_chip: np.ndarray


def serving_frontier(model, chip, context_len=4096, n_chips=1, batches=2 ** np.arange(0, 13), w_dtype="bf16",
                     kv_dtype="bf16", compute_dtype="bf16") -> Frontier:
    """The latency-throughput trade-off of decoding: each batch that fits is one point.

    Bigger batches share each weight read among more sequences (more tokens per second and
    chip) but every step grows (more latency per token). Steps are timed with attention and
    matmuls as separate phases (:func:`~roofline.decode.decode_step_time`, ``overlap="phases"``),
    split over ``n_chips`` by tensor parallelism when ``n_chips > 1``.
    """
    m, c = get_model(model), get_chip(chip)
    n = check_int("n_chips", n_chips)
    cap = max_batch(m, c.hbm_capacity, context_len, w_dtype, kv_dtype, n)
    batch = np.asarray([b for b in np.asarray(batches, dtype=int) if b <= cap])
    if batch.size == 0:
        raise ValueError(f"no batch fits: the weights and one {context_len}-token cache need more than "
                         f"{n} x {c.hbm_capacity:.3g} bytes; raise n_chips")
    if n == 1:
        t = decode_step_time(m, c, batch, context_len, w_dtype, kv_dtype, compute_dtype, overlap="phases").time
    else:
        t = tensor_parallel_decode(m, c, n, batch, context_len, w_dtype, kv_dtype, compute_dtype=compute_dtype,
                                   overlap="phases").time
    t = np.asarray(t, dtype=float)
    return Frontier(batch, t, batch / t / n)


def expected_accepted_tokens(acceptance, draft_tokens):
    """Tokens a speculative step yields: ``(1 - a^(k+1)) / (1 - a)`` (Leviathan et al. 2023).

    The draft proposes ``k`` tokens; the target checks them in one pass and keeps the longest
    accepted prefix plus one token of its own, each draft token accepted with probability ``a``.
    """
    a = np.asarray(check_positive("acceptance", acceptance, allow_zero=True), dtype=float)
    if np.any(a > 1):
        raise ValueError(f"acceptance must be between 0 and 1; got {acceptance!r}")
    k = check_int("draft_tokens", draft_tokens)
    with np.errstate(divide="ignore", invalid="ignore"):
        tokens = np.where(a < 1, (1 - a ** (k + 1)) / np.where(a < 1, 1 - a, 1), k + 1)
    return _out(tokens)


class Speculation(NamedTuple):
    """One speculative-decoding configuration against plain decoding (seconds)."""

    tokens_per_step: float  # expected tokens per draft-and-verify round
    draft_time: float  # k draft decode steps
    verify_time: float  # one target pass over k + 1 tokens
    plain_time: float  # one target decode step
    speedup: float  # tokens per second against plain decoding


def speculative_decoding(model, draft_model, chip, acceptance, draft_tokens=4, context_len=4096, batch=1,
                         w_dtype="bf16", kv_dtype="bf16", compute_dtype=None) -> Speculation:
    """Speed-up of speculative decoding: ``E / (k t_draft + t_verify)`` tokens per second against ``1 / t_step``.

    The verify pass runs the target on ``k + 1`` tokens per sequence at once
    (:func:`~roofline.serving.iteration_time`): while decoding is memory-bound it costs about one
    ordinary step, which is why checking drafted tokens raises the FLOPs done per weight byte.
    ``compute_dtype`` defaults to the weights' dtype where the chip has a peak for it, else bf16.
    """
    m, d, c = get_model(model), get_model(draft_model), get_chip(chip)
    k, B = check_int("draft_tokens", draft_tokens), check_int("batch", batch)
    T = check_int("context_len", context_len)
    tokens = float(expected_accepted_tokens(acceptance, k))
    math = compute_dtype or (w_dtype if w_dtype in c.dense_flops else "bf16")
    plain = iteration_time(m, c, [T] * B, (), w_dtype, kv_dtype, math)
    draft = k * iteration_time(d, c, [T] * B, (), w_dtype, kv_dtype, math)
    verify = iteration_time(m, c, (), [(T, k + 1)] * B, w_dtype, kv_dtype, math)
    return Speculation(tokens, draft, verify, plain, tokens * plain / (draft + verify))


class Placement(NamedTuple):
    """Time to first token and inter-token latency of prefill and decode, together or apart."""

    ttft: float  # seconds until the new prompt's first token
    itl: float  # worst seconds per token the decoding sequences see


def colocated(model, chip, prompt_len, n_decode=16, decode_context=2048, w_dtype="bf16", kv_dtype="bf16") -> Placement:
    """A prompt prefilled in one iteration beside ``n_decode`` decoding sequences, on one chip: both wait."""
    m, c = get_model(model), get_chip(chip)
    t = iteration_time(m, c, [decode_context] * check_int("n_decode", n_decode, minimum=0),
                       [(0, check_int("prompt_len", prompt_len))], w_dtype, kv_dtype)
    return Placement(t, t)


def disaggregated(model, chip, prompt_len, n_decode=16, decode_context=2048, transfer_bandwidth=None,
                  w_dtype="bf16", kv_dtype="bf16") -> Placement:
    """Prefill on one chip, decode on another: the prompt's KV cache crosses a link in between.

    ``ttft``: the prefill alone plus the cache's transfer (``transfer_bandwidth`` byte/s,
    default the chip's scale-up link per direction); ``itl``: a decode step undisturbed.
    """
    m, c = get_model(model), get_chip(chip)
    P = check_int("prompt_len", prompt_len)
    link = c.interconnect_bandwidth if transfer_bandwidth is None else check_positive("transfer_bandwidth",
                                                                                      transfer_bandwidth)
    prefill = iteration_time(m, c, (), [(0, P)], w_dtype, kv_dtype)
    transfer = m.kv_cache_bytes(P, kv_dtype) / link
    itl = iteration_time(m, c, [decode_context] * check_int("n_decode", n_decode), (), w_dtype, kv_dtype)
    return Placement(prefill + transfer, itl)


def kv_bytes_per_chip(model, n_chips, context_len, batch=1, kv_dtype="bf16"):
    """KV-cache bytes each chip holds when ``n_chips`` split the model by tensor parallelism (:func:`kv_head_share`)."""
    m = get_model(model)
    return _out(np.multiply(m.kv_cache_bytes(check_positive("context_len", context_len), kv_dtype)
                            * kv_head_share(m, n_chips), check_positive("batch", batch)))


def fsdp_decode_link_time(model, chip, n_chips, w_dtype="bf16"):
    """Seconds per decode step spent gathering weights when they are sharded FSDP-style over ``n_chips``.

    Every step needs every weight on every chip: a ring all-gather moves ``(N - 1)/N P b``
    bytes into each chip per step, where tensor parallelism moves only activations.
    """
    m, c = get_model(model), get_chip(chip)
    n = check_positive("n_chips", n_chips)
    gathered = np.subtract(n, 1) / n * m.parameter_count() * dtype_bytes(w_dtype)
    return Cost(link_bytes=gathered).t_link(c.interconnect_bandwidth)


def moe_all_to_all_bytes(model, batch, act_dtype="bf16"):
    """Bytes the all-to-all exchanges of an expert-parallel MoE decode step move, all MoE layers.

    Each token's activation goes to its ``k`` experts and comes back (dispatch and combine, so
    both directions together): ``2 k d b`` per token and MoE layer, nearly all of it between
    chips when the experts are spread over them.
    """
    m = get_model(model)
    if not m.is_moe:
        raise ValueError(f"model must be a mixture of experts; {m.model_id!r} is dense")
    tokens = check_positive("batch", batch)
    return _out(np.multiply(tokens, 2 * m.experts_per_token * m.d_model * dtype_bytes(act_dtype) * m.moe_layers))


def experts_batch(model, fraction=0.9):
    """Smallest batch whose tokens touch ``fraction`` of each MoE layer's experts (on average).

    From ``E (1 - (1 - k/E)^B) >= f E``: ``B = log(1 - f) / log(1 - k/E)``. Below it a decode step
    reads only part of the expert weights; from there on it reads nearly all of them, as a dense
    model of the total size would.
    """
    m = get_model(model)
    if not m.is_moe:
        raise ValueError(f"model must be a mixture of experts; {m.model_id!r} is dense")
    f = check_positive("fraction", fraction)
    if not 0 < f < 1:
        raise ValueError(f"fraction must be between 0 and 1; got {fraction!r}")
    return int(np.ceil(np.log(1 - f) / np.log(1 - m.experts_per_token / m.n_experts)))
