"""GPU probe: where the host time of one generated ``ModelNew`` call goes.

Times, per call, the host side of: eager ``Model``, ``ModelNew`` (guard + forward), the guard alone,
the forward without the guard, ``torch.empty`` of the output, and each generated kernel launched
through Triton's JIT path. Host time is measured with enough calls queued that the GPU never starves
the host (the figures are submission cost, not kernel time).

    python scripts/gpu_launch_overhead.py PROBLEM.py MODEL_NEW.py
"""

from __future__ import annotations

import argparse
import inspect
import time
from pathlib import Path

import torch
from model_pair import load_model_pair

CALLS = 200


def host_us(fn, calls: int = CALLS) -> float:
    """Median over 5 rounds of the host time per call (device synchronised between rounds)."""
    fn()
    torch.cuda.synchronize()
    rounds = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        rounds.append((time.perf_counter() - t0) / calls * 1e6)
        torch.cuda.synchronize()
    return sorted(rounds)[2]


def _direct_launch(fn, args: tuple, kwargs: dict):
    """The compiled kernel launched without the JIT's binding, specialisation and cache lookup."""
    compiled = fn.run(*args, **kwargs)
    params = list(inspect.signature(fn.fn).parameters)
    values = list(args) + [kwargs[p] for p in params[len(args):]]
    grid = tuple(kwargs["grid"]) + (1, 1)
    stream = torch.cuda.current_stream().cuda_stream
    launch, function, packed = compiled.run, compiled.function, compiled.packed_metadata
    return lambda: launch(grid[0], grid[1], grid[2], stream, function, packed, None, None, None, *values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("problem", type=Path)
    parser.add_argument("model_new", type=Path)
    args = parser.parse_args()
    pair = load_model_pair(args.problem, args.model_new)
    module, reference, candidate, inputs = pair.module, pair.reference, pair.candidate, pair.inputs
    launches: dict[str, tuple] = {}
    for name in dir(module):
        fn = getattr(module, name)
        if name.startswith("qm_kernel_") and hasattr(fn, "run"):
            original = fn.run

            def recorder(*a, _name=name, _orig=original, **kw):
                launches[_name] = (a, kw)
                return _orig(*a, **kw)

            fn.run = recorder
    with torch.no_grad():
        candidate(*inputs)
        out = reference(*inputs)
        rows = [("eager Model", host_us(lambda: reference(*inputs))),
                ("ModelNew (guard + forward)", host_us(lambda: candidate(*inputs))),
                ("guard alone", host_us(lambda: module._qm_guard(tuple(inputs)))),
                ("forward without guard", host_us(lambda: candidate._qm_forward(*inputs))),
                ("torch.empty like the output", host_us(lambda: torch.empty_like(out)))]
        for name, (a, kw) in sorted(launches.items()):
            fn = getattr(module, name)
            fn.run = type(fn).run.__get__(fn)
            rows.append((f"{name} via JIT", host_us(lambda: fn.run(*a, **kw))))
            rows.append((f"{name} compiled, direct", host_us(_direct_launch(fn, a, kw))))
    for label, us in rows:
        print(f"{label:32} {us:8.2f} us/call")


if __name__ == "__main__":
    main()
