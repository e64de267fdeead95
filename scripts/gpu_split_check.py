#!/usr/bin/env python3
"""GPU check of the split at a capture failure (``kernels/engine/split.py``): ``qimeng optimize`` on problems
whose whole forward torch.export cannot capture, written here. Prints per problem the status, the speed-up of
the whole ModelNew vs eager and vs torch.compile (timed by the harness on the whole problem), the wall time,
the whole forward's capture failure and every submodule's row; writes split.json under $OUT when it is set.

    python3 scripts/gpu_split_check.py [--budget S] [--device cuda:N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BRANCH = '''
import torch
import torch.nn as nn

tokens, hidden = 16384, 2048


class Model(nn.Module):
    """Two Linear + LayerNorm + GELU blocks behind a data-dependent branch."""

    def __init__(self, hidden: int):
        super().__init__()
        self.up = nn.Sequential(nn.Linear(hidden, hidden), nn.LayerNorm(hidden), nn.GELU())
        self.down = nn.Sequential(nn.Linear(hidden, hidden), nn.LayerNorm(hidden), nn.GELU())

    def forward(self, x):
        if x.sum() > 0:
            return self.up(x) * 2.0
        return self.down(x) + 1.0


def get_inputs():
    return [torch.randn(tokens, hidden)]


def get_init_inputs():
    return [hidden]
'''

LOOP = '''
import torch
import torch.nn as nn

batch, width, depth = 4096, 1024, 6


class Block(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc = nn.Linear(width, width)

    def forward(self, x):
        return x + torch.nn.functional.silu(self.fc(self.norm(x)))


class Model(nn.Module):
    """A stack of residual blocks whose depth is read from the input (.item()): the same block graph repeats."""

    def __init__(self, width: int, depth: int):
        super().__init__()
        self.blocks = nn.ModuleList([Block(width) for _ in range(depth)])
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.Tanh())

    def forward(self, x):
        steps = 3 + int(x[0, 0].abs().item() > 0.5) * (len(self.blocks) - 3)
        for block in self.blocks[:steps]:
            x = block(x)
        return self.head(x)


def get_inputs():
    return [torch.randn(batch, width)]


def get_init_inputs():
    return [width, depth]
'''


def main() -> int:
    from qimeng.kernels.engine.optimize import optimize

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=90.0)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="qimeng-split-check-") as tmp:
        for name, source in (("branch_linear_ln_gelu", BRANCH), ("item_depth_residual_stack", LOOP)):
            path = Path(tmp) / f"{name}.py"
            path.write_text(source)
            t0 = time.monotonic()
            r = optimize(path, Path(tmp) / name, device=args.device, budget_s=args.budget, log=lambda m: None)
            row = {"problem": name, "status": r.status, "speedup": r.speedup, "speedup_compile": r.speedup_compile,
                   "eager_ms": r.eager_ms, "compile_ms": r.compile_ms, "ours_ms": r.ours_ms, "kernels": r.kernels,
                   "wall_s": time.monotonic() - t0, "capture_error": r.capture_error, "pieces": r.pieces}
            rows.append(row)
            fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
            print(f"{name:30} {r.status:15} {r.kernels:>3} kernels  {fmt(r.speedup)}x eager  "
                  f"{fmt(r.speedup_compile)}x compile  {row['wall_s']:.0f} s", flush=True)
            print(f"    whole forward: {r.capture_error[:160]}", flush=True)
            for p in r.pieces:
                print(f"    `{p['path']}`: {p['status']} ({p['kernels']} kernels, {p['trials']} trials) "
                      f"{p['cause'][:140]}", flush=True)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "split.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
