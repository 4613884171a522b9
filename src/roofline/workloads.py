"""Whole-model workloads placed on rooflines in chapter 1, with where each figure comes from.

A whole network is summarised by its total FLOPs and total bytes moved per
forward pass; their ratio is the model's intensity. The figures are those of
the rooflines tutorial (seed 003); ``note`` says what we could and could not check.
"""

from __future__ import annotations

from typing import NamedTuple

_SEED_003 = "CSDN roofline tutorial (course seed 003), 'Roof-line model usage for model optimisation'"


class Workload(NamedTuple):
    """A model's forward pass: FLOPs and bytes (``None`` where the source gives only the ratio)."""

    name: str
    intensity: float  # FLOP/byte
    flops: float | None
    nbytes: float | None
    source: str
    note: str


WORKLOADS = {
    "vgg16": Workload("VGG16", 25.0, None, None, _SEED_003,
                      "Intensity assumed by the tutorial (about 25 FLOP/byte); no FLOP or byte totals given."),
    "mobilenet": Workload("MobileNet", 7.0, None, None, _SEED_003,
                          "Intensity assumed by the tutorial (about 7 FLOP/byte); no FLOP or byte totals given."),
    "resnet-18": Workload("ResNet-18", 131.77e9 / 8.03e9, 131.77e9, 8.03e9, _SEED_003 + " (torchstat output)",
                          "Totals as printed by the tutorial's torchstat run. He et al. (2016, Table 1) give "
                          "1.8e9 multiply-adds for one 224x224 image, so 131.77 GFLOP is not one image's "
                          "forward pass; only the ratio is used here."),
}


def get_workload(name: str) -> Workload:
    """The :class:`Workload` called ``name`` (``"vgg16"``, ``"mobilenet"``, ``"resnet-18"``)."""
    if not isinstance(name, str) or name.lower() not in WORKLOADS:
        raise ValueError(f"name must be one of {list(WORKLOADS)}; got {name!r}")
    return WORKLOADS[name.lower()]
