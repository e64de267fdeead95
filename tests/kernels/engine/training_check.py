"""Run in a subprocess with TRITON_INTERPRET=1: capture a model in training mode, generate ModelNew
from the expert policy's main line, and call both several times in training mode. Prints one JSON line
per case: output errors against a float64 copy of the reference, buffer differences, kernel counts."""

import copy
import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from qimeng.kernels.engine.capture import capture
from qimeng.kernels.engine.emit import emit_model_new
from qimeng.kernels.engine.lowering_plan import build_plan
from qimeng.kernels.engine.policies.expert import ExpertPolicy
from qimeng.kernels.engine.steps import Schedule


HEADER = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\n"


def run_cases(interpreter: Callable[..., list[dict]], root: Path, cases: dict[str, str]) -> dict[str, dict]:
    """Write each case (a problem body without imports or get_init_inputs) under ``root``, check them all
    in one subprocess started by the ``interpreter`` fixture, and return each case's JSON line by name."""
    paths = []
    for name, body in cases.items():
        path = root / f"{name}.py"
        path.write_text(HEADER + body.strip() + "\n\ndef get_init_inputs():\n    return []\n")
        paths.append(str(path))
    return {Path(r["path"]).stem: r for r in interpreter(Path(__file__), root, paths)}


def _load(path: str, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _main_line(graph) -> Schedule:
    policy, schedule = ExpertPolicy(), Schedule()
    for stage in ("lower", "reduce", "siblings"):
        proposals = policy.propose(graph, schedule, stage)
        if proposals:
            schedule = proposals[0].schedule
    return schedule


def check(path: str, index: int, calls: int = 3) -> dict:
    problem = _load(path, f"problem_{index}")
    torch.manual_seed(0)
    model = problem.Model(*problem.get_init_inputs())
    graph = capture(model, problem.get_inputs())
    plan = build_plan(graph, _main_line(graph))
    out_file = f"{path}.model_new.py"
    with open(out_file, "w") as f:
        f.write(emit_model_new(open(path).read(), problem.Model, graph, plan, "cpu"))
    module = _load(out_file, f"candidate_{index}")
    torch.manual_seed(0)
    ref = module.Model(*problem.get_init_inputs())
    torch.manual_seed(0)
    new = module.ModelNew(*problem.get_init_inputs())
    oracle = copy.deepcopy(ref).double()
    out_err, ref_err, buffer_diff, kernel_calls = 0.0, 0.0, 0.0, 0
    launched = []
    for name in dir(module):  # count kernel launches: each launcher appends its name when called
        if name.startswith("_launch_qm_kernel_"):
            launcher = getattr(module, name)
            setattr(module, name, lambda *a, _l=launcher, _n=name: (launched.append(_n), _l(*a))[1])
    for call in range(calls):
        torch.manual_seed(100 + call)
        inputs = problem.get_inputs()
        with torch.no_grad():
            torch.manual_seed(7 + call)
            expected = ref(*inputs)
            torch.manual_seed(7 + call)
            got = new(*inputs)
            torch.manual_seed(7 + call)
            exact = oracle(*[x.double() if x.is_floating_point() else x for x in inputs])
        out_err = max(out_err, (got.double() - exact).abs().max().item())
        ref_err = max(ref_err, (expected.double() - exact).abs().max().item())
        if not torch.allclose(got, expected, atol=1e-4, rtol=1e-4):
            out_err = float("inf")
    for (name, a), (_, b) in zip(ref.named_buffers(), new.named_buffers()):
        diff = (a.double() - b.double()).abs().max().item() if a.numel() else 0.0
        buffer_diff = max(buffer_diff, diff)
    kernel_calls = len(launched)
    return {"path": path, "out_err": out_err, "ref_err": ref_err, "buffer_diff": buffer_diff,
            "kernels": len(plan.kernels), "kernel_calls": kernel_calls, "fallbacks": sorted(plan.fallbacks.values()),
            "mutations": [t for _, t in graph.mutations], "increments": graph.increments, "training": graph.training,
            "mode_specific": graph.mode_specific}


if __name__ == "__main__":
    for i, path in enumerate(json.loads(sys.argv[1])):
        try:
            print(json.dumps(check(path, i)), flush=True)
        except Exception as exc:  # reported per case: the test names the failing one
            print(json.dumps({"path": path, "error": f"{type(exc).__name__}: {exc}"[:2000]}), flush=True)
