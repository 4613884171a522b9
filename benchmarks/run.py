"""Timings, not tests: book build (clean and no-change) and a vectorised package sweep.

Run with `make bench`. Prints one line per measurement.
"""

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import roofline as rl

REPO = Path(__file__).resolve().parents[1]


def timed(label, fn, repeat=1):
    best = min(_once(fn) for _ in range(repeat))
    print(f"{label:<45s} {best:8.3f} s", flush=True)


def _once(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def build(out):
    jb = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(jb), "build", str(REPO), "--path-output", out, "--builder", "html", "-W", "--keep-going", "--quiet"]
    subprocess.run(cmd, check=True, capture_output=True)


def main():
    b = np.arange(1, 1_000_001)
    timed("attainable_flops + matmul_intensity, 1e6 B", lambda: rl.attainable_flops(
        rl.matmul_intensity(b, 4096, 4096), 1.97e14, 8.19e11), repeat=5)
    with tempfile.TemporaryDirectory() as out:
        timed("book: clean build (executes chapters)", lambda: build(out))
        timed("book: no-change rebuild", lambda: build(out))


if __name__ == "__main__":
    main()
