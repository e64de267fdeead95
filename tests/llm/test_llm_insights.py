"""Insights: kept per (task kind, target, model), duplicates merged by normalised text, most seen first."""

from __future__ import annotations

from pathlib import Path

from qimeng.llm.insights import InsightStore, lessons_text


def test_duplicates_merge_and_keys_stay_apart(tmp_path: Path) -> None:
    store = InsightStore(tmp_path / "s.db")
    store.add("kernel-generate", "cuda", "m", "Mask the tail of the last block.")
    store.add("kernel-generate", "cuda", "m", "Check boundaries.")
    store.add("kernel-generate", "cuda", "m", "  mask the TAIL of the last block  ")  # the first, again
    store.add("kernel-generate", "cpu", "m", "Check boundaries.")
    store.add("kernel-generate", "cuda", "other-model", "Check boundaries.")
    assert store.lessons("kernel-generate", "cuda", "m") == ["Mask the tail of the last block.", "Check boundaries."]
    assert [(i.target, i.model, i.seen) for i in store.all()] == [
        ("cpu", "m", 1), ("cuda", "m", 2), ("cuda", "m", 1), ("cuda", "other-model", 1)]
    assert lessons_text([]) == "" and "- Check boundaries." in lessons_text(["Check boundaries."])


def test_distill_asks_once_and_a_cached_answer_is_no_new_lesson(tmp_path: Path) -> None:
    from fake_openai_server import FakeOpenAIServer

    from qimeng.llm.cache import ResponseCache
    from qimeng.llm.client import LLMClient
    from qimeng.llm.insights import distill
    from qimeng.settings import LLMSettings

    with FakeOpenAIServer(["  Mask the tail\n of the last block.  "]) as server:
        client = LLMClient(LLMSettings(base_url=server.url, model="m", timeout_s=5.0), ResponseCache(tmp_path / "s.db"))
        first = distill(client, "write kernels", "incorrect: tail elements wrong", "mask = offs < n", seed=0)
        again = distill(client, "write kernels", "incorrect: tail elements wrong", "mask = offs < n", seed=0)
    assert first == "Mask the tail of the last block." and again is None
    asked = server.requests[0]["messages"][-1]["content"]
    assert "incorrect: tail elements wrong" in asked and "mask = offs < n" in asked and len(server.requests) == 1
