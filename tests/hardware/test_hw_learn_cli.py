"""`qimeng hw learn` with a Python oracle that raises: bad input (exit 2, one line naming the oracle)."""

from __future__ import annotations

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
