"""Choosing how to serve a model: precision, tensor parallelism, batch and prefill chunk.

The reference of the capstone problem set. A *deployment* runs one model on a
tensor-parallel group of ``n_chips`` chips. In steady state every iteration decodes
``batch`` sequences and prefills one ``chunk`` of the next prompt (chunked prefill, as in
:func:`~roofline.serving.chunked_prefill`), so a prompt of ``P`` tokens takes
``ceil(P / chunk)`` iterations:

- **time to first token** (TTFT): the sum of those iterations' times;
- **inter-token latency** (ITL): the slowest of them;
- **throughput per chip**: output tokens per second divided by ``n_chips``. One prompt is
  admitted per ``ceil(P / chunk)`` iterations and each request decodes ``output_len``
  tokens, so at most ``output_len / ceil(P / chunk)`` of the ``batch`` decode slots stay
  busy: ``min(batch, output_len / n_chunks) / mean iteration time / n_chips``;
- **memory per chip**: the weights split ``n_chips`` ways, plus the KV cache of
  ``batch + 1`` sequences (the one being prefilled too) at their full ``P + output_len``
  tokens, each chip keeping its share of the KV heads (:func:`~roofline.serving_scale.kv_bytes_per_chip`).

Decoding sequences sit at the mean context ``P + output_len // 2``. One iteration on one
chip costs its share of :func:`~roofline.serving.iteration_cost`
(:func:`~roofline.decode.tensor_parallel_share`: ``1/N`` of the FLOPs and weights, its
cached KV heads) on the roofline of the weights' format (W8A8 and W4A4:
the matmuls run in the weights' format), plus its all-reduces
(:func:`~roofline.decode.tensor_parallel_link_time`) for ``batch + chunk`` tokens.

Left out, as lower-bound models do: queueing before a request is admitted (TTFT here is
the prefill alone), launch overheads, activation memory and the engine's workspace, and
the attention's own precision (all FLOPs run at the weights' format's peak), the new token's
KV write in a decode step, and the first output token coming from the prefill. All
parameters, embeddings included, are stored in the weights' format.
"""

from __future__ import annotations

import functools
import hashlib
from typing import NamedTuple

import numpy as np

from .core import _out
from .decode import tensor_parallel_link_time, tensor_parallel_share
from .hardware import get_chip
from .models import get_model
from .serving import uniform_iteration_cost
from .serving_scale import kv_bytes_per_chip
from .units import check_int, check_positive, dtype_bytes


class Scenario(NamedTuple):
    """A model to serve on a chip family, for a traffic mix, within latency targets."""

    name: str
    model: str
    chip: str
    prompt_len: int  # tokens per prompt
    output_len: int  # tokens generated per request
    ttft_target: float  # seconds
    itl_target: float  # seconds
    weight_formats: tuple  # precisions the quality budget allows for weights (and the matmuls)
    kv_formats: tuple  # precisions allowed for the KV cache
    max_chips: int  # the largest tensor-parallel group (one scale-up domain)


SCENARIOS = {s.name: s for s in (
    Scenario("chat-llama-70b", "llama-3-70b", "h100-sxm", 2048, 512, 0.1, 0.04, ("bf16",), ("bf16", "fp8"), 8),
    Scenario("rag-qwen3-moe", "qwen3-30b-a3b", "h200", 8192, 256, 0.2, 0.03, ("bf16", "fp8"), ("bf16", "fp8"), 8),
    # One chip: MI300X's Infinity Fabric is a mesh of point-to-point links, so a group of n < 8 chips
    # has only n - 1 of its 7 links, not the full scale-up bandwidth the all-reduce model assumes.
    Scenario("assistant-mixtral", "mixtral-8x7b", "mi300x", 1024, 1024, 0.3, 0.03, ("bf16", "fp8"), ("bf16",), 1),
    Scenario("agent-qwen3-8b", "qwen3-8b", "b200", 4096, 512, 0.2, 0.012, ("bf16", "fp8", "nvfp4"), ("bf16", "fp8"),
             8),
)}
THROUGHPUT_TOLERANCE = 0.10  # a deployment within 10% of the best throughput per chip earns the throughput points
TARGET_SLACK = 1e-9  # relative: a latency that equals its target up to rounding meets it


class Deployment(NamedTuple):
    """The choices: weight (and matmul) format, KV-cache format, tensor-parallel degree, batch, chunk."""

    w_dtype: str
    kv_dtype: str
    n_chips: int
    batch: int  # sequences decoding in every iteration
    chunk: int  # prompt tokens prefilled per iteration


class Outcome(NamedTuple):
    """What a deployment achieves on its scenario (seconds, tokens per second per chip, bytes)."""

    ttft: float
    itl: float
    tokens_per_s_per_chip: float
    bytes_per_chip: float
    fits: bool  # the weights and the KV cache fit in each chip's memory
    meets: bool  # fits, and both latency targets are met


def get_scenario(scenario) -> Scenario:
    """A :class:`Scenario`, given one or its name."""
    if isinstance(scenario, Scenario):
        return scenario
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario must be one of {sorted(SCENARIOS)}; got {scenario!r}")
    return SCENARIOS[scenario]


def scenario_for(student_id: str) -> Scenario:
    """The scenario a student serves: ``SHA-256(student_id)`` as an integer, modulo the number of scenarios."""
    if not isinstance(student_id, str) or not student_id:
        raise ValueError(f"student_id must be a non-empty string; got {student_id!r}")
    digest = int(hashlib.sha256(student_id.encode()).hexdigest(), 16)
    return list(SCENARIOS.values())[digest % len(SCENARIOS)]


def memory_per_chip(model, w_dtype, kv_dtype, n_chips, batch, context_len):
    """Bytes each chip holds: ``parameters b_w / N`` plus its share of ``batch`` sequences' KV cache."""
    m = get_model(model)
    weights = m.parameter_count() * dtype_bytes(w_dtype) / check_positive("n_chips", n_chips)
    return weights + kv_bytes_per_chip(m, n_chips, context_len, batch, kv_dtype)


def iteration_seconds(model, chip, w_dtype, kv_dtype, n_chips, batch, context_len, chunk_start, chunk):
    """One iteration on one of ``n_chips`` chips: ``batch`` decodes at ``context_len`` and a ``chunk``
    of prompt tokens after ``chunk_start`` cached ones (seconds; roofline bound plus all-reduces).
    ``chunk_start`` and ``chunk`` may be arrays (one iteration each)."""
    m, c = get_model(model), get_chip(chip)
    n = check_int("n_chips", n_chips)
    cost = uniform_iteration_cost(m, check_int("batch", batch, minimum=0), context_len, chunk_start, chunk,
                                  w_dtype, kv_dtype)
    compute = tensor_parallel_share(cost, m, n).bounds(c.peak_flops(w_dtype), c.hbm_bandwidth).lower
    return _out(compute + tensor_parallel_link_time(m, c, n, np.add(batch, chunk)))


def evaluate(scenario, deployment) -> Outcome:
    """TTFT, ITL, throughput per chip and memory per chip of ``deployment`` on ``scenario`` (module docstring)."""
    s, d = get_scenario(scenario), _checked(scenario, deployment)
    m = get_model(s.model)
    starts = np.arange(0, s.prompt_len, d.chunk)
    times = np.atleast_1d(iteration_seconds(m, s.chip, d.w_dtype, d.kv_dtype, d.n_chips, d.batch,
                                            s.prompt_len + s.output_len // 2, starts,
                                            np.minimum(d.chunk, s.prompt_len - starts)))
    ttft, itl = float(times.sum()), float(times.max())
    served = min(d.batch, s.output_len / len(times))
    throughput = served / (ttft / len(times)) / d.n_chips
    memory = float(memory_per_chip(m, d.w_dtype, d.kv_dtype, d.n_chips, d.batch + 1, s.prompt_len + s.output_len))
    fits = memory <= get_chip(s.chip).hbm_capacity
    return Outcome(ttft, itl, throughput, memory, fits, fits and not _missed_targets(s, ttft, itl))


def _missed_targets(s: Scenario, ttft, itl) -> list[str]:
    """The latency targets ``ttft`` and ``itl`` miss (up to :data:`TARGET_SLACK`), as ``"what got > target"``."""
    return [f"{what} {got * 1e3:.1f} ms > {target * 1e3:.0f} ms" for what, got, target in
            (("time to first token", ttft, s.ttft_target), ("inter-token latency", itl, s.itl_target))
            if got > target * (1 + TARGET_SLACK)]


def _checked(scenario, deployment) -> Deployment:
    """``deployment`` as a :class:`Deployment` after checking each choice is allowed on ``scenario``."""
    s = get_scenario(scenario)
    if not isinstance(deployment, (tuple, list)) or len(deployment) != len(Deployment._fields):
        raise ValueError(f"deployment must be (w_dtype, kv_dtype, n_chips, batch, chunk); got {deployment!r}")
    d = Deployment(*deployment)
    if d.w_dtype not in s.weight_formats:
        raise ValueError(f"w_dtype must be one of {s.weight_formats} for {s.name}; got {d.w_dtype!r}")
    if d.kv_dtype not in s.kv_formats:
        raise ValueError(f"kv_dtype must be one of {s.kv_formats} for {s.name}; got {d.kv_dtype!r}")
    n = _whole("n_chips", d.n_chips)
    if n > s.max_chips or get_model(s.model).n_heads % n:
        raise ValueError(f"n_chips must divide the model's {get_model(s.model).n_heads} heads and be at most "
                         f"{s.max_chips}; got {n}")
    return Deployment(d.w_dtype, d.kv_dtype, n, _whole("batch", d.batch), _whole("chunk", d.chunk))


def _whole(name, value) -> int:
    """A positive whole number, given as an int or as a float without a fraction (``128.0``, as ``np.ceil`` returns)."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    return check_int(name, value)


@functools.cache
def best_deployment(scenario) -> tuple[Deployment, Outcome]:
    """The deployment with the highest throughput per chip that meets the scenario's targets.

    Searched: every allowed format pair, tensor-parallel degrees 1, 2, 4, ... up to
    ``max_chips``, chunks of 64, 128, ... tokens up to the prompt, and for each of these
    the best batch. Latencies and memory grow with the batch, so the largest batch that
    meets the targets is found by bisection; throughput grows with the batch until the
    prefill stops keeping the slots busy (``output_len / n_chunks``), so the best batch
    is the smaller of the two (or one more). Raises ``ValueError`` if nothing meets the targets.
    """
    s = get_scenario(scenario)
    chunks = [c for c in 2 ** np.arange(6, 20) if c < s.prompt_len] + [s.prompt_len]
    tp_degrees = [n for n in 2 ** np.arange(0, 10) if n <= s.max_chips and get_model(s.model).n_heads % n == 0]
    best = None
    for w in s.weight_formats:
        for kv in s.kv_formats:
            for n in tp_degrees:
                for chunk in chunks:
                    for option in _best_batches(s, w, kv, int(n), int(chunk)):
                        if best is None or option[1].tokens_per_s_per_chip > best[1].tokens_per_s_per_chip:
                            best = option
    if best is None:
        raise ValueError(f"no deployment meets the targets of {s.name}")
    return best


def _best_batches(s: Scenario, w, kv, n, chunk) -> list:
    """Candidate ``(deployment, outcome)`` pairs for one format, degree and chunk (see :func:`best_deployment`)."""
    def outcome(batch):
        return evaluate(s, (w, kv, n, batch, chunk))

    if not outcome(1).meets:
        return []
    low, high = 1, 2
    while outcome(high).meets:
        low, high = high, high * 2
    while high - low > 1:  # outcome(low) meets, outcome(high) does not
        middle = (low + high) // 2
        low, high = (middle, high) if outcome(middle).meets else (low, middle)
    busy = s.output_len / -(-s.prompt_len // chunk)
    batches = {min(low, max(1, int(busy))), min(low, int(np.ceil(busy)))}
    return [(Deployment(w, kv, n, b, chunk), outcome(b)) for b in batches]


def assess(scenario, deployment, part: str) -> str | None:
    """None if ``deployment`` passes ``part`` of the capstone on ``scenario``, else what is wrong.

    ``part="targets"``: it fits and meets both latency targets; ``part="throughput"``: it
    meets them with a throughput per chip within :data:`THROUGHPUT_TOLERANCE` of
    :func:`best_deployment`'s. Raises ``ValueError`` for a deployment the scenario does not allow.
    """
    if part not in ("targets", "throughput"):
        raise ValueError(f"part must be 'targets' or 'throughput'; got {part!r}")
    s = get_scenario(scenario)
    o = evaluate(s, deployment)
    if not o.fits:
        return (f"On {s.name}, {tuple(deployment)} needs {o.bytes_per_chip / 1e9:.1f} GB per chip; "
                f"a {s.chip} holds {get_chip(s.chip).hbm_capacity / 1e9:.0f} GB.")
    missed = _missed_targets(s, o.ttft, o.itl)
    if missed:
        return f"On {s.name}, {tuple(deployment)} misses its targets: {'; '.join(missed)}."
    if part == "throughput":
        best = best_deployment(s)[1].tokens_per_s_per_chip
        if o.tokens_per_s_per_chip < (1 - THROUGHPUT_TOLERANCE) * best:
            return (f"On {s.name}, {tuple(deployment)} meets the targets at {o.tokens_per_s_per_chip:.4g} tokens/s "
                    f"per chip, more than {THROUGHPUT_TOLERANCE:.0%} below the best the reference finds.")
    return None


def assess_for_student(deployment, student_id: str, part: str) -> str | None:
    """:func:`assess` on the scenario of ``student_id`` (:func:`scenario_for`); a failure names that scenario."""
    scenario = scenario_for(student_id)
    message = assess(scenario, deployment, part)
    return message and (f"{message} (You serve {scenario.name}: the scenario of the ID you submitted under, "
                        f"{student_id!r}.)")
