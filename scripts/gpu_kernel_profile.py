"""GPU probe: where a generated ModelNew's GPU time goes, kernel by kernel, next to eager and torch.compile.

Profiles one call of each (after warm-up; the module as the problem builds it, training mode included)
with torch.profiler and prints, per side, the total GPU time, the launch count and the kernels that take
the most time, grouped by name (a Triton kernel's trailing index dropped). ``--stage S`` renders the
expert policy's main line through stage S instead of reading a file. Correctness is the harness's job:
this only attributes time.

    python scripts/gpu_kernel_profile.py PROBLEM.py (MODEL_NEW.py | --stage reduce) [--top 12] [--no-compile]
        [--mode train|eval]
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
from model_pair import load_model_pair


def render_stage(problem: Path, stage: str, out: Path) -> Path:
    """The expert policy's main line through ``stage`` (``ExpertPolicy.main_line``) as a model_new.py."""
    from qimeng.kernels.engine.optimize import capture_problem
    from qimeng.kernels.engine.policies.expert import ExpertPolicy, node_order
    from qimeng.kernels.engine.render import render_schedule
    from qimeng.kernels.engine.steps import Precision, Schedule

    prob, graph = capture_problem(problem, False)
    policy = ExpertPolicy(cuda_graphs=True)
    if stage not in policy.stages:
        raise SystemExit(f"{problem}: no stage {stage!r} (stages: {', '.join(policy.stages)})")
    schedule = policy.main_line(graph, Precision("strict").apply(Schedule(), node_order(graph)), through=stage)
    out.write_text(render_schedule(problem.read_text(), prob.model_cls, graph, schedule, "cuda").source)
    return out


def profile(fn, top: int) -> tuple[float, int, list[tuple[str, float, int]]]:
    """(GPU ms, kernel launches, the ``top`` kernel names by GPU time with their ms and counts) of one call."""
    for _ in range(2):
        fn()
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    by_name: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            name = re.sub(r"_\d+$", "", event.name)[:70]
            by_name[name][0] += event.device_time_total / 1e3
            by_name[name][1] += 1
    total = sum(v[0] for v in by_name.values())
    launches = sum(int(v[1]) for v in by_name.values())
    ranked = sorted(((n, v[0], int(v[1])) for n, v in by_name.items()), key=lambda r: -r[1])
    return total, launches, ranked[:top]


def wall_ms(fn, calls: int = 5) -> float:
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / calls * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("problem", type=Path)
    parser.add_argument("model_new", type=Path, nargs="?")
    parser.add_argument("--stage", help="render the expert main line through this stage instead")
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--mode", choices=("train", "eval"), default="train", help="as built (default) or .eval()")
    args = parser.parse_args()
    if (args.model_new is None) == (args.stage is None):
        raise SystemExit("give MODEL_NEW.py or --stage, not both")
    path = args.model_new or render_stage(args.problem, args.stage, Path(tempfile.mkdtemp()) / "model_new.py")
    pair = load_model_pair(args.problem, path, args.mode)
    sides = {"eager": pair.reference, "ModelNew": pair.candidate}
    if not args.no_compile:
        sides["torch.compile"] = torch.compile(pair.reference)
    with torch.no_grad():
        for name, model in sides.items():
            call = lambda model=model: model(*pair.inputs)  # noqa: E731
            total, launches, ranked = profile(call, args.top)
            print(f"== {name}: GPU {total:.2f} ms in {launches} kernels, wall {wall_ms(call):.2f} ms per call")
            for kernel, ms, count in ranked:
                print(f"  {ms:8.3f} ms {count:5d}x  {kernel}")


if __name__ == "__main__":
    main()
