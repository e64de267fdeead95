"""`qimeng generate` stores one evaluation per sample in the kernels store, so that `qimeng report RUN` gives
pass@k and fast_p from the same tables as bench."""

from __future__ import annotations

from pathlib import Path

from fake_openai_server import FakeOpenAIServer
from test_generate import _env, CORRECT, PROBLEM, fenced, run  # noqa: F401 (_env: the store and key, autouse)

from qimeng.kernels.bench.metrics import compute_metrics
from qimeng.kernels.bench.report import report_command
from qimeng.kernels.store import Store


def test_each_sample_final_answer_is_an_evaluation_and_report_gives_pass_at_1(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("QIMENG_LLM_CONCURRENCY", "1")  # sample 0 asks first: the script's order
    with FakeOpenAIServer([fenced(CORRECT), "I would use torch.relu."]) as server:
        code, output = run(tmp_path / "out", "--llm-url", server.url, "--samples", "2", "--debug-rounds", "0",
                           "--run", "gen-relu", "--timing-trials", "0")  # untimed: no timing flag
    assert code == 0, output
    assert len(server.requests) == 2
    assert "stored in the kernels store as run `gen-relu`" in (tmp_path / "out" / "report.md").read_text()
    with Store(tmp_path / "store.db") as store:
        records = store.evaluations("gen-relu")
        config = store.run_config("gen-relu")
        stored = store.candidate(records[0].result.candidate_hash) if records[0].result.candidate_hash else None
    assert [(r.problem, r.candidate, r.result.status.value) for r in records] == [
        (PROBLEM.stem, "sample0", "ok"), (PROBLEM.stem, "sample1", "rejected")]
    assert "no ```python block" in records[1].result.reason
    assert config["model"] == "fake" and config["samples"] == 2
    assert stored is None or stored[0] == CORRECT
    metrics = compute_metrics(records)
    assert metrics.pass_at_k == {1: 0.5}  # one problem, n = 2 samples, c = 1 correct: 1 - C(1,1)/C(2,1)
    assert report_command("gen-relu", tmp_path / "report") == 0
    summary = (tmp_path / "report" / "report.md").read_text()
    assert "pass@1 (unbiased, over problems) | 50.0%" in summary
