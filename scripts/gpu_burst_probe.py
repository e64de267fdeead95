"""Where a verification burst's host time goes, per call, on a CUDA machine (issue 9's diagnosis).

Runs the loop of ``burst.Burst.run`` in this one process for a few honest callables (the reference's
PyTorch ops, a Triton kernel, another PyTorch op mix) at a short-call size, and prints per call: the
CUDA-event time the side would claim, the loop's wall time, and their difference (the overhead the
harness's clock sees around each call), for the loop as written and with the device synchronised right
after the call's end event. Equal overheads for every callable mean the bursts' paired difference
measures the call alone; unequal ones are a bias of the loop, not of the candidate.

    PYTHONPATH=$PWD python3 scripts/gpu_burst_probe.py [--size 512] [--calls 200]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import triton
import triton.language as tl

from qimeng.kernels.harness import burst, timing
from qimeng.kernels.harness.guard import CudaEvent, cuda_synchronize


@triton.jit
def _scale_add_relu(x_ptr, y_ptr, out_ptr, scale, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    v = tl.maximum(tl.load(x_ptr + offs, mask=mask) * scale + tl.load(y_ptr + offs, mask=mask), 0.0)
    tl.store(out_ptr + offs, v, mask=mask)


def _triton(xs: list) -> torch.Tensor:
    x, y = xs
    out = torch.empty_like(x)
    _scale_add_relu[(triton.cdiv(x.numel(), 4096),)](x, y, out, 2.0, x.numel(), BLOCK=4096)
    return out


CALLABLES = {
    "reference (mul, add, relu)": lambda xs: torch.relu(xs[0] * 2.0 + xs[1]),
    "triton kernel": _triton,
    "torch addcmul": lambda xs: torch.relu(torch.addcmul(xs[1], xs[0], torch.full_like(xs[0], 2.0))),
}


def probe(fn, inputs: list, calls: int, sync_after: bool, flush: timing.L2Flusher) -> tuple[float, float]:
    """(mean event ms per call, mean wall ms per call) of one burst loop, each call on fresh inputs of
    the shapes of ``inputs`` (as ``burst.Burst.run`` makes them)."""
    run = burst.Burst("cuda")
    events = []
    cuda_synchronize()
    started = time.perf_counter()
    for k in range(calls):
        torch.manual_seed(burst.call_seed(1, k))
        inputs = [torch.randn_like(x) for x in inputs]
        flush()
        cuda_synchronize()
        start, end = CudaEvent(enable_timing=True), CudaEvent(enable_timing=True)
        start.record()
        out = fn(inputs)
        end.record()
        if sync_after:
            cuda_synchronize()
        events.append((start, end))
        run._keep(k, calls, out)
        del out
    cuda_synchronize()
    wall = (time.perf_counter() - started) * 1e3 / calls
    return statistics.fmean(s.elapsed_time(e) for s, e in events), wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    inputs = [torch.randn(args.size, args.size, device="cuda") for _ in range(2)]
    flush = timing.L2Flusher(torch.device("cuda"))
    print(f"burst probe: {args.size}x{args.size}, {args.calls} calls, median of {args.repeats} bursts")
    print(f"{'callable':28} {'sync after':>10} {'event ms':>9} {'wall ms':>9} {'overhead':>9}")
    with torch.no_grad():
        for name, fn in CALLABLES.items():
            probe(fn, inputs, 20, False, flush)  # warm-up: compile, caches
            for sync_after in (False, True):
                rows = [probe(fn, inputs, args.calls, sync_after, flush) for _ in range(args.repeats)]
                event = statistics.median(r[0] for r in rows)
                wall = statistics.median(r[1] for r in rows)
                print(f"{name:28} {str(sync_after):>10} {event:9.4f} {wall:9.4f} {wall - event:9.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
