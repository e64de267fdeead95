"""The LLM client against a real local HTTP server: retries on 429 / 5xx, timeouts, an unreachable server,
bounded concurrency, token counts, the response cache and --llm-replay."""

from __future__ import annotations

import socket
import sqlite3
import time
from pathlib import Path

from fake_openai_server import FakeOpenAIServer, words

from qimeng.llm.cache import ResponseCache
from qimeng.llm.client import Completion, LLMClient, LLMError
from qimeng.settings import LLMSettings

ASK = [{"role": "user", "content": "say hello please"}]


def settings(url: str, **kw) -> LLMSettings:
    return LLMSettings(**{"base_url": url, "model": "fake-model", "api_key": "sk-test-secret", "backoff_s": 0.01,
                          "timeout_s": 5.0, **kw})


def test_429_then_success_is_retried_and_tokens_are_counted() -> None:
    with FakeOpenAIServer([("status", 429), "hello there"]) as server:
        client = LLMClient(settings(server.url))
        answer = client.complete(ASK, seed=7)
    assert isinstance(answer, Completion) and answer.text == "hello there" and not answer.cached
    assert len(server.requests) == 2 and client.usage.requests == 2 and client.usage.retries == 1
    assert server.requests[1]["seed"] == 7 and server.requests[1]["model"] == "fake-model"
    assert server.headers[1]["authorization"] == "Bearer sk-test-secret"
    assert (client.usage.prompt_tokens, client.usage.completion_tokens) == (words("say hello please"), 2)


def test_5xx_until_retries_run_out_is_a_server_error_value() -> None:
    with FakeOpenAIServer([("status", 503)] * 3) as server:
        answer = LLMClient(settings(server.url, retries=2)).complete(ASK)
    assert isinstance(answer, LLMError) and answer.kind == "server_error" and not answer.fatal
    assert "503" in answer.message and len(server.requests) == 3


def test_a_slow_server_is_a_timeout_value() -> None:
    with FakeOpenAIServer([("sleep", 3.0)]) as server:
        started = time.monotonic()
        answer = LLMClient(settings(server.url, timeout_s=0.5)).complete(ASK)
        elapsed = time.monotonic() - started
    assert isinstance(answer, LLMError) and answer.kind == "timeout" and elapsed < 2.5


def test_an_unreachable_server_is_one_fatal_line() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    answer = LLMClient(settings(f"http://127.0.0.1:{port}/v1")).complete(ASK)
    assert isinstance(answer, LLMError) and answer.kind == "unreachable" and answer.fatal
    assert f"127.0.0.1:{port}" in answer.message and "\n" not in answer.message


def test_concurrency_is_bounded() -> None:
    with FakeOpenAIServer([("sleep", 0.3)] * 6) as server:
        client = LLMClient(settings(server.url, concurrency=2))
        answers = client.complete_many([ASK] * 6, seeds=list(range(6)))
    assert all(isinstance(a, Completion) and a.text == "late" for a in answers)
    assert server.max_in_flight == 2


def test_a_second_identical_request_is_answered_by_the_cache(tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    with FakeOpenAIServer(["cached answer"]) as server:
        client = LLMClient(settings(server.url, retries=0), ResponseCache(store))
        first, second = client.complete(ASK, seed=1), client.complete(ASK, seed=1)
        other_seed = client.complete(ASK, seed=2)  # another key: goes to the server (which has no answer left)
    assert isinstance(second, Completion) and second.cached and second.text == first.text == "cached answer"
    assert len(server.requests) == 2 and client.usage.cache_hits == 1
    assert isinstance(other_seed, LLMError) and other_seed.kind == "server_error"
    assert b"sk-test-secret" not in store.read_bytes()
    tables = {r[0] for r in sqlite3.connect(store).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "llm_responses" in tables and all(t.startswith("llm_") for t in tables)


def test_replay_answers_from_the_cache_alone_and_a_miss_is_a_clear_error(tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    with FakeOpenAIServer(["recorded"]) as server:
        LLMClient(settings(server.url), ResponseCache(store)).complete(ASK)
    replay = LLMClient(settings(""), ResponseCache(store), replay=True)  # no server at all
    hit = replay.complete(ASK)
    miss = replay.complete([{"role": "user", "content": "something never asked"}])
    assert isinstance(hit, Completion) and hit.text == "recorded" and hit.cached
    assert isinstance(miss, LLMError) and miss.kind == "replay_miss" and "--llm-replay" in miss.message
    assert replay.usage.requests == 0


def test_without_a_server_configured_nothing_is_sent() -> None:
    answer = LLMClient(LLMSettings()).complete(ASK)
    assert isinstance(answer, LLMError) and answer.kind == "not_configured" and "--llm-url" in answer.message
