"""Cancellation of the jobs an executor's threads run.

An executor enters one :class:`CancelScope` in each of its threads (:func:`entered`); the sandbox
(``sandbox.run_job``, ``command_job.Job``) registers every process group it starts with the scope of
its thread. :meth:`CancelScope.cancel` kills those groups, and from then on a new sandboxed job in
the scope is refused with :class:`Cancelled`, so a job's thread ends soon after its consumer stops.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

_current = threading.local()


class Cancelled(BaseException):
    """The job's executor was stopped by its consumer: the job ends without a result. A BaseException
    (like KeyboardInterrupt), so that a job's ``except Exception`` does not take it for its own error."""


class CancelScope:
    """The process groups started by the threads of one executor run, killed together on :meth:`cancel`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: set[int] = set()
        self.cancelled = False

    def add(self, pgid: int) -> None:
        """Track a process group just started; kill it at once when the scope is already cancelled."""
        with self._lock:
            if not self.cancelled:
                self._groups.add(pgid)
                return
        kill_group(pgid)

    def discard(self, pgid: int) -> None:
        with self._lock:
            self._groups.discard(pgid)

    def check(self) -> None:
        """Raise :class:`Cancelled` when the scope is cancelled."""
        if self.cancelled:
            raise Cancelled("the executor's consumer stopped")

    def cancel(self) -> None:
        """Kill every tracked process group and refuse new jobs."""
        with self._lock:
            self.cancelled = True
            groups = list(self._groups)
        for pgid in groups:
            kill_group(pgid)


def kill_group(pgid: int) -> None:
    """SIGKILL a process group (gone already: nothing to do)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@contextlib.contextmanager
def entered(scope: CancelScope) -> Iterator[CancelScope]:
    """Make ``scope`` the current thread's scope for the block."""
    previous = getattr(_current, "scope", None)
    _current.scope = scope
    try:
        yield scope
    finally:
        _current.scope = previous


def current() -> CancelScope | None:
    """The scope of the current thread (None outside any executor)."""
    return getattr(_current, "scope", None)


def raise_if_cancelled() -> None:
    """Raise :class:`Cancelled` when the current thread's scope is cancelled."""
    scope = current()
    if scope is not None:
        scope.check()
