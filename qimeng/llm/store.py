"""The LLM tables (all prefixed ``llm_``) in qimeng's SQLite store file (``Settings.store_path``).

Tables (schema version in ``llm_schema_version``):
  llm_responses  the response cache: one row per answered request, keyed by (model, SHA-256 of the
                 messages, temperature, seed): the answer's text and the token counts the server reported
  llm_insights   lessons distilled after a failed-then-fixed trajectory, per (task kind, target, model),
                 deduplicated by their normalised text; ``seen`` counts how often a lesson was learnt
The API key is never written here: rows hold what was asked of which model, and what came back.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS llm_schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS llm_responses (
    model TEXT NOT NULL, messages_sha256 TEXT NOT NULL, temperature REAL NOT NULL, seed INTEGER NOT NULL,
    text TEXT NOT NULL, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (model, messages_sha256, temperature, seed));
CREATE TABLE IF NOT EXISTS llm_insights (
    task_kind TEXT NOT NULL, target TEXT NOT NULL, model TEXT NOT NULL, normalized TEXT NOT NULL,
    text TEXT NOT NULL, seen INTEGER NOT NULL, created REAL NOT NULL, updated REAL NOT NULL,
    PRIMARY KEY (task_kind, target, model, normalized));
"""


def open_llm_tables(path: Path) -> sqlite3.Connection:
    """A connection to ``path`` with the llm_ tables created or checked (usable from several threads,
    one at a time: callers hold their own lock)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=30.0, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    with db:
        exists = db.execute("SELECT name FROM sqlite_master WHERE name = 'llm_schema_version'").fetchone()
        row = db.execute("SELECT version FROM llm_schema_version").fetchone() if exists else None
        db.executescript(_SCHEMA)
        if row is None:
            db.execute("INSERT INTO llm_schema_version VALUES (?)", (SCHEMA_VERSION,))
        elif row[0] != SCHEMA_VERSION:
            db.close()
            raise RuntimeError(f"{path}: llm_ tables have schema version {row[0]}, "
                               f"this qimeng expects {SCHEMA_VERSION}")
    return db
