"""GPU probe: the host and GPU time of a shape-generic ModelNew against torch.compile(ModelNew), per call.

Optimises the norm + ReLU problem of ``tests/kernels/engine/test_dynamic_gpu.py`` (batch 1024-8192), then
at two batches prints each side's host time to enqueue a call, its back-to-back time per call and its
kernels' GPU time (torch.profiler). Where the host time exceeds the GPU time, the call is host-bound.

    python scripts/gpu_compile_overhead.py [--features 16384]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "kernels" / "engine")]

from norm_relu_problem import norm_relu_problem  # noqa: E402
from qimeng.kernels.engine.optimize import optimize  # noqa: E402


def per_call(fn, x) -> tuple[float, float, list[tuple[str, float]]]:
    """(host us to enqueue, back-to-back us per call, [(kernel, GPU us)]) of ``fn(x)``."""
    start = time.perf_counter()
    for _ in range(200):
        fn(x)
    host = (time.perf_counter() - start) / 200 * 1e6
    torch.cuda.synchronize()
    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    begin.record()
    for _ in range(50):
        fn(x)
    end.record()
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        fn(x)
        torch.cuda.synchronize()
    kernels = [(e.name[:50], round(e.device_time_total, 1)) for e in prof.events()
               if e.device_type == torch.autograd.DeviceType.CUDA]
    return host, begin.elapsed_time(end) / 50 * 1e3, kernels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=16384)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp())
    (root / "norm_relu.py").write_text(norm_relu_problem(4096, args.features))
    result = optimize(root / "norm_relu.py", root / "out", device="cuda", budget_s=30, compare_compile=False,
                      dynamic=("batch=1024:8192",), log=lambda m: None)
    print("optimize:", result.status, flush=True)
    spec = importlib.util.spec_from_file_location("model_new", root / "out" / "model_new.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    new = module.ModelNew(args.features).cuda().eval()
    compiled = torch.compile(new)
    with torch.no_grad():
        for rows in (2049, 8191):
            x = torch.randn(rows, args.features, device="cuda")
            for fn in (new, compiled, new, compiled):
                fn(x)
            torch.cuda.synchronize()
            for name, fn in (("ModelNew", new), ("torch.compile(ModelNew)", compiled)):
                host, back_to_back, kernels = per_call(fn, x)
                print(f"{rows} rows {name}: host {host:.1f} us/call, back-to-back {back_to_back:.1f} us/call, "
                      f"kernels {kernels}", flush=True)


if __name__ == "__main__":
    main()
