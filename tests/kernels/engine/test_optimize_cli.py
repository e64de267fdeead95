"""`qimeng optimize` as a user meets it: bad input exits 2 in one line with nothing left behind, the
device is checked before the capture, --budget caps the wall time, results on stdout, progress on stderr."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from qimeng.cli import app
from qimeng.kernels.engine.search_harness import eval_options

ROOT = Path(__file__).resolve().parents[3]
RAISES = '''import torch
class Model(torch.nn.Module):
    def forward(self, x):
        raise ValueError("no forward today")
def get_inputs():
    return [torch.randn(8)]
def get_init_inputs():
    return []
'''


def _optimize(tmp_path: Path, monkeypatch, problem: Path, *options: str):
    monkeypatch.setenv("QIMENG_STORE", str(tmp_path / "store" / "q.db"))
    return CliRunner().invoke(app, ["optimize", str(problem), "--out", str(tmp_path / "out"), *options])


def test_a_forward_that_raises_is_bad_input_and_leaves_nothing(tmp_path, monkeypatch):
    problem = tmp_path / "raises.py"
    problem.write_text(RAISES)
    result = _optimize(tmp_path, monkeypatch, problem, "--device", "cpu")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {problem}: the forward raised ValueError: no forward today")
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "store").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_cpu_machine_fails_before_the_capture(tmp_path, monkeypatch):
    problem = tmp_path / "raises.py"
    problem.write_text(RAISES)  # a capture would report the raising forward: the device is checked first
    result = _optimize(tmp_path, monkeypatch, problem, "--device", "cuda")
    assert result.exit_code == 2 and "no CUDA device is visible" in result.stderr
    assert "forward" not in result.output and not (tmp_path / "out").exists()


def test_the_budget_caps_the_wall_time_and_the_result_goes_to_stdout(tmp_path, monkeypatch):
    problem = ROOT / "problems" / "fused" / "01_silu_mul_add.py"
    result = _optimize(tmp_path, monkeypatch, problem, "--device", "cpu", "--budget", "0", "--no-store")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"wrote {tmp_path / 'out'}/model_new.py") and "(reference," in result.stdout
    assert "candidate(s) not tried" in result.stderr and "device: " in result.stderr
    assert "not tried" not in result.stdout
    assert "class ModelNew(Model)" in (tmp_path / "out" / "model_new.py").read_text()  # the reference


def test_on_the_cpu_candidates_are_verified_not_timed():
    options = eval_options("cpu", small=True, compare_compile=True)
    assert options.timing_trials == 0 and options.correctness_trials > 0
    assert eval_options("cuda", small=False, compare_compile=True).timing_trials > 0
