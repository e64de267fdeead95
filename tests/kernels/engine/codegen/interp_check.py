"""Run in a subprocess with TRITON_INTERPRET=1: lower each problem fully, render it under each
reduction strategy, and compare ModelNew with Model on fresh inputs. Prints one JSON line per run."""

import importlib.util
import json
import sys

import torch

from qimeng.kernels.engine.emit import emit_model_new
from qimeng.kernels.engine.lowering_plan import build_plan
from qimeng.kernels.engine.policies.expert import ExpertPolicy
from qimeng.kernels.engine.optimize import capture_problem
from qimeng.kernels.engine.render import render_schedule
from qimeng.kernels.engine.steps import KernelConfig, Schedule

# chunks of 16 loop several times over the small cases' rows; the rows of thousands take chunks of 64 (still
# dozens of iterations under the interpreter, a quarter of the time)
STRATEGIES = {"default": None, "one_pass": KernelConfig("one_pass"), "looped": KernelConfig("looped", 0, 16, 4),
              "online": KernelConfig("online", 0, 16, 4), "split": KernelConfig("split", 3, 16, 4),
              "looped_r64": KernelConfig("looped", 0, 64, 4), "online_r64": KernelConfig("online", 0, 64, 4)}


def _close(a, b) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    tol = 1e-2 if a.dtype in (torch.float16, torch.bfloat16) else 1e-4
    if not a.is_floating_point():
        return bool(torch.equal(a, b))
    return bool(torch.allclose(a.float(), b.float(), atol=tol, rtol=tol, equal_nan=True))


def main_line(graph, config: KernelConfig | None, through: str = "siblings") -> Schedule:
    """The expert policy's first proposal at each stage up to ``through``, every kernel under ``config`` when
    given."""
    schedule = ExpertPolicy().main_line(graph, Schedule(), through=through)
    if config is not None:
        for group in schedule.groups:
            schedule = schedule.with_config(group[0], config)
    return schedule


def emitted(path: str, config: KernelConfig | None, tag: str, device: str = "cpu", through: str = "siblings"):
    """(problem, graph, plan, imported module) of ``path``'s main line (up to the stage ``through``) under
    ``config``, its ``model_new.py`` written next to it as ``{path}.{tag}.model_new.py``."""
    prob, graph = capture_problem(path, small=False)  # on the meta device, as qimeng optimize does
    schedule, source = main_line(graph, config, through), open(path).read()
    if through == "siblings":  # the generated kernels alone
        plan = build_plan(graph, schedule)
        text = emit_model_new(source, prob.model_cls, graph, plan, device)
    else:  # templates and the later stages: as the search renders its candidates
        made = render_schedule(source, prob.model_cls, graph, schedule, device)
        plan, text = made.plan, made.source
    file = f"{path}.{tag}.model_new.py"
    with open(file, "w") as f:
        f.write(text)
    spec = importlib.util.spec_from_file_location(f"cand_{tag.replace('.', '_')}", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return prob, graph, plan, module


def check(path: str, strategy: str, index: int) -> dict:
    prob, graph, plan, module = emitted(path, STRATEGIES[strategy], f"{strategy}.{index}")
    mode = "train" if graph.training else "eval"  # the mode capture_problem captured in
    ref = prob.build(prob.model_cls, 0, "cpu", mode=mode)
    new = prob.build(module.ModelNew, 0, "cpu", mode=mode)
    new.load_state_dict(ref.state_dict())
    ok = True
    for seed in (1, 2):
        inputs = prob.inputs(seed, "cpu")
        assert module._qm_guard(inputs), "the guard rejected the captured shapes"
        with torch.no_grad():
            expected, got = ref(*inputs), new._qm_forward(*inputs)
        expected = expected if isinstance(expected, (tuple, list)) else [expected]
        got = got if isinstance(got, (tuple, list)) else [got]
        ok = ok and len(expected) == len(got) and all(_close(a, b) for a, b in zip(expected, got))
    strategies = sorted({u.rendered.config.strategy for u in plan.kernels})
    return {"path": path, "strategy": strategy, "ok": ok, "kernels": len(plan.kernels),
            "fallbacks": sorted(plan.fallbacks), "strategies": strategies}


if __name__ == "__main__":
    for i, (path, strategy) in enumerate(json.loads(sys.argv[1])):
        try:
            print(json.dumps(check(path, strategy, i)), flush=True)
        except Exception as exc:  # reported per run: the test names the failing case
            print(json.dumps({"path": path, "strategy": strategy, "ok": False,
                              "error": f"{type(exc).__name__}: {exc}"[:2000]}), flush=True)
