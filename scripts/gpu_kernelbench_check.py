#!/usr/bin/env python3
"""Our optimised files under KernelBench's timing protocol (issue 10): every ``model_new.py`` that
``scripts/gpu_engine_check.py --out-root DIR`` wrote is evaluated again on its problem with
``--protocol kernelbench`` (training mode, default flags, 5 correctness and 100 timed trials, the mean of
CUDA-event times, no L2 flush: ``harness/kernelbench.py``), so that the figures can stand next to
published ones. Correctness stays our own check. Prints a row per problem, the geometric mean last, and
writes kernelbench.json under $OUT when it is set.

    python3 scripts/gpu_kernelbench_check.py DIR [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def optimised_files(out_root: Path) -> list[tuple[Path, Path]]:
    """(problem, model_new.py) for every ``FAMILY/STEM/model_new.py`` under ``out_root`` whose problem
    ``problems/FAMILY/STEM.py`` exists."""
    pairs = []
    for candidate in sorted(out_root.glob("*/*/model_new.py")):
        problem = ROOT / "problems" / candidate.parent.parent.name / f"{candidate.parent.name}.py"
        if problem.is_file():
            pairs.append((problem, candidate))
    return pairs


def geomean(values: list[float]) -> float | None:
    """The geometric mean of the positive values, None when there are none."""
    kept = [v for v in values if v > 0]
    return math.exp(sum(math.log(v) for v in kept) / len(kept)) if kept else None


def main() -> int:
    from qimeng.core.verdict import BadInput
    from qimeng.kernels.harness.evaluate import evaluate
    from qimeng.kernels.result import integrity_flags, protocol_options

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_root", type=Path)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--small", action="store_true", help="the problems' SMALL sizes (a CPU smoke test)")
    args = parser.parse_args()
    pairs = optimised_files(args.out_root)
    if not pairs:
        print(f"error: {args.out_root}: no FAMILY/STEM/model_new.py of a known problem", file=sys.stderr)
        return 2
    # the protocol's timing alone: no profiler pass for the kernel share (the engine's run had it)
    options = protocol_options("kernelbench", device=args.device, small=args.small or None, kernel_share=False)
    print(f"{'problem':44} {'status':14} {'ref ms':>9} {'ours ms':>9} {'x eager':>8}  flags", flush=True)
    rows = []
    for problem, candidate in pairs:
        name = f"{problem.parent.name}/{problem.stem}"
        try:
            r = evaluate(problem, candidate, options)
            row = {"problem": name, "status": r.status.value, "ref_ms": r.ref_ms, "ours_ms": r.candidate_ms,
                   "speedup": r.speedup, "flags": list(r.flags)}
        except BadInput as exc:
            row = {"problem": name, "status": f"bad input: {exc}"[:120], "ref_ms": None, "ours_ms": None,
                   "speedup": None, "flags": []}
        rows.append(row)
        fmt = lambda v: "-".rjust(9) if v is None else f"{v:9.4f}"  # noqa: E731
        print(f"{name[:44]:44} {row['status'][:14]:14} {fmt(row['ref_ms'])} {fmt(row['ours_ms'])} "
              f"{fmt(row['speedup'])[1:]}  {','.join(row['flags'])}", flush=True)
    clean = [r["speedup"] for r in rows if r["status"] == "ok" and not integrity_flags(r["flags"]) and r["speedup"]]
    mean = geomean(clean)
    print(f"\nkernelbench protocol: geomean x eager {'-' if mean is None else f'{mean:.3f}'} over {len(clean)} "
          f"clean results of {len(rows)}")
    if os.environ.get("OUT"):
        (Path(os.environ["OUT"]) / "kernelbench.json").write_text(json.dumps({"rows": rows, "geomean": mean}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
