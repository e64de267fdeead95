"""Domain-neutral prompt helpers: chat messages, the last fenced code block of an answer, a feedback turn.

What an agent asks (the task, its rules) is written by that agent; these helpers only shape the
conversation and read the answer.
"""

from __future__ import annotations

import re

Message = dict[str, str]

_FENCE = re.compile(r"^```[ \t]*([\w+-]*)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def system(text: str) -> Message:
    return {"role": "system", "content": text}


def user(text: str) -> Message:
    return {"role": "user", "content": text}


def assistant(text: str) -> Message:
    return {"role": "assistant", "content": text}


def last_code_block(answer: str, language: str = "python") -> str | None:
    """The body of the last ```LANGUAGE fenced block of ``answer``, or None when it has none."""
    blocks = [body for lang, body in _FENCE.findall(answer) if lang.lower() == language.lower()]
    return blocks[-1] if blocks else None


def feedback(conversation: list[Message], answer: str, verdict: str) -> list[Message]:
    """The conversation continued with the model's answer and what was wrong with it."""
    return [*conversation, assistant(answer), user(verdict)]
