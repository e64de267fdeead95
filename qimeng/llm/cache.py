"""The response cache, in the llm_responses table of the store file (schema: ``qimeng.llm.store``).

Keyed by (model, SHA-256 of the messages, temperature, seed): a rerun of the same requests is free and
reproducible, and ``--llm-replay`` answers from it alone. The API key is never written.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from qimeng.llm.store import open_llm_tables

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
        self.lock = threading.Lock()
        self.db = open_llm_tables(self.path)

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
