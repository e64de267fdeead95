"""One command's LLM side, from its flags: the settings, the client, the response cache and the insight store.

``qimeng generate`` and ``qimeng optimize`` take the same flags (--llm-url, --llm-model, --llm-replay,
--no-insights, --no-store) and read the same variables (``LLMSettings``); this is where they become objects.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from qimeng.llm.cache import ResponseCache
from qimeng.llm.client import LLMClient
from qimeng.llm.insights import InsightStore
from qimeng.settings import LLMSettings, Settings


@dataclass
class LLMSession:
    client: LLMClient
    cache: ResponseCache | None  # None with --no-store
    insights: InsightStore | None  # None with --no-insights or --no-store

    def close(self) -> None:
        for tables in (self.cache, self.insights):
            if tables is not None:
                tables.close()


def open_session(*, llm_url: str | None, llm_model: str | None, replay: bool, use_store: bool, insights: bool,
                 required: bool) -> LLMSession | str | None:
    """The session, or the one-line reason it cannot be opened. ``None`` when no model is configured and
    ``required`` is false (``optimize`` then runs without one)."""
    try:
        llm = LLMSettings.from_env(base_url=llm_url, model=llm_model)
        settings = Settings.from_env()
    except ValueError as exc:
        return str(exc)
    if not (required or replay or llm.base_url or llm.model):
        return None
    try:
        cache = ResponseCache(settings.store_path) if use_store else None
        lessons = InsightStore(settings.store_path) if use_store and insights else None
    except (RuntimeError, OSError, sqlite3.Error) as exc:
        return f"cannot open the store: {exc}"
    session = LLMSession(LLMClient(llm, cache, replay=replay), cache, lessons)
    unusable = session.client.check()
    if unusable is not None:
        session.close()
        return unusable.message
    return session
