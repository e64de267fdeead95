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
