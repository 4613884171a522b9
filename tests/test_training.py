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
