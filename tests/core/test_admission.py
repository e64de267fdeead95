"""Admission by memory: jobs share a device only while their footprints fit together; the rest wait."""

from __future__ import annotations

import threading
import time

from qimeng.core.admission import MemoryGate
from qimeng.core.executor import Executor, device_slots


def one_value(job):
    """A streaming job that emits ``job(item, slot)`` once."""
    return lambda item, slot, emit: emit(job(item, slot))


class Tracker:
    """Records, for every moment a job starts, the bytes and jobs running on its device."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running: dict[str, int] = {}
        self.held: dict[str, int] = {}
        self.peak_bytes = 0
        self.together: list[set[str]] = []

    def job(self, item: tuple[str, int], slot: str) -> str:
        name, nbytes = item
        with self.lock:
            self.held[name] = nbytes
            self.peak_bytes = max(self.peak_bytes, sum(self.held.values()))
            self.together.append(set(self.held))
        time.sleep(0.05)
        with self.lock:
            del self.held[name]
        return name


def test_jobs_that_do_not_fit_beside_the_running_ones_wait() -> None:
    gate = MemoryGate({"cuda:0": 10})
    tracker = Tracker()
    jobs = [("a", 6), ("b", 6), ("c", 3), ("d", 1)]
    executor = Executor(device_slots("cpu", 4), admit=lambda item, slot: gate.admit("cuda:0", item[1]))
    done = sorted(e.value for e in executor.stream(one_value(tracker.job), jobs) if not e.done)
    assert done == ["a", "b", "c", "d"]
    assert tracker.peak_bytes <= 10  # never more than the capacity at once
    assert not any({"a", "b"} <= group for group in tracker.together)
    assert max(len(group) for group in tracker.together) >= 2  # small jobs did share the device
    assert gate.in_use["cuda:0"] == 0 and gate.running["cuda:0"] == 0


def test_a_job_larger_than_the_device_runs_alone_and_unknown_devices_are_not_limited() -> None:
    gate = MemoryGate({"cuda:0": 10})
    tracker = Tracker()
    executor = Executor(["s"] * 3, admit=lambda item, slot: gate.admit("cuda:0", item[1]))
    list(executor.stream(one_value(tracker.job), [("huge", 50), ("x", 2), ("y", 2)]))
    assert [group for group in tracker.together if "huge" in group] == [{"huge"}]
    with gate.admit("cuda:7", 10**12):  # not a gated device: no wait
        assert gate.in_use == {"cuda:0": 0}


def test_arrival_order_is_kept_so_a_large_job_is_not_starved() -> None:
    gate = MemoryGate({"gpu": 10})
    order: list[str] = []
    release_first = threading.Event()

    def hold(name: str, nbytes: int, wait: threading.Event | None = None) -> None:
        with gate.admit("gpu", nbytes):
            order.append(name)
            if wait is not None:
                wait.wait(5)

    first = threading.Thread(target=hold, args=("first", 6, release_first))
    first.start()
    while gate.running["gpu"] == 0:
        time.sleep(0.005)
    large = threading.Thread(target=hold, args=("large", 8))
    large.start()
    time.sleep(0.05)  # "large" is queued now
    small = threading.Thread(target=hold, args=("small", 2))  # would fit beside "first", but arrived later
    small.start()
    time.sleep(0.05)
    assert order == ["first"]
    release_first.set()
    for thread in (first, large, small):
        thread.join(5)
    assert order == ["first", "large", "small"]


def test_jobs_per_gpu_must_be_positive() -> None:
    import pytest

    with pytest.raises(ValueError, match="jobs per GPU"):
        device_slots("cpu", 1, jobs_per_gpu=0)
