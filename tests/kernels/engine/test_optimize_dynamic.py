"""The generic file: its renders reuse the search's graph (at the captured sizes no capture again, at the
other sizes no export in the other mode: its ``mode_specific`` is the search graph's), the same file as
when every size is captured afresh; a spent budget stops it; a training-mode convolution stack (templates,
split batch-norm statistics) runs its kernels at other batch sizes against float64 (Triton interpreter)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import qimeng.kernels.engine.capture as capture_module
import qimeng.kernels.engine.optimize as optimize_module
from qimeng.core.verdict import BadInput
from qimeng.kernels.engine.dynamic_dims import propose
from qimeng.kernels.engine.optimize import capture_problem
from qimeng.kernels.engine.optimize_dynamic import generic_file, make_dynamic
from qimeng.kernels.engine.policies.expert import ExpertPolicy
from qimeng.kernels.engine.render import render_schedule
from qimeng.kernels.engine.steps import Schedule
from qimeng.kernels.result import EvalOptions

sys.path.insert(0, str(Path(__file__).resolve().parent))
from norm_relu_problem import norm_relu_problem  # noqa: E402

PROBLEM = norm_relu_problem(8, 40)


def _counted(monkeypatch, module, name: str) -> list:
    calls: list = []
    original = getattr(module, name)
    monkeypatch.setattr(module, name, lambda *a, **k: (calls.append(a), original(*a, **k))[1])
    return calls


def _main_line(tmp_path, source: str, name: str):
    """(problem file, problem, graph, the expert's main-line schedule, its plan) of ``source`` on the CPU."""
    problem = tmp_path / name
    problem.write_text(source)
    prob, graph = capture_problem(problem, False)
    schedule = ExpertPolicy().main_line(graph, Schedule())
    return problem, prob, graph, schedule, render_schedule(source, prob.model_cls, graph, schedule, "cpu").plan


def test_the_generic_file_reuses_the_searchs_graph(tmp_path, monkeypatch):
    problem, prob, graph, schedule, plan = _main_line(tmp_path, PROBLEM, "norm_relu.py")
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


def test_a_spent_budget_stops_the_generic_file_before_any_capture_at_another_size(tmp_path, monkeypatch):
    problem, prob, graph, schedule, plan = _main_line(tmp_path, PROBLEM, "norm_relu.py")
    captures = _counted(monkeypatch, optimize_module, "capture_problem")
    source, kept, notes, _ = generic_file(problem, PROBLEM, prob.model_cls, plan, schedule, propose(graph.user_args),
                                          small=False, device_type="cpu", captured=graph, stop=lambda: True)
    assert source is None and not kept and not captures
    assert any("the run's budget is spent" in n for n in notes), notes


# a training-mode convolution stack: an implicit-GEMM convolution template, batch norm whose statistics run
# split across segments (8192 elements a channel), ReLU and an average pooling template that computes the
# normalisation at each tap; the count (a mean's divisor) and Bessel's correction depend on the batch
CONV_BN_POOL = '''
import torch
import torch.nn as nn

batch, size = 2, 64


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)

    def forward(self, x):
        return torch.nn.functional.avg_pool2d(torch.relu(self.bn(self.conv(x))), 2)


def get_inputs():
    return [torch.randn(batch, 3, size, size)]


def get_init_inputs():
    return []
'''

# the generic file against the float64 module in training mode at three batch sizes: outputs and buffers
CHECK_TRAINING = '''
import importlib.util, sys, warnings, torch
spec = importlib.util.spec_from_file_location("candidate", sys.argv[1])
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
torch.manual_seed(0); ref = mod.Model().double()
new = mod.ModelNew(); new.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ref.state_dict().items()})
ran = []
for name in [n for n in dir(mod) if n.startswith("_launch_")]:
    setattr(mod, name, lambda *a, _f=getattr(mod, name): (ran.append(1), _f(*a))[1])
with warnings.catch_warnings():
    warnings.simplefilter("error")  # a guard miss (PyTorch's forward) warns
    for batch in (2, 3, 5):
        x = torch.randn(batch, 3, 64, 64)
        before = len(ran)
        got, want = new(x).double(), ref(x.double())
        assert len(ran) > before, batch
        assert torch.allclose(got, want, atol=1e-4, rtol=1e-4), (batch, (got - want).abs().max())
        for (name, mine), theirs in zip(new.state_dict().items(), ref.state_dict().values()):
            assert torch.allclose(mine.double(), theirs.double(), atol=1e-5, rtol=1e-5), (batch, name)
        print("batch", batch, "ok")
'''


def test_a_training_convolution_stack_is_generic_over_the_batch(tmp_path):
    problem, prob, graph, schedule, plan = _main_line(tmp_path, CONV_BN_POOL, "conv_bn_pool.py")
    source, kept, notes, _ = generic_file(problem, CONV_BN_POOL, prob.model_cls, plan, schedule,
                                          propose(graph.user_args), small=False, device_type="cpu", captured=graph)
    assert source is not None, notes
    assert [d.name for d in kept] == ["batch"] and kept[0].high >= 5
    for kernel in ("_qm_conv_", "_qm_pool_"):  # the templates take the batch at run time too
        assert re.search(rf"@triton\.jit\(do_not_specialize=\['qm_batch'\]\)\ndef {kernel}", source), kernel
    assert "seg = tl.program_id(0) % 2" in source  # the captured split, pinned
    assert "((4096 * qm_batch) / ((4096 * qm_batch) - 1.0))" in source  # the running variance's correction
    (tmp_path / "model_new.py").write_text(source)
    proc = subprocess.run([sys.executable, "-c", CHECK_TRAINING, str(tmp_path / "model_new.py")],
                          capture_output=True, text=True, env={**os.environ, "TRITON_INTERPRET": "1"}, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "batch 5 ok" in proc.stdout


def test_a_problem_that_does_not_run_at_another_size_stays_static(tmp_path):
    """The judge's BadInput at a resized shape (a recurrent stack's fixed initial state, say) is a note and
    the static file, never the run's error."""
    problem, prob, graph, schedule, plan = _main_line(tmp_path, PROBLEM, "norm_relu.py")
    asked: list = []

    def evaluate(paths, candidate, options, *, on_result, stop):
        asked.append(paths)
        raise BadInput(f"{paths[1]}: the reference's forward raised RuntimeError: Expected hidden size")

    outcome = make_dynamic(problem, PROBLEM, prob.model_cls, plan, schedule, graph, small=False, device_type="cpu",
                           options=EvalOptions(), specs=(), static=False, evaluate=evaluate, log=lambda _: None)
    assert asked and outcome.source is None
    assert any("does not run at another size" in n and "Expected hidden size" in n for n in outcome.notes)
