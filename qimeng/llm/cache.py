"""The response cache: the LLM tables (all prefixed ``llm_``) in qimeng's SQLite store file.

Tables (schema version in ``llm_schema_version``):
  llm_responses  one row per answered request, keyed by (model, SHA-256 of the messages, temperature,
                 seed): the answer's text and the token counts the server reported
The API key is never written here: a row holds what was asked of which model, and what came back.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS llm_schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS llm_responses (
    model TEXT NOT NULL, messages_sha256 TEXT NOT NULL, temperature REAL NOT NULL, seed INTEGER NOT NULL,
    text TEXT NOT NULL, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (model, messages_sha256, temperature, seed));
"""

Messages = Sequence[dict[str, str]]


def messages_sha256(messages: Messages) -> str:
    """Content hash of a conversation (roles and texts, in order)."""
    canonical = json.dumps([{"role": m["role"], "content": m["content"]} for m in messages], sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class CachedResponse:
    text: str
    prompt_tokens: int
    completion_tokens: int


class ResponseCache:
    """Opens (and creates or checks) the llm_ tables of one SQLite file. Safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
        self.lock = threading.Lock()
        self.db.execute("PRAGMA journal_mode=WAL")
        with self.db:
            exists = self.db.execute("SELECT name FROM sqlite_master WHERE name = 'llm_schema_version'").fetchone()
            row = self.db.execute("SELECT version FROM llm_schema_version").fetchone() if exists else None
            self.db.executescript(_SCHEMA)
            if row is None:
                self.db.execute("INSERT INTO llm_schema_version VALUES (?)", (SCHEMA_VERSION,))
            elif row[0] != SCHEMA_VERSION:
                raise RuntimeError(f"{self.path}: llm_ tables have schema version {row[0]}, "
                                   f"this qimeng expects {SCHEMA_VERSION}")

    def get(self, model: str, messages: Messages, temperature: float, seed: int) -> CachedResponse | None:
        with self.lock:
            row = self.db.execute(
                "SELECT text, prompt_tokens, completion_tokens FROM llm_responses "
                "WHERE model = ? AND messages_sha256 = ? AND temperature = ? AND seed = ?",
                (model, messages_sha256(messages), float(temperature), int(seed))).fetchone()
        return CachedResponse(*row) if row else None

    def put(self, model: str, messages: Messages, temperature: float, seed: int, response: CachedResponse) -> None:
        with self.lock, self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO llm_responses VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (model, messages_sha256(messages), float(temperature), int(seed), response.text,
                 response.prompt_tokens, response.completion_tokens, time.time()))

    def close(self) -> None:
        self.db.close()
