"""A local pool that runs jobs on device slots: one slot per visible GPU (several GPUs at once), or a
configurable number of CPU slots.

Each slot runs one job at a time in a thread; the job itself (for kernels: ``qimeng.kernels.harness.evaluate``)
does its work in a sandboxed worker process, so a thread only waits. A job emits values while it runs
(``stream``): the consumer gets each at once, in its own thread, so it alone writes the results down.
A job's exception is returned as a value, never raised, so one failing job cannot end a pool. When the
consumer stops early (a break, an exception, Ctrl-C), ``stream`` cancels what runs (``core/cancel.py``:
the jobs' sandboxed processes are killed, new ones refused, an emit raises Cancelled), starts nothing
new, and joins its threads before it returns. Threads are daemons, so a second Ctrl-C during that join
still ends the process (its sandboxed jobs are killed at exit).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from qimeng.core.cancel import CancelScope, entered

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
class Event(Generic[T, R]):
    """What a streaming job reported: one value it emitted (``done`` false), or its end (``done`` true,
    with the exception that ended it, if any)."""

    item: T
    slot: str
    value: R | None = None
    done: bool = False
    error: BaseException | None = None


class WorkerLost(Exception):
    """A job's worker died (process killed, node lost, out of memory) more times than retries allow."""


Emit = Callable[[R], None]
StreamJob = Callable[[T, str, Emit], None]
Rest = Callable[[T, list[R]], "T | None"]


class StreamingExecutor(Protocol):
    """What ``qimeng bench`` and batch ``optimize`` run their jobs on: :class:`Executor` (this machine)
    or :class:`~qimeng.core.ray_executor.RayExecutor` (a Ray cluster)."""

    workers: int  # jobs that may run at once (for progress displays)
    remote: bool  # jobs run in other processes or machines: they share no object or file with the caller

    def stream(self, fn: StreamJob, items: Iterable[T], rest: Rest | None = None) -> Iterator[Event]: ...


class Executor:
    """Runs jobs over ``slots`` in threads of this process, one item per slot at a time. With ``admit``,
    a job runs inside ``admit(item, slot)`` (e.g. a :class:`~qimeng.core.admission.MemoryGate`
    reservation, which may wait)."""

    remote = False

    def __init__(self, slots: Sequence[str],
                 admit: Callable[[T, str], AbstractContextManager[object]] | None = None) -> None:
        if not slots:
            raise ValueError("an executor needs at least one slot")
        self.slots = list(slots)
        self.admit = admit
        self.workers = len(self.slots)

    def stream(self, fn: StreamJob, items: Iterable[T], rest: Rest | None = None) -> Iterator[Event]:
        """``fn(item, slot, emit)`` for every item, yielding each emitted value as it comes and then the
        item's end. ``rest`` is for executors that retry lost workers; threads are never lost. When the
        consumer stops early, the running jobs are cancelled and their threads joined before this ends."""
        todo: queue.Queue[T] = queue.Queue()
        count = 0
        for count, item in enumerate(items, start=1):
            todo.put(item)
        events: queue.Queue[Event] = queue.Queue()
        scope = CancelScope()

        def emitter(item: T, slot: str) -> Emit:
            def emit(value: R) -> None:
                scope.check()  # the consumer stopped: the job ends here
                events.put(Event(item, slot, value=value))
            return emit

        def work(slot: str) -> None:
            with entered(scope):
                while not scope.cancelled:
                    try:
                        item = todo.get_nowait()
                    except queue.Empty:
                        return
                    try:
                        with self.admit(item, slot) if self.admit else nullcontext():
                            scope.check()  # admission may have waited past the consumer's end
                            fn(item, slot, emitter(item, slot))
                        events.put(Event(item, slot, done=True))
                    except BaseException as exc:  # noqa: BLE001 - errors are values
                        events.put(Event(item, slot, done=True, error=exc))

        threads = [threading.Thread(target=work, args=(slot,), name=f"qimeng-{slot}-{i}", daemon=True)
                   for i, slot in enumerate(self.slots[:count])]
        for thread in threads:
            thread.start()
        finished = 0
        try:
            while finished < count:
                event = events.get()
                finished += event.done
                yield event
        finally:
            scope.cancel()  # the consumer stopped early (or all ended): kill what runs, start nothing new
            for thread in threads:
                thread.join()
