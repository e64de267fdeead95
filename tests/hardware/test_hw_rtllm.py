import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qimeng.cli import app
from qimeng.hardware.rtllm import RtllmProtocol, find_designs, reference_verdict, run_rtllm

DATA = Path(__file__).parent / "data" / "rtllm"
DESIGNS, SAMPLES = DATA / "designs", DATA / "samples"

# What each fixture sample is, judged by hand (the comment at the top of each file says why).
EXPECTED = {
    "adder_4bit": ["ok", "incorrect", "compile_error", "incorrect", "runtime_error", "rejected"],  # t1..t6
    "counter_mod10": ["ok", "incorrect", "timeout"],  # t1..t3
    "rise_detect": ["ok", "incorrect"],  # t1, t2
}


def test_fixture_layout_is_rtllm_v1_1():
    designs = find_designs(DESIGNS)
    assert [d.name for d in designs] == ["adder_4bit", "counter_mod10", "rise_detect"]
    for d in designs:
        assert (d.folder / "design_description.txt").is_file()
        assert d.reference.name == f"verified_{d.name}.v" and d.testbench.name == "testbench.v"


def test_references_pass_their_testbenches():
    for design in find_designs(DESIGNS):
        lines, why = reference_verdict(design, 30.0)
        assert lines == ["=========== Your Design Passed ==========="], why


def test_statuses_and_pass_rates():
    report = run_rtllm(DESIGNS, SAMPLES, timeout_s=3.0)
    assert {p.problem: [s.status for s in p.samples] for p in report.problems} == EXPECTED
    adder = report.problems[0]
    assert (adder.n, adder.c, adder.syntax_c) == (6, 1, 5)
    assert adder.pass_at["1"] == pytest.approx(1 / 6) and adder.pass_at["5"] == pytest.approx(1 - 1 / 6)  # 1 - C(5,5)/C(6,5)
    assert report.pass_at["1"] == pytest.approx((1 / 6 + 1 / 3 + 1 / 2) / 3)
    assert report.syntax_pass_at["1"] == pytest.approx((5 / 6 + 1 + 1) / 3)
    assert report.benchmark == "rtllm" and report.missing == []


def test_rtllm_protocol_passes_the_tricks():
    # RTLLM's own check passes the sample that prints the pass line (t4) and the one wired to the testbench (t6)
    report = run_rtllm(DESIGNS, SAMPLES, timeout_s=3.0, protocol=RtllmProtocol.RTLLM)
    adder = report.problems[0]
    assert [s.status for s in adder.samples] == ["ok", "incorrect", "compile_error", "ok", "incorrect", "ok"]


def test_missing_designs_count_as_failed(tmp_path):
    samples = tmp_path / "samples"
    (samples / "t1").mkdir(parents=True)
    (samples / "t1" / "adder_4bit.v").write_text((SAMPLES / "t1" / "adder_4bit.v").read_text())
    report = run_rtllm(DESIGNS, samples, timeout_s=3.0)
    assert report.missing == ["counter_mod10", "rise_detect"] and report.pass_at["1"] == pytest.approx(1 / 3)


def test_cli_stores_the_run(tmp_path):
    result = CliRunner().invoke(app, ["hw", "rtllm", str(DESIGNS), str(SAMPLES), "--timeout", "3", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    db = sqlite3.connect(tmp_path / "store.db")
    assert db.execute("SELECT benchmark, protocol, samples FROM hw_eval_runs WHERE id = ?",
                      (report["run_id"],)).fetchone() == ("rtllm", "qimeng", 11)
    assert db.execute("SELECT COUNT(*) FROM hw_eval_samples WHERE compiled = 1").fetchone()[0] == 10


def test_cli_bad_input(tmp_path):
    result = CliRunner().invoke(app, ["hw", "rtllm", str(tmp_path), str(SAMPLES)])
    assert result.exit_code == 2 and "no RTLLM designs" in result.output
    result = CliRunner().invoke(app, ["hw", "rtllm", str(DESIGNS), str(SAMPLES), "--protocol", "vcs"])
    assert result.exit_code == 2 and "expected one of qimeng, rtllm" in result.output
