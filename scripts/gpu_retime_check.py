"""GPU check of the re-time: a kept reference (``ModelNew(Model)``, what ``qimeng optimize`` emits when
nothing beats the reference) must time as the reference, 1.00 +- 0.03, and torch.compile is timed in the
same rounds (three-way, ``EvalOptions.interleave_baselines``). For each problem it prints eager, torch.compile
and the kept reference's medians, the speed-up with its 95% interval (``speedup_ci``), the speed-up over
torch.compile, which measurement produced each baseline (``baselines_from``) and the flags. Exits 1 when a
kept reference's speed-up is outside 1 +- TOLERANCE and its interval does not hold 1.

    python scripts/gpu_retime_check.py [--device cuda] [--trials 100] [PROBLEM ...]

Defaults to a deep CNN, a conv + batch norm and a transformer block (launch-bound and compute-bound).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qimeng.kernels.engine.optimize import reference_source  # noqa: E402
from qimeng.kernels.harness.evaluate import evaluate_many  # noqa: E402
from qimeng.kernels.result import EvalOptions  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ["problems/cnn/01_resnet_basic_stack.py", "problems/conv_epilogue/02_conv2d_batchnorm_silu.py",
           "problems/attention/05_self_attention_block.py"]
TOLERANCE = 0.03


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("problems", nargs="*", default=DEFAULT)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--trials", type=int, default=100)
    args = parser.parse_args()
    options = EvalOptions(device=args.device, timing_trials=args.trials, correctness_trials=2, warmup=10,
                          baselines=("eager", "compile"), interleave_baselines=True, kernel_share=False,
                          timeout_s=300.0)
    failed = 0
    print("| problem | status | eager ms | compile ms | kept ms | vs eager (95%) | vs compile | from | flags |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.problems:
        path = ROOT / name if not Path(name).is_absolute() else Path(name)
        [r] = evaluate_many(path, [reference_source(path.read_text())], options)
        if r.speedup is None:
            print(f"| {path.stem} | {r.status.value} | | | | | | | {r.reason[:80]} |")
            failed += 1
            continue
        low, high = r.speedup_ci.get("eager", (0.0, 0.0))
        comp = r.baselines_ms.get("compile")
        print(f"| {path.stem} | {r.status.value} | {r.ref_ms:.4f} | {comp if comp is None else f'{comp:.4f}'} | "
              f"{r.candidate_ms:.4f} | {r.speedup:.3f} ({low:.3f}-{high:.3f}) | "
              f"{'' if comp is None else f'{comp / r.candidate_ms:.3f}'} | "
              f"{', '.join(f'{k}: {v}' for k, v in r.baselines_from.items())} | {', '.join(r.flags)} |")
        if abs(r.speedup - 1.0) > TOLERANCE and not low <= 1.0 <= high:
            failed += 1
    print(f"{failed} of {len(args.problems)} kept references outside 1 +- {TOLERANCE} and their interval")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
