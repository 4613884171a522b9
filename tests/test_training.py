import pytest

import roofline as rl


def test_zero_stages_reproduce_the_zero_paper():
    # Rajbhandari et al. 2020, Figure 1: 7.5B parameters, 64 devices, mixed-precision Adam
    gb = [rl.model_state_bytes(7.5e9, "mixed-adam", stage, 64) / 1e9 for stage in range(4)]
    assert gb == pytest.approx([120, 31.4, 16.6, 1.88], abs=0.06)


def test_bytes_per_parameter_by_recipe():
    assert rl.model_state_bytes(1, "mixed-adam") == 16
    assert rl.model_state_bytes(1, "fp32-adam") == 16
    assert rl.model_state_bytes(1, "fp32-sgd-momentum") == 12
    # stage 3 on one device changes nothing
    assert rl.model_state_bytes(1e9, zero_stage=3, n_devices=1) == rl.model_state_bytes(1e9)


def test_activation_formula_by_hand():
    tiny = rl.ModelConfig("tiny", 3, 8, 2, 2, 4, 32, 10, 64, "test")
    s, b, h, a = 16, 4, 8, 2
    assert rl.activation_bytes(tiny, b, s) == 3 * s * b * h * (34 + 5 * a * s / h)
    assert rl.activation_bytes(tiny, b, s, "selective") == 3 * 34 * s * b * h
    assert rl.activation_bytes(tiny, b, s, "full") == 3 * 2 * s * b * h


def test_recomputation_trades_memory_for_compute():
    model, b, s = "gpt-3-175b", 1, 2048
    none, full = rl.activation_bytes(model, b, s), rl.activation_bytes(model, b, s, "full")
    assert none / full > 17  # (34 + 5 a s / h) / 2
    assert rl.recompute_flops_overhead(model, s, "full") == pytest.approx(1 / 3)
    selective = rl.recompute_flops_overhead(model, s, "selective")
    assert 0 < selective < 0.05
    assert rl.recompute_flops_overhead(model, s, "none") == 0


def test_largest_trainable_model():
    # 80 GB, mixed-precision Adam: 5 billion parameters; ZeRO-3 over 8 devices: 40 billion
    assert rl.largest_trainable_params(80e9) == pytest.approx(5e9)
    assert rl.largest_trainable_params(80e9, zero_stage=3, n_devices=8) == pytest.approx(40e9)


@pytest.mark.parametrize("call, name", [
    (lambda: rl.model_state_bytes(1e9, "adamw"), "recipe"),
    (lambda: rl.model_state_bytes(1e9, zero_stage=4), "zero_stage"),
    (lambda: rl.model_state_bytes(-1), "n_params"),
    (lambda: rl.activation_bytes("gpt-2", 1, 1024, "some"), "recompute"),
    (lambda: rl.activation_bytes("gpt-2", 0, 1024), "batch"),
    (lambda: rl.recompute_flops_overhead("gpt-2", 1024, "half"), "recompute"),
    (lambda: rl.largest_trainable_params(0), "memory_bytes"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_breakdown_partitions_each_state_by_stage():
    n, N = 1e9, 8
    assert rl.model_state_breakdown(n) == (2e9, 2e9, 12e9)
    assert rl.model_state_breakdown(n, zero_stage=1, n_devices=N) == (2e9, 2e9, 12e9 / N)
    assert rl.model_state_breakdown(n, zero_stage=2, n_devices=N) == (2e9, 2e9 / N, 12e9 / N)
    assert rl.model_state_breakdown(n, zero_stage=3, n_devices=N) == (2e9 / N, 2e9 / N, 12e9 / N)
    for stage in range(4):
        assert sum(rl.model_state_breakdown(n, "fp32-adam", stage, N)) == rl.model_state_bytes(n, "fp32-adam", stage, N)


def test_training_memory_adds_states_and_activations():
    tiny = rl.ModelConfig("tiny", 2, 8, 2, 2, 4, 32, 10, 64, "test")
    params = rl.parameter_count(tiny)
    m = rl.training_memory(tiny, 4, 16)
    assert (m.weights, m.gradients, m.optimizer) == (2 * params, 2 * params, 12 * params)
    assert m.activations == rl.activation_bytes(tiny, 4, 16)
    assert m.total == 16 * params + m.activations
    # fp32 training stores activations in 4 bytes: twice the 16-bit formula
    assert rl.training_memory(tiny, 4, 16, "fp32-adam").activations == 2 * m.activations
    sharded = rl.training_memory(tiny, 4, 16, recompute="full", zero_stage=3, n_devices=4)
    assert sharded.total == 16 * params / 4 + rl.activation_bytes(tiny, 4, 16, "full")


def test_published_breakdown_and_its_inconsistencies():
    rows = {r["model"]: r for r in rl.published_training_memory()}
    assert len(rows) == 8 and rows["GPT-2"]["gpu_limit"] == 32
    alexnet = rows["AlexNet"]
    parts = alexnet["weights"] + alexnet["optimizer"] + alexnet["activations"]
    assert parts == pytest.approx(1.17) and alexnet["total"] == pytest.approx(1.71)
    vgg = rows["VGG19"]
    assert vgg["weights"] + vgg["optimizer"] + vgg["activations"] == pytest.approx(vgg["total"], abs=0.01)
