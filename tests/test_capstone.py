"""The capstone notebook states each scenario as the package's tables have it."""

import nbformat

import roofline as r
from conftest import REPO
from roofline import deployment

NOTEBOOK = REPO / "solutions" / "ps6_serving_capstone" / "ps6_serving_capstone.ipynb"


def _setup_namespace():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    setup = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "setup")
    namespace = {}
    exec(setup.source, namespace)
    return namespace


def test_the_notebook_scenarios_are_the_packages():
    namespace = _setup_namespace()
    assert list(namespace["SCENARIOS"]) == list(r.SCENARIOS)
    for name, s in r.SCENARIOS.items():
        given = namespace["SCENARIOS"][name]
        m, c = r.get_model(s.model), r.get_chip(s.chip)
        assert given["model"] == dict(
            name=s.model, layers=m.n_layers, d_model=m.d_model, heads=m.n_heads, kv_heads=m.n_kv_heads,
            head_dim=m.head_dim, d_ff=m.d_ff, vocab=m.vocab_size, experts=m.n_experts,
            experts_per_token=m.experts_per_token, expert_d_ff=m.expert_width if m.n_experts else 0,
            parameters=m.parameter_count())
        assert given["chip"]["name"] == s.chip
        # exactly: the hidden checks compare the students' times with the package's to 1e-6
        assert given["chip"]["peak"] == {fmt: c.peak_flops(fmt) for fmt in s.weight_formats}
        for key, value in (("bandwidth", c.hbm_bandwidth), ("capacity", c.hbm_capacity), ("link", c.interconnect_bandwidth)):
            assert given["chip"][key] == value
        assert (given["prompt_len"], given["output_len"], given["ttft_target"], given["itl_target"],
                tuple(given["weight_formats"]), tuple(given["kv_formats"]), given["max_chips"]) == s[3:]
        # one model of the scenarios' attention: global grouped-query attention, as the notebook teaches
        assert m.window_counts() == ((m.n_layers, None),) and m.cache_heads == m.n_kv_heads
        assert m.n_shared_experts == 0 and m.dense_mlp_layers in (0, m.n_layers)


def test_the_notebook_assigns_scenarios_as_the_grader_does():
    namespace = _setup_namespace()
    for student in ("alice", "bob", "judy", "dave", "x" * 40, "Élodie"):
        assert namespace["scenario_for"](student) == r.scenario_for(student).name


def test_the_notebook_bytes_per_format_are_the_packages():
    from roofline.units import dtype_bytes

    assert _setup_namespace()["BYTES"] == {f: dtype_bytes(f) for f in ("bf16", "fp8", "nvfp4")}
    assert set(f for s in deployment.SCENARIOS.values() for f in s.weight_formats + s.kv_formats) <= {"bf16", "fp8", "nvfp4"}
