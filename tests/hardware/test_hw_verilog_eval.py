import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qimeng.cli import app
from qimeng.hardware.store import SCHEMA_VERSION, HardwareStore
from qimeng.hardware.verilog_eval import (Protocol, evaluate_sample, find_problems, reference_sample_count,
                                          run_verilog_eval)
from qimeng.hardware.verilog_eval_protocol import classify_log

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


# A wrong 8-bit register (always 3) for Prob003_dff8r, with each way of ending the simulation early.
_WRONG_DFF = (
    "`timescale 1 ps/1 ps\n"
    "module TopModule(input clk, input reset, input [7:0] d, output reg [7:0] q);\n"
    "  always @(posedge clk) q <= 8'd3;\n  {trick}\nendmodule\n"
)
_TRICKS = {
    "finish": "initial #1 $finish;",
    "fatal": 'initial #1 $fatal(1, "bye");',
    "stop": "initial #1 $stop;",  # `vvp -n` turns $stop into a finish
    "forged_line": 'final $display("Mismatches: 0 in 402 samples");',
}


def _problem(name: str):
    return next(p for p in find_problems(PROBLEMS) if p.name == name)


def test_reference_sample_count_is_the_testbenchs_own():
    # Prob003's clock toggles every 5 ps; the stimulus waits for the first rising and falling edge, then
    # 200 falling edges and 1 ps: samples on both edges from 5 ps to 2010 ps, 201 rising + 201 falling.
    assert reference_sample_count(_problem("Prob003_dff8r"), 30.0) == (402, "")


def test_wrong_sample_without_trick_is_incorrect(tmp_path):
    sample = tmp_path / "plain.sv"
    sample.write_text(_WRONG_DFF.format(trick=""))
    result = evaluate_sample(_problem("Prob003_dff8r"), sample, 10.0)
    assert result.status == "incorrect" and result.mismatches > 0


@pytest.mark.parametrize("trick", sorted(_TRICKS))
def test_samples_that_end_the_simulation_early_fail(tmp_path, trick):
    sample = tmp_path / f"{trick}.sv"
    sample.write_text(_WRONG_DFF.format(trick=_TRICKS[trick]))
    result = evaluate_sample(_problem("Prob003_dff8r"), sample, 10.0)
    assert result.status == "runtime_error", result.reason


@pytest.mark.parametrize("body", [
    "RefModule r(.clk(clk), .reset(reset), .d(d), .q(q));",  # the reference does the work
    "assign q = 8'd3; always @(clk) #1 tb.stats1.errors = 0;",  # resets the testbench's error count
])
def test_samples_that_use_the_reference_or_the_testbench_are_rejected(tmp_path, body):
    sample = tmp_path / "cheat.sv"
    sample.write_text(f"`timescale 1 ps/1 ps\nmodule TopModule(input clk, input reset, input [7:0] d, output [7:0] q);\n"
                      f"  {body}\nendmodule\n")
    result = evaluate_sample(_problem("Prob003_dff8r"), sample, 10.0)
    assert result.status == "rejected", result.reason
    assert evaluate_sample(_problem("Prob003_dff8r"), sample, 10.0, Protocol.VERILOG_EVAL).code == "."  # it fools the benchmark


@pytest.mark.parametrize("trick,code", [("finish", "."), ("fatal", "."), ("forged_line", "."), ("stop", "R")])
def test_verilog_eval_protocol_scores_as_the_benchmark_does(tmp_path, trick, code):
    # The benchmark's own analysis passes early $finish/$fatal (it reads "Mismatches: 0 in 0 samples")
    # and a forged zero line; it runs vvp without -n, so $stop (stdin at EOF) resumes and mismatches show.
    sample = tmp_path / f"{trick}.sv"
    sample.write_text(_WRONG_DFF.format(trick=_TRICKS[trick]))
    result = evaluate_sample(_problem("Prob003_dff8r"), sample, 10.0, Protocol.VERILOG_EVAL)
    assert result.code == code, result.reason
    assert (result.status == "ok") == (code == ".")


def test_verilog_eval_protocol_on_the_fixtures():
    report = run_verilog_eval(PROBLEMS, SAMPLES, timeout_s=3.0, protocol=Protocol.VERILOG_EVAL)
    codes = {p.problem: [s.code for s in p.samples] for p in report.problems}
    # sample02 of Prob003 has mismatches and an async reset ("posedge reset"): the benchmark's 'r'
    assert codes == {"Prob001_zero": [".", "R"], "Prob002_mux2to1": [".", "R", "S", ".", "."],
                     "Prob003_dff8r": [".", "r", "T"]}
    assert report.protocol == "verilog-eval"


@pytest.mark.parametrize("log,code", [
    ("x.sv:3: syntax error\nMismatches: 0 in 10 samples", "S"),
    ("x.sv:3: warning: always_comb process has no sensitivities.\nMismatches: 0 in 10 samples", "n"),
    ("x.sv:3: error: Unable to bind wire/reg/memory `clk' in `tb'\n", "c"),
    ("x.sv:3: error: Unable to bind wire/reg/memory `q' in `tb'\n", "p"),
    ("x.sv:3: error: something else\nMismatches: 0 in 10 samples", "C"),
    ("Mismatches: 0 in 10 samples\nTIMEOUT", "T"),
    ("Mismatches: 4 in 10 samples\nMismatches: 0 in 10 samples", "."),
    ("Mismatches: 4 in 10 samples", "R"),
    ("x.sv:3: warning: some other warning\nMismatches: 0 in 10 samples", "."),
])
def test_classify_log_like_sv_iv_analyze(log, code):
    assert classify_log(log, "module TopModule; endmodule")[0] == code


def test_missing_samples_count_as_failed(tmp_path):
    samples = tmp_path / "samples"
    shutil.copytree(SAMPLES / "Prob001_zero", samples / "Prob001_zero")
    report = run_verilog_eval(PROBLEMS, samples, timeout_s=3.0)
    assert report.missing == ["Prob002_mux2to1", "Prob003_dff8r"]
    assert report.pass_at["1"] == pytest.approx(0.5 / 3)  # 1 of 2 samples of Prob001, two problems at 0
    assert any("2 of 3 problems have no sample" in w for w in report.warnings)
    result = CliRunner().invoke(app, ["hw", "verilog-eval", str(PROBLEMS), str(samples), "--timeout", "3"])
    assert result.exit_code == 0 and "missing" in result.output and "2 of 3 problems have no sample" in result.output


_SCHEMA_V1 = """
CREATE TABLE hw_schema_version (version INTEGER NOT NULL);
INSERT INTO hw_schema_version VALUES (1);
CREATE TABLE hw_eval_runs (
    id INTEGER PRIMARY KEY, created REAL NOT NULL, problems_dir TEXT NOT NULL, samples_dir TEXT NOT NULL,
    problems INTEGER NOT NULL, samples INTEGER NOT NULL, pass_at_1 REAL, pass_at_5 REAL, pass_at_10 REAL,
    tools TEXT NOT NULL, host TEXT NOT NULL);
CREATE TABLE hw_eval_problems (
    run_id INTEGER NOT NULL REFERENCES hw_eval_runs(id), problem TEXT NOT NULL, n INTEGER NOT NULL,
    c INTEGER NOT NULL, pass_at_1 REAL, pass_at_5 REAL, pass_at_10 REAL, PRIMARY KEY (run_id, problem));
CREATE TABLE hw_eval_samples (
    run_id INTEGER NOT NULL REFERENCES hw_eval_runs(id), problem TEXT NOT NULL, sample TEXT NOT NULL,
    sha256 TEXT NOT NULL, status TEXT NOT NULL, mismatches INTEGER, total INTEGER, reason TEXT NOT NULL,
    seconds REAL NOT NULL, PRIMARY KEY (run_id, sample));
INSERT INTO hw_eval_runs VALUES (1, 0.0, 'p', 's', 1, 1, 1.0, NULL, NULL, '{}', 'h');
INSERT INTO hw_eval_problems VALUES (1, 'Prob001_zero', 1, 1, 1.0, NULL, NULL);
INSERT INTO hw_eval_samples VALUES (1, 'Prob001_zero', 'a.sv', 'x', 'ok', 0, 39, '', 0.1);
"""


def test_store_migrates_version_1_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.db"
    sqlite3.connect(path).executescript(_SCHEMA_V1)
    store = HardwareStore(path)
    (old,) = store.eval_runs()
    assert old["pass_at_1"] == 1.0 and old["benchmark"] == "verilog-eval" and old["protocol"] == "qimeng"
    report = run_verilog_eval(PROBLEMS, SAMPLES, timeout_s=3.0)
    assert store.save_eval_run(report) == 2
    store.close()
    db = sqlite3.connect(path)
    assert db.execute("SELECT version FROM hw_schema_version").fetchall() == [(3,)]
    assert db.execute("SELECT COUNT(*) FROM hw_eval_samples").fetchone()[0] == 11
    assert db.execute("SELECT DISTINCT simulator FROM hw_eval_samples WHERE run_id = 2").fetchall() == [("icarus",)]
    assert db.execute("SELECT syntax_c FROM hw_eval_problems WHERE run_id = 2 AND problem = 'Prob002_mux2to1'").fetchone() == (4,)


def test_a_sample_cannot_read_the_host_or_write_outside(tmp_path, monkeypatch):
    # The sample drives its output wrong (1) as soon as it could open /etc/hostname or a file outside.
    outside = Path(__file__).parent / "data" / f"escape-sample-{os.getpid()}.txt"
    sample = tmp_path / "escape.sv"
    sample.write_text(
        "module TopModule(output zero); reg leaked = 0; assign zero = leaked; integer f;\n"
        '  initial begin f = $fopen("/etc/hostname", "r"); if (f) leaked = 1;\n'
        f'  f = $fopen("{outside}", "w"); if (f) begin leaked = 1; $fdisplay(f, "escaped"); $fclose(f); end end\n'
        "endmodule\n"
    )
    try:
        result = evaluate_sample(_problem("Prob001_zero"), sample, 10.0)
        assert result.status == "ok" and not outside.exists(), result.reason
        monkeypatch.setenv("QIMENG_ISOLATION", "none")  # the same sample unisolated: it escapes
        assert evaluate_sample(_problem("Prob001_zero"), sample, 10.0).status == "incorrect" and outside.exists()
    finally:
        outside.unlink(missing_ok=True)


def test_the_report_says_how_tools_were_isolated(tmp_path, monkeypatch):
    samples = tmp_path / "samples"
    shutil.copytree(SAMPLES / "Prob001_zero", samples / "Prob001_zero")
    assert run_verilog_eval(PROBLEMS, samples, timeout_s=3.0).isolation == "bwrap"
    monkeypatch.setenv("QIMENG_ISOLATION", "none")
    report = run_verilog_eval(PROBLEMS, samples, timeout_s=3.0)
    assert report.isolation.startswith("none") and "no filesystem isolation" in report.warnings[-1]
