"""A local pool that runs jobs on device slots: one slot per visible GPU (several GPUs at once), or a
configurable number of CPU slots.

Each slot runs one job at a time in a thread; the job itself (for kernels: ``qimeng.kernels.harness.evaluate``)
does its work in a sandboxed worker process, so a thread only waits. A job's exception is returned as
a value, never raised, so one failing job cannot end a pool. Threads are daemons: when the consumer
stops (Ctrl-C, a kill), no new job starts and the process can exit without waiting for running ones.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def device_slots(device: str, workers: int | None = None, jobs_per_gpu: int = 1) -> list[str]:
    """The slots of a pool on ``device``.

    ``cpu``: ``workers`` slots (default 1: parallel CPU jobs disturb each other's timings).
    ``cuda``: one slot per visible GPU (``cuda:0``, ``cuda:1``, ...), the first ``workers`` of them
    when given. ``cuda:N``: that GPU alone. ``jobs_per_gpu`` repeats each GPU's slot: that many jobs
    may share it (admitted by memory, ``core/admission.py``).
    """
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if jobs_per_gpu < 1:
        raise ValueError(f"jobs per GPU must be at least 1, got {jobs_per_gpu}")
    if device == "cpu":
        return ["cpu"] * (workers or 1)
    if device.startswith("cuda"):
        import torch

        count = torch.cuda.device_count()
        if count == 0:
            raise ValueError(f"device {device!r} requested but no CUDA device is visible")
        if device != "cuda":
            index = int(device.split(":", 1)[1])
            if not 0 <= index < count:
                raise ValueError(f"device {device!r} requested but only {count} CUDA device(s) are visible")
            return [device] * jobs_per_gpu
        return [f"cuda:{i}" for i in range(min(count, workers or count)) for _ in range(jobs_per_gpu)]
    raise ValueError(f"unknown device {device!r} (expected cpu, cuda or cuda:N)")


@dataclass(frozen=True)
class Outcome(Generic[T, R]):
    """What one job gave: its value, or the exception it raised."""

    item: T
    slot: str
    value: R | None = None
    error: BaseException | None = None


class Executor:
    """Runs ``fn(item, slot)`` for many items, one item per slot at a time, yielding outcomes as they
    finish (not in submission order). With ``admit``, a job runs inside ``admit(item, slot)`` (e.g. a
    :class:`~qimeng.core.admission.MemoryGate` reservation, which may wait)."""

    def __init__(self, slots: Sequence[str],
                 admit: Callable[[T, str], AbstractContextManager[object]] | None = None) -> None:
        if not slots:
            raise ValueError("an executor needs at least one slot")
        self.slots = list(slots)
        self.admit = admit

    def map(self, fn: Callable[[T, str], R], items: Iterable[T]) -> Iterator[Outcome[T, R]]:
        todo: queue.Queue[tuple[int, T]] = queue.Queue()
        count = 0
        for count, item in enumerate(items, start=1):
            todo.put((count, item))
        done: queue.Queue[Outcome[T, R]] = queue.Queue()
        stop = threading.Event()

        def work(slot: str) -> None:
            while not stop.is_set():
                try:
                    _, item = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    with self.admit(item, slot) if self.admit else nullcontext():
                        value = fn(item, slot)
                    done.put(Outcome(item, slot, value=value))
                except BaseException as exc:  # noqa: BLE001 - errors are values
                    done.put(Outcome(item, slot, error=exc))

        threads = [threading.Thread(target=work, args=(slot,), name=f"qimeng-{slot}-{i}", daemon=True)
                   for i, slot in enumerate(self.slots[:count])]
        for thread in threads:
            thread.start()
        try:
            for _ in range(count):
                yield done.get()
        finally:
            stop.set()  # consumer stopped early (or finished): start nothing new
