"""GPU probe: a generated ModelNew's first call, its kernels compiled at their launches one by one against
compiled ahead from threads (``codegen/ahead.py``), each in a fresh process with an empty Triton cache.

    python scripts/gpu_first_call.py PROBLEM.py --stage reduce
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gpu_kernel_profile import render_stage


def child(problem: str, path: str, mode: str) -> dict:
    """First call and a steady call of ModelNew; ``mode`` "launch" drops the registrations first."""
    import torch
    from model_pair import load_model_pair

    pair = load_model_pair(Path(problem), Path(path))
    kernels = len({id(site[0]) for site in pair.module._QM_AHEAD})
    if mode == "launch":
        pair.module._QM_AHEAD.clear()
    torch.cuda.synchronize()
    with torch.no_grad():
        start = time.perf_counter()
        pair.candidate(*pair.inputs)
        torch.cuda.synchronize()
        first = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(3):
            pair.candidate(*pair.inputs)
        torch.cuda.synchronize()
    return {"mode": mode, "kernels": kernels, "first_call_s": round(first, 1),
            "call_ms": round((time.perf_counter() - start) / 3 * 1e3, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("problem", type=Path)
    parser.add_argument("--stage", default="reduce")
    args = parser.parse_args()
    path = render_stage(args.problem, args.stage, Path(tempfile.mkdtemp()) / "model_new.py")
    for mode in ("launch", "ahead"):
        with tempfile.TemporaryDirectory() as cache:
            proc = subprocess.run([sys.executable, __file__, "--child", str(args.problem), str(path), mode],
                                  env={**os.environ, "TRITON_CACHE_DIR": cache}, capture_output=True, text=True)
            print(proc.stdout.strip().splitlines()[-1] if proc.returncode == 0 else f"{mode}: {proc.stderr[-800:]}",
                  flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child(*sys.argv[2:5])))
    else:
        main()
