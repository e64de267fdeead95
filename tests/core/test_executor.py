"""The executor runs jobs on every slot at once and returns errors as values."""

from __future__ import annotations

import threading
import time

import pytest

from qimeng.core.executor import Executor, device_slots


def test_every_item_runs_once_and_errors_are_values():
    def job(item: int, slot: str) -> int:
        if item == 3:
            raise RuntimeError("job 3 broke")
        return item * 10

    outcomes = list(Executor(["cpu", "cpu"]).map(job, range(6)))
    assert sorted(o.item for o in outcomes) == list(range(6))
    values = {o.item: o.value for o in outcomes if o.error is None}
    assert values == {0: 0, 1: 10, 2: 20, 4: 40, 5: 50}
    [failed] = [o for o in outcomes if o.error is not None]
    assert failed.item == 3 and isinstance(failed.error, RuntimeError) and failed.value is None


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

    outcomes = list(Executor(["cuda:0", "cuda:1"]).map(job, range(8)))
    assert peak == {"total": 2, "per_slot": 1}
    assert {o.value for o in outcomes} == {"cuda:0", "cuda:1"}
    assert all(o.value == o.slot for o in outcomes)


def test_stopping_early_starts_no_new_jobs():
    started: list[int] = []

    def job(item: int, slot: str) -> int:
        started.append(item)
        time.sleep(0.05)
        return item

    results = Executor(["cpu"]).map(job, range(20))
    first = next(results)
    results.close()  # the consumer stops (Ctrl-C, an error in the caller)
    time.sleep(0.2)
    assert first.item == 0 and len(started) <= 2


def test_empty_input_and_bad_slots():
    assert list(Executor(["cpu"]).map(lambda item, slot: item, [])) == []
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
