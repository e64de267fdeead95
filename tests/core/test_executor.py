"""The executor runs jobs on every slot at once and returns errors as values."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import pytest

from qimeng.core import sandbox
from qimeng.core.cancel import Cancelled
from qimeng.core.executor import Event, Executor, device_slots

from processes import running_in_group  # tests/core/processes.py

JOBS_DIR = str(Path(__file__).parent)  # sandbox_jobs.py, the sandbox tests' job module


def one_value(job):
    """A streaming job that emits ``job(item, slot)`` once."""
    return lambda item, slot, emit: emit(job(item, slot))


def test_every_item_runs_once_and_errors_are_values():
    def job(item: int, slot: str) -> int:
        if item == 3:
            raise RuntimeError("job 3 broke")
        return item * 10

    events = list(Executor(["cpu", "cpu"]).stream(one_value(job), range(6)))
    assert sorted(e.item for e in events if e.done) == list(range(6))  # each item ends once
    values = {e.item: e.value for e in events if not e.done}
    assert values == {0: 0, 1: 10, 2: 20, 4: 40, 5: 50}
    [failed] = [e for e in events if e.error is not None]
    assert failed.item == 3 and failed.done and isinstance(failed.error, RuntimeError)


def test_values_come_as_they_are_emitted_before_the_job_ends():
    seen: list[Event] = []
    release = threading.Event()

    def job(item: int, slot: str, emit) -> None:
        emit("first")
        assert release.wait(10)
        emit("second")

    events = Executor(["cpu"]).stream(job, [7])
    seen.append(next(events))
    assert seen[0].value == "first" and not seen[0].done  # the job is still running
    release.set()
    seen.extend(events)
    assert [(e.value, e.done) for e in seen] == [("first", False), ("second", False), (None, True)]


def test_slots_run_concurrently_one_job_each():
    """Two slots: both are busy at once, and no slot ever runs two jobs at a time."""
    busy: dict[str, int] = {}
    peak = {"total": 0, "per_slot": 0}
    lock = threading.Lock()

    def job(item: int, slot: str) -> str:
        with lock:
            busy[slot] = busy.get(slot, 0) + 1
            peak["total"] = max(peak["total"], sum(busy.values()))
            peak["per_slot"] = max(peak["per_slot"], busy[slot])
        time.sleep(0.05)
        with lock:
            busy[slot] -= 1
        return slot

    values = [e for e in Executor(["cuda:0", "cuda:1"]).stream(one_value(job), range(8)) if not e.done]
    assert peak == {"total": 2, "per_slot": 1}
    assert {e.value for e in values} == {"cuda:0", "cuda:1"}
    assert all(e.value == e.slot for e in values)


def test_stopping_early_starts_no_new_jobs():
    started: list[int] = []

    def job(item: int, slot: str) -> int:
        started.append(item)
        time.sleep(0.05)
        return item

    results = Executor(["cpu"]).stream(one_value(job), range(20))
    first = next(results)
    results.close()  # the consumer stops (Ctrl-C, an error in the caller)
    time.sleep(0.2)
    assert first.item == 0 and len(started) <= 2


def test_a_consumer_that_stops_early_leaves_no_job_thread_or_process_running():
    """One job sleeps in a sandboxed process (with a child of its own), the other emits forever; the
    consumer returns at the first value. By then the sandboxed group is killed, the sleeping job's next
    sandboxed job is refused, the emitting job has ended at its next emit, and both threads are joined."""
    assert not sandbox._LIVE_GROUPS
    groups: list[int] = []
    after_kill: list[str] = []

    def job(item: str, slot: str, emit) -> None:
        if item == "sleep":
            result = sandbox.run_job("sandbox_jobs", {"action": "sleep"}, timeout_s=60.0,
                                     extra_env={"PYTHONPATH": JOBS_DIR})
            after_kill.append(result.describe_exit())
            try:
                sandbox.run_job("sandbox_jobs", {"action": "echo", "value": 1}, timeout_s=60.0,
                                extra_env={"PYTHONPATH": JOBS_DIR})
                after_kill.append("started")
            except Cancelled:
                after_kill.append("refused")
                raise
            return
        deadline = time.monotonic() + 30
        while not sandbox._LIVE_GROUPS and time.monotonic() < deadline:
            time.sleep(0.02)
        groups.extend(sandbox._LIVE_GROUPS)
        time.sleep(0.5)  # the sleeping job is past its start
        for i in itertools.count():
            emit(i)
            time.sleep(0.01)

    def first_value() -> Event:
        for event in Executor(["cpu", "cpu"]).stream(job, ["sleep", "emit"]):
            return event

    started = time.monotonic()
    assert first_value().value == 0
    assert time.monotonic() - started < 20  # not the 60 s the sandboxed job would sleep
    assert [t.name for t in threading.enumerate() if t.name.startswith("qimeng-")] == []
    assert len(groups) == 1
    assert running_in_group(groups[0]) == []  # the job's process and its child: gone, or zombies of init
    assert after_kill == ["killed by signal SIGKILL", "refused"]
    assert not sandbox._LIVE_GROUPS


def test_empty_input_and_bad_slots():
    assert list(Executor(["cpu"]).stream(lambda item, slot, emit: None, [])) == []
    with pytest.raises(ValueError):
        Executor([])


def test_device_slots():
    assert device_slots("cpu") == ["cpu"]
    assert device_slots("cpu", 3) == ["cpu", "cpu", "cpu"]
    with pytest.raises(ValueError, match="workers"):
        device_slots("cpu", 0)
    with pytest.raises(ValueError, match="unknown device"):
        device_slots("tpu")


def test_cuda_slots_follow_visible_gpus():
    import torch

    count = torch.cuda.device_count()
    if count == 0:
        with pytest.raises(ValueError, match="no CUDA device"):
            device_slots("cuda")
        return
    assert device_slots("cuda") == [f"cuda:{i}" for i in range(count)]
    assert device_slots("cuda", 1) == ["cuda:0"]
    assert device_slots("cuda:0") == ["cuda:0"]
    with pytest.raises(ValueError, match="visible"):
        device_slots(f"cuda:{count}")
