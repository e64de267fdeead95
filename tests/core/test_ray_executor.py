"""The Ray executor on a local two-CPU cluster: values stream back, errors are values, a worker killed
mid-job is retried for what it had not reported, and one that keeps dying ends as WorkerLost."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from qimeng.core.executor import WorkerLost

from processes import running  # tests/core/processes.py

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'qimeng[ray]')")
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the jobs below run in Ray's workers


@pytest.fixture(scope="module")
def executor():
    from qimeng.core.ray_executor import RayExecutor

    try:
        pool = RayExecutor("cpu", "local", retries=1, num_cpus=2)
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"Ray cannot start here: {exc}")
    yield pool
    ray.shutdown()


def count(item: tuple[str, tuple[int, ...]], slot: str, emit) -> None:
    """Emits (name, i) for each i of the item; 'boom' raises; 'die:<dir>' kills its own worker after its
    first value (logging each attempt in <dir>/attempts), on its first attempt only unless <dir>/always
    exists."""
    name, numbers = item
    folder = Path(name[4:])
    if name.startswith("die:"):
        with open(folder / "attempts", "a") as log:
            log.write("x")
    for i in numbers:
        emit((name, i))
        if name.startswith("die:") and i == numbers[0]:
            if (folder / "always").exists() or len((folder / "attempts").read_text()) == 1:
                time.sleep(0.5)  # let the first value reach the driver
                os.kill(os.getpid(), signal.SIGKILL)
    if name == "boom":
        raise ValueError("bad item")


def rest(item: tuple[str, tuple[int, ...]], values: list[tuple[str, int]]):
    """What a retry still has to do: the numbers not reported yet (None: nothing)."""
    name, numbers = item
    left = tuple(i for i in numbers if (name, i) not in values)
    return (name, left) if left else None


def test_values_stream_and_errors_are_values(executor):
    events = list(executor.stream(count, [("a", (0, 1, 2)), ("boom", (0,)), ("b", ())]))
    values = sorted(e.value for e in events if not e.done)
    assert values == [("a", 0), ("a", 1), ("a", 2), ("boom", 0)]
    ends = {e.item[0]: e.error for e in events if e.done}
    assert set(ends) == {"a", "boom", "b"}
    assert ends["a"] is None and ends["b"] is None and isinstance(ends["boom"], ValueError)
    assert executor.workers == 2 and executor.remote


def test_a_killed_worker_is_retried_for_what_it_had_not_reported(executor, tmp_path):
    events = list(executor.stream(count, [(f"die:{tmp_path}", (0, 1, 2))], rest=rest))
    assert sorted(e.value[1] for e in events if not e.done) == [0, 1, 2]  # each once
    assert [e.error for e in events if e.done] == [None]
    assert (tmp_path / "attempts").read_text() == "xx"  # killed once, then the rest: (1, 2) in one attempt


def test_a_worker_that_keeps_dying_ends_as_worker_lost(executor, tmp_path):
    (tmp_path / "always").touch()
    events = list(executor.stream(count, [(f"die:{tmp_path}", (0, 1, 2))], rest=rest))
    [end] = [e for e in events if e.done]
    assert isinstance(end.error, WorkerLost) and "died 2 times" in str(end.error)
    assert (tmp_path / "attempts").read_text() == "xx"  # retries=1: two attempts, then given up


def sleep_after_pid(item: str, slot: str, emit) -> None:
    """Emits its worker's pid, then sleeps far longer than any test waits."""
    emit(os.getpid())
    time.sleep(120)


def test_a_consumer_that_stops_early_leaves_no_task_running(executor):
    def first_value() -> int:
        for event in executor.stream(sleep_after_pid, ["sleeper"]):
            return event.value

    pid = first_value()
    deadline = time.monotonic() + 5  # the force-cancelled worker is killed by Ray's raylet, not by this process
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(pid)


def test_device_auto_is_what_the_cluster_has(executor):
    from qimeng.core.ray_executor import cluster_device, cluster_executor

    assert cluster_device("auto", {"CPU": 64.0, "GPU": 8.0}) == "cuda"
    assert cluster_device("auto", {"CPU": 64.0}) == "cpu"
    assert cluster_device("auto", {"CPU": 64.0, "GPU": 0.0}) == "cpu"
    assert cluster_device("cpu", {"CPU": 2.0, "GPU": 1.0}) == "cpu"
    pool = cluster_executor("ray", "auto", "auto", retries=0)  # joins the fixture's two-CPU cluster
    assert pool is not None and pool.device == "cpu" and pool.workers == 2
    with pytest.raises(ValueError, match="auto, cpu or cuda"):
        cluster_executor("ray", "cuda:1", "auto", retries=0)
