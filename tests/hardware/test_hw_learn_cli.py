"""`qimeng hw learn` from the command line: an oracle that raises is bad input (exit 2, one line naming the
oracle); the command imports neither torch nor triton."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from qimeng.cli import app


def test_an_oracle_that_raises_exits_two_in_one_line(tmp_path):
    oracle = tmp_path / "oracle.py"
    oracle.write_text("def f(x):\n    raise RuntimeError('oracle exploded')\n")
    result = CliRunner().invoke(app, ["hw", "learn", f"{oracle}:f", "--inputs", "3", "--outputs", "1",
                                      "--out", str(tmp_path / "learned.v"), "--no-cells"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == f"error: oracle {oracle}:f raised RuntimeError: oracle exploded"
    assert "Traceback" not in result.output


def test_a_working_oracle_still_learns(tmp_path):
    oracle = tmp_path / "oracle.py"
    oracle.write_text("def f(x):\n    return (x[:, :1] & x[:, 1:2]) | x[:, 2:3]\n")
    result = CliRunner().invoke(app, ["hw", "learn", f"{oracle}:f", "--inputs", "3", "--outputs", "1",
                                      "--out", str(tmp_path / "learned.v"), "--no-cells"])
    assert result.exit_code == 0, result.output
    assert "success" in result.stdout


def test_hw_learn_imports_no_torch_triton_or_kernels(tmp_path):
    # torch alone takes about 1 s to import: the hardware commands must never load it
    oracle = tmp_path / "oracle.py"
    oracle.write_text("def f(x):\n    return (x[:, :1] & x[:, 1:2]) | x[:, 2:3]\n")
    script = (
        "import sys\nfrom qimeng.cli import app\n"
        f"try:\n    app(['hw', 'learn', {f'{oracle}:f'!r}, '--inputs', '3', '--outputs', '1', '--out', {str(tmp_path / 'c.v')!r}])\n"
        "except SystemExit as exc:\n    code = exc.code\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('torch', 'triton') or m.startswith('qimeng.kernels')]\n"
        "print('RESULT', code, sorted(heavy))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert run.stdout.strip().splitlines()[-1] == "RESULT 0 []", run.stdout + run.stderr
    assert "Yosys cells" in run.stdout and "0 mismatches" in run.stdout  # the whole command ran, cells counted
