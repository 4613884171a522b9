"""The hardware table: one row per accelerator, every figure with its source.

Peak FLOP/s are *dense* (no 2:4 structured sparsity): NVIDIA datasheets quote
tensor-core figures "with sparsity", twice the dense rate. The rows come from
``data/chips.csv`` (the course's ``hardware_specs.csv`` with a chip id column, the
A100 40GB, FP4 peaks, SM counts and scale-up domains, and the 2024-2025 chips added)
and cache bandwidths from ``data/cache_levels.csv``; each row's ``source`` names the
datasheet. FP4 rates answer for the block-scaled formats the chip runs
(``fp4_formats``: NVFP4 on Blackwell, MXFP4 on Blackwell and CDNA 4).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .tables import read_csv
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
    sm_count: int | None = None  # streaming multiprocessors (AMD: compute units), where sourced
    sm_source: str = ""
    scale_up_chips: int | None = None  # chips one scale-up domain (NVLink, Infinity Fabric, ICI pod) joins
    measured_matmul_flops: float | None = None  # fastest bf16 matmul measured (MAMF), where recorded
    measured_matmul_source: str = ""

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
                             f"{sorted(c.chip_id for c in CHIPS.values() if c.sm_count)}")
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
    "fp4": "dense_fp4_flops",
    "fp32": "fp32_flops",
}


def _number(text: str) -> float | None:
    return float(text) if text.strip() else None


def _load_chips() -> dict[str, Chip]:
    caches = {}
    for row in read_csv("cache_levels.csv"):
        level = MemoryLevel(row["level"], float(row["bandwidth_bytes_per_s"]), f"{row['derivation']}; {row['source']}")
        caches.setdefault(row["chip_id"], []).append(level)
    mamf = {row["chip_id"]: row for row in read_csv("measurements/mamf_bf16.csv")}
    chips = {}
    for row in read_csv("chips.csv"):
        measured = mamf.get(row["chip_id"], {})
        rates = {d: _number(row[c]) for d, c in _DTYPE_COLUMNS.items()}
        rates.update({fmt: rates["fp4"] for fmt in row["fp4_formats"].split()})
        sm_count = _number(row["sm_count"])
        scale_up = _number(row["scale_up_chips"])
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
            cache_levels=tuple(sorted(caches.get(row["chip_id"], ()), key=lambda lv: -lv.bandwidth)),
            sm_count=None if sm_count is None else int(sm_count),
            sm_source=row["sm_source"],
            scale_up_chips=None if scale_up is None else int(scale_up),
            measured_matmul_flops=_number(measured.get("mamf_flops", "")),
            measured_matmul_source=measured.get("source", ""),
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
