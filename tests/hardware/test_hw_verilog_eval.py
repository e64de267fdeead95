import json
import sqlite3

from typer.testing import CliRunner

from qimeng.cli import app
from qimeng.hardware.store import SCHEMA_VERSION, HardwareStore
from qimeng.hardware.verilog_eval import find_problems, run_verilog_eval

from pathlib import Path

DATA = Path(__file__).parent / "data"

PROBLEMS, SAMPLES = DATA / "verilog_eval" / "problems", DATA / "verilog_eval" / "samples"


def test_fixture_layout_is_verilog_eval_v2():
    problems = find_problems(PROBLEMS)
    assert [p.name for p in problems] == ["Prob001_zero", "Prob002_mux2to1", "Prob003_dff8r"]
    for p in problems:
        for suffix in ("_prompt.txt", "_ifc.txt", "_ref.sv", "_test.sv"):
            assert (PROBLEMS / f"{p.name}{suffix}").is_file()


def test_harness_statuses_and_pass_at_k():
    report = run_verilog_eval(PROBLEMS, SAMPLES, timeout_s=3.0)
    status = {p.problem: [s.status for s in p.samples] for p in report.problems}
    assert status == {
        "Prob001_zero": ["ok", "incorrect"],
        "Prob002_mux2to1": ["ok", "incorrect", "compile_error", "ok", "ok"],
        "Prob003_dff8r": ["ok", "incorrect", "timeout"],
    }
    mux = report.problems[1]
    assert (mux.n, mux.c, mux.pass_at["1"], mux.pass_at["5"], mux.pass_at["10"]) == (5, 3, 0.6, 1.0, None)
    assert "syntax error" in mux.samples[2].reason
    assert report.problems[1].samples[1].mismatches > 0
    assert abs(report.pass_at["1"] - (0.5 + 0.6 + 1 / 3) / 3) < 1e-9


def test_cli_stores_the_run(tmp_path):
    result = CliRunner().invoke(app, ["hw", "verilog-eval", str(PROBLEMS), str(SAMPLES), "--timeout", "3", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    runs = HardwareStore().eval_runs()
    assert [r["id"] for r in runs] == [report["run_id"]] and runs[0]["samples"] == 10
    db = sqlite3.connect(tmp_path / "store.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT version FROM hw_schema_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("SELECT COUNT(*) FROM hw_eval_samples WHERE status = 'ok'").fetchone()[0] == 5


def test_cli_bad_problems_dir(tmp_path):
    result = CliRunner().invoke(app, ["hw", "verilog-eval", str(tmp_path), str(SAMPLES)])
    assert result.exit_code == 2 and "no VerilogEval problems" in result.output
