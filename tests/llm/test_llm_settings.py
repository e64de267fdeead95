"""LLM settings: environment variables, the OPENAI_API_KEY fallback, flags over the environment, no key in repr."""

from __future__ import annotations

import pytest

from qimeng.settings import LLMSettings


def test_env_flags_and_key_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QIMENG_LLM_BASE_URL", "http://env:1/v1")
    monkeypatch.setenv("QIMENG_LLM_MODEL", "env-model")
    monkeypatch.setenv("QIMENG_LLM_TEMPERATURE", "0.7")
    monkeypatch.setenv("QIMENG_LLM_MAX_TOKENS", "123")
    monkeypatch.delenv("QIMENG_LLM_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fallback")
    s = LLMSettings.from_env(model="flag-model")
    assert (s.base_url, s.model, s.temperature, s.max_tokens, s.api_key) == (
        "http://env:1/v1", "flag-model", 0.7, 123, "sk-fallback")
    monkeypatch.setenv("QIMENG_LLM_API_KEY", "sk-qimeng")
    assert LLMSettings.from_env().api_key == "sk-qimeng"
    assert "sk-qimeng" not in repr(LLMSettings.from_env())


def test_a_malformed_number_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QIMENG_LLM_MAX_TOKENS", "lots")
    with pytest.raises(ValueError, match="QIMENG_LLM_MAX_TOKENS"):
        LLMSettings.from_env()
