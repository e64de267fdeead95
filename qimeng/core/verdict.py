"""Verdicts: the outcome of checking one candidate, as a value (never an exception)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Status(str, Enum):
    """Outcome of one trial. Only ``OK`` means verified."""

    OK = "ok"
    INCORRECT = "incorrect"
    COMPILE_ERROR = "compile_error"
    RUNTIME_ERROR = "runtime_error"
    TIMEOUT = "timeout"
    CRASHED = "crashed"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Verdict:
    """A status with the human reason behind it (which check failed, the exception, ...)."""

    status: Status
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status is Status.OK


class BadInput(Exception):
    """User input that cannot be evaluated at all (malformed problem file, unparsable Verilog, ...).

    The message names the file and the cause. Commands turn it into exit status 2 and store nothing.
    """
