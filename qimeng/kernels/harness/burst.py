"""Verification bursts: many calls back to back in one command, so that the harness's clock resolves
calls far shorter than its noise (``outside_clock.Bursts``).

Both sides run the same loop on the same seed: the judge with the reference, the candidate's worker
with the candidate. The inputs come from the seed (``Problem.inputs``); before each call a block of
every floating input is overwritten with values copied from another place of the same tensor, at
offsets drawn from the seed, so no call's inputs are the last one's (a cached output cannot serve it)
and the values stay those the problem makes. Each call runs as a timed round does (on CUDA: L2 flush,
the whole device synchronised, the call, the whole device synchronised again, so that copying its
outputs into their slot cannot race work it left on another stream), and its outputs are copied into a
slot of their own.
After the loop the side commits to every call's outputs with a digest (a seeded universal hash of every
output bit, ``slot_digests``): the harness then picks calls at random, the candidate's worker exports their
slots, and the judge checks that they match both the committed digest (the work was done before the
answer, not when asked) and the reference's slot for the same call.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable

import torch

from qimeng.kernels.harness import checks, timing
from qimeng.kernels.harness.guard import CudaEvent, cuda_synchronize, monotonic_ns, perf_counter_ns

PERTURB_ELEMENTS = 4096  # elements of each floating input overwritten before each call (at most half of it)
DIGEST_WEIGHTS = 1 << 20  # the digest's weights repeat with this period over large outputs
_DIGEST_CHUNK_BYTES = 256 * 2**20  # words widened to int64 at once while digesting
_DIGEST_SALT = 0x5EED_D16E


class BurstMismatch(Exception):
    """A call's outputs do not have the layout of the burst's first call (the slots cannot hold them)."""


@dataclass(frozen=True)
class Perturbation:
    """Before one call: ``flat[dst:dst+n] = flat[src:src+n]`` in floating input ``tensor``."""

    tensor: int
    dst: int
    src: int
    n: int


def perturbable(inputs: list) -> list[int]:
    """Indices of the inputs a burst perturbs: contiguous floating or complex tensors of 2+ elements."""
    return [i for i, x in enumerate(inputs) if isinstance(x, torch.Tensor) and x.numel() >= 2
            and (x.is_floating_point() or x.is_complex()) and x.is_contiguous()]


def plan(inputs: list, calls: int, seed: int) -> list[list[Perturbation]]:
    """The perturbations before each of ``calls`` calls, drawn from ``seed`` (the same on both sides)."""
    rng = random.Random(seed)
    chosen = perturbable(inputs)
    steps = []
    for _ in range(calls):
        step = []
        for i in chosen:
            numel = inputs[i].numel()
            n = min(PERTURB_ELEMENTS, numel // 2)
            step.append(Perturbation(i, rng.randrange(numel - n + 1), rng.randrange(numel - n + 1), n))
        steps.append(step)
    return steps


class _Perturber:
    """Applies a plan's steps in place, through one scratch block per input (source and target may overlap)."""

    def __init__(self, inputs: list, steps: list[list[Perturbation]]) -> None:
        self.inputs, self.steps = inputs, steps
        self.flat = {i: inputs[i].view(-1) for i in perturbable(inputs)}
        self.scratch = {i: torch.empty(min(PERTURB_ELEMENTS, f.numel() // 2), dtype=f.dtype, device=f.device)
                        for i, f in self.flat.items()}

    def apply(self, call: int) -> None:
        for p in self.steps[call]:
            flat, scratch = self.flat[p.tensor], self.scratch[p.tensor]
            scratch.copy_(flat[p.src:p.src + p.n])
            flat[p.dst:p.dst + p.n].copy_(scratch)


def inputs_at(inputs: list, calls: int, seed: int, call: int) -> list:
    """The inputs of call ``call`` of a burst of ``calls`` on ``seed``, made again from its first inputs
    (the judge's float64 second look at one call)."""
    steps = plan(inputs, calls, seed)
    perturber = _Perturber(inputs, steps)
    for k in range(call + 1):
        perturber.apply(k)
    return inputs


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

    def run(self, fn: Callable[[list], Any], inputs: list, calls: int, seed: int, reseed: bool,
            flush: "timing.L2Flusher | None") -> list[float]:
        """``calls`` calls of ``fn(inputs)``; per call its own clock's milliseconds (CUDA events; on the
        CPU ``perf_counter_ns``). ``reseed``: each call draws its random numbers from ``seed + call``."""
        laps = self.laps = Laps()
        perturber = _Perturber(inputs, plan(inputs, calls, seed))
        events = []
        times: list[float] = []
        for k in range(calls):
            perturber.apply(k)
            if reseed:
                torch.manual_seed(seed + k)
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
            del out
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

    def digests(self, seed: int) -> list[list[float]]:
        """Per output leaf, per call: the seeded weighted sum of its elements (``digest``)."""
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
            part = rows[:, begin:begin + DIGEST_WEIGHTS].to(torch.int64)
            total[first:first + rows.shape[0]] += (part * weights[:part.shape[1]]).sum(dim=1)  # wraps mod 2**64
    return total.tolist()


def digest(x: torch.Tensor, seed: int) -> int:
    """The digest of one output leaf (``slot_digests``)."""
    return slot_digests(x.unsqueeze(0), seed)[0]


def digest_matches(x: torch.Tensor, seed: int, committed: Any) -> bool:
    """Whether ``x`` (as exported) has, bit for bit, the digest its side committed to."""
    return isinstance(committed, int) and not isinstance(committed, bool) and digest(x, seed) == committed
