"""Attention for long contexts: split-K ("multi-block") decoding and StreamingLLM caches.

- Split-K attention: one query against keys and values split into blocks; each block returns
  its partial output with its log-sum-exp, and the partials merge exactly into full softmax
  attention (:func:`split_k_attention`). :func:`split_k_decode_time` models when splitting
  speeds decode up: it fills SMs that ``batch x KV heads`` thread blocks would leave idle;
  :func:`flash_decoding_benchmark` holds a published measurement to check it against.
- StreamingLLM: a fixed-size cache that keeps the most recent tokens plus a few "attention
  sink" tokens from the start (:func:`streaming_cost`, :func:`attention_sink_experiment`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .hardware import get_chip
from .models import get_model
from .tables import read_csv
from .units import check_int, check_positive, dtype_bytes


class PartialAttention(NamedTuple):
    """One block's contribution: its normalised output, and the log-sum-exp of its scores."""

    output: np.ndarray
    lse: float


def _scores(q, k):
    q, k = np.asarray(q, dtype=np.float64), np.asarray(k, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] == 0:
        raise ValueError(f"k must be a 2-d array holding at least one key; got shape {k.shape}")
    return k @ q / np.sqrt(q.shape[-1])


def attention_weights(q, k) -> np.ndarray:
    """Softmax attention probabilities of one query over the keys: ``softmax(k @ q / sqrt(d))``."""
    scores = _scores(q, k)
    weights = np.exp(scores - scores.max())
    return weights / weights.sum()


def block_attention(q, k, v) -> PartialAttention:
    """Attention of ``q`` over one block of keys/values, with the block's log-sum-exp."""
    scores = _scores(q, k)
    m = scores.max()
    weights = np.exp(scores - m)
    total = weights.sum()
    return PartialAttention(weights @ np.asarray(v, dtype=np.float64) / total, float(m + np.log(total)))


def attention(q, k, v):
    """Softmax attention of one query: ``softmax(k @ q / sqrt(d)) @ v`` (numerically stable)."""
    return block_attention(q, k, v).output


def merge_partials(partials) -> np.ndarray:
    """Combine block results exactly: ``sum_i exp(lse_i - LSE) * out_i`` with ``LSE = logsumexp(lse_i)``."""
    partials = list(partials)
    if not partials:
        raise ValueError("partials must hold at least one PartialAttention")
    lses = np.array([p.lse for p in partials])
    top = lses.max()
    scale = np.exp(lses - top)
    return sum(s * p.output for s, p in zip(scale, partials)) / scale.sum()


def split_k_attention(q, k, v, n_blocks: int) -> np.ndarray:
    """Attention computed over ``n_blocks`` contiguous blocks of the keys, then merged."""
    k = np.asarray(k)
    if not isinstance(n_blocks, (int, np.integer)) or not 1 <= n_blocks <= k.shape[0]:
        raise ValueError(f"n_blocks must be an integer between 1 and the number of keys ({k.shape[0]}); got {n_blocks!r}")
    bounds = np.linspace(0, k.shape[0], n_blocks + 1).astype(int)
    v = np.asarray(v)
    return merge_partials(block_attention(q, k[a:b], v[a:b]) for a, b in zip(bounds[:-1], bounds[1:]))


class SplitKTime(NamedTuple):
    """Decode attention of one step with the context split ``n_splits`` ways (one layer, or all)."""

    n_splits: int
    thread_blocks: int  # batch x KV heads per chip x n_splits, per layer
    waves: int  # ceil(thread_blocks / SMs)
    sm_busy: float  # fraction of the SMs' time spent streaming KV
    t_attention: float  # seconds, reading the KV cache
    t_merge: float  # seconds, writing and reducing the partials (0 without a split)
    time: float


def split_k_layer_time(chip, context_len, kv_heads, query_heads, head_bytes_per_token, value_dim, batch=1,
                       n_splits=1, launch_overhead=3e-6, sm_bandwidth=None) -> SplitKTime:
    """Time of one layer's decode attention when each (sequence, KV head) is split ``n_splits`` ways.

    One thread block streams ``ceil(T / n_splits)`` tokens of one KV head (``head_bytes_per_token``
    bytes each: K and V) from HBM, one block per SM at a time (waves). A wave of ``a`` blocks
    draws ``min(bandwidth, a * sm_bandwidth)``; ``sm_bandwidth`` defaults to an even share,
    ``bandwidth / SMs``, so a half-empty chip streams at half speed (chapter 5 checks this against
    a published measurement, :func:`flash_decoding_benchmark`). A split adds a merge kernel
    (``launch_overhead`` seconds, an assumed typical launch) that writes and reads
    ``(value_dim + 1)`` fp32 values per query head and block.
    """
    c = get_chip(chip)
    sms = c.streaming_multiprocessors()
    T = int(check_positive("context_len", context_len))
    kv_heads, query_heads = check_int("kv_heads", kv_heads), check_int("query_heads", query_heads)
    batch, n_splits = check_int("batch", batch), check_int("n_splits", n_splits)
    if n_splits > T:
        raise ValueError(f"n_splits must not exceed context_len ({T}); got {n_splits!r}")
    head_bytes = check_positive("head_bytes_per_token", head_bytes_per_token)
    per_sm = c.hbm_bandwidth / sms if sm_bandwidth is None else check_positive("sm_bandwidth", sm_bandwidth)
    blocks = batch * kv_heads * n_splits
    full_waves, last = divmod(blocks, sms)
    block_bytes = -(-T // n_splits) * head_bytes
    wave = [(full_waves, sms)] + ([(1, last)] if last else [])
    t_attention = sum(n * active * block_bytes / min(c.hbm_bandwidth, active * per_sm) for n, active in wave)
    partial_bytes = batch * query_heads * n_splits * (check_positive("value_dim", value_dim) + 1) * 4.0
    t_merge = 0.0 if n_splits == 1 else launch_overhead + 2 * partial_bytes / c.hbm_bandwidth
    waves = full_waves + bool(last)
    return SplitKTime(n_splits, blocks, waves, blocks / (waves * sms), float(t_attention), float(t_merge),
                      float(t_attention + t_merge))


def split_k_decode_time(model, chip, context_len, batch=1, n_splits=1, n_chips=1, kv_dtype="bf16",
                        launch_overhead=3e-6, sm_bandwidth=None) -> SplitKTime:
    """:func:`split_k_layer_time` summed over a model's layers, for one decode step.

    ``n_chips`` shards the KV heads (tensor parallelism), so each chip handles ``H_kv / n_chips``
    of them. A sliding-window layer streams at most its window, split at most once per token.
    """
    m = get_model(model)
    T = int(check_positive("context_len", context_len))
    batch, n_splits, n_chips = check_int("batch", batch), check_int("n_splits", n_splits), check_int("n_chips", n_chips)
    if m.cache_heads % n_chips:
        raise ValueError(f"n_chips must divide the model's {m.cache_heads} cached KV heads; got {n_chips!r}")
    if n_splits > T:
        raise ValueError(f"n_splits must not exceed context_len ({T}); got {n_splits!r}")
    head_bytes = m.kv_elements_per_token_layer() / m.cache_heads * dtype_bytes(kv_dtype)
    layers = []
    for count, window in m.window_counts():
        tokens = T if window is None else min(T, window)
        layers.append((count, split_k_layer_time(chip, tokens, m.cache_heads // n_chips, m.n_heads // n_chips,
                                                 head_bytes, m.attention_widths()[1], batch, min(n_splits, tokens),
                                                 launch_overhead, sm_bandwidth)))
    widest = max((t for _, t in layers), key=lambda t: t.thread_blocks)
    t_attention = sum(count * t.t_attention for count, t in layers)
    t_merge = sum(count * t.t_merge for count, t in layers)
    return widest._replace(n_splits=n_splits, t_attention=t_attention, t_merge=t_merge, time=t_attention + t_merge)


def _split_choices(context_len, min_block_tokens):
    """Splits 1, 2, 4, ... keeping blocks of at least ``min_block_tokens`` tokens."""
    T = int(check_positive("context_len", context_len))
    splits = [1]
    while splits[-1] * 2 * check_int("min_block_tokens", min_block_tokens) <= T:
        splits.append(splits[-1] * 2)
    return splits


def best_split_k(model, chip, context_len, batch=1, n_chips=1, kv_dtype="bf16", min_block_tokens=64,
                 sm_bandwidth=None) -> SplitKTime:
    """The fastest :func:`split_k_decode_time` over splits 1, 2, 4, ... keeping blocks of at
    least ``min_block_tokens`` tokens."""
    return min((split_k_decode_time(model, chip, context_len, batch, s, n_chips, kv_dtype, sm_bandwidth=sm_bandwidth)
                for s in _split_choices(context_len, min_block_tokens)), key=lambda t: t.time)


# Query rows of FlashAttention 2.0.x's forward tile for 128-wide heads on an A100 (kBlockM of
# Flash_fwd_kernel_traits<128, 128, 64, 4> in csrc/flash_attn/src/flash_fwd_launch_template.h):
# a single decode query is padded to this many rows.
FLASH_ATTENTION_2_TILE_ROWS = 128


class DecodeAttentionMeasurement(NamedTuple):
    """One row of the Flash-Decoding micro-benchmark: one decode step's attention, times in seconds."""

    batch: int
    context_len: int
    query_heads: int
    kv_heads: int
    head_dim: int
    dtype: str
    pytorch_eager: float
    flash_attention: float  # FlashAttention 2.0.9: no split, one thread block per (sequence, query head)
    flash_decoding: float  # split along the keys

    @property
    def head_bytes_per_token(self) -> float:
        """Bytes one KV head caches per token: K and V, ``2 d_h x bytes per element``."""
        return 2 * self.head_dim * dtype_bytes(self.dtype)

    @property
    def kv_bytes(self) -> float:
        """Bytes of the whole cache the step reads once: ``batch x T x H_kv x head_bytes_per_token``."""
        return self.batch * self.context_len * self.kv_heads * self.head_bytes_per_token

    def unsplit_block_bandwidth(self) -> float:
        """Bytes per second one FlashAttention thread block streamed: ``T x head_bytes_per_token / t``.

        Every block reads its KV head's whole cache; where ``batch x query_heads`` blocks fit on
        the chip at once (one wave, one block per SM) this is what one SM took in.
        """
        return self.context_len * self.head_bytes_per_token / self.flash_attention

    @property
    def unsplit_tile_intensity(self) -> float:
        """Tensor-core FLOPs per byte of K and V in a FlashAttention 2.0.9 block: the one query
        padded to :data:`FLASH_ATTENTION_2_TILE_ROWS` rows, ``4 M d_h / (2 d_h b) = 2 M / b``."""
        return 2 * FLASH_ATTENTION_2_TILE_ROWS / dtype_bytes(self.dtype)

    def modelled(self, chip, sm_bandwidth=None, min_block_tokens=64) -> tuple:
        """``(unsplit, grouped, split)``: :func:`split_k_layer_time` for this row on ``chip``.

        ``unsplit``: FlashAttention 2.0.9's grid, one block per sequence and query head, each
        streaming its KV head's whole cache (the query heads of a group re-read the same bytes,
        mostly from L2). ``grouped``: one block per sequence and KV head, no split. ``split``:
        one block per sequence, KV head and split, the fastest of splits 1, 2, 4, ... keeping
        at least ``min_block_tokens`` tokens a block.
        """
        def layer(blocks_per_sequence, n_splits=1):
            return split_k_layer_time(chip, self.context_len, blocks_per_sequence, self.query_heads,
                                      self.head_bytes_per_token, self.head_dim, self.batch, n_splits,
                                      sm_bandwidth=sm_bandwidth)

        grouped, *splits = [layer(self.kv_heads, s) for s in _split_choices(self.context_len, min_block_tokens)]
        return layer(self.query_heads), grouped, min([grouped, *splits], key=lambda t: t.time)


def flash_decoding_benchmark() -> list:
    """The Flash-Decoding post's decode-attention micro-benchmark on an A100, as
    :class:`DecodeAttentionMeasurement` rows (``data/measurements/flash_decoding_a100.csv``)."""
    return [DecodeAttentionMeasurement(int(r["batch"]), int(r["context_len"]), int(r["query_heads"]),
                                       int(r["kv_heads"]), int(r["head_dim"]), r["dtype"],
                                       float(r["pytorch_eager_us"]) * 1e-6, float(r["flash_attention_us"]) * 1e-6,
                                       float(r["flash_decoding_us"]) * 1e-6)
            for r in read_csv("measurements/flash_decoding_a100.csv")]


CACHE_POLICIES = ("full", "window", "sinks")


def _check_policy(policy, cache_size) -> int:
    if policy not in CACHE_POLICIES:
        raise ValueError(f"policy must be one of {CACHE_POLICIES}; got {policy!r}")
    return check_int("cache_size", cache_size)


def kept_positions(position, policy, cache_size, n_sinks=4) -> np.ndarray:
    """Token positions a query at ``position`` (0-based) can attend to under a cache ``policy``.

    ``"full"`` keeps every earlier token; ``"window"`` the last ``cache_size``; ``"sinks"`` the
    first ``n_sinks`` plus the last ``cache_size - n_sinks`` (StreamingLLM), same memory as the window.
    """
    cache_size = _check_policy(policy, cache_size)
    if policy == "sinks" and (not isinstance(n_sinks, (int, np.integer)) or not 0 <= n_sinks < cache_size):
        raise ValueError(f"n_sinks must be an integer from 0 to cache_size - 1; got {n_sinks!r}")
    visible = np.arange(int(position) + 1)
    if policy == "full" or visible.size <= cache_size:
        return visible
    if policy == "window":
        return visible[-cache_size:]
    return np.concatenate([visible[:n_sinks], visible[-(cache_size - n_sinks):]])


class StreamingCost(NamedTuple):
    """Per generated token ``t = 1..n``: tokens in the cache, its bytes, and the attention FLOPs."""

    cached_tokens: np.ndarray
    kv_bytes: np.ndarray
    attention_flops: np.ndarray

    @property
    def peak_kv_bytes(self):
        return float(self.kv_bytes.max())

    @property
    def total_attention_flops(self):
        return float(self.attention_flops.sum())


def streaming_cost(model, n_tokens, policy="sinks", cache_size=4096, kv_dtype="bf16") -> StreamingCost:
    """KV memory and attention FLOPs at each step of an ``n_tokens`` generation.

    Cached tokens at step ``t``: ``t`` for full attention, ``min(t, cache_size)`` for a window
    or window plus sinks (the sinks sit inside the budget); bytes and attention FLOPs of that
    many tokens (``4 L H d_h`` FLOPs per cached token for global MHA/GQA layers; a model's own
    local layers keep no more than their window).
    """
    m = get_model(model)
    cache_size = _check_policy(policy, cache_size)
    t = np.arange(1, int(check_positive("n_tokens", n_tokens)) + 1, dtype=float)
    cached = t if policy == "full" else np.minimum(t, cache_size)
    return StreamingCost(cached, m.kv_cache_bytes(cached, kv_dtype), m.attention_flops(cached))


class SinkExperiment(NamedTuple):
    """Attention of queries late in a sequence, under each cache policy."""

    positions: np.ndarray  # query positions evaluated
    sink_mass: np.ndarray  # share of full attention on the first n_sinks tokens, per query
    error: dict  # policy -> relative error of the attention output against full attention, per query
    weights: dict  # policy -> attention probabilities of the last query over all positions (0 if evicted)


def attention_sink_experiment(n_tokens=2048, cache_size=256, n_sinks=4, head_dim=64, sink_score=4.0,
                              recency=0.05, n_queries=64, seed=0) -> SinkExperiment:
    """Evict the first tokens of a toy attention head and measure what happens.

    Queries, keys and values are random normal, with two traits measured in trained LLMs
    (Xiao et al. 2023, "Efficient Streaming Language Models with Attention Sinks"): scores fall
    with distance (``-recency`` per token) and the first token gets a large score
    (``+sink_score``), the "sink" where heads park attention they do not need. Both are built
    into the vectors as extra dimensions, so plain :func:`attention_weights` is used throughout.
    """
    rng = np.random.default_rng(seed)
    n, d = int(n_tokens), int(head_dim)
    if not 0 < n_queries <= n - cache_size:
        raise ValueError(f"n_queries must be between 1 and n_tokens - cache_size ({n - cache_size}); got {n_queries!r}")
    root = np.sqrt(d + 3.0)  # attention divides scores by sqrt(width)
    pos = np.arange(n, dtype=float)
    sink = (pos == 0).astype(float)
    # score = content + recency * (j - t) for ordinary keys, content + sink_score for the first
    keys = np.column_stack([rng.standard_normal((n, d)), pos * (1 - sink), 1 - sink, sink])
    values = rng.standard_normal((n, d))
    positions = np.arange(n - n_queries, n)
    sink_mass, error, weights = [], {p: [] for p in CACHE_POLICIES}, {}
    for t in positions:
        q = np.concatenate([rng.standard_normal(d), root * np.array([recency, -recency * t, sink_score])])
        full = attention_weights(q, keys[: t + 1])
        exact = full @ values[: t + 1]
        sink_mass.append(full[:n_sinks].sum())
        for policy in CACHE_POLICIES:
            kept = kept_positions(t, policy, cache_size, n_sinks)
            probs = attention_weights(q, keys[kept])
            error[policy].append(np.linalg.norm(probs @ values[kept] - exact) / np.linalg.norm(exact))
            if t == positions[-1]:
                weights[policy] = np.zeros(n)
                weights[policy][kept] = probs
    return SinkExperiment(positions, np.array(sink_mass), {p: np.array(e) for p, e in error.items()}, weights)
