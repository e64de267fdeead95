"""The GPU test's checker (``dynamic_check``) on the CPU under the Triton interpreter: a shape-generic
model_new.py runs its kernels at another batch against float64 and under torch.compile; the speed and
CUDA graph checks say they are skipped. It fails on a file whose kernels do not run at that batch."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from qimeng.kernels.engine.dynamic_dims import propose
from qimeng.kernels.engine.optimize import capture_problem
from qimeng.kernels.engine.optimize_dynamic import generic_file
from qimeng.kernels.engine.policies.expert import ExpertPolicy
from qimeng.kernels.engine.render import render_schedule
from qimeng.kernels.engine.steps import Schedule

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from norm_relu_problem import norm_relu_problem  # noqa: E402

PROBLEM = norm_relu_problem(8, 40)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("dynamic_check")
    problem = root / "norm_relu.py"
    problem.write_text(PROBLEM)
    prob, graph = capture_problem(problem, False)
    schedule = ExpertPolicy().main_line(graph, Schedule())
    made = render_schedule(PROBLEM, prob.model_cls, graph, schedule, "cpu")
    source, _, notes, _ = generic_file(problem, PROBLEM, prob.model_cls, made.plan, schedule,
                                       propose(graph.user_args), small=False, device_type="cpu")
    assert source is not None, notes
    (root / "generic.py").write_text(source)
    (root / "static.py").write_text(made.source)
    return root


def _check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(HERE / "dynamic_check.py"), str(path), "cpu"], capture_output=True,
                          text=True, env={**os.environ, "TRITON_INTERPRET": "1"}, timeout=600)


def test_the_checker_passes_a_generic_file_under_the_interpreter(files):
    proc = _check(files / "generic.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "ok other-batch [5, 40]" in proc.stdout and "ok compile" in proc.stdout
    assert "skip speed, cuda-graph: CPU" in proc.stdout


def test_the_checker_fails_a_file_that_runs_pytorch_at_another_batch(files):
    proc = _check(files / "static.py")  # the static file: a guard miss at batch 5
    assert proc.returncode != 0 and "no generated kernel ran at another batch" in proc.stderr
