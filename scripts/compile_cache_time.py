#!/usr/bin/env python3
"""Seconds of torch.compile's first call on a problem, with an empty compile cache and then from it.

    python3 scripts/compile_cache_time.py PROBLEM.py [--small] [--device cpu|cuda] [--mode train|eval]

Each measurement runs in a fresh Python process (as a judge is) with ``TORCHINDUCTOR_CACHE_DIR`` and
``TRITON_CACHE_DIR`` under one temporary directory: the first process compiles into the empty cache, the
second reads it back (what the judges' shared cache, ``harness/compile_cache.py``, gives a judge started
after another). Prints both and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ONE_CALL = '''
import json, sys, time
import torch
from qimeng.kernels.harness.problem import load_problem
problem = load_problem(sys.argv[1], small=sys.argv[2] == "1")
model = problem.build(problem.model_cls, 0, sys.argv[3], mode=sys.argv[4])
inputs = problem.inputs(0, sys.argv[3])
compiled = torch.compile(model)
started = time.perf_counter()
with torch.no_grad():
    compiled(*inputs)
if sys.argv[3] == "cuda":
    torch.cuda.synchronize()
from torch._dynamo.utils import counters
print(json.dumps({"s": time.perf_counter() - started, "hits": counters["inductor"]["fxgraph_cache_hit"]}))
'''


def first_call(problem: Path, small: bool, device: str, mode: str, cache: Path) -> dict:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(cache / "inductor"), "TRITON_CACHE_DIR": str(cache / "triton"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", ONE_CALL, str(problem), "1" if small else "0", device, mode],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("problem", type=Path)
    parser.add_argument("--small", action="store_true", help="the problem's SMALL sizes")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--mode", default="train", choices=("train", "eval"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="qimeng-compile-cache-") as tmp:
        cold = first_call(args.problem, args.small, args.device, args.mode, Path(tmp))
        warm = first_call(args.problem, args.small, args.device, args.mode, Path(tmp))
    print(f"{args.problem.name}: torch.compile first call {cold['s']:.1f} s with an empty cache, "
          f"{warm['s']:.1f} s from it ({warm['hits']} FX graph cache hit(s)): {cold['s'] / warm['s']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
