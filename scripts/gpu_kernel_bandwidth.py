"""GPU probe: a generated ModelNew's forward timed back to back with triton.testing.do_bench, against eager.

The harness times each call from an idle device (host launch latency inside every trial); do_bench
keeps the device busy, so this shows what the kernels themselves reach. Bandwidth counts every input
and output byte once. Correctness is the harness's job (``qimeng eval``): this only times.

    python scripts/gpu_kernel_bandwidth.py PROBLEM.py MODEL_NEW.py
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import torch
import triton.testing

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qimeng.kernels.harness.problem import load_problem  # noqa: E402


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
    problem = load_problem(args.problem)
    spec = importlib.util.spec_from_file_location("model_new", args.model_new)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    reference = problem.build(problem.model_cls, 0, "cuda")
    candidate = problem.build(module.ModelNew, 0, "cuda")
    candidate.load_state_dict(reference.state_dict())
    inputs = problem.inputs(1, "cuda")
    with torch.no_grad():
        nbytes = _nbytes(inputs) + _nbytes(reference(*inputs))
        for name, model in (("eager", reference), ("ModelNew", candidate)):
            ms = triton.testing.do_bench(lambda: model(*inputs), return_mode="median")
            print(f"{name:9} {ms * 1e3:9.1f} us {nbytes / (ms * 1e-3) / 1e9:8.0f} GB/s")


if __name__ == "__main__":
    main()
