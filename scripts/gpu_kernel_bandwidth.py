"""GPU probe: a generated ModelNew's forward timed back to back with triton.testing.do_bench, against eager.

The harness times each call from an idle device (host launch latency inside every trial); do_bench
keeps the device busy, so this shows what the kernels themselves reach. Bandwidth counts every input
and output byte once. Correctness is the harness's job (``qimeng eval``): this only times.

    python scripts/gpu_kernel_bandwidth.py PROBLEM.py MODEL_NEW.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import triton.testing
from model_pair import load_model_pair


def _nbytes(values: object) -> int:
    if isinstance(values, torch.Tensor):
        return values.numel() * values.element_size()
    if isinstance(values, (list, tuple)):
        return sum(_nbytes(v) for v in values)
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("problem", type=Path)
    parser.add_argument("model_new", type=Path)
    args = parser.parse_args()
    pair = load_model_pair(args.problem, args.model_new)
    reference, candidate, inputs = pair.reference, pair.candidate, pair.inputs
    with torch.no_grad():
        nbytes = _nbytes(inputs) + _nbytes(reference(*inputs))
        for name, model in (("eager", reference), ("ModelNew", candidate)):
            ms = triton.testing.do_bench(lambda: model(*inputs), return_mode="median")
            print(f"{name:9} {ms * 1e3:9.1f} us {nbytes / (ms * 1e-3) / 1e9:8.0f} GB/s")


if __name__ == "__main__":
    main()
