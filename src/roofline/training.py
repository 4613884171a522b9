"""Training memory: model states, activations, rematerialisation and ZeRO partitioning.

Model states follow Rajbhandari et al., "ZeRO" (SC 2020): mixed-precision Adam keeps
16-bit weights and gradients (2 + 2 bytes per parameter) plus K = 12 bytes of fp32
optimizer state (master weights, momentum, variance). Activations follow Korthikanti
et al., "Reducing Activation Recomputation in Large Transformer Models" (2022): one
layer stores ``s*b*h*(34 + 5*a*s/h)`` bytes in 16-bit precision (sequence ``s``,
batch ``b``, width ``h``, ``a`` heads), and only ``2*s*b*h`` (its input) with full
recomputation.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .core import _out
from .models import get_model
from .tables import read_csv
from .transformer import ATTENTION_CORE, layer_costs, parameter_count
from .units import check_positive

#: bytes per parameter: (weights, gradients, optimizer state)
MODEL_STATE_BYTES = {
    "mixed-adam": (2, 2, 12),  # bf16/fp16 weights and grads; fp32 master copy, momentum, variance
    "fp32-adam": (4, 4, 8),  # fp32 weights and grads; momentum, variance
    "fp32-sgd-momentum": (4, 4, 4),
}
ZERO_STAGES = (0, 1, 2, 3)


def _recipe(recipe: str) -> tuple:
    if recipe not in MODEL_STATE_BYTES:
        raise ValueError(f"recipe must be one of {list(MODEL_STATE_BYTES)}; got {recipe!r}")
    return MODEL_STATE_BYTES[recipe]


def model_state_breakdown(n_params, recipe="mixed-adam", zero_stage=0, n_devices=1) -> tuple:
    """Bytes of ``(weights, gradients, optimizer state)`` held by one device.

    ZeRO stage 1 partitions the optimizer state over ``n_devices``, stage 2 also the
    gradients, stage 3 also the weights: each partitioned part is divided by ``N``.
    """
    n_params = check_positive("n_params", n_params)
    n_devices = check_positive("n_devices", n_devices)
    if zero_stage not in ZERO_STAGES:
        raise ValueError(f"zero_stage must be one of {ZERO_STAGES}; got {zero_stage!r}")
    partitioned = (zero_stage >= 3, zero_stage >= 2, zero_stage >= 1)
    return tuple(_out(np.multiply(n_params, np.divide(per_param, n_devices) if split else per_param))
                 for per_param, split in zip(_recipe(recipe), partitioned))


def model_state_bytes(n_params, recipe="mixed-adam", zero_stage=0, n_devices=1):
    """Bytes of weights, gradients and optimizer state held by one device.

    Per parameter, ``(w + g + k)`` becomes ``w + g + k/N`` (ZeRO-1), ``w + (g + k)/N``
    (ZeRO-2) and ``(w + g + k)/N`` (ZeRO-3).
    """
    return _out(sum(model_state_breakdown(n_params, recipe, zero_stage, n_devices)))


def activation_bytes(model, batch, seq_len, recompute="none"):
    """Activation memory of all layers for one training step (16-bit activations).

    ``recompute``: ``"none"`` keeps ``s b h (34 + 5 a s / h)`` per layer; ``"selective"``
    recomputes the attention scores (drops the ``5 a s / h`` term); ``"full"`` keeps only
    each layer's input, ``2 s b h``, and recomputes the rest in the backward pass.
    """
    m = get_model(model)
    b = check_positive("batch", batch)
    s = check_positive("seq_len", seq_len)
    h, a = m.d_model, m.n_heads
    per_layer = {
        "none": s * b * h * (34 + 5 * a * s / h),
        "selective": 34 * s * b * h,
        "full": 2 * s * b * h,
    }
    if recompute not in per_layer:
        raise ValueError(f"recompute must be one of {list(per_layer)}; got {recompute!r}")
    return _out(m.n_layers * per_layer[recompute])


def recompute_flops_overhead(model, seq_len, recompute="full"):
    """Extra training FLOPs from recomputation, as a fraction of a normal step.

    A step is a forward pass (1 unit) and a backward pass (2 units). Full recomputation
    repeats the whole forward pass: 1/3 more. Selective recomputation repeats only the
    attention core (``Q K^T``, softmax, ``scores V``): its share of the forward FLOPs, over 3.
    """
    m = get_model(model)
    if recompute not in ("none", "selective", "full"):
        raise ValueError(f"recompute must be one of ['none', 'selective', 'full']; got {recompute!r}")
    if recompute == "none":
        return 0.0
    if recompute == "full":
        return 1 / 3
    costs = layer_costs(m, seq_len, seq_len)
    attention = sum(c.flops for c in costs if c.name in ATTENTION_CORE)
    return _out(attention / sum(c.flops for c in costs) / 3)


def largest_trainable_params(memory_bytes, recipe="mixed-adam", zero_stage=0, n_devices=1):
    """Most parameters whose model states fit in ``memory_bytes`` per device (activations aside)."""
    memory_bytes = check_positive("memory_bytes", memory_bytes)
    return _out(np.divide(memory_bytes, model_state_bytes(1, recipe, zero_stage, n_devices)))


class TrainingMemory(NamedTuple):
    """Bytes one device holds during a training step."""

    weights: float
    gradients: float
    optimizer: float
    activations: float

    @property
    def total(self):
        return self.weights + self.gradients + self.optimizer + self.activations


def training_memory(model, batch, seq_len, recipe="mixed-adam", recompute="none", zero_stage=0, n_devices=1):
    """Per-device memory of training ``model`` with micro-batch ``batch`` of ``seq_len`` tokens.

    Model states from :func:`model_state_breakdown` (parameters from
    :func:`~roofline.transformer.parameter_count`); activations from
    :func:`activation_bytes`, stored in the weights' precision (doubled for fp32 recipes).
    """
    m = get_model(model)
    states = model_state_breakdown(parameter_count(m), recipe, zero_stage, n_devices)
    activations = activation_bytes(m, batch, seq_len, recompute) * _recipe(recipe)[0] / 2
    return TrainingMemory(*states, activations)


def published_training_memory() -> list[dict]:
    """The memory breakdown of the paper's figure 4 (README table of Gholami et al.'s repository).

    One dict per model: ``year``, ``model``, ``batch``, and in GB ``weights``, ``optimizer``,
    ``activations``, ``total`` (as printed), ``figure_total`` (sum of the figure's bars)
    and ``gpu_limit`` (the GPU memory line drawn behind the bar).
    """
    return [{"year": int(r["year"]), "model": r["model"], "batch": int(r["batch_size"]),
             "weights": float(r["params_memory_gb"]), "optimizer": float(r["optimizer_memory_gb"]),
             "activations": float(r["activation_memory_gb"]), "total": float(r["total_memory_gb"]),
             "figure_total": float(r["fig_total_memory_gb"]), "gpu_limit": float(r["fig_gpu_memory_limit_gb"])}
            for r in read_csv("memory_wall/training_memory_breakdown.csv")]
