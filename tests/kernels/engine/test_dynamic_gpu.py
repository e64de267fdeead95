"""On a CUDA GPU (the lead runs it: ``pytest -m gpu tests/kernels/engine/test_dynamic_gpu.py``, < 60 s on an
H200): the shape-generic model_new.py of ``optimize`` on a small problem with a small budget runs its
kernels at a batch other than the captured one (against float64), under torch.compile (not slower than
ModelNew itself, timed in the same process) and inside a captured CUDA graph (``dynamic_check``, one
subprocess). ``test_dynamic_check.py`` runs the same checker's CPU part under the interpreter."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from qimeng.kernels.engine.optimize import optimize

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from norm_relu_problem import norm_relu_problem  # noqa: E402

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

# 128 MB in and out at the checker's batch (2049 rows), 512 MB where it times (8191 rows, about 0.3 ms of
# GPU time): the GPU, not the host's launch path, sets both timings. At 2049 rows (78 us) torch.compile's
# wrapper around the custom op (128 us of host time per call on the H200, ModelNew alone 19 us) set the
# compiled side's.
PROBLEM = norm_relu_problem(4096, 16384)


def test_generic_kernels_at_another_batch_under_compile_and_cuda_graphs(tmp_path):
    problem = tmp_path / "norm_relu.py"
    problem.write_text(PROBLEM)
    lines: list[str] = []
    # 30 s: a judge and a worker start in about 4 s each on the H200, and 10 s verified no candidate
    result = optimize(problem, tmp_path / "out", device="cuda", budget_s=30, compare_compile=False,
                      dynamic=("batch=1024:8192",), log=lines.append)  # 4 buckets, checks up to 8191 rows
    assert result.status == "optimized", "\n".join(lines[-25:])
    report = (tmp_path / "out" / "report.md").read_text()
    assert "dynamic batch" in report, report
    proc = subprocess.run([sys.executable, str(HERE / "dynamic_check.py"), str(tmp_path / "out" / "model_new.py"),
                           "cuda"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    for check in ("other-batch", "compile", "speed", "cuda-graph"):
        assert f"ok {check}" in proc.stdout, proc.stdout
