"""Each problem set's visible checks name a plausible mistake when a submission makes it.

A slip is a small edit of the solution (a known mistake); the visible part of its task's test
cell must fail with the diagnosing message. (That the grader then takes exactly that task's
points is checked by test_problem_sets, through ``make grade``.)
"""

import nbformat
import pytest

from conftest import REPO
from coursegrade.verdicts import split_hidden

SLIPS = [
    # (assignment, answer cell, old, new, test cell, words of the message)
    ("ps1_rooflines", "q1_answer", "3.94e14 / 8.19e11 / 2", "3.94e14 / 8.19e11", "q1_test", "is twice too large"),
    ("ps1_rooflines", "q2_answer", "1.97e14 / 8.19e11 / 2", "1.97e14 / 8.19e11", "q2_test", "2 bytes per weight"),
    ("ps1_rooflines", "q3_answer", "2 * B * D + D * F + 2 * B * F", "2 * B * D + 2 * D * F + 2 * B * F", "q3_test",
     "counts every tensor at 2 bytes"),
    ("ps1_rooflines", "q3_answer", "nbytes = 2 * B * D + D * F + 2 * B * F", "nbytes = D * F", "q3_test",
     "counts only the weights' bytes"),
    ("ps1_rooflines", "q4_answer", "(B * D + B * D * F + B * F)", "(B * D + D * F + B * F)", "q4_test",
     "loads one weight matrix for the whole batch"),
    ("ps1_rooflines", "q5_answer", "(1.979e15 / 2) / 3.35e12", "1.979e15 / 3.35e12", "q5_test", "uses the sparse peak"),
    ("ps1_rooflines", "q6_answer", "return peak_flops / bandwidth", "return bandwidth / peak_flops", "q6_test",
     "is bandwidth / peak"),
    ("ps1_rooflines", "q7_answer", "return np.minimum(peak_flops, bandwidth * flops / nbytes)",
     "return bandwidth * flops / nbytes", "q7_test", "sits above the roof"),
    # the source's own figure for this task, 25.6 TFLOP/s, is the mistake the check names
    ("ps1_rooflines", "q7_answer", "resnet18_a100 = attainable_model_flops(131.77e9, 8.03e9, 19.5e12, 1.555e12)",
     "resnet18_a100 = 25.6e12", "q7_test", "sits above the roof"),
    ("ps1_rooflines", "q8_answer", "sharded_d_threshold = 2 * 1.97e14 / 4.5e10", "sharded_d_threshold = 1.97e14 / 4.5e10",
     "q8_test", "counts the partial sums in values, not bytes"),
    ("ps1_rooflines", "q8_answer", "sharded_d_threshold = 2 * 1.97e14 / 4.5e10", "sharded_d_threshold = 4 * 1.97e14 / 4.5e10",
     "q8_test", "gives each chip all the FLOPs"),
    ("ps1_rooflines", "q9_answer", "np.minimum.reduce(roofs)", "np.maximum.reduce(roofs)", "q9_test",
     "takes the best level's roof"),
    ("ps1_rooflines", "q9_answer", "np.minimum(peak_flops, np.minimum.reduce(roofs))", "np.minimum(peak_flops, roofs[0])",
     "q9_test", "uses only the first level"),
    ("ps2_memory_wall", "q1_answer", "10 ** (2 * slope)", "10 ** slope", "q1_test", "growth over one year"),
    ("ps2_memory_wall", "q2_answer", "2 * np.log(2)", "np.log(2)", "q2_test", "counts two-year periods"),
    ("ps2_memory_wall", "q3_answer", "shapes = [(d, d), (d, 2 * d), (d, d), (d, f), (f, d)]",
     "shapes = [(d, d)] * 4 + [(d, f), (f, d)]", "q3_test", "counts K and V as two matmuls"),
    ("ps2_memory_wall", "q4_answer", "if zero_stage >= 3:", "if zero_stage >= 4:", "q4_test",
     "At stage 3 the weights are split too"),
    ("ps2_memory_wall", "q5_answer", "(34 + 5 * a * s / h) / 1e9", "(34 + 5 * a * s / h) / 2**30", "q5_test", "in GiB"),
    ("ps2_memory_wall", "q6_answer", "int4_decode_speedup = (n * 2 + kv) / (n * 0.5 + kv)", "int4_decode_speedup = 4.0",
     "q6_test", "the KV cache stays in bf16"),
    ("ps3_overhead", "q1_answer", "np.maximum(nbytes / bandwidth, flops / peak)", "(nbytes / bandwidth + flops / peak)",
     "q1_test", "adds the memory time and the compute time"),
    ("ps3_overhead", "q2_answer", "big = n >= 2**24", "big = n >= 0", "q2_test", "includes small arrays"),
    ("ps3_overhead", "q3_answer", "knee_h100 = (6.69e13 / 2) * 8 / 3.35e12", "knee_h100 = 6.69e13 * 8 / 3.35e12", "q3_test",
     "uses the FMA peak"),
    ("ps3_overhead", "q4_answer", "fusion_gain_r128 = 128 * max(_move, _op) / max(_move, 128 * _op)",
     "fusion_gain_r128 = 128.0", "q4_test", "stays memory-bound"),
    ("ps3_overhead", "q6_answer", "if asynchronous:", "if False:", "q6_test", "ignores asynchronous=True"),
    ("ps3_overhead", "q6_answer", "return o + (n - 1) * np.maximum(o, w) + w", "return n * np.maximum(o, w)", "q6_test",
     "leaves out the ends"),
    ("ps3_overhead", "q6_answer", "gpu_busy_fraction(1e-5, 4e-6, True)", "gpu_busy_fraction(1e-5, 4e-6, False)", "q6_test",
     "is the synchronous fraction"),
    ("ps4_kv_cache", "q1_answer", "kv_cache_size(80, 8, 128, 4096, 8, 2)", "kv_cache_size(80, 64, 128, 4096, 8, 2)",
     "q1_test", "counts all 64 query heads"),
    ("ps4_kv_cache", "q1_answer", "/ 2**30", "/ 1e9", "q1_test", "is in GB (1e9 bytes)"),
    ("ps4_kv_cache", "q2_answer", "int(_free // _per_seq)", "int(-(-_free // _per_seq))", "q2_test", "is rounded up"),
    ("ps4_kv_cache", "q3_answer", "_B * _T * 2 * L * H_KV * D_HEAD * 2", "_B * _T * 2 * L * H * D_HEAD * 2", "q3_test",
     "sizes the cache with all 32 query heads"),
    ("ps4_kv_cache", "q4_answer", "(_f / 1.48e14 - _k / 4.0e12)", "(_f / 1.48e14)", "q4_test", "leaves out the KV cache"),
    ("ps4_kv_cache", "q5_answer", "fp8_kv_speedup = _step(2) / _step(1)", "fp8_kv_speedup = 2.0", "q5_test",
     "halves the whole step"),
    ("ps4_kv_cache", "q6_answer", "h20_over_a800 = max(", "h20_over_a800 = 1.48e14 / 3.12e14 or max(", "q6_test",
     "compares peak FLOP/s"),
    ("ps4_kv_cache", "q6_answer",
     "h20_over_a800 = max(_flops / 3.12e14, _bytes / 2.039e12) / max(_flops / 1.48e14, _bytes / 4.0e12)",
     "h20_over_a800 = max(_flops / 1.48e14, _bytes / 4.0e12) / max(_flops / 3.12e14, _bytes / 2.039e12)", "q6_test",
     "is upside down"),
    ("ps4_kv_cache", "q7_answer", "4.5e11", "9e11", "q7_test", "uses NVLink's 900 GB/s"),
    ("ps4_kv_cache", "q7_answer", "2 * L * 2 * (n_chips - 1) / n_chips * batch", "2 * L * 2 * batch", "q7_test",
     "sends all the activations"),
    ("ps4_kv_cache", "q8_answer", "2 * L * H * D_HEAD * T**2", "4 * L * H * D_HEAD * T**2", "q8_test",
     "counts full attention"),
    ("ps4_kv_cache", "q8_answer", "flops = 2 * P * T + 2 * L * H * D_HEAD * T**2", "flops = 2 * P * T", "q8_test",
     "leaves out attention"),
    ("ps4_kv_cache", "q8_answer", "P * 2 + B * T * 2 * L * H_KV * D_HEAD * 2", "P * 2 + B * T * 2 * L * H * D_HEAD * 2",
     "q8_test", "decode_intensity sizes the cache with all 32 query heads"),
    ("ps4_kv_cache", "q9_answer", "mixtral_bytes_b16 = float(_mixtral_bytes(16))",
     "mixtral_bytes_b16 = float(_mixtral_bytes(1))", "q9_test", "reads only two experts per layer"),
    ("ps4_kv_cache", "q9_answer", "experts_touched(8, 2, batch)", "2 * batch", "q9_test", "counts 16 x 2 experts"),
    ("ps4_kv_cache", "q9_answer", "return E * (1 - (1 - k / E) ** n)", "return k * n + 0 * E", "q9_test",
     "multiplies tokens by k"),
    ("ps5_long_context", "q1_answer", "np.exp(lses - lses.max())", "np.exp(lses)", "q1_test", "exp(800) overflows"),
    ("ps5_long_context", "q2_answer", "full_cache_bytes = 50_000 * _per_token", "full_cache_bytes = 50_000 * _per_token / 2",
     "q2_test", "counts only the keys"),
    ("ps5_long_context", "q3_answer", "static_done = [3, 6, 8, 10]", "static_done = [3, 6, 5, 9]", "q3_test",
     "lets C and D into slots as they free up"),
    ("ps5_long_context", "q3_answer", "inflight_done = [3, 6, 5, 9]", "inflight_done = [3, 6, 8, 10]", "q3_test",
     "waits for the whole batch to finish"),
    ("ps5_long_context", "q5_answer", "np.round(mag / step) * step", "np.floor(mag / step + 0.5) * step", "q5_test",
     "rounds ties away from zero"),
    ("ps5_long_context", "q5_answer", "np.minimum(rounded, 448.0)", "rounded", "q5_test", "does not saturate"),
    ("ps5_long_context", "q6_answer", "blocks / (waves * sms)", "min(1.0, blocks / sms)", "q6_test", "ignores the waves"),
    ("ps5_long_context", "q7_answer", "2 * _L * _H_KV * _D * 2", "2 * _L * _H * _D * 2", "q7_test",
     "sizes the KV cache with all 32 query heads"),
    ("ps6_serving_capstone", "q1_answer", '+ m["vocab"] * d  # + the output head', "", "q1_test",
     "leaves out the output head"),
    ("ps6_serving_capstone", "q1_answer", "touched = E * (1 - (1 - k / E) ** tokens)", "touched = E + 0 * tokens",
     "q1_test", "reads every expert even for one token"),
    ("ps6_serving_capstone", "q2_answer", 'kv_share = max(1 / n_chips, 1 / m["kv_heads"])', "kv_share = 1 / n_chips",
     "q2_test", "splits the KV cache over all the chips"),
    ("ps6_serving_capstone", "q2_answer", '2 * m["layers"] * m["kv_heads"]', '2 * m["layers"] * m["heads"]', "q2_test",
     "counts a key and a value for every query head"),
    ("ps6_serving_capstone", "q3_answer", '/ chip["link"]', '/ (2 * chip["link"])', "q3_test",
     "uses a link bandwidth twice the one given"),
    ("ps6_serving_capstone", "q3_answer", "t_compute = flops / n_chips", "t_compute = flops / 2 / n_chips", "q3_test",
     "counts one FLOP per multiply-add"),
    ("ps6_serving_capstone", "q4_answer", "tokens_per_s_per_chip = busy / times.mean() / n",
     "tokens_per_s_per_chip = busy / times.mean()", "q4_test", "is per tensor-parallel group"),
    ("ps6_serving_capstone", "q4_answer", "busy = min(batch, O / len(times))", "busy = batch", "q4_test",
     "counts every decode slot as busy"),
]


def _visible_failure(assignment, answer_id, old, new, test_id):
    """Run the solution with one edit up to ``test_id``; the message its visible checks fail with (or None)."""
    nb = nbformat.read(REPO / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    namespace = {"__name__": "__main__"}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code":
            continue
        source = cell.source
        if meta.get("grade_id") == answer_id:
            assert old in source, f"{assignment} {answer_id} no longer contains {old!r}"
            source = source.replace(old, new)
        if meta.get("grade") and not meta.get("solution"):
            source = split_hidden(source)[0]  # the visible checks only
        if meta.get("grade_id") == test_id:
            try:
                exec(compile(source, test_id, "exec"), namespace)
            except AssertionError as error:
                return str(error)
            return None
        try:
            exec(compile(source, meta.get("grade_id", "cell"), "exec"), namespace)
        except Exception:  # noqa: BLE001 - as in a notebook, a failing cell does not stop the ones after it
            pass
    raise AssertionError(f"{assignment} has no cell {test_id}")


@pytest.mark.parametrize("assignment, answer_id, old, new, test_id, words", SLIPS,
                         ids=[f"{s[0][:3]}-{s[1][:2]}-{s[5][:24]}" for s in SLIPS])
def test_a_slip_is_named_by_the_visible_check(assignment, answer_id, old, new, test_id, words):
    message = _visible_failure(assignment, answer_id, old, new, test_id)
    assert message is not None and words in message, message


def test_every_diagnosis_is_reached_by_a_slip():
    """Each `_self_check` message in the solutions is the message of at least one slip above."""
    import ast

    messages = set()
    for notebook in sorted((REPO / "solutions").glob("*/*.ipynb")):
        for cell in nbformat.read(notebook, as_version=4).cells:
            if cell.cell_type == "code" and "_self_check(" in cell.source and "def _self_check" not in cell.source:
                for node in ast.walk(ast.parse(split_hidden(cell.source)[0])):
                    if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "_self_check":
                        messages |= {key.value for key in node.args[2].keys}
    untested = {m for m in messages if not any(words in m for *_, words in SLIPS)}
    assert messages and not untested, untested
