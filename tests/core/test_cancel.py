"""The cancel scope: groups it tracks die on cancel, a group added after it is killed at once, and the
sandbox refuses to start a job in a cancelled scope."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from qimeng.core.cancel import Cancelled, CancelScope, current, entered
from qimeng.core.sandbox import run_job

SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]


def _group() -> subprocess.Popen:
    return subprocess.Popen(SLEEP, start_new_session=True)


def test_cancel_kills_the_tracked_groups_and_one_added_afterwards():
    scope = CancelScope()
    before, after = _group(), _group()
    scope.add(before.pid)
    scope.cancel()
    assert before.wait(5) == -9
    assert after.poll() is None
    scope.add(after.pid)  # started while the scope was being cancelled
    assert after.wait(5) == -9


def test_a_discarded_group_is_not_killed():
    scope, proc = CancelScope(), _group()
    try:
        scope.add(proc.pid)
        scope.discard(proc.pid)
        scope.cancel()
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(0.3)
    finally:
        proc.kill()
        proc.wait()


def test_the_scope_belongs_to_the_thread_that_entered_it():
    scope, seen = CancelScope(), []
    with entered(scope):
        assert current() is scope
        worker = threading.Thread(target=lambda: seen.append(current()))
        worker.start()
        worker.join()
    assert seen == [None] and current() is None


def test_the_sandbox_refuses_a_job_in_a_cancelled_scope():
    scope = CancelScope()
    scope.cancel()
    with entered(scope), pytest.raises(Cancelled):
        run_job("sandbox_jobs", {"action": "echo", "value": 1}, timeout_s=10.0)
