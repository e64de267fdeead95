"""`qimeng eval` as a user meets it: plain help, JSON errors, progress on stderr, content-keyed store rows,
the user's file named in messages, and a cost estimate that proposes --small before a CPU run that
cannot fit."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from qimeng.cli import app
from qimeng.kernels.harness.cpu_cost import EAGER_BYTES_PER_S, INTERPRETER_BYTES_PER_S, advice, estimate
from qimeng.kernels.harness.eval_cli import warn_if_too_slow
from qimeng.kernels.result import EvalOptions
from qimeng.kernels.store import Store
from qimeng.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
SILU = ROOT / "problems" / "fused" / "01_silu_mul_add.py"
SILU_TRITON = ROOT / "examples" / "candidates" / "01_silu_mul_add.py"

PROBLEM = '''import torch
class Model(torch.nn.Module):
    def forward(self, x):
        return x {op}
def get_inputs():
    return [torch.randn(16)]
def get_init_inputs():
    return []
'''
CANDIDATE = '''import torch
class ModelNew(torch.nn.Module):
    def forward(self, x):
        return x {op}
'''


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_help_shows_plain_flags():
    text = CliRunner().invoke(app, ["eval", "--help"], env={"COLUMNS": "120"}).stdout
    assert "--json " in text and "--small " in text
    assert "<bool>" not in text and "[default: auto]" in text


def test_bad_input_with_json_prints_a_json_error_and_stores_nothing(tmp_path, monkeypatch):
    store_path = tmp_path / "store" / "q.db"
    monkeypatch.setenv("QIMENG_STORE", str(store_path))
    problem = _write(tmp_path / "broken.py", "import torch\nclass Model(:\n")
    candidate = _write(tmp_path / "c.py", CANDIDATE.format(op="* 2"))
    result = CliRunner().invoke(app, ["eval", str(problem), str(candidate), "--device", "cpu", "--json"])
    assert result.exit_code == 2
    error = json.loads(result.stdout)
    assert error["status"] == "bad_input" and str(problem) in error["error"] and "syntax error" in error["error"]
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {problem}")
    assert "Traceback" not in result.output
    assert not store_path.parent.exists()


def test_rows_are_keyed_by_content_and_messages_name_the_users_file(tmp_path, monkeypatch):
    store_path = tmp_path / "q.db"
    monkeypatch.setenv("QIMENG_STORE", str(store_path))
    first = _write(tmp_path / "a" / "p.py", PROBLEM.format(op="* 2"))
    second = _write(tmp_path / "b" / "p.py", PROBLEM.format(op="+ 1"))  # same name, another problem
    good = _write(tmp_path / "a" / "c.py", CANDIDATE.format(op="* 2"))
    broken = _write(tmp_path / "b" / "c.py", "import torch\nclass ModelNew(torch.nn.Module:\n")
    options = ["--device", "cpu", "--trials", "1", "--timing-trials", "0", "--json"]
    ok = CliRunner().invoke(app, ["eval", str(first), str(good), *options])
    assert ok.exit_code == 0, ok.output
    assert "correctness trial 1 of 1" in ok.stderr and "device: cpu" in ok.stderr  # progress: stderr
    assert json.loads(ok.stdout)["status"] == "ok"  # the result: stdout
    failed = CliRunner().invoke(app, ["eval", str(second), str(broken), *options])
    assert failed.exit_code == 1
    reason = json.loads(failed.stdout)["reason"]
    assert reason.startswith(f"{broken}: syntax error") and "candidate_0" not in reason
    with Store(store_path) as store:
        rows = store.evaluations("eval")
    assert len(rows) == 2  # the second p.py did not replace the first
    assert {r.problem.split("@")[0] for r in rows} == {"p"}
    assert {r.result.status.value for r in rows} == {"ok", "compile_error"}
    assert all(r.problem.split("@")[1] == r.result.problem_hash[:16] for r in rows)


def test_a_full_size_interpreted_run_on_the_cpu_proposes_small_first(capsys):
    options = EvalOptions(device="cpu", small=False)
    warn_if_too_slow(SILU, SILU_TRITON, options, Settings.from_env())  # sizes from the sandboxed meta job
    moved = 3 * 32768 * 8192 * 4  # x, y and the output, float32, counted by hand from the problem
    line = capsys.readouterr().err
    assert f"estimated at ~{moved / INTERPRETER_BYTES_PER_S:.0f} s" in line and "rerun with --small" in line
    small = 3 * 64 * 256 * 4  # the SMALL sizes fit the timeout
    assert advice(estimate(small, 2 * 64 * 256 * 4, options, interpreted=True), options) is None


def test_the_estimate_counts_every_call_of_both_sides():
    options = EvalOptions(device="cpu", correctness_trials=3, timing_trials=100, warmup=2)
    cost = estimate(10**7, 0, options, interpreted=True)
    calls = (3 + 2) + (2 + 5)  # first call, trials, recheck; warm-up and the rounds a spent budget keeps
    assert abs(cost.call_s - 1.0) < 1e-9
    assert abs(cost.total_s - calls * (1.0 + 10**7 / EAGER_BYTES_PER_S)) < 1e-9
    assert estimate(10**7, 0, options, interpreted=False).call_s == 10**7 / EAGER_BYTES_PER_S


def test_eval_bench_and_optimize_share_the_auto_default(tmp_path, monkeypatch):
    for command in ("eval", "bench", "optimize"):
        text = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"}).stdout
        assert "--device <str>" in text and "[default: auto]" in " ".join(text.split()), command
    monkeypatch.setenv("QIMENG_STORE", str(tmp_path / "q.db"))
    problem = _write(tmp_path / "broken.py", "import torch\nclass Model(:\n")
    result = CliRunner().invoke(app, ["eval", str(problem), str(problem)])  # no --device: auto, said first
    assert result.exit_code == 2
    first, last = result.stderr.strip().splitlines()[0], result.stderr.strip().splitlines()[-1]
    assert first.startswith("device: ") and "(auto: " in first and last.startswith(f"error: {problem}")
