"""Self-evolving insights: after a trajectory that failed and was then fixed, the model distils a short
lesson; lessons are kept per (task kind, target, model) in llm_insights, deduplicated, and added to later
prompts of the same kind (``--no-insights`` leaves them out, so that their effect can be measured)."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from qimeng.llm.client import LLMClient, LLMError
from qimeng.llm.prompts import system, user
from qimeng.llm.store import open_llm_tables

MAX_LESSON_CHARS = 400
PROMPT_LESSONS = 8  # lessons added to a prompt: the most often learnt first


@dataclass(frozen=True)
class Insight:
    task_kind: str
    target: str
    model: str
    text: str
    seen: int


def normalize(text: str) -> str:
    """The text a duplicate is recognised by: lower case, letters and digits, single spaces."""
    return " ".join(re.sub(r"[^a-z0-9_]+", " ", text.lower()).split())


class InsightStore:
    def __init__(self, path: Path) -> None:
        self.lock = threading.Lock()
        self.db = open_llm_tables(Path(path))

    def add(self, task_kind: str, target: str, model: str, text: str) -> None:
        """Keep a lesson; one already known (same normalised text) counts as seen once more."""
        text = " ".join(text.split())[:MAX_LESSON_CHARS]
        key = normalize(text)
        if not key:
            return
        now = time.time()
        with self.lock, self.db:
            self.db.execute(
                "INSERT INTO llm_insights VALUES (?, ?, ?, ?, ?, 1, ?, ?) ON CONFLICT (task_kind, target, model, "
                "normalized) DO UPDATE SET seen = seen + 1, updated = excluded.updated",
                (task_kind, target, model, key, text, now, now))

    def lessons(self, task_kind: str, target: str, model: str, limit: int = PROMPT_LESSONS) -> list[str]:
        with self.lock:
            rows = self.db.execute(
                "SELECT text FROM llm_insights WHERE task_kind = ? AND target = ? AND model = ? "
                "ORDER BY seen DESC, created LIMIT ?", (task_kind, target, model, limit)).fetchall()
        return [r[0] for r in rows]

    def all(self) -> list[Insight]:
        with self.lock:
            rows = self.db.execute("SELECT task_kind, target, model, text, seen FROM llm_insights "
                                   "ORDER BY task_kind, target, model, seen DESC, created").fetchall()
        return [Insight(*r) for r in rows]

    def close(self) -> None:
        self.db.close()


def lessons_text(lessons: list[str]) -> str:
    """The paragraph a prompt carries, or '' when there are none."""
    if not lessons:
        return ""
    return "Lessons from earlier attempts:\n" + "\n".join(f"- {lesson}" for lesson in lessons)


def distill(client: LLMClient, task: str, failure: str, fix: str, *, seed: int) -> str | LLMError | None:
    """Ask the model for the general lesson of one failed-then-fixed trajectory. None when the answer came
    from the response cache: that lesson was kept when it was first answered (a rerun learns nothing new)."""
    answer = client.complete([
        system("You distil short, general lessons from fixed mistakes, for later tasks of the same kind."),
        user(f"Task: {task}\n\nAn attempt failed verification with:\n{failure}\n\nThis fix then passed:\n"
             f"```\n{fix.strip()}\n```\n\nState the general lesson in one or two sentences, without code, "
             "naming no detail that only this task has. Answer with the lesson alone.")], seed=seed)
    if isinstance(answer, LLMError):
        return answer
    if answer.cached:
        return None
    return " ".join(answer.text.replace("```", " ").split())[:MAX_LESSON_CHARS]
