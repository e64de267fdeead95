"""A forward that does not capture as a whole is split at its submodules (``engine/split.py``): the pieces
that capture are optimised as problems of their own, the whole ModelNew is verified by the harness, and
every capture failure is reported with its cause."""

import ast
import subprocess
import sys
import threading

import pytest
import torch
import torch.nn as nn

from qimeng.kernels.engine.capture import capture
from qimeng.kernels.engine.lowering_plan import build_plan
from qimeng.kernels.engine.optimize import optimize
from qimeng.kernels.engine.policies.expert import ExpertPolicy, node_order
from qimeng.kernels.engine.split import find_pieces, record_calls
from qimeng.kernels.engine.split_emit import OptimizedPiece, emit_split
from qimeng.kernels.engine.split_problem import class_expression, piece_problem, renamed
from qimeng.kernels.engine.steps import KernelConfig, Precision, Schedule
from qimeng.kernels.harness.problem import load_problem

BRANCHY = '''
import torch
import torch.nn as nn

batch = 64
width = 256
SMALL = {"batch": 4, "width": 16}


class Model(nn.Module):
    def __init__(self, width: int):
        super(Model, self).__init__()  # names the class: the piece problem must keep it working
        self.up = nn.Sequential(nn.Linear(width, width), nn.GELU())
        self.down = nn.Sequential(nn.Linear(width, width), nn.GELU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # data-dependent control flow: torch.export cannot capture the whole forward
            return self.up(x) * 2.0
        return self.down(x) + 1.0


def get_inputs():
    return [torch.randn(batch, width)]


def get_init_inputs():
    return [width]
'''

# ModelNew against a float64 oracle computed here from its own parameters, on both branches; the
# kernels must run (the pieces' kernel forwards are counted), another shape runs PyTorch with a warning
USE = '''
import importlib.util, sys, warnings, torch
import torch.nn.functional as F
spec = importlib.util.spec_from_file_location("candidate", sys.argv[1])
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
runs = {"up": 0, "down": 0}
for i, name in enumerate(mod._QM_PIECES):
    fast = getattr(mod, f"_qm_forward_p{i}")
    def counted(self, *a, _fast=fast, _name=name):
        runs[_name] += 1
        return _fast(self, *a)
    setattr(mod, f"_qm_forward_p{i}", counted)
torch.manual_seed(0)
new = mod.ModelNew(16)
assert set(new.state_dict()) == set(mod.Model(16).state_dict())

def oracle(x):
    block, extra = (new.up, lambda t: t * 2.0) if x.sum() > 0 else (new.down, lambda t: t + 1.0)
    lin = block[0]
    return extra(F.gelu(x.double() @ lin.weight.double().T + lin.bias.double()))

with torch.no_grad():
    for sign in (1.0, -1.0):
        x = torch.randn(4, 16).abs() * sign
        out = new(x)
        err = (out.double() - oracle(x)).abs().max().item()
        assert err < 1e-4, (sign, err)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x = torch.randn(5, 16).abs()  # not the captured shape: the submodule's PyTorch forward
        assert (new(x).double() - oracle(x)).abs().max().item() < 1e-4
    assert any("no generated kernels" in str(w.message) for w in caught)
print("kernels ran", runs["up"], runs["down"])
'''

ALLOWED_IMPORTS = {"torch", "triton", "math", "os", "warnings", "types", "concurrent"}


class Inner(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Sequential(nn.Linear(8, 8), nn.ReLU())
        self.b = nn.Linear(8, 8)

    def forward(self, x):
        for _ in range(int(x.abs().sum().item()) % 2 + 1):  # .item() steers a Python loop
            x = self.a(x)
        return self.b(x)


class Outer(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = Inner()
        self.heads = nn.ModuleList([nn.Sequential(nn.Linear(8, 4), nn.Tanh())])  # never called itself
        self.unused = nn.Linear(8, 8)

    def forward(self, x, scale):
        if x.mean() > 10:  # never true on randn inputs
            x = self.unused(x)
        return self.heads[0](self.inner(x)) * scale


def test_renamed_changes_identifiers_only():
    src = ('class Model(M):\n    """Model"""\n    def f(self):  # Model\n'
           '        return super(Model, self).Model, get_inputs\n')
    out = renamed(src)
    assert out == ('class _QmProblemModel(M):\n    """Model"""\n    def f(self):  # Model\n'
                   '        return super(_QmProblemModel, self).Model, _qm_problem_get_inputs\n')


def test_top_down_pieces_and_each_failure_with_its_cause():
    model = Outer()
    calls = record_calls(model, lambda seed: [torch.randn(3, 8), 0.5])
    captured, others = find_pieces(model, calls, __name__, threading.Lock())
    assert [c.path for c in captured] == ["inner.a", "inner.b", "heads.0"]  # the largest that capture, top-down
    status = {p.path: (p.status, p.cause) for p in others}
    assert status["inner"][0] == "capture failed" and "torch.export failed" in status["inner"][1]
    assert status["unused"] == ("kept", "not called in 4 recorded forwards") and "heads" not in status
    assert calls[id(model.inner.a)].calls in (1, 2) and calls[id(model.heads[0])].args[0].shape == (3, 8)


def test_piece_problem_is_the_submodule_with_its_real_inputs(tmp_path):
    whole = tmp_path / "branchy.py"
    whole.write_text(BRANCHY)
    prob = load_problem(whole, small=True)
    child = prob.build(prob.model_cls, 0, "cpu", "train").up
    found = class_expression(type(child), prob.module.__name__)
    assert found == ("import torch.nn.modules.container as _qm_piece_module", "_qm_piece_module.Sequential")
    path = tmp_path / "piece.py"
    path.write_text(piece_problem(BRANCHY, "up", *found, True))
    piece = load_problem(path, small=True)
    model = piece.build(piece.model_cls, 0, "cpu", "train")
    assert isinstance(model, nn.Sequential) and set(model.state_dict()) == set(child.state_dict())
    assert torch.equal(model[0].weight, child[0].weight)  # the problem's constructor, same seed
    first, again, other = piece.inputs(1, "cpu"), piece.inputs(1, "cpu"), piece.inputs(2, "cpu")
    assert first[0].shape == (4, 16) and torch.equal(first[0], again[0]) and not torch.equal(first[0], other[0])
    # the recorded argument is what `up` receives: the problem's input of a draw with a positive sum
    torch.manual_seed(1)
    draws = [prob.get_inputs()[0] for _ in range(8)]
    assert any(torch.equal(first[0], x) for x in draws if x.sum() > 0)


def test_one_kernel_structure_rendered_two_ways_gets_two_names_in_one_file():
    graph = capture(nn.Sequential(nn.GELU()), [torch.randn(64, 64)])
    order = node_order(graph)
    schedule = ExpertPolicy({}).propose(graph, Precision("strict").apply(Schedule(), order), "lower")[0].schedule
    group = schedule.groups[0]
    plans = [build_plan(graph, schedule.with_config(group[0], KernelConfig(block_p=b))) for b in (64, 128)]
    name = plans[0].kernels[0].kernel.name
    assert name == plans[1].kernels[0].kernel.name  # the structural hash: configs do not change it
    pieces = [OptimizedPiece(p, graph, plan, "strict") for p, plan in (("a", plans[0]), ("b", plans[1]),
                                                                          ("c", plans[0]))]
    source = emit_split("import torch\nclass Model(torch.nn.Module):\n    pass\n", pieces, "cpu")
    tree = ast.parse(source)
    defined = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert defined.count(name) == 1 and defined.count(f"{name}_p1") == 1 and f"{name}_p2" not in defined
    assert "BLOCK_P=64" in source.split(f"def _launch_{name}(")[1].split("\ndef ")[0]
    assert "BLOCK_P=128" in source.split(f"def _launch_{name}_p1(")[1].split("\ndef ")[0]
    forwards = {n.name: ast.unparse(n) for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert f"_qm_call_{name}_p1(" in forwards["_qm_forward_p1"]
    assert f"_qm_call_{name}(" in forwards["_qm_forward_p0"] and f"_qm_call_{name}(" in forwards["_qm_forward_p2"]


@pytest.fixture(scope="module")
def split_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("split")
    problem = root / "branchy.py"
    problem.write_text(BRANCHY)
    logs: list[str] = []
    result = optimize(problem, root / "out", device="cpu", budget_s=120, log=logs.append)
    return root, result, logs


def test_split_optimises_the_submodules_and_verifies_the_whole(split_run):
    root, result, logs = split_run
    assert result.status == "optimized", logs
    assert "GuardOnDataDependentSymNode" in result.capture_error  # the whole forward's cause, reported
    assert {p["path"]: p["status"] for p in result.pieces} == {"up": "optimized", "down": "optimized"}
    assert result.kernels >= 2 and all(p["kernels"] >= 1 for p in result.pieces)
    assert result.pieces[1]["cause"].startswith("the search of `up` (same graph)")
    assert {c["piece"] for c in result.candidates} == {"up"} and any(c["kept"] for c in result.candidates)
    assert sum("as a problem of its own" in line for line in logs) == 1  # one search: both graphs are the same
    report = (root / "out" / "report.md").read_text()
    assert "Capture failed (the whole forward): torch.export failed: GuardOnDataDependentSymNode" in report
    assert "| `up` | optimized |" in report and "| `down` | optimized |" in report
    source = (root / "out" / "model_new.py").read_text()
    imported = {a.name.split(".")[0] for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Import)
                for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom)}
    assert imported <= ALLOWED_IMPORTS


def test_split_model_new_matches_a_float64_oracle_on_both_branches(split_run):
    root, _, _ = split_run
    proc = subprocess.run([sys.executable, "-c", USE, str(root / "out" / "model_new.py")], capture_output=True,
                          text=True, timeout=300, env={"TRITON_INTERPRET": "1", "PATH": "/usr/bin:/bin",
                                                       "PYTHONPATH": ":".join(sys.path)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "kernels ran 1 1" in proc.stdout  # the captured shape on each branch ran the kernels


NOTHING = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for k in x[0, :3].round().abs().long().tolist():  # a loop over values: no static graph
            out = out * (k + 1)
        return out


def get_inputs():
    return [torch.randn(4, 8)]


def get_init_inputs():
    return []
'''


def test_nothing_captures_keeps_the_reference_with_the_cause(tmp_path):
    problem = tmp_path / "nothing.py"
    problem.write_text(NOTHING)
    result = optimize(problem, tmp_path / "out", device="cpu", budget_s=30, log=lambda m: None)
    assert result.status == "capture_failed" and result.pieces == []
    assert ".tolist()" in result.capture_error
    assert result.capture_error in (tmp_path / "out" / "report.md").read_text()
    source = (tmp_path / "out" / "model_new.py").read_text()
    assert source.rstrip().endswith('class ModelNew(Model):\n    """The reference itself."""')
