"""The hardware table: one row per accelerator, every figure with its source.

Peak FLOP/s are *dense* (no 2:4 structured sparsity): NVIDIA datasheets quote
tensor-core figures "with sparsity", twice the dense rate. The rows come from
``data/chips.csv`` (a copy of the course's ``hardware_specs.csv`` with a chip id
column and the A100 40GB added); each row's ``source`` names the datasheet.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from importlib import resources

from .units import dtype_bytes


@dataclass(frozen=True)
class MemoryLevel:
    """One level of a chip's memory hierarchy: name and bandwidth (byte/s)."""

    name: str
    bandwidth: float
    source: str


@dataclass(frozen=True)
class Chip:
    """One accelerator. Rates in FLOP/s (dense), bandwidths in byte/s, capacity in bytes."""

    chip_id: str
    name: str
    vendor: str
    year: int
    dense_flops: dict  # dtype -> FLOP/s (int8 in OP/s)
    hbm_bandwidth: float
    hbm_capacity: float
    interconnect_bidirectional: float | None  # byte/s, both directions together
    interconnect_type: str
    source: str
    notes: str
    cache_levels: tuple = field(default=())  # MemoryLevel, fastest first, HBM excluded
    sm_count: int | None = None  # streaming multiprocessors (GPUs only), where sourced
    sm_source: str = ""

    def peak_flops(self, dtype: str = "bf16") -> float:
        """Dense peak rate for ``dtype`` in FLOP/s (OP/s for int8).

        Raises ``ValueError`` where the table has no sourced figure (e.g. fp8 on an A100).
        """
        dtype_bytes(dtype)  # validates the name
        rate = self.dense_flops.get(dtype.lower())
        if rate is None:
            have = sorted(self.dense_flops)
            raise ValueError(
                f"dtype {dtype!r} has no sourced peak on chip {self.chip_id!r}; "
                f"available: {have}"
            )
        return rate

    @property
    def interconnect_bandwidth(self) -> float:
        """Inter-chip bandwidth per direction in byte/s (half the bidirectional figure)."""
        if self.interconnect_bidirectional is None:
            raise ValueError(f"chip {self.chip_id!r} has no sourced per-chip interconnect figure")
        return self.interconnect_bidirectional / 2

    def ridge_intensity(self, dtype: str = "bf16") -> float:
        """FLOP/byte at which this chip's HBM roof meets its compute roof."""
        return self.peak_flops(dtype) / self.hbm_bandwidth

    def streaming_multiprocessors(self) -> int:
        """Number of SMs (the units a GPU kernel's thread blocks are spread over)."""
        if self.sm_count is None:
            raise ValueError(f"chip {self.chip_id!r} has no sourced SM count; chips with one: "
                             f"{sorted(_SM_COUNTS)}")
        return self.sm_count

    def memory_levels(self) -> list[MemoryLevel]:
        """Cache levels (where sourced) followed by HBM, fastest first."""
        hbm = MemoryLevel("HBM", self.hbm_bandwidth, self.source)
        return [*self.cache_levels, hbm]


_DTYPE_COLUMNS = {
    "bf16": "dense_bf16_flops",
    "fp16": "dense_fp16_flops",
    "fp8": "dense_fp8_flops",
    "int8": "dense_int8_ops",
    "fp32": "fp32_flops",
}

# A100 cache bandwidths: L2 = 5120 B/clk x 1.41 GHz, L1/shared = 108 SMs x 128 B/clk x 1.41 GHz.
_A100_CACHE_SOURCE = (
    "NVIDIA A100 Tensor Core GPU Architecture whitepaper (2020): 108 SMs at 1410 MHz, "
    "L2 read bandwidth 5120 B/clk (2.3x V100), L1/shared 128 B/clk/SM; L2 7219 GB/s as "
    "tabulated in PubMed Central article PMC10448217, Table 3"
)
_A100_CACHES = (
    MemoryLevel("L1", 108 * 128 * 1.41e9, _A100_CACHE_SOURCE),
    MemoryLevel("L2", 5120 * 1.41e9, _A100_CACHE_SOURCE),
)
_CACHES = {"a100-40gb": _A100_CACHES, "a100-80gb": _A100_CACHES}

_HOPPER_WHITEPAPER = "NVIDIA H100 Tensor Core GPU Architecture whitepaper (2022): H100 SXM5 132 SMs, H100 PCIe 114 SMs"
_SM_COUNTS = {
    "h100-sxm": (132, _HOPPER_WHITEPAPER),
    "h100-pcie": (114, _HOPPER_WHITEPAPER),
    "h200": (132, "NVIDIA H200 is the H100 SXM5 GPU (GH100, 132 SMs) with 141 GB of HBM3e; " + _HOPPER_WHITEPAPER),
    "a100-40gb": (108, _A100_CACHE_SOURCE),
    "a100-80gb": (108, _A100_CACHE_SOURCE),
    "a800": (108, "A800 is the A100 die with NVLink limited to 400 GB/s; " + _A100_CACHE_SOURCE),
    "v100": (80, "NVIDIA Tesla V100 GPU Architecture whitepaper (2017): 80 SMs"),
    "rtx-4090": (128, "NVIDIA Ada GPU Architecture whitepaper (2022): RTX 4090 128 SMs"),
    "gtx-1080ti": (28, "NVIDIA GeForce GTX 1080 Ti (GP102) specifications: 3584 CUDA cores = 28 SMs x 128"),
}


def _number(text: str) -> float | None:
    return float(text) if text.strip() else None


def _load_chips() -> dict[str, Chip]:
    chips = {}
    with resources.files("roofline").joinpath("data/chips.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            sm_count, sm_source = _SM_COUNTS.get(row["chip_id"], (None, ""))
            rates = {d: _number(row[c]) for d, c in _DTYPE_COLUMNS.items()}
            chips[row["chip_id"]] = Chip(
                chip_id=row["chip_id"],
                name=row["name"],
                vendor=row["vendor"],
                year=int(row["year"]),
                dense_flops={d: r for d, r in rates.items() if r is not None},
                hbm_bandwidth=float(row["hbm_bandwidth_bytes_per_s"]),
                hbm_capacity=float(row["hbm_capacity_bytes"]),
                interconnect_bidirectional=_number(row["interconnect_bandwidth_bytes_per_s"]),
                interconnect_type=row["interconnect_type"],
                source=row["source"],
                notes=row["notes"],
                cache_levels=_CACHES.get(row["chip_id"], ()),
                sm_count=sm_count,
                sm_source=sm_source,
            )
    return chips


CHIPS: dict[str, Chip] = _load_chips()


def get_chip(chip_id) -> Chip:
    """The :class:`Chip` with id ``chip_id`` (e.g. ``"h100-sxm"``); a Chip is returned as is."""
    if isinstance(chip_id, Chip):
        return chip_id
    if not isinstance(chip_id, str) or chip_id.lower() not in CHIPS:
        raise ValueError(f"chip_id must be one of {list_chips()}; got {chip_id!r}")
    return CHIPS[chip_id.lower()]


def list_chips() -> list[str]:
    """All chip ids, in table order."""
    return list(CHIPS)
