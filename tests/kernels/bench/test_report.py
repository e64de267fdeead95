"""Reports: Markdown and one standalone HTML page with embedded PNG plots; JSONL export."""

from __future__ import annotations

import base64
import json
import re

import pytest
from typer.testing import CliRunner

from qimeng.cli import app
from qimeng.kernels.store import Store
from qimeng.core.verdict import BadInput, Status
from qimeng.kernels.bench.report import PLOT_NAMES, write_report
from qimeng.kernels.result import EvalResult

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fill(store: Store) -> None:
    store.put_run("r1", {"device": "cpu", "baselines": ["eager", "compile"], "problems": ["a", "b", "c", "d|pipe"]})
    store.record_eval("r1", "a", "a", EvalResult(status=Status.OK, ref_ms=2.0, candidate_ms=1.0, speedup=2.0,
                                                 baselines_ms={"eager": 2.0, "compile": 1.5},
                                                 versions={"torch": "2.13.0"}))
    store.record_eval("r1", "b", "b/s0", EvalResult(status=Status.OK, ref_ms=1.0, candidate_ms=4.0, speedup=0.25,
                                                    baselines_ms={"eager": 1.0}))
    store.record_eval("r1", "c", "c", EvalResult(status=Status.INCORRECT,
                                                 reason="mismatch at index (0, 3): 1.0 vs <b>2.0</b>"))


@pytest.fixture()
def store(tmp_path):
    with Store(tmp_path / "q.db") as s:
        fill(s)
        yield s


def test_report_files(store, tmp_path):
    files = write_report(store, "r1", tmp_path / "rep")
    md = files.markdown.read_text()
    assert "# qimeng bench report: r1" in md
    assert "| a | 1 | a | ok | 2 | 1 | 2x | 1.5x |" in md
    assert "| d\\|pipe | 0 | – | missing |" in md  # a problem without a candidate, pipe escaped
    assert "| eager | 50.0% | 25.0% | 25.0% | 0.0% | 0.707x |" in md  # fast_0: 2/4 solved; 2.0 is not > 2
    assert "| incorrect | 1 |" in md and "torch" in md
    for name in PLOT_NAMES:
        assert f"![{name}]({name}.png)" in md
        assert files.plots[name].read_bytes().startswith(PNG_MAGIC)

    page = files.html.read_text()
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(images) == len(PLOT_NAMES)
    assert all(base64.b64decode(i).startswith(PNG_MAGIC) for i in images)
    # standalone: nothing is loaded from elsewhere; text from results is escaped
    assert not re.search(r"(src|href)=['\"](?!data:)", page)
    assert "&lt;b&gt;2.0&lt;/b&gt;" in page and "<b>2.0</b>" not in page


def test_report_of_an_empty_run(tmp_path):
    with Store(tmp_path / "q.db") as s:
        s.put_run("empty", {"problems": []})
        files = write_report(s, "empty", tmp_path / "rep")
    assert files.html.read_text().count("data:image/png;base64,") == len(PLOT_NAMES)


def test_unknown_run_is_bad_input(store, tmp_path):
    with pytest.raises(BadInput, match="no run named 'nope'.*r1"):
        write_report(store, "nope", tmp_path / "rep")


def test_report_and_export_commands(tmp_path, monkeypatch):
    monkeypatch.setenv("QIMENG_STORE", str(tmp_path / "q.db"))
    monkeypatch.setenv("QIMENG_WORK_DIR", str(tmp_path / "work"))
    with Store(tmp_path / "q.db") as s:
        fill(s)
        s.record_eval("r2", "a", "a", EvalResult(status=Status.TIMEOUT))
    runner = CliRunner()

    result = runner.invoke(app, ["report", "r1"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "work" / "reports" / "r1" / "report.html").is_file()
    assert runner.invoke(app, ["report", "nope"]).exit_code == 2

    result = runner.invoke(app, ["export", "r1", "--out", str(tmp_path / "r1.jsonl")])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "r1.jsonl").read_text().splitlines()]
    assert [(r["run"], r["problem"], r["candidate"], r["status"]) for r in rows] == [
        ("r1", "a", "a", "ok"), ("r1", "b", "b/s0", "ok"), ("r1", "c", "c", "incorrect")]
    assert rows[0]["baselines_ms"] == {"compile": 1.5, "eager": 2.0} and rows[0]["correct"] is True
    assert EvalResult.from_json(rows[0]).speedup == 2.0

    assert runner.invoke(app, ["export", "--out", str(tmp_path / "all.jsonl")]).exit_code == 0
    assert len((tmp_path / "all.jsonl").read_text().splitlines()) == 4
    assert runner.invoke(app, ["export", "nope", "--out", str(tmp_path / "x.jsonl")]).exit_code == 2


def test_flagged_samples_are_listed_apart_in_report_and_export(tmp_path, monkeypatch):
    monkeypatch.setenv("QIMENG_STORE", str(tmp_path / "q.db"))
    with Store(tmp_path / "q.db") as s:
        s.put_run("r3", {"device": "cuda", "baselines": ["eager"], "problems": ["a"]})
        s.record_eval("r3", "a", "a/fast", EvalResult(status=Status.OK, ref_ms=5.0, candidate_ms=0.1, speedup=50.0,
                                                      flags=["speedup_over_10x", "timing_unlocked"]))
        s.record_eval("r3", "a", "a/honest", EvalResult(status=Status.OK, ref_ms=1.0, candidate_ms=0.8, speedup=1.25))
        md = write_report(s, "r3", tmp_path / "rep").markdown.read_text()
    assert "## Flagged samples (not counted in any score)" in md
    assert "| a | a/fast | 50x | speedup_over_10x, timing_unlocked |" in md
    assert "| a | 2 | a/honest | ok |" in md  # the problem's best sample is the clean one
    assert "| samples timed without the GPU lock (timing_unlocked) | 1 |" in md
    assert CliRunner().invoke(app, ["export", "r3", "--out", str(tmp_path / "r3.jsonl")]).exit_code == 0
    rows = [json.loads(line) for line in (tmp_path / "r3.jsonl").read_text().splitlines()]
    assert [(r["candidate"], r["clean"], r["integrity_flags"]) for r in rows] == [
        ("a/fast", False, ["speedup_over_10x", "timing_unlocked"]), ("a/honest", True, [])]
