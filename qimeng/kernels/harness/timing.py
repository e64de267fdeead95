"""Timing of several callables in interleaved rounds, with timers bound before candidate code exists.

CUDA: the L2 cache flushed (a write of twice its size) and the device synchronised before each trial,
so the clock starts on an idle device and no stream can start work early; CUDA events around the call.
After the end event the whole device is synchronised and a third event recorded: when the GPU's own
clock shows more time from the end event to that drain than the host's wake-ups explain (``late``:
above an absolute plus a relative threshold), material work was left running on another stream, and
the trial is timed up to the drain instead (and counted in ``Timings.late``). Smaller left-overs are
not flagged; the verification bursts (``burst.py``), which synchronise the device before every call,
count them. The host's launch latency is inside each trial, as in KernelBench; the
synchronisation latencies are not. CPU: ``time.perf_counter_ns``. Each round runs every callable once,
in a rotating order. The wall time of the whole loop is measured too: trials that add up to more than
it mean a timer was tampered with.
"""

from __future__ import annotations

import contextlib
import gc
from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from qimeng.kernels.harness.device_lock import exclusive
from qimeng.kernels.harness.guard import CudaEvent, cuda_synchronize, monotonic_ns, perf_counter_ns
from qimeng.kernels.harness.stats import quantile

_MIN_FLUSH_BYTES = 64 * 1024 * 1024
# A trial is late when the GPU's gap from its end event to the drain exceeds this ...
DRAIN_GAP_MS = 0.1  # ... (the host waking from two synchronisations: tens of microseconds, more under load)
DRAIN_GAP_SHARE = 0.25  # ... plus this share of the call's own time
MIN_BUDGET_TRIALS = 5  # timed rounds that run even when the time budget is spent


@dataclass
class Timings:
    """Per-callable trial times in milliseconds, the wall time of the whole timed loop, and what each
    callable returned in the last round."""

    trials_ms: dict[str, list[float]]
    loop_wall_ms: float
    last: dict[str, object]
    late: dict[str, int]  # trials whose callable left work running on another stream after the end event

    def median(self, name: str) -> float:
        return quantile(self.trials_ms[name], 0.5)

    def iqr(self, name: str) -> float:
        values = self.trials_ms[name]
        return quantile(values, 0.75) - quantile(values, 0.25)

    def cross_check(self) -> str | None:
        """Why the trials cannot be right, if they cannot: together they exceed the loop's wall time."""
        total = sum(sum(v) for v in self.trials_ms.values())
        if total > self.loop_wall_ms * 1.02 + 1.0:
            return f"timer cross-check failed: trials add up to {total:.3f} ms in a {self.loop_wall_ms:.3f} ms loop"
        return None


class L2Flusher:
    """Writes twice the L2 cache's size, so no trial finds its data cached by the one before."""

    def __init__(self, device: torch.device) -> None:
        l2 = getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 0)
        nbytes = max(2 * l2, _MIN_FLUSH_BYTES)
        self.buffer = torch.empty(nbytes // 4, dtype=torch.int32, device=device)

    def __call__(self) -> None:
        self.buffer.zero_()


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off meanwhile (as it was, after): with torch loaded a collection
    of the older generations walks hundreds of thousands of objects, milliseconds to tens of them, at
    a moment no one chooses, inside whatever clock runs. Reference counting still frees the rest."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def late(call_ms: float, gap_ms: float) -> bool:
    """Whether a trial left material work running: the GPU's time from its end event to the drained
    device beyond what the host's wake-ups explain."""
    return gap_ms > DRAIN_GAP_MS + DRAIN_GAP_SHARE * call_ms


def cuda_trial(fn: Callable[[], object], flush: L2Flusher) -> tuple[float, object, bool]:
    """(milliseconds, output, whether work was left running after the end event): one call timed by
    CUDA events on an idle device with a cold L2."""
    start, end, drained = (CudaEvent(enable_timing=True) for _ in range(3))
    flush()
    cuda_synchronize()  # the clock starts on an idle device: no stream can start the callable's work early
    start.record()
    out = fn()
    end.record()
    end.synchronize()
    cuda_synchronize()  # every stream: work the callable left running elsewhere is not left out
    drained.record()
    drained.synchronize()
    call_ms = start.elapsed_time(end)
    if late(call_ms, end.elapsed_time(drained)):
        return start.elapsed_time(drained), out, True
    return call_ms, out, False


def cpu_trial(fn: Callable[[], object]) -> tuple[float, object, bool]:
    """(milliseconds, output, False): one call timed by ``perf_counter_ns``."""
    t0 = perf_counter_ns()
    out = fn()
    return (perf_counter_ns() - t0) / 1e6, out, False


def time_interleaved(fns: dict[str, Callable[[], object]], trials: int, warmup: int, device: str,
                     before_round: Callable[[int], None] | None = None, budget_s: float | None = None) -> Timings:
    """Time each callable ``trials`` times after ``warmup`` calls, interleaving them round by round.

    Every output of a round stays alive until the round ends, so no callable can be handed another's
    freed output buffer within a round. ``before_round(i)`` runs untimed before round ``i``, after the
    previous round's outputs were freed (e.g. to poison freed memory and change the inputs' values in
    place, so that an output cached or left uninitialised shows up as wrong in ``Timings.last``).
    ``budget_s``: slow calls (large problems on the CPU) end the warm-up after a fifth of it and the
    timed rounds once it is spent, after at least ``MIN_BUDGET_TRIALS`` rounds (``Timings.trials_ms``
    says how many ran). The device's lock (``device_lock``) is held throughout: no other evaluation
    runs its clock meanwhile."""
    with exclusive(device):
        return _time_interleaved(fns, trials, warmup, device, before_round, budget_s)


def _time_interleaved(fns: dict[str, Callable[[], object]], trials: int, warmup: int, device: str,
                      before_round: Callable[[int], None] | None, budget_s: float | None) -> Timings:
    cuda = torch.device(device).type == "cuda"
    flush = L2Flusher(torch.device(device)) if cuda else None
    names = list(fns)
    budget_ns = None if budget_s is None else budget_s * 1e9
    warm_start = monotonic_ns()
    for _ in range(warmup):
        for name in names:
            fns[name]()
        if budget_ns is not None and monotonic_ns() - warm_start > budget_ns / 5:
            break
    if cuda:
        cuda_synchronize()
    times: dict[str, list[float]] = {name: [] for name in names}
    late = dict.fromkeys(names, 0)
    with gc_paused():
        loop_start = monotonic_ns()
        outputs: dict[str, object] = {}
        for round_index in range(trials):
            if (budget_ns is not None and round_index >= MIN_BUDGET_TRIALS
                    and monotonic_ns() - loop_start > budget_ns):
                break
            outputs = {}  # the last round's outputs are freed here, before ``before_round``
            if before_round is not None:
                before_round(round_index)
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:  # outputs stay alive until the round ends
                ms, outputs[name], was_late = cuda_trial(fns[name], flush) if flush else cpu_trial(fns[name])
                times[name].append(ms)
                late[name] += was_late
        loop_wall_ms = (monotonic_ns() - loop_start) / 1e6
    return Timings(times, loop_wall_ms, outputs, late)
