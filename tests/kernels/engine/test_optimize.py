"""End to end on the CPU: ``optimize`` verifies candidates in the sandboxed harness (Triton
interpreter), writes a self-contained model_new.py and a report, and records its steps in the store."""

import ast
import json
import os
import sqlite3
import subprocess
import sys

import pytest

from qimeng.kernels.store import Store
from qimeng.core.verdict import BadInput
from qimeng.kernels.engine.optimize import optimize

PROBLEM = '''
import torch
import torch.nn as nn

rows = 4096
cols = 4096
SMALL = {"rows": 8, "cols": 48}


class Model(nn.Module):
    def __init__(self, cols: int):
        super().__init__()
        self.norm = nn.LayerNorm(cols)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.norm(x * 2.0 + y))


def get_inputs():
    return [torch.randn(rows, cols), torch.randn(rows, cols)]


def get_init_inputs():
    return [cols]
'''

USE = '''
import importlib.util, sys, torch
sys.path.insert(0, sys.argv[2])
spec = importlib.util.spec_from_file_location("candidate", sys.argv[1])
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
torch.manual_seed(0); ref = mod.Model(48).eval()
new = mod.ModelNew(48).eval()
new.load_state_dict(ref.state_dict())  # a state_dict saved from Model loads into ModelNew
with torch.no_grad():
    for shape in ((8, 48), (3, 48), (65, 48)):  # captured, another batch (kernels), out of range (PyTorch)
        x, y = torch.randn(*shape), torch.randn(*shape)
        assert torch.allclose(ref(x, y), new(x, y), atol=1e-4, rtol=1e-4), shape
    print("guard", *(mod._qm_guard([torch.randn(n, 48), torch.randn(n, 48)]) for n in (8, 3, 65)))
x = torch.randn(8, 48, requires_grad=True)  # training: the kernels record no graph, PyTorch's path does
out = new(x, torch.randn(8, 48))
out.sum().backward()
assert out.grad_fn is not None and x.grad is not None and new.norm.weight.grad is not None
print("autograd", mod._qm_guard([x, torch.randn(8, 48)]))
'''

ALLOWED_IMPORTS = {"torch", "triton", "math", "os", "warnings", "concurrent"}


@pytest.fixture(scope="module")
def optimized(tmp_path_factory):
    root = tmp_path_factory.mktemp("optimize")
    problem = root / "layernorm_relu.py"
    problem.write_text(PROBLEM)
    store = Store(root / "store.db")
    logs: list[str] = []
    before = os.environ.get("TRITON_INTERPRET")
    result = optimize(problem, root / "out", device="cpu", budget_s=120, store=store, log=logs.append)
    assert os.environ.get("TRITON_INTERPRET") == before  # the interpreter setting does not leak
    store.close()
    return root, result, logs


def test_optimize_writes_a_verified_fused_candidate(optimized):
    root, result, logs = optimized
    assert result.status == "optimized"
    assert result.kernels == 1  # mul, add, layer norm and relu in one kernel
    assert not result.timing_meaningful
    assert any("accepted" in line for line in logs)
    source = (root / "out" / "model_new.py").read_text()
    tree = ast.parse(source)
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= ALLOWED_IMPORTS
    assert "@triton.jit" in source and "class ModelNew(Model)" in source


def test_model_new_loads_the_state_dict_runs_kernels_over_the_batch_range_and_falls_back_outside(optimized):
    root, _, _ = optimized
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run([sys.executable, "-c", USE, str(root / "out" / "model_new.py"), str(root)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "guard True True False" in proc.stdout and "autograd False" in proc.stdout


def test_report_and_store_hold_the_trajectory(optimized):
    root, _, _ = optimized
    report = (root / "out" / "report.md").read_text()
    for section in ("## Captured graph", "## Kernels", "## Step trajectory", "## Kept as PyTorch calls"):
        assert section in report
    assert "- dynamic batch in [2, 64] (captured 8" in report  # batch 1 renders other code: PyTorch there
    for batch in (8, 3, 17):  # the captured batch and two odd ones, verified by the harness
        assert f"- verified at {{'batch': {batch}}}: ok" in report
    assert "native_layer_norm" not in report and "fuse_into_reduction" in report
    db = sqlite3.connect(root / "store.db")
    steps = [json.loads(r[0]) for r in db.execute("SELECT step FROM steps")]
    assert {"lower_ops", "fuse_into_reduction"} <= {s["kind"] for s in steps}
    assert db.execute("SELECT COUNT(*) FROM candidates").fetchone()[0] >= 2


def test_capture_failure_writes_the_reference(tmp_path):
    problem = tmp_path / "branchy.py"
    problem.write_text(PROBLEM.replace("return torch.relu(self.norm(x * 2.0 + y))",
                                       "return x if x.sum() > 0 else y * 2.0"))  # norm: never called
    result = optimize(problem, tmp_path / "out", device="cpu", budget_s=10, static=True, log=lambda m: None)
    assert result.status == "capture_failed"
    assert result.capture_error and result.capture_error in (tmp_path / "out" / "report.md").read_text()
    assert "class ModelNew(Model)" in (tmp_path / "out" / "model_new.py").read_text()
    assert "Capture failed" in (tmp_path / "out" / "report.md").read_text()


def test_the_baselines_compile_beside_the_capture_and_the_first_evaluation_waits_for_them(tmp_path, monkeypatch):
    from qimeng.core.verdict import Status
    from qimeng.kernels.engine import optimize as optimize_module
    from qimeng.kernels.harness import evaluate as evaluate_module
    from qimeng.kernels.result import EvalResult

    events: list[str] = []

    class Warmer:  # records when optimize starts, waits for and stops the compile ahead
        def __init__(self, problem, options):
            events.append("start")
            self.compiling = True

        def wait(self):
            events.append("wait")
            self.compiling = False
            return "compiled ahead (recorded)"

        def close(self):
            events.append("close")
            self.compiling = False

    def capture(*args, **kwargs):
        events.append("capture")
        return real_capture(*args, **kwargs)

    def evaluate_many(problem, candidates, options, **kwargs):
        events.append("evaluate")
        return [EvalResult(Status.INCORRECT, reason="not evaluated here") for _ in candidates]

    real_capture = optimize_module.capture_problem
    monkeypatch.setattr(optimize_module, "BaselineWarmer", Warmer)
    monkeypatch.setattr(optimize_module, "capture_problem", capture)
    monkeypatch.setattr(evaluate_module, "evaluate_many", evaluate_many)
    problem = tmp_path / "layernorm_relu.py"
    problem.write_text(PROBLEM)
    logs: list[str] = []
    result = optimize(problem, tmp_path / "out", device="cpu", budget_s=30, static=True, log=logs.append)
    assert result.status == "reference" and "compiled ahead (recorded)" in logs
    assert events[:4] == ["start", "capture", "wait", "evaluate"] and events.count("wait") == 1, events
    assert events[-1] == "close", events


def test_a_shape_generic_file_slower_than_the_static_one_is_not_kept():
    from qimeng.core.verdict import Status
    from qimeng.kernels.engine.optimize import GENERIC_SLOWER, _generic_slower
    from qimeng.kernels.result import EvalResult

    static = EvalResult(Status.OK, speedup=2.0)
    assert "1.80x over eager against the static file's 2.00x" in _generic_slower(EvalResult(Status.OK, speedup=1.8), static)
    assert _generic_slower(EvalResult(Status.OK, speedup=2.0 / GENERIC_SLOWER), static) == ""  # within the noise
    assert _generic_slower(EvalResult(Status.OK, speedup=1.0, timing_meaningful=False), static) == ""  # untimed
    assert _generic_slower(None, static) == ""


GEMM_PROBLEM = '''
import torch
import torch.nn as nn

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 48)
    def forward(self, x):
        return torch.relu(self.fc(x)) * 2.0

def get_inputs():
    return [torch.randn(32, 64)]

def get_init_inputs():
    return []
'''


def test_bf16_policy_casts_gemm_operands_and_verifies_at_its_stated_tolerance(tmp_path):
    problem = tmp_path / "linear_relu.py"
    problem.write_text(GEMM_PROBLEM)
    logs: list[str] = []
    result = optimize(problem, tmp_path / "out", device="cpu", precision="bf16", budget_s=60, log=logs.append)
    assert result.status == "optimized", result.first_failure
    source = (tmp_path / "out" / "model_new.py").read_text()
    # the vendor call with bf16 operands was verified, then the GEMM template in bf16 (the main line)
    assert any("[lower]" in line and "-> accepted" in line for line in logs)
    assert "_qm_mm_run(" in source and ".to(tl.bfloat16)" in source and "torch.ops.aten.addmm" not in source
    report = (tmp_path / "out" / "report.md").read_text()
    assert "verified against the float32 reference with atol=0.02, rtol=0.02" in report
    # the GEMM template is rendered at other batch sizes by the search's own render (its blocks pinned):
    # the generic file replaced the static one only after the harness verified it at three batch sizes
    assert result.dynamic == ("batch in [2, 128] (captured 32; argument 0 axis 0)",), report
    checked = [line for line in report.splitlines() if line.startswith("- verified at {'batch'")]
    assert len(checked) == 3 and all(line.endswith(": ok") for line in checked), report
    assert "qm_batch = _qm_a0.shape[0]" in source and "torch.empty(((qm_batch), 48)" in source


def test_unknown_precision_is_bad_input(tmp_path):
    problem = tmp_path / "linear_relu.py"
    problem.write_text(GEMM_PROBLEM)
    with pytest.raises(BadInput, match="unknown precision 'fp8'"):
        optimize(problem, tmp_path / "out", device="cpu", precision="fp8", log=lambda m: None)


BN_PROBLEM = '''
import torch
import torch.nn as nn

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(16)
    def forward(self, x):
        return torch.relu(self.bn(x)) * 2.0

def get_inputs():
    return [torch.randn(8, 16) * 3 + 1]

def get_init_inputs():
    return []
'''

TRAIN_USE = '''
import importlib.util, sys, torch
spec = importlib.util.spec_from_file_location("candidate", sys.argv[1])
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
torch.manual_seed(0); ref = mod.Model()
torch.manual_seed(0); new = mod.ModelNew()
x = torch.randn(8, 16) * 3 + 1
with torch.no_grad():  # training mode, as a module is built: batch statistics, running stats updated
    assert torch.allclose(ref(x), new(x), atol=1e-4, rtol=1e-4)  # the generated kernels: batch statistics
    assert torch.allclose(ref.bn.running_mean, new.bn.running_mean, atol=1e-6)  # running stats updated as PyTorch does
    assert torch.allclose(ref.bn.running_var, new.bn.running_var, atol=1e-6)
    ref.eval(); new.eval()  # eval mode: PyTorch's path, with the running statistics
    assert torch.allclose(ref(x), new(x), atol=1e-4, rtol=1e-4)
print("train and eval match")
'''


def test_a_model_that_trains_differently_runs_pytorch_in_the_mode_it_was_not_captured_in(tmp_path):
    problem = tmp_path / "bn_relu.py"
    problem.write_text(BN_PROBLEM)
    result = optimize(problem, tmp_path / "out", device="cpu", budget_s=60, log=lambda m: None)
    assert result.status == "optimized", result.first_failure
    source = (tmp_path / "out" / "model_new.py").read_text()
    assert "if self.training is not True or not _qm_guard(_qm_args):" in source  # captured as built: training
    report = (tmp_path / "out" / "report.md").read_text()
    assert "in eval mode this model computes something else" in report
    # batch statistics divide by the batch size and correct the running variance by n / (n - 1): both are
    # code of the batch, and the harness verified the file at two more batch sizes in training mode
    assert "- dynamic batch in [" in report and "qm_batch = _qm_a0.shape[0]" in source, report
    assert "((16 * qm_batch) / ((16 * qm_batch) - 1.0))" not in source  # BatchNorm1d: the count is the batch itself
    assert "((qm_batch) / ((qm_batch) - 1.0))" in source
    checked = [line for line in report.splitlines() if line.startswith("- verified at ")]
    assert len(checked) >= 3 and all(line.endswith(": ok") for line in checked), report
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run([sys.executable, "-c", TRAIN_USE, str(tmp_path / "out" / "model_new.py")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0 and "train and eval match" in proc.stdout, proc.stderr[-2000:]
