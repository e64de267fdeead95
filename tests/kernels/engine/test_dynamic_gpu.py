"""On a CUDA GPU: the shape-generic model_new.py of ``optimize`` runs its kernels at a batch size other
than the captured one (against float64), under torch.compile (not slower than ModelNew itself) and
inside a captured CUDA graph."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from qimeng.kernels.engine.optimize import optimize

ROOT = Path(__file__).resolve().parents[3]

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

USE = '''
import importlib.util, sys, warnings, torch
spec = importlib.util.spec_from_file_location("candidate", sys.argv[1])
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
sys.path.insert(0, sys.argv[2]); problem = importlib.import_module(sys.argv[3])
init = problem.get_init_inputs()
torch.manual_seed(0); ref = mod.Model(*init).cuda().double()
new = mod.ModelNew(*init).cuda(); new.load_state_dict({k: v.float() for k, v in ref.state_dict().items()})
x = problem.get_inputs()[0]
rows = x.shape[0] // 2 + 1  # not the captured batch, odd
x = torch.randn(rows, *x.shape[1:], device="cuda")
expected = ref(x.double())
with torch.no_grad():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert torch.allclose(new(x).double(), expected, atol=1e-4, rtol=1e-4)
    assert mod._qm_guard((x,)) and not [w for w in caught if "no generated kernels" in str(w.message)]
    compiled = torch.compile(new)
    assert torch.allclose(compiled(x).double(), expected, atol=1e-4, rtol=1e-4)

    def ms(fn, n=200):
        for _ in range(20):
            fn(x)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        best = float("inf")
        for _ in range(5):
            torch.cuda.synchronize(); start.record()
            for _ in range(n):
                fn(x)
            end.record(); torch.cuda.synchronize(); best = min(best, start.elapsed_time(end) / n)
        return best

    eager_ms, compiled_ms = ms(new), ms(compiled)
    print(f"ModelNew {eager_ms:.4f} ms, torch.compile(ModelNew) {compiled_ms:.4f} ms")
    assert compiled_ms <= eager_ms * 1.05 + 0.002
    static_x = x.clone()
    new(static_x); torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = new(static_x)
    other = torch.randn_like(static_x)
    static_x.copy_(other); graph.replay(); torch.cuda.synchronize()
    assert torch.allclose(static_out.double(), ref(other.double()), atol=1e-4, rtol=1e-4)
print("ok")
'''


def test_generic_kernels_at_another_batch_under_compile_and_cuda_graphs(tmp_path):
    problem = ROOT / "problems" / "norm" / "01_layer_norm.py"
    result = optimize(problem, tmp_path / "out", device="cuda", log=lambda m: None)
    assert result.status == "optimized", result.first_failure
    report = (tmp_path / "out" / "report.md").read_text()
    assert "dynamic batch" in report, report
    proc = subprocess.run([sys.executable, "-c", USE, str(tmp_path / "out" / "model_new.py"), str(problem.parent),
                           problem.stem], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ok" in proc.stdout
