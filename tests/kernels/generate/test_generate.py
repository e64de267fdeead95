"""`qimeng generate` end to end against a real local OpenAI-protocol server and the real harness (cpu, SMALL):
a correct answer, a failing one fixed with the harness's verdict, an answer with no code, the cache,
--llm-replay, no LLM configured, an unreachable server, and the key in no worker env or written file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAIServer
from typer.testing import CliRunner

from qimeng.cli import app

PROBLEM = Path(__file__).resolve().parents[3] / "problems" / "activation" / "01_relu.py"
SECRET = "sk-generate-test-5f1e"
CORRECT = """import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def forward(self, x):
        return torch.relu(x)
"""
# Fails in the sandbox with a message that says which key-like variables the worker can see.
LEAKY = """import os
import torch.nn as nn


class ModelNew(nn.Module):
    def forward(self, x):
        seen = sorted(k for k, v in os.environ.items() if "KEY" in k or "sk-" in v)
        raise RuntimeError(f"planted-marker saw={seen} PATH={'PATH' in os.environ}")
"""


def fenced(code: str, prose: str = "Here it is.") -> str:
    return f"{prose}\n```python\n# draft\n```\nFinal:\n```python\n{code}```\n"


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QIMENG_STORE", str(tmp_path / "store.db"))
    monkeypatch.setenv("QIMENG_LLM_API_KEY", SECRET)
    monkeypatch.setenv("QIMENG_LLM_BACKOFF", "0.01")
    for name in ("QIMENG_LLM_BASE_URL", "QIMENG_LLM_MODEL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def run(out: Path, *flags: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["generate", str(PROBLEM), "--out", str(out), "--device", "cpu", "--small",
                                      "--timing-trials", "3", "--llm-model", "fake", *flags])
    return result.exit_code, result.output


def no_secret_under(*paths: Path) -> bool:
    files = [f for p in paths for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file()]
    return bool(files) and all(SECRET.encode() not in f.read_bytes() for f in files)


def test_correct_answer_is_verified_written_and_a_rerun_is_served_by_the_cache(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with FakeOpenAIServer([fenced(CORRECT)]) as server:
        code, output = run(out, "--llm-url", server.url)
        assert code == 0, output
        assert (out / "model_new.py").read_text() == CORRECT  # the last python block, not the draft
        assert server.headers[0]["authorization"] == f"Bearer {SECRET}"
        prompt, completion = server.sent_tokens  # the server's own counts
        assert f"tokens {prompt} in / {completion} out" in (out / "report.md").read_text()
        rerun_code, output = run(out, "--llm-url", server.url)
        assert rerun_code == 0, output
        assert len(server.requests) == 1  # the second identical run sent nothing
    report = (out / "report.md").read_text()
    assert "| 0 | 0 | ok |" in report and "cache hits 1" in report and "requests 0" in report
    assert no_secret_under(out, tmp_path / "store.db")


LESSON = "Return the result from forward; never raise from a kernel path."


def test_failing_answer_gets_the_harness_reason_back_the_fix_is_kept_and_a_lesson_learnt(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    with FakeOpenAIServer([fenced(LEAKY), fenced(CORRECT), LESSON]) as server:
        code, output = run(out, "--llm-url", server.url, "--debug-rounds", "1")
    assert code == 0, output
    assert len(server.requests) == 3  # the sample, its fix, the distillation of the lesson
    follow_up = server.requests[1]["messages"]
    assert follow_up[-2] == {"role": "assistant", "content": fenced(LEAKY)}
    verdict = follow_up[-1]["content"]
    assert "runtime_error" in verdict and "planted-marker" in verdict
    assert "saw=[]" in verdict and "PATH=True" in verdict  # the worker ran, and saw no key
    assert "planted-marker" in server.requests[2]["messages"][-1]["content"]  # distilled from that failure
    assert (out / "model_new.py").read_text() == CORRECT
    report = (out / "report.md").read_text()
    assert "| 0 | 0 | runtime_error |" in report and "| 0 | 1 | ok |" in report and LESSON in report
    assert no_secret_under(out, tmp_path / "store.db")
    listing = CliRunner().invoke(app, ["llm", "insights"])
    assert listing.exit_code == 0 and f"kernel-generate\tcpu\tfake\tseen 1\t{LESSON}" in listing.output

    with FakeOpenAIServer(["no code here", "no code here"]) as server:  # later runs: no harness run needed
        assert run(tmp_path / "later", "--llm-url", server.url, "--debug-rounds", "0")[0] == 1
        monkeypatch.setenv("QIMENG_LLM_SEED", "5")  # else the first run's cached answer to the same prompt
        assert run(tmp_path / "off", "--llm-url", server.url, "--debug-rounds", "0", "--no-insights")[0] == 1
    assert LESSON in server.requests[0]["messages"][0]["content"]
    assert LESSON not in json.dumps(server.requests[1]) and len(server.requests) == 2


def test_answer_without_code_is_told_so_and_with_no_rounds_left_nothing_is_verified(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with FakeOpenAIServer(["Just call torch.relu, no code needed."]) as server:
        code, output = run(out, "--llm-url", server.url, "--debug-rounds", "0")
    assert code == 1, output
    assert not (out / "model_new.py").exists()
    assert "| 0 | 0 | no_code |" in (out / "report.md").read_text()


def test_a_request_that_times_out_is_a_failed_sample_not_a_crash(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QIMENG_LLM_TIMEOUT", "0.5")
    with FakeOpenAIServer([("sleep", 2.0)]) as server:
        code, output = run(tmp_path / "o", "--llm-url", server.url)
    assert code == 1, output
    assert "| 0 | 0 | llm_error |" in (tmp_path / "o" / "report.md").read_text()


def test_replay_runs_from_the_cache_and_fails_clearly_on_a_miss(tmp_path: Path) -> None:
    with FakeOpenAIServer(["no code at all"]) as server:
        assert run(tmp_path / "a", "--llm-url", server.url, "--debug-rounds", "0")[0] == 1
    code, output = run(tmp_path / "b", "--llm-replay", "--debug-rounds", "0")  # the server is gone
    assert code == 1 and "| 0 | 0 | no_code |" in (tmp_path / "b" / "report.md").read_text()
    code, output = run(tmp_path / "c", "--llm-replay", "--samples", "2", "--debug-rounds", "0")  # seed 1: a miss
    assert code == 2 and "--llm-replay: no cached answer" in output


def test_without_an_llm_generate_exits_2_saying_how_to_configure_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["generate", str(PROBLEM), "--out", str(tmp_path / "o"), "--device", "cpu"])
    assert result.exit_code == 2 and "--llm-url" in result.output and "QIMENG_LLM_BASE_URL" in result.output
    assert not (tmp_path / "o").exists()


def test_an_unreachable_server_is_one_line_and_exit_2(tmp_path: Path) -> None:
    code, output = run(tmp_path / "o", "--llm-url", "http://127.0.0.1:9/v1")
    assert code == 2 and "cannot reach the LLM server at http://127.0.0.1:9/v1" in output
    assert "Traceback" not in output and output.strip().count("\n") == 0
