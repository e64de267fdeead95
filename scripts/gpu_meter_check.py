"""GPU check of the meter: the harness's timing against triton.testing.do_bench on plain PyTorch ops.

Both flush the L2 cache and take a median; the harness also synchronises every stream around each
call (so work left on side streams is counted), which adds the host's launch latency to each trial.
The table shows how large that share is at the sizes we benchmark, and the bandwidth each implies
(bytes = inputs read once + outputs written once).

    python scripts/gpu_meter_check.py
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import torch
import triton.testing

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qimeng.kernels.harness.timing import time_interleaved  # noqa: E402


def cases() -> dict[str, tuple[Callable[[], object], int]]:
    x = torch.randn(8192, 8192, device="cuda")
    y = torch.randn(8192, 8192, device="cuda")
    small = torch.randn(1024, 1024, device="cuda")
    nbytes = x.numel() * 4
    return {
        "copy 256 MiB": (lambda: x.clone(), 2 * nbytes),
        "softmax 8192x8192": (lambda: torch.softmax(x, dim=-1), 2 * nbytes),
        "x*sigmoid(x)+y (3 kernels)": (lambda: x * torch.sigmoid(x) + y, 7 * nbytes),
        "relu 4 MiB (launch-bound)": (lambda: torch.relu(small), 2 * small.numel() * 4),
    }


def main() -> None:
    rows = []
    for name, (fn, nbytes) in cases().items():
        ours = time_interleaved({name: fn}, trials=100, warmup=10, device="cuda").median(name)
        bench = triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median")
        rows.append((name, ours, bench, nbytes))
    print(f"{'case':30} {'harness ms':>11} {'do_bench ms':>12} {'diff us':>8} {'harness TB/s':>13} {'do_bench TB/s':>14}")
    for name, ours, bench, nbytes in rows:
        print(f"{name:30} {ours:11.4f} {bench:12.4f} {1e3 * (ours - bench):8.1f} "
              f"{nbytes / ours / 1e9:13.2f} {nbytes / bench / 1e9:14.2f}")


if __name__ == "__main__":
    main()
