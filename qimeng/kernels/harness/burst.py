"""Verification bursts: many calls back to back in one command, so that the harness's clock resolves
calls far shorter than its noise (``outside_clock.Bursts``).

Both sides run the same loop on the same seed: the judge with the reference, the candidate's worker
with the candidate. Call ``k`` of a burst on seed ``s`` is what a trial on seed ``call_seed(s, k)`` is:
its inputs are made fresh by the problem (``Problem.inputs``) from that seed, and a random reference
draws its random numbers from it. Fresh inputs per call are the only choice that leaves a candidate
nothing to reuse from the calls before, whatever the operator (the candidate's process knows the seed,
so it knows how any two calls' inputs relate):

- a block of each input overwritten per call (as until 2026-12-02) let it diff the new inputs against
  the last ones in one read and recompute only the output rows the block touches (a product ``x @ w``,
  a row-wise reduction, softmax or norm), then patch its last output: a read and a copy per call, not
  the work (``cheats/burst_incremental.py``);
- a seeded roll of each input commutes with elementwise operators (the last output, rolled) and turns
  window sums into differences of one prefix sum (a row reduction in one subtraction per row);
- a ring of P input sets from P seeds lets it keep one output per member and patch that.

Fresh inputs cost the problem's own input making per call (on the GPU a generator kernel per input,
about as long as an elementwise call), on both sides alike, so it cancels in the bursts' paired
difference; their values are those the problem makes (integer inputs, such as indices, included). What
a candidate can still save is the harness's own work in its process (making the inputs, the L2 flush,
the slot copies, the digests): docs/HARNESS.md, Limits.

Each call runs as a timed round does (on CUDA: L2 flush, the whole device synchronised, the call, the
whole device synchronised again, so that copying its outputs into their slot cannot race work it left
on another stream), and its outputs are copied into a slot of their own.
After the loop the side commits to every call's outputs with a digest (a seeded universal hash of every
output bit, ``slot_digests``): the harness then picks calls at random, the candidate's worker exports their
slots, and the judge checks that they match both the committed digest (the work was done before the
answer, not when asked) and the reference's slot for the same call.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from qimeng.kernels.harness import checks, timing
from qimeng.kernels.harness.guard import CudaEvent, cuda_synchronize, monotonic_ns, perf_counter_ns
from qimeng.kernels.harness.inputs import seed_all

DIGEST_WEIGHTS = 1 << 20  # the digest's weights repeat with this period over large outputs
_DIGEST_CHUNK_BYTES = 256 * 2**20  # words widened to int64 at once while digesting
_DIGEST_SALT = 0x5EED_D16E


class BurstMismatch(Exception):
    """A call's outputs do not have the layout of the burst's first call (the slots cannot hold them)."""


def call_seed(seed: int, call: int) -> int:
    """The seed of call ``call`` of a burst on ``seed``: of its inputs and of its random numbers."""
    return seed + call


class Laps:
    """Host milliseconds per named phase, summed over laps (``lap`` closes the phase since the last lap),
    with the clock's start and end (CLOCK_MONOTONIC, which the harness's process shares): a burst's
    anatomy, for diagnosis only (``scripts/gpu_burst_anatomy.py``). The candidate's worker could forge
    its own, so no verdict reads it."""

    def __init__(self) -> None:
        self.start_ns = self.last_ns = monotonic_ns()
        self.ns: dict[str, int] = {}

    def lap(self, phase: str) -> None:
        now = monotonic_ns()
        self.ns[phase] = self.ns.get(phase, 0) + now - self.last_ns
        self.last_ns = now

    def report(self, **phases: float) -> dict[str, float]:
        """Each phase's milliseconds (and ``phases``, already in milliseconds), with the start and end stamps."""
        return {**{k: v / 1e6 for k, v in self.ns.items()}, **phases,
                "start_ms": self.start_ns / 1e6, "end_ms": self.last_ns / 1e6}


class Burst:
    """One side's burst: runs the calls and keeps every call's outputs, leaf by leaf, in slots."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.cuda = torch.device(device).type == "cuda"
        self.slots: list[torch.Tensor] = []  # per output leaf: [calls, *shape]
        self.single = False  # the output is one tensor, not a tuple or list
        self.call_ms: list[float] = []
        self.laps = Laps()  # host time per phase of the loop (diagnosis only)

    def run(self, fn: Callable[[list], Any], make_inputs: Callable[[int], list], calls: int, seed: int, reseed: bool,
            flush: "timing.L2Flusher | None") -> list[float]:
        """``calls`` calls of ``fn(inputs)``, each on ``make_inputs(call_seed(seed, k))`` (the problem's
        fresh inputs); per call its own clock's milliseconds (CUDA events; on the CPU ``perf_counter_ns``).
        ``reseed``: each call draws its random numbers from its own seed, as a trial does. Both sides run
        it with Python's garbage collector paused (``timing.gc_paused``)."""
        laps = self.laps = Laps()
        events = []
        times: list[float] = []
        for k in range(calls):
            inputs = make_inputs(call_seed(seed, k))
            if reseed:
                seed_all(call_seed(seed, k))
            laps.lap("inputs")
            if self.cuda:
                if flush is not None:
                    flush()
                cuda_synchronize()  # as a timed round: the call starts on an idle device
                laps.lap("flush")
                start, end = CudaEvent(enable_timing=True), CudaEvent(enable_timing=True)
                start.record()
                out = fn(inputs)
                end.record()
                cuda_synchronize()  # every stream, as a timed round: the slot copy below cannot race work left running
                events.append((start, end))
            else:
                t0 = perf_counter_ns()
                out = fn(inputs)
                times.append((perf_counter_ns() - t0) / 1e6)
            laps.lap("call")
            self._keep(k, calls, out)
            del out, inputs
            laps.lap("keep")
        if self.cuda:
            cuda_synchronize()
            times = [start.elapsed_time(end) for start, end in events]
        laps.lap("events")
        self.call_ms = times
        return times

    def _keep(self, call: int, calls: int, out: Any) -> None:
        found = checks.leaves(out)
        if any(not isinstance(leaf, torch.Tensor) for _, leaf in found):
            raise BurstMismatch("an output that is not a tensor")
        if call == 0:
            self.single = isinstance(out, torch.Tensor)
            self.slots = [torch.empty((calls, *leaf.shape), dtype=leaf.dtype, device=self.device) for _, leaf in found]
        if len(found) != len(self.slots):
            raise BurstMismatch(f"call {call + 1} returned {len(found)} outputs, the first {len(self.slots)}")
        for slot, (path, leaf) in zip(self.slots, found):
            if leaf.shape != slot.shape[1:] or leaf.dtype != slot.dtype:
                raise BurstMismatch(f"call {call + 1} returned {path} of shape {tuple(leaf.shape)} {leaf.dtype}, "
                                    f"the first {tuple(slot.shape[1:])} {slot.dtype}")
            slot[call].copy_(leaf.detach())

    def outputs(self, call: int) -> list[torch.Tensor]:
        """The output leaves of call ``call``."""
        return [slot[call] for slot in self.slots]

    def digests(self, seed: int) -> list[list[int]]:
        """Per output leaf, per call: the digest of its bits (``slot_digests``)."""
        return [slot_digests(slot, seed) for slot in self.slots]


def _weights(width: int, seed: int, device: torch.device | str) -> torch.Tensor:
    """Odd 64-bit multipliers drawn from ``seed``, one per word (repeating every ``DIGEST_WEIGHTS`` words)."""
    generator = torch.Generator().manual_seed((seed ^ _DIGEST_SALT) & (2**63 - 1))
    drawn = torch.randint(-2**62, 2**62, (min(width, DIGEST_WEIGHTS),), generator=generator, dtype=torch.int64)
    return (drawn * 2 + 1).to(device)


def _words(rows: torch.Tensor) -> torch.Tensor:
    """One row of machine words per leading index: each row's bytes as stored, read as the widest
    integers that divide them (complex, float, integer and boolean elements alike)."""
    rows = rows.detach()
    if rows.is_complex():
        rows = torch.view_as_real(rows)
    raw = rows.reshape(rows.shape[0], -1)
    raw = (raw.view(torch.uint8) if raw.dtype == torch.bool else raw).contiguous().view(torch.uint8)
    width = raw.shape[1]
    word = torch.int32 if width % 4 == 0 else torch.int16 if width % 2 == 0 else torch.uint8
    return raw.view(word)


def slot_digests(slot: torch.Tensor, seed: int) -> list[int]:
    """The digest of each ``slot[k]``: the sum, modulo 2**64, of every word of its bits times a seeded
    odd 64-bit multiplier (a universal hash). It is bit-exact, and no shortcut through the arithmetic
    that made the output exists (a weighted sum of the values would have one for linear outputs: the
    digest of ``x @ w`` from sums of rows of ``x``), so a committed digest needs every output bit.
    Widened to int64 a block of ``DIGEST_WEIGHTS`` words of a few rows at a time."""
    words = _words(slot)
    calls, width = words.shape
    if calls == 0 or width == 0:
        return [0] * calls
    weights = _weights(width, seed, slot.device)
    rows_at_once = max(1, _DIGEST_CHUNK_BYTES // (8 * min(width, DIGEST_WEIGHTS)))
    total = torch.zeros(calls, dtype=torch.int64, device=slot.device)
    for first in range(0, calls, rows_at_once):
        rows = words[first:first + rows_at_once]
        for begin in range(0, width, DIGEST_WEIGHTS):
            part = rows[:, begin:begin + DIGEST_WEIGHTS]  # widened to int64 by the product itself: one pass, not two
            total[first:first + rows.shape[0]] += (part * weights[:part.shape[1]]).sum(dim=1)  # wraps mod 2**64
    return total.tolist()


def digest(x: torch.Tensor, seed: int) -> int:
    """The digest of one output leaf (``slot_digests``)."""
    return slot_digests(x.unsqueeze(0), seed)[0]


def digest_matches(x: torch.Tensor, seed: int, committed: Any) -> bool:
    """Whether ``x`` (as exported) has, bit for bit, the digest its side committed to."""
    return isinstance(committed, int) and not isinstance(committed, bool) and digest(x, seed) == committed
