"""The capstone's reference: a deployment's latencies, throughput and memory, the best one, the grading."""

import itertools

import numpy as np
import pytest

import roofline as r
from roofline import deployment as dep

CHAT = "chat-llama-70b"  # Llama 3 70B on H100 SXM, 2048-token prompts, 512 output tokens


def _llama_iteration(n, batch, context, start, chunk):
    """One iteration of Llama 3 70B on n H100s in bf16, from the published shapes (by hand)."""
    L, d, H, Hkv, dh, ff, V = 80, 8192, 64, 8, 128, 28672, 128256
    weights = L * (2 * d * H * dh + 2 * d * Hkv * dh + 3 * d * ff) + V * d
    flops = 2 * weights * (batch + chunk) + batch * 4 * L * H * dh * context + 2 * L * H * dh * ((start + chunk) ** 2 - start**2)
    kv = (batch * context + start + chunk) * 2 * L * Hkv * dh * 2
    compute = max(flops / n / 9.894e14, (weights * 2 / n + kv * max(1 / n, 1 / Hkv)) / 3.35e12)
    link = 0 if n == 1 else 2 * L * 2 * (n - 1) / n * (batch + chunk) * d * 2 / 4.5e11
    return compute + link


def test_an_iteration_matches_the_hand_computation():
    for n, batch, context, start, chunk in [(4, 128, 2304, 1536, 512), (1, 1, 1, 0, 1), (8, 0, 2304, 0, 2048)]:
        got = dep.iteration_seconds("llama-3-70b", "h100-sxm", "bf16", "bf16", n, batch, context, start, chunk)
        assert got == pytest.approx(_llama_iteration(n, batch, context, start, chunk), rel=1e-9)


def test_evaluate_adds_the_prompts_iterations_and_divides_by_the_chips():
    outcome = r.evaluate(CHAT, ("bf16", "bf16", 4, 128, 512))
    times = [_llama_iteration(4, 128, 2048 + 256, start, 512) for start in (0, 512, 1024, 1536)]
    assert outcome.ttft == pytest.approx(sum(times), rel=1e-9)
    assert outcome.itl == pytest.approx(times[-1], rel=1e-9)
    # 512 output tokens per request, one prompt per 4 iterations: all 128 slots stay busy
    assert outcome.tokens_per_s_per_chip == pytest.approx(128 / (sum(times) / 4) / 4, rel=1e-9)
    kv_per_seq = 2560 * 2 * 80 * 8 * 128 * 2
    assert outcome.bytes_per_chip == pytest.approx(70553706496 * 2 / 4 + 129 * kv_per_seq / 4, rel=1e-9)
    # a batch the prefill cannot keep busy: only 512 / 4 = 128 sequences generate, whatever the batch
    bigger = r.evaluate(CHAT, ("bf16", "bf16", 4, 200, 512))
    times = [_llama_iteration(4, 200, 2304, start, 512) for start in (0, 512, 1024, 1536)]
    assert bigger.tokens_per_s_per_chip == pytest.approx(128 / (sum(times) / 4) / 4, rel=1e-9)


def test_the_weights_alone_do_not_fit_on_one_h100():
    outcome = r.evaluate(CHAT, ("bf16", "bf16", 1, 1, 2048))
    assert not outcome.fits and not outcome.meets and outcome.bytes_per_chip > 80e9


def test_more_chips_than_kv_heads_replicate_the_cache():
    # Qwen3-30B-A3B caches 4 KV heads: on 8 chips each keeps one whole head (1/4 of the cache, not 1/8)
    m = r.get_model("qwen3-30b-a3b")
    kv = 10 * 1000 * m.kv_bytes_per_token("fp8")
    assert dep.memory_per_chip(m, "fp8", "fp8", 8, 10, 1000) == pytest.approx(m.parameter_count() / 8 + kv / 4)
    assert dep.memory_per_chip(m, "fp8", "fp8", 2, 10, 1000) == pytest.approx(m.parameter_count() / 2 + kv / 2)


def _exhaustive_best(scenario, batches):
    """The best deployment by brute force over every format, degree, power-of-two chunk and listed batch."""
    s = r.get_scenario(scenario)
    chunks = [c for c in 2 ** np.arange(6, 20) if c < s.prompt_len] + [s.prompt_len]
    best = None
    for w, kv, n, chunk, batch in itertools.product(s.weight_formats, s.kv_formats, (1, 2, 4, 8), chunks, batches):
        o = r.evaluate(s, (w, kv, n, batch, int(chunk)))
        if o.meets and (best is None or o.tokens_per_s_per_chip > best):
            best = o.tokens_per_s_per_chip
    return best


@pytest.mark.parametrize("scenario", ["chat-llama-70b", "agent-qwen3-8b"])
def test_the_search_finds_the_best_deployment(scenario):
    deployment, outcome = r.best_deployment(scenario)
    assert outcome.meets and r.evaluate(scenario, deployment) == outcome
    assert outcome.tokens_per_s_per_chip >= _exhaustive_best(scenario, range(1, 400, 9)) * (1 - 1e-12)


def test_the_best_deployments_differ_between_scenarios():
    chosen = {name: r.best_deployment(name)[0] for name in r.SCENARIOS}
    assert len(set(chosen.values())) == len(chosen)
    assert chosen[CHAT].n_chips > 1  # bf16 Llama 3 70B needs more than one 80 GB H100
    assert chosen["agent-qwen3-8b"].w_dtype == "nvfp4"  # the tight ITL target rewards the smallest weights


def test_every_scenario_is_served_by_someone():
    names = {r.scenario_for(f"student{i}").name for i in range(200)}
    assert names == set(r.SCENARIOS)
    assert r.scenario_for("alice") == r.scenario_for("alice")


def test_grading_accepts_near_best_deployments_and_rejects_a_near_miss():
    deployment, best = r.best_deployment(CHAT)
    assert r.assess(CHAT, deployment, "targets") is None and r.assess(CHAT, deployment, "throughput") is None
    # Every deployment that meets the targets earns the target points, and the throughput
    # points exactly when it is within 10% of the best.
    for batch in (1, 32, 100, 120, 128):
        for chunk in (256, 512, 1024):
            d = ("bf16", "bf16", 4, batch, chunk)
            o = r.evaluate(CHAT, d)
            assert (r.assess(CHAT, d, "targets") is None) == o.meets
            assert (r.assess(CHAT, d, "throughput") is None) == (
                o.meets and o.tokens_per_s_per_chip >= 0.9 * best.tokens_per_s_per_chip)
    # One sequence more than the largest batch that fits in memory: 213 sequences on 4 chips need 80.2 GB each.
    limit = max(b for b in range(1, 400) if r.evaluate(CHAT, ("bf16", "bf16", 4, b, 512)).fits)
    over = r.evaluate(CHAT, ("bf16", "bf16", 4, limit + 1, 512))
    assert not over.fits and over.bytes_per_chip < 80e9 * 1.01
    assert "GB per chip; a h100-sxm holds 80 GB" in r.assess(CHAT, ("bf16", "bf16", 4, limit + 1, 512), "targets")
    # The chat scenario's 100 ms TTFT binds: four 512-token chunks take longer, so the best uses bigger chunks.
    assert r.evaluate(CHAT, ("bf16", "bf16", 4, 128, 512)).ttft > 0.1 and r.best_deployment(CHAT)[0].chunk > 512
    # The agent scenario's best batch sits just under its 12 ms ITL target: one more sequence misses it.
    (w, kv, n, batch, chunk), outcome = r.best_deployment("agent-qwen3-8b")
    over = r.evaluate("agent-qwen3-8b", (w, kv, n, batch + 1, chunk))
    assert over.fits and 0.012 < over.itl < 0.012 * 1.001
    message = r.assess("agent-qwen3-8b", (w, kv, n, batch + 1, chunk), "targets")
    assert "inter-token latency 12.0 ms > 12 ms" in message


@pytest.mark.parametrize("deployment, words", [
    (("fp8", "bf16", 4, 128, 512), "w_dtype must be one of ('bf16',)"),
    (("bf16", "int4", 4, 128, 512), "kv_dtype must be one of"),
    (("bf16", "bf16", 3, 128, 512), "n_chips must divide"),
    (("bf16", "bf16", 16, 128, 512), "n_chips must divide"),
    (("bf16", "bf16", 4, 0, 512), "batch must be a positive integer"),
    (("bf16", "bf16", 4, 128, 51.2), "chunk must be a positive integer"),
    (("bf16", "bf16", 4, -128.0, 512), "batch must be a positive integer"),
    (("bf16", "bf16", 4, 128), "deployment must be"),
])
def test_a_deployment_the_scenario_does_not_allow_is_refused(deployment, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        r.evaluate(CHAT, deployment)


def test_whole_numbers_given_as_floats_are_accepted():
    # np.ceil returns floats: a batch of 128.0 is the batch 128
    assert r.evaluate(CHAT, ("bf16", "bf16", 4, 128.0, np.float64(512))) == r.evaluate(CHAT, ("bf16", "bf16", 4, 128, 512))


def test_a_students_deployment_is_judged_on_their_own_scenario():
    chat_best = tuple(r.best_deployment(CHAT)[0])
    assert r.scenario_for("alice").name == CHAT and r.scenario_for("erin").name == "rag-qwen3-moe"
    assert r.assess_for_student(chat_best, "alice", "throughput") is None
    # the same deployment meets the RAG targets but is far from that scenario's best, and the message says whose
    assert r.assess_for_student(chat_best, "erin", "targets") is None
    message = r.assess_for_student(chat_best, "erin", "throughput")
    assert message.startswith("On rag-qwen3-moe") and message.endswith(
        "(You serve rag-qwen3-moe: the scenario of the ID you submitted under, 'erin'.)")


def test_a_latency_within_the_rounding_slack_meets_its_target_in_evaluate_and_assess():
    (w, kv, n, batch, chunk), outcome = r.best_deployment("agent-qwen3-8b")
    s = r.get_scenario("agent-qwen3-8b")
    at_itl = s._replace(itl_target=outcome.itl * (1 - 1e-12))  # the ITL exceeds it by 1e-12: within the slack
    assert r.evaluate(at_itl, (w, kv, n, batch, chunk)).meets
    assert r.assess(at_itl, (w, kv, n, batch, chunk), "targets") is None
    beyond = s._replace(itl_target=outcome.itl * (1 - 1e-6))  # by 1e-6: a miss, named the same way by both
    assert not r.evaluate(beyond, (w, kv, n, batch, chunk)).meets
    assert "inter-token latency" in r.assess(beyond, (w, kv, n, batch, chunk), "targets")


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="scenario must be one of"):
        r.evaluate("chat", ("bf16", "bf16", 4, 128, 512))
    with pytest.raises(ValueError, match="student_id"):
        r.scenario_for("")
    with pytest.raises(ValueError, match="part must be"):
        r.assess(CHAT, ("bf16", "bf16", 4, 128, 512), "speed")
