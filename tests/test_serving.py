"""The serving simulator conserves requests and tokens, is deterministic, and shows what batching buys."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import roofline as r
from roofline import serving as sv

MODEL, CHIP = "llama-3-8b", "h100-sxm"


def test_iteration_cost_agrees_with_the_decode_and_prefill_models():
    assert sv.iteration_cost(MODEL, [4096] * 8) == r.decode_step_cost(MODEL, 4096, 8)
    assert sv.iteration_cost(MODEL, prefill_chunks=[(0, 1000)]) == r.prefill_cost(MODEL, 1000)
    # chunks of one prompt add up to the whole prompt's FLOPs; they re-read earlier chunks' KV
    whole = sv.iteration_cost(MODEL, prefill_chunks=[(0, 4096)])
    parts = [sv.iteration_cost(MODEL, prefill_chunks=[(s, 1024)]) for s in range(0, 4096, 1024)]
    assert sum(p.flops - 2 * r.matmul_params(MODEL) * 1024 for p in parts) == pytest.approx(
        whole.flops - 2 * r.matmul_params(MODEL) * 4096)
    assert sum(p.kv_bytes for p in parts) == pytest.approx(
        (4096 + 1024 + 2048 + 3072) * r.kv_bytes_per_token(MODEL))
    with pytest.raises(ValueError, match="at least one"):
        sv.iteration_cost(MODEL)
    with pytest.raises(ValueError, match="prefill_chunks"):
        sv.iteration_cost(MODEL, prefill_chunks=[(0, 0)])


@pytest.mark.parametrize("model", [MODEL, "qwen3-30b-a3b", "gemma-2-9b", "deepseek-v3"])
def test_uniform_iteration_cost_is_iteration_cost_for_every_chunk_at_once(model):
    starts, lengths = np.array([0, 512, 7000]), np.array([512, 512, 1192])
    together = sv.uniform_iteration_cost(model, 16, 3000, starts, lengths, "fp8", "fp8")
    for i, (start, length) in enumerate(zip(starts, lengths)):
        alone = sv.iteration_cost(model, [3000] * 16, [(start, length)], "fp8", "fp8")
        for field in ("flops", "weight_bytes", "kv_bytes"):
            assert getattr(together[i], field) == pytest.approx(getattr(alone, field), rel=1e-12)
    # no decoding sequences: a prefill-only iteration
    assert sv.uniform_iteration_cost(model, 0, 1, 0, 1000) == pytest.approx(sv.iteration_cost(model, (), [(0, 1000)]))
    with pytest.raises(ValueError, match="n_decode"):
        sv.uniform_iteration_cost(model, -1, 3000, 0, 512)
    with pytest.raises(ValueError, match="chunk_len"):
        sv.uniform_iteration_cost(model, 16, 3000, 0, 0)


def test_request_stream_is_reproducible_and_in_range():
    a, b = sv.request_stream(50, 10, seed=3), sv.request_stream(50, 10, seed=3)
    assert a == b and a != sv.request_stream(50, 10, seed=4)
    assert all(256 <= q.prompt_len <= 2048 and 16 <= q.output_len <= 512 for q in a)
    assert all(x.arrival < y.arrival for x, y in zip(a, a[1:]))
    with pytest.raises(ValueError, match="prompt_len"):
        sv.request_stream(5, 1, prompt_len=(10, 5))


@st.composite
def streams(draw):
    n = draw(st.integers(1, 12))
    arrivals = sorted(draw(st.lists(st.floats(0, 0.5), min_size=n, max_size=n)))
    prompts = draw(st.lists(st.integers(1, 600), min_size=n, max_size=n))
    outputs = draw(st.lists(st.integers(1, 40), min_size=n, max_size=n))
    return [sv.Request(a, p, o) for a, p, o in zip(arrivals, prompts, outputs)]


@settings(max_examples=40, deadline=None)
@given(requests=streams(), policy=st.sampled_from(["static", "inflight", "chunked"]), max_batch=st.integers(1, 5))
def test_simulation_conserves_requests_and_tokens(requests, policy, max_batch):
    chunk = 128 if policy == "chunked" else None
    result = sv.simulate(MODEL, CHIP, requests, "inflight" if chunk else policy, max_batch, chunk)
    assert sorted(t.request for t in result.traces) == sorted(requests)
    for t in result.traces:
        times = np.asarray(t.token_times)
        assert len(times) == t.request.output_len  # every token exactly once
        assert times[0] > t.request.arrival and np.all(np.diff(times) > 0)
    prompt_tokens = sum(q.prompt_len for q in requests)
    decode_steps = sum(q.output_len - 1 for q in requests)
    assert result.useful_slots == prompt_tokens + decode_steps
    if policy != "static":
        assert result.padded_slots == 0
    again = sv.simulate(MODEL, CHIP, requests, "inflight" if chunk else policy, max_batch, chunk)
    assert again == result  # deterministic


def test_static_batching_pads_and_waits():
    requests = [sv.Request(0.0, 100, 10), sv.Request(0.0, 500, 100)]
    static = sv.simulate(MODEL, CHIP, requests, "static", max_batch=2)
    # prompt padding 400 tokens, and the short request's slot idles for 90 steps
    assert static.padded_slots == 400 + 90
    assert static.traces[0].token_times[-1] < static.traces[1].token_times[-1]
    late = [sv.Request(0.0, 100, 50), sv.Request(0.001, 100, 5)]
    st_late = sv.simulate(MODEL, CHIP, late, "static", max_batch=2)
    fl_late = sv.simulate(MODEL, CHIP, late, "inflight", max_batch=2)
    # under static batching the second request waits for the whole first batch
    assert st_late.traces[1].ttft > st_late.traces[0].token_times[-1] - 0.001
    assert fl_late.traces[1].ttft < st_late.traces[1].ttft / 5


def test_inflight_batching_beats_static_on_mixed_lengths():
    requests = sv.request_stream(120, 20, seed=1)
    static = sv.simulate(MODEL, CHIP, requests, "static", 32)
    inflight = sv.simulate(MODEL, CHIP, requests, "inflight", 32)
    assert inflight.throughput > 1.5 * static.throughput
    assert inflight.percentiles()["ttft"][50] < static.percentiles()["ttft"][50] / 10
    assert static.padding_fraction > 0.3


def test_chunked_prefill_protects_decode_latency():
    requests = sv.request_stream(60, 5, prompt_len=(1024, 16384), seed=2)
    whole = sv.simulate(MODEL, CHIP, requests, "inflight", 32)
    chunked = sv.simulate(MODEL, CHIP, requests, "inflight", 32, chunk_size=512)
    assert chunked.percentiles()["itl"][99] < whole.percentiles()["itl"][99] / 3


def test_memory_limits_the_batch():
    # Llama-2-70B in bf16 does not fit on one 80 GB H100; with fp8 weights on an H200 (141 GB) a few long requests do
    with pytest.raises(ValueError, match="cannot fit"):
        sv.simulate("llama-2-70b", CHIP, [sv.Request(0, 100, 10)])
    requests = [sv.Request(0.0, 30_000, 10) for _ in range(8)]
    result = sv.simulate("llama-2-70b", "h200", requests, "inflight", max_batch=8, w_dtype="fp8")
    free = r.get_chip("h200").hbm_capacity - r.parameter_count("llama-2-70b") * 1
    fits = int(free // (30_010 * r.kv_bytes_per_token("llama-2-70b")))
    first_tokens = sorted(t.token_times[0] for t in result.traces)
    assert fits < 8 and first_tokens[fits - 1] < first_tokens[fits]


def test_simulate_validates():
    q = [sv.Request(0, 10, 2)]
    for kwargs, name in [({"policy": "fifo"}, "policy"), ({"max_batch": 0}, "max_batch"),
                         ({"chunk_size": 0}, "chunk_size"), ({"policy": "static", "chunk_size": 64}, "chunk_size")]:
        with pytest.raises(ValueError, match=name):
            sv.simulate(MODEL, CHIP, q, **kwargs)
    with pytest.raises(ValueError, match="requests"):
        sv.simulate(MODEL, CHIP, [])
    with pytest.raises(ValueError, match="output_len"):
        sv.simulate(MODEL, CHIP, [sv.Request(0, 10, 0)])


def test_chunk_size_trades_time_to_first_token_for_decode_latency():
    rows = [sv.chunked_prefill(MODEL, CHIP, 16384, c) for c in (128, 512, 2048, 16384)]
    assert [x.n_chunks for x in rows] == [128, 32, 8, 1]
    intensity = [x.intensity for x in rows]
    latency = [x.decode_latency for x in rows]
    assert intensity == sorted(intensity) and latency == sorted(latency)
    assert rows[0].ttft > rows[-1].ttft  # small chunks re-read the weights many times
    best = sv.best_chunk_size(MODEL, CHIP, 16384, latency_limit=0.03)
    assert best.decode_latency <= 0.03
    assert all(o.throughput <= best.throughput for o in rows if o.decode_latency <= 0.03)
    with pytest.raises(ValueError, match="latency_limit"):
        sv.best_chunk_size(MODEL, CHIP, 16384, latency_limit=1e-4)


def test_a_schedule_worked_by_hand():
    # two slots, one second per iteration: A and B start at once; C (t=1) and D (t=2) wait
    q = [sv.Request(0, 100, 3), sv.Request(0, 100, 6), sv.Request(1, 100, 2), sv.Request(2, 100, 4)]
    static = sv.simulate(MODEL, CHIP, q, "static", 2, iteration_seconds=1.0)
    inflight = sv.simulate(MODEL, CHIP, q, "inflight", 2, iteration_seconds=1.0)
    # static: {A, B} runs 6 iterations, then {C, D} runs 4; in-flight: C takes A's slot at t=3, D takes C's at t=5
    assert [t.token_times[-1] for t in static.traces] == [3, 6, 8, 10]
    assert [t.token_times[-1] for t in inflight.traces] == [3, 6, 5, 9]
    assert static.padded_slots == 3 + 2  # A idles 3 steps, C idles 2
    with pytest.raises(ValueError, match="iteration_seconds"):
        sv.simulate(MODEL, CHIP, q, iteration_seconds=0)
