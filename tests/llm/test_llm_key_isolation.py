"""The API key never reaches a sandboxed worker (the env allowlist drops it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qimeng.core.sandbox import run_job

JOBS_DIR = str(Path(__file__).resolve().parents[1] / "core")  # tests/core/sandbox_jobs.py


def test_a_worker_started_by_run_job_sees_no_llm_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QIMENG_LLM_API_KEY", "sk-qimeng-planted")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-planted")
    result = run_job("sandbox_jobs", {"action": "env"}, timeout_s=30.0, extra_env={"PYTHONPATH": JOBS_DIR})
    env = result.payload["env"]
    assert "PATH" in env  # the worker did report its environment
    assert "QIMENG_LLM_API_KEY" not in env and "OPENAI_API_KEY" not in env
    assert "planted" not in repr(env)
