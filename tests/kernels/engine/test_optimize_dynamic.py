"""The generic file's renders reuse the search's graph: at the captured sizes no capture again, at the
other sizes no export in the other mode (its ``mode_specific`` is the search graph's), and the same file
as when every size is captured afresh."""

import sys
from pathlib import Path

import qimeng.kernels.engine.capture as capture_module
import qimeng.kernels.engine.optimize as optimize_module
from qimeng.kernels.engine.dynamic_dims import propose
from qimeng.kernels.engine.optimize import capture_problem
from qimeng.kernels.engine.optimize_dynamic import generic_file
from qimeng.kernels.engine.policies.expert import ExpertPolicy
from qimeng.kernels.engine.render import render_schedule
from qimeng.kernels.engine.steps import Schedule

sys.path.insert(0, str(Path(__file__).resolve().parent))
from norm_relu_problem import norm_relu_problem  # noqa: E402

PROBLEM = norm_relu_problem(8, 40)


def _counted(monkeypatch, module, name: str) -> list:
    calls: list = []
    original = getattr(module, name)
    monkeypatch.setattr(module, name, lambda *a, **k: (calls.append(a), original(*a, **k))[1])
    return calls


def test_the_generic_file_reuses_the_searchs_graph(tmp_path, monkeypatch):
    problem = tmp_path / "norm_relu.py"
    problem.write_text(PROBLEM)
    prob, graph = capture_problem(problem, False)
    schedule = ExpertPolicy().main_line(graph, Schedule())
    plan = render_schedule(PROBLEM, prob.model_cls, graph, schedule, "cpu").plan
    dims = propose(graph.user_args)
    captures = _counted(monkeypatch, optimize_module, "capture_problem")
    other_mode = _counted(monkeypatch, capture_module, "differs_in_other_mode")

    fresh = generic_file(problem, PROBLEM, prob.model_cls, plan, schedule, dims, small=False, device_type="cpu")
    fresh_captures, fresh_other_mode = len(captures), len(other_mode)
    reused = generic_file(problem, PROBLEM, prob.model_cls, plan, schedule, dims, small=False, device_type="cpu",
                          captured=graph)

    assert fresh[0] is not None and reused[0] == fresh[0]  # the same generic file
    assert reused[1:] == fresh[1:]  # the same dimensions, notes and bucket table
    assert len(captures) - fresh_captures == fresh_captures - 1  # every size but the captured one
    assert fresh_other_mode == fresh_captures and len(other_mode) == fresh_other_mode  # none when reused
