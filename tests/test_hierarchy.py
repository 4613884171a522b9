import numpy as np
import pytest

import roofline as rl


def test_tiled_bytes_equal_plain_bytes_when_the_tile_covers_the_output():
    assert rl.tiled_matmul_bytes(64, 1000, 64, 64) == rl.matmul_bytes(64, 1000, 64)
    assert rl.tiled_matmul_bytes(2, 3, 5, 10**6, "fp32") == rl.matmul_bytes(2, 3, 5, "fp32", "fp32", "fp32")


def test_tiled_intensity_is_about_tile_over_bytes():
    n = 16384
    for tile in (16, 64, 256):
        intensity = rl.matmul_flops(n, n, n) / rl.tiled_matmul_bytes(n, n, n, tile, "fp16")
        assert intensity == pytest.approx(tile / 2, rel=0.02)


def test_smaller_tiles_move_more_bytes():
    assert rl.tiled_matmul_bytes(4096, 4096, 4096, 32) > rl.tiled_matmul_bytes(4096, 4096, 4096, 128)


def test_hierarchical_roofline_finds_the_bottleneck():
    points = rl.hierarchical_roofline(1e12, {"L1": 1e11, "L2": 1e9, "HBM": 1e9},
                                      {"L1": 2e13, "L2": 7e12, "HBM": 1.5e12}, 3e14)
    by_level = {p.level: p for p in points}
    assert by_level["L1"].intensity == 10
    assert by_level["L1"].attainable == 2e14
    assert by_level["HBM"].attainable == 3e14
    assert by_level["L1"].time == pytest.approx(1e11 / 2e13)
    assert rl.bottleneck(points).level == "L1"


def test_hierarchical_roofline_checks_its_levels():
    with pytest.raises(ValueError, match="same"):
        rl.hierarchical_roofline(1e12, {"L1": 1e9}, {"L2": 1e12}, 1e14)
    with pytest.raises(ValueError, match="bytes_by_level\\['L1'\\]"):
        rl.hierarchical_roofline(1e12, {"L1": 0}, {"L1": 1e12}, 1e14)
    with pytest.raises(ValueError, match="points"):
        rl.bottleneck([])


def test_workloads_come_with_sources():
    resnet = rl.get_workload("resnet-18")
    assert resnet.intensity == pytest.approx(16.41, abs=0.01)  # not the source's 16.471
    assert all(w.source for w in rl.WORKLOADS.values())
    with pytest.raises(ValueError, match="name"):
        rl.get_workload("alexnet")


def test_memory_stall_fraction_by_hand():
    # 80% hits at 1 cycle: memory's share passes one half at a 4-cycle miss, not 5
    assert rl.memory_stall_fraction(0.8, 4) == pytest.approx(0.5)
    assert rl.memory_stall_fraction(0.8, 5) == pytest.approx(1.0 / 1.8)
    assert rl.memory_stall_fraction(0.8, 100) == pytest.approx(20 / 20.8)
    assert rl.memory_stall_fraction(1.0, 100) == 0
    assert rl.memory_stall_fraction(0.0, 100) == 1
    shares = rl.memory_stall_fraction(0.9, np.array([1, 10, 100]), hit_cycles=2)
    assert np.all(np.diff(shares) > 0)
    with pytest.raises(ValueError, match="hit_rate"):
        rl.memory_stall_fraction(1.2, 10)
    with pytest.raises(ValueError, match="miss_cycles"):
        rl.memory_stall_fraction(0.5, 0)
