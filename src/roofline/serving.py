"""Serving many requests: the cost of a mixed iteration, static vs in-flight batching, chunked prefill.

An engine runs *iterations*. One iteration does a decode step for some sequences and
processes prompt tokens (a whole prompt or a chunk of one) for others, reading the
weights once for all of them (:func:`iteration_cost`). Its time is the roofline bound
``max(FLOPs / peak, bytes / bandwidth)`` plus a fixed per-iteration overhead.

:func:`simulate` replays a request stream (:func:`request_stream`) through static batching
(fixed batches padded to their longest member) or in-flight batching (sequences join and
leave between iterations), optionally with chunked prefill.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .core import Cost, _out
from .hardware import get_chip
from .models import get_model
from .units import check_int, check_positive, dtype_bytes


def iteration_cost(model, decode_contexts=(), prefill_chunks=(), w_dtype="bf16", kv_dtype="bf16") -> Cost:
    """FLOPs and bytes of one engine iteration.

    ``decode_contexts``: cached tokens of each sequence taking a decode step (``2 P`` FLOPs plus
    ``4 L H d_h T`` attention, reads ``T`` tokens of KV). ``prefill_chunks``: ``(start, length)``
    pairs, a chunk of ``length`` prompt tokens after ``start`` already cached: ``2 P`` FLOPs a token,
    causal attention ``4 L H d_h (length * start + length^2 / 2)`` (the convention of
    :func:`~roofline.decode.prefill_cost`, so chunks add up to the whole prompt), reads the ``start``
    cached tokens and writes ``length`` new ones. Weights are read once per iteration (for an
    MoE model, the experts the iteration's tokens touch). Local layers, latent attention and
    experts follow :class:`~roofline.models.ModelConfig`.
    """
    m = get_model(model)
    contexts = np.asarray(list(decode_contexts), dtype=float)
    chunks = np.asarray(list(prefill_chunks), dtype=float).reshape(-1, 2)
    if np.any(contexts < 1) or np.any(chunks[:, 0] < 0) or np.any(chunks[:, 1] < 1):
        raise ValueError("decode_contexts must be >= 1 and prefill_chunks (start >= 0, length >= 1)")
    if contexts.size + len(chunks) == 0:
        raise ValueError("an iteration needs at least one decode context or prefill chunk")
    decode = _decode_parts(m, contexts, kv_dtype) if contexts.size else (0.0, 0.0)
    attention, kv = _chunk_parts(m, chunks[:, 0], chunks[:, 1], kv_dtype)
    tokens = contexts.size + chunks[:, 1].sum()
    return _cost(m, tokens, np.sum(decode[0]) + np.sum(attention), np.sum(decode[1]) + np.sum(kv), w_dtype)


def uniform_iteration_cost(model, n_decode, decode_context, chunk_start, chunk_len, w_dtype="bf16",
                           kv_dtype="bf16") -> Cost:
    """:func:`iteration_cost` of ``n_decode`` sequences at ``decode_context`` plus one prompt chunk.

    ``chunk_start`` and ``chunk_len`` may be arrays: one iteration per element (e.g. every
    chunk of a prompt), computed at once.
    """
    m = get_model(model)
    n = check_int("n_decode", n_decode, minimum=0)
    start = check_positive("chunk_start", chunk_start, allow_zero=True)
    length = check_positive("chunk_len", chunk_len)
    attention, kv = _chunk_parts(m, np.asarray(start, dtype=float), np.asarray(length, dtype=float), kv_dtype)
    if n:
        decode = _decode_parts(m, check_positive("decode_context", decode_context), kv_dtype)
        attention, kv = attention + n * decode[0], kv + n * decode[1]
    return _cost(m, np.add(n, length), attention, kv, w_dtype)


def _decode_parts(m, contexts, kv_dtype) -> tuple:
    """Attention FLOPs and KV bytes read of decode steps at ``contexts`` cached tokens (elementwise)."""
    return m.attention_flops(contexts), m.kv_cache_bytes(contexts, kv_dtype)


def _chunk_parts(m, start, length, kv_dtype) -> tuple:
    """Attention FLOPs and KV bytes (``start`` tokens read, ``length`` written) of prompt chunks (elementwise)."""
    attention = m.causal_attention_flops(start + length) - m.causal_attention_flops(start)
    return attention, m.kv_cache_bytes(start, kv_dtype) + length * m.kv_bytes_per_token(kv_dtype)


def _cost(m, tokens, attention_flops, kv_bytes, w_dtype) -> Cost:
    """An iteration over ``tokens`` tokens: ``2 P`` FLOPs each plus attention; the weights they touch read once."""
    flops = 2.0 * m.matmul_parameters(1) * np.asarray(tokens, dtype=float) + attention_flops
    return Cost(_out(flops), _out(m.matmul_parameters(tokens) * dtype_bytes(w_dtype)), _out(kv_bytes))


def iteration_time(model, chip, decode_contexts=(), prefill_chunks=(), w_dtype="bf16", kv_dtype="bf16",
                   compute_dtype="bf16", overhead=0.0) -> float:
    """Seconds for one iteration: ``max(FLOPs / peak, bytes / bandwidth) + overhead``."""
    cost = iteration_cost(model, decode_contexts, prefill_chunks, w_dtype, kv_dtype)
    return _seconds(cost, get_chip(chip), compute_dtype) + overhead


def _seconds(cost: Cost, chip, compute_dtype) -> float:
    return cost.bounds(chip.peak_flops(compute_dtype), chip.hbm_bandwidth).lower


class Request(NamedTuple):
    """One request: arrival time (s), prompt tokens, tokens to generate."""

    arrival: float
    prompt_len: int
    output_len: int


def request_stream(n_requests, rate, prompt_len=(256, 2048), output_len=(16, 512), seed=0) -> list[Request]:
    """``n_requests`` with Poisson arrivals at ``rate`` per second and lengths drawn uniformly
    (log-uniformly) from the inclusive ranges; the same ``seed`` gives the same stream."""
    n = int(check_positive("n_requests", n_requests))
    rate = check_positive("rate", rate)
    rng = np.random.default_rng(seed)

    def lengths(name, bounds):
        lo, hi = bounds
        if not 1 <= lo <= hi:
            raise ValueError(f"{name} must be a (low, high) pair with 1 <= low <= high; got {bounds!r}")
        return np.round(np.exp(rng.uniform(np.log(lo), np.log(hi), n))).astype(int)

    arrivals = np.cumsum(rng.exponential(1 / rate, n))
    return [Request(float(a), int(p), int(o))
            for a, p, o in zip(arrivals, lengths("prompt_len", prompt_len), lengths("output_len", output_len))]


class RequestTrace(NamedTuple):
    """What happened to one request: its token times (s); the first is the time to first token."""

    request: Request
    token_times: tuple

    @property
    def ttft(self):
        return self.token_times[0] - self.request.arrival

    @property
    def inter_token(self):
        return np.diff(self.token_times)


class ServingResult(NamedTuple):
    """Outcome of :func:`simulate`."""

    traces: list  # RequestTrace per request, in arrival order
    iterations: int
    busy_time: float  # seconds the engine spent computing
    useful_slots: int  # prompt tokens + decode steps that belonged to a real request
    padded_slots: int  # prompt padding and decode steps of finished sequences (static batching)

    @property
    def makespan(self):
        return max(t.token_times[-1] for t in self.traces) - min(t.request.arrival for t in self.traces)

    @property
    def throughput(self):
        """Generated tokens per second, first arrival to last token."""
        return sum(t.request.output_len for t in self.traces) / self.makespan

    @property
    def padding_fraction(self):
        return self.padded_slots / (self.useful_slots + self.padded_slots)

    def percentiles(self, q=(50, 90, 99)):
        """TTFT and inter-token latency percentiles, seconds: ``{"ttft": {50: ...}, "itl": {...}}``."""
        ttft = [t.ttft for t in self.traces]
        itl = np.concatenate([t.inter_token for t in self.traces] + [np.zeros(0)])
        return {"ttft": {p: float(np.percentile(ttft, p)) for p in q},
                "itl": {p: float(np.percentile(itl, p)) if itl.size else 0.0 for p in q}}


class _Running:
    """A request inside the engine: prompt tokens processed so far, token times."""

    def __init__(self, request):
        self.request, self.prefilled, self.times = request, 0, []

    @property
    def context(self):
        return self.request.prompt_len + len(self.times)

    @property
    def done(self):
        return len(self.times) == self.request.output_len


def _check_requests(requests):
    requests = sorted(requests, key=lambda r: r.arrival)
    if not requests:
        raise ValueError("requests must hold at least one Request")
    for r in requests:
        if r.arrival < 0 or r.prompt_len < 1 or r.output_len < 1:
            raise ValueError(f"requests must have arrival >= 0, prompt_len >= 1 and output_len >= 1; got {r!r}")
    return requests


def simulate(model, chip, requests, policy="inflight", max_batch=16, chunk_size=None, overhead=0.0,
             w_dtype="bf16", kv_dtype="bf16", iteration_seconds=None) -> ServingResult:
    """Serve ``requests`` on one chip and record when every token comes out.

    ``"static"``: when idle, take up to ``max_batch`` waiting requests, prefill them padded to the
    longest prompt, then decode all slots until the longest output is done (finished slots keep
    computing: padding). ``"inflight"``: before every iteration, admit waiting requests into free
    slots; an iteration decodes every sequence that has finished its prompt and prefills the
    newcomers, whole or at most ``chunk_size`` prompt tokens per iteration (chunked prefill). A
    prompt's last prefill iteration emits its first token. Iteration time: :func:`iteration_time`.

    A request is admitted only while the KV cache of every admitted request, reserved at its full
    length (prompt + output), fits in HBM beside the weights: long contexts mean smaller batches.
    ``iteration_seconds`` fixes every iteration's time instead (for schedules worked by hand).
    """
    if policy not in ("static", "inflight"):
        raise ValueError(f"policy must be 'static' or 'inflight'; got {policy!r}")
    max_batch = check_int("max_batch", max_batch)
    if chunk_size is not None and policy == "static":
        raise ValueError("chunk_size needs policy='inflight' (static batching prefills whole prompts)")
    budget_per_iteration = np.inf if chunk_size is None else check_int("chunk_size", chunk_size)
    queue = _check_requests(requests)
    m, chip = get_model(model), get_chip(chip)  # resolved once: everything below gets the objects
    free = chip.hbm_capacity - m.parameter_count() * dtype_bytes(w_dtype)

    # KV bytes each request holds at its full length (prompt + output), computed once per request
    reservation = {r: m.kv_cache_bytes(r.prompt_len + r.output_len, kv_dtype) for r in queue}
    too_long = [r for r in queue if reservation[r] > free]
    if too_long:
        raise ValueError(f"requests include one whose KV cache cannot fit beside the weights ({free:.3g} bytes): {too_long[0]!r}")

    def admit(batch):
        """Move waiting requests that have arrived into ``batch`` while slots and memory allow."""
        reserved = sum(reservation[s.request] for s in batch)
        while queue and queue[0].arrival <= clock and len(batch) < max_batch:
            need = reservation[queue[0]]
            if reserved + need > free:
                break
            reserved += need
            batch.append(_Running(queue.pop(0)))

    if iteration_seconds is not None:
        iteration_seconds = float(check_positive("iteration_seconds", iteration_seconds))

    clock, durations, useful, padded = 0.0, [], 0, 0

    def step(decode_contexts=(), prefill_chunks=()):
        """Run one iteration; returns the clock at its end, when its tokens come out."""
        nonlocal clock
        dt = iteration_seconds if iteration_seconds is not None else iteration_time(
            m, chip, decode_contexts, prefill_chunks, w_dtype, kv_dtype, overhead=overhead)
        durations.append(dt)
        clock += dt
        return clock

    running, finished = [], []
    while queue or running:
        if not running and queue[0].arrival > clock:
            clock = queue[0].arrival
        if policy == "static":
            batch = []
            admit(batch)
            longest_prompt = max(s.request.prompt_len for s in batch)
            longest_output = max(s.request.output_len for s in batch)
            now = step(prefill_chunks=[(0, longest_prompt)] * len(batch))
            for s in batch:
                s.times.append(now)
            useful += sum(s.request.prompt_len for s in batch)
            padded += len(batch) * longest_prompt - sum(s.request.prompt_len for s in batch)
            for k in range(1, longest_output):
                now = step(decode_contexts=[longest_prompt + k] * len(batch))
                live = [s for s in batch if not s.done]
                for s in live:
                    s.times.append(now)
                useful, padded = useful + len(live), padded + len(batch) - len(live)
            finished += batch
            continue
        admit(running)
        decoding = [s for s in running if s.prefilled == s.request.prompt_len]
        prefilling = [s for s in running if s.prefilled < s.request.prompt_len]
        chunks, budget = [], budget_per_iteration
        for s in prefilling:
            take = int(min(s.request.prompt_len - s.prefilled, budget))
            if take < 1:
                break
            chunks.append((s, take))
            budget -= take
        now = step([s.context for s in decoding], [(s.prefilled, take) for s, take in chunks])
        for s in decoding:
            s.times.append(now)
        for s, take in chunks:
            s.prefilled += take
            if s.prefilled == s.request.prompt_len:
                s.times.append(now)
        useful += len(decoding) + sum(take for _, take in chunks)
        finished += [s for s in running if s.done]
        running = [s for s in running if not s.done]
    traces = sorted((RequestTrace(s.request, tuple(s.times)) for s in finished), key=lambda t: t.request.arrival)
    return ServingResult(traces, len(durations), float(sum(durations)), useful, padded)


class ChunkedPrefill(NamedTuple):
    """A ``prompt_len`` prompt prefilled in chunks while ``n_decode`` other sequences keep decoding."""

    chunk: int
    n_chunks: int
    ttft: float  # seconds until the prompt's first token
    decode_latency: float  # seconds per token the other sequences see during the prefill (worst iteration)
    throughput: float  # tokens processed per second (prompt tokens + decode tokens)
    intensity: float  # FLOP/byte of the first mixed iteration


def chunked_prefill(model, chip, prompt_len, chunk, n_decode=16, decode_context=2048, overhead=0.0,
                    w_dtype="bf16", kv_dtype="bf16", compute_dtype="bf16") -> ChunkedPrefill:
    """Cost of prefilling one prompt in chunks of ``chunk`` tokens, each iteration also decoding
    ``n_decode`` sequences with ``decode_context`` cached tokens (the Sarathi / TensorRT-LLM scheme)."""
    T = int(check_positive("prompt_len", prompt_len))
    chunk, n_decode = check_int("chunk", chunk), check_int("n_decode", n_decode, minimum=0)
    m, c = get_model(model), get_chip(chip)
    costs = [iteration_cost(m, [decode_context] * n_decode, [(start, min(chunk, T - start))], w_dtype, kv_dtype)
             for start in range(0, T, chunk)]
    times = [_seconds(cost, c, compute_dtype) + overhead for cost in costs]
    total = float(sum(times))
    return ChunkedPrefill(chunk, len(times), total, max(times), (T + n_decode * len(times)) / total, costs[0].intensity)


def best_chunk_size(model, chip, prompt_len, latency_limit, n_decode=16, decode_context=2048, chunks=None,
                    overhead=0.0, w_dtype="bf16", kv_dtype="bf16", compute_dtype="bf16") -> ChunkedPrefill:
    """The chunk with the highest throughput whose worst decode latency stays within ``latency_limit`` s.

    Candidates: ``chunks`` or powers of two from 64 to ``prompt_len``. Raises ``ValueError`` when none
    meets the limit (even a decode step alone may exceed it).
    """
    limit = check_positive("latency_limit", latency_limit)
    T = int(check_positive("prompt_len", prompt_len))
    chunks = chunks or [c for c in 2 ** np.arange(6, 20) if c < T] + [T]
    m, c = get_model(model), get_chip(chip)
    options = [chunked_prefill(m, c, T, int(size), n_decode, decode_context, overhead, w_dtype, kv_dtype, compute_dtype)
               for size in chunks]
    ok = [o for o in options if o.decode_latency <= limit]
    if not ok:
        fastest = min(o.decode_latency for o in options)
        raise ValueError(f"latency_limit {limit} s is below every chunk's decode latency (best {fastest:.3g} s)")
    return max(ok, key=lambda o: o.throughput)
