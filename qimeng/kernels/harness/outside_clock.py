"""The harness's own clock around the timed rounds bounds what the candidate's worker may claim.

The harness times every round from its command to the answer, on the judge's side and on the
candidate's, in the same round, on the same seed. On each side the difference between that wall time
and the worker's own timing of its call is the round's overhead (making inputs, poisoning freed memory,
launching, synchronising, copying the output to shared memory, the messages): the same work on both
sides, so the two differ only by noise, unless the candidate's worker did work its own clock does not
claim (a patched timer, work finished after the end event, outside the timed call, or in a round it
answered early). The median over rounds of that paired difference must stay within the noise (four
standard errors of the median) plus a tenth of the claimed time; a worker that claims more time than
its rounds took is rejected too (a timer that lies). Below the noise of the harness's clock (about a
millisecond on a loaded CPU, far less on a quiet GPU host) nothing can be told apart.

Calls shorter than that are verified by bursts (``burst.py``): in each, both sides make ``calls``
calls back to back in one command, and the harness's clock around the two commands, divided by the
number of calls, resolves the candidate's per-call time to its noise over ``calls`` (``Bursts``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qimeng.kernels.harness.stats import quantile

SLACK = 1.1  # the candidate's worker may leave up to this share of its call's time unclaimed ...
# ... plus this, plus four standard errors of the median of the paired differences. On the H200 the
# candidate's worker spent a steady 0.3 ms per round more than the judge for honest Triton kernels while
# the judge copied its outputs into other memory than the worker's exchange; with the same copy on both
# sides (exchange.Writer) the median paired difference was -0.03 ms (1 GiB per tensor, 20 rounds); the
# allowance stays, for what other problems and loaded CPUs may add: to refute a claim.
ALLOWANCE_MS = 0.5
# To verify one, the rounds allow this much per device kind (the candidate's worker may leave a claim
# unverified between the two, never rejected): on the H200 the median paired difference of honest
# candidates was -0.03 ms and 0.11 ms (1 GiB per tensor, 20 rounds), and with 0.5 ms no call under about
# 0.7 ms verified (a 2 GiB GELU at 0.58 ms stayed unverified, its outputs too large for bursts).
VERIFY_ALLOWANCE_MS = {"cuda": 0.15, "cpu": ALLOWANCE_MS}
MIN_ROUNDS = 10  # fewer rounds tell too little of the noise: the timing is only flagged unverified
VERIFIED_SHARE = 0.25  # a burst verifies a claim when its resolution is at most this share of the claim
BURSTS = 4  # verification bursts per side (a fresh seed each)
BURST_TARGET_MS = {"cuda": 20.0, "cpu": 10.0}  # a burst makes this many claimed milliseconds of calls ...
BURST_MAX_CALLS = 4096  # ... in at most this many calls ...
BURST_BYTES = {"cuda": 2 * 2**30, "cpu": 256 * 2**20}  # ... whose outputs fit in this (each side keeps them all)
BURST_MAX_SPEEDUP = 20.0  # the calls are counted from a claim of at most this speed-up over the reference
BURST_CHECKED_CALLS = 2  # calls per burst whose outputs the judge compares, picked after the answer


@dataclass(frozen=True)
class Rounds:
    """The timed rounds of one side: each call's time by its worker's own clock, and each round's
    wall time by the harness's clock (command sent to answer received)."""

    claimed_ms: list[float]
    wall_ms: list[float]
    queued_ms: list[float] = field(default_factory=list)  # per round, the main thread's wait for a core

    def unclaimed_ms(self) -> list[float]:
        """Per round, the harness's wall time that the worker's own clock does not account for."""
        return [w - c for w, c in zip(self.wall_ms, self.claimed_ms)]

    def discounted(self) -> "Rounds":
        """The same rounds, each wall time less what the side's main thread waited for a core (Linux
        schedstat): a loaded host stretches one side's round more than the other's. Waiting is never
        work, so the discount can acquit a round stretched by load, never hide work done."""
        return Rounds(self.claimed_ms, less_waiting(self.wall_ms, self.queued_ms))


def less_waiting(wall_ms: list[float], queued_ms: list[float]) -> list[float]:
    """Each wall time less what its side's main thread waited for a core meanwhile; the walls as they
    are when the waits are not known for each (``queued_ms`` of another length)."""
    if len(queued_ms) != len(wall_ms):
        return list(wall_ms)
    return [w - q for w, q in zip(wall_ms, queued_ms)]


def hidden_ms(judge: Rounds, worker: Rounds) -> tuple[float, float]:
    """(median, its noise) of the candidate's unclaimed time beyond the judge's in the same round: what
    the candidate's worker spent outside its claimed calls that the judge's identical rounds did not.
    The noise is four standard errors of that median (about IQR / sqrt(n) each)."""
    paired = [c - j for c, j in zip(worker.unclaimed_ms(), judge.unclaimed_ms())]
    spread = quantile(paired, 0.75) - quantile(paired, 0.25)
    return quantile(paired, 0.5), 4.0 * spread / max(len(paired), 1) ** 0.5


def resolution_ms(judge: Rounds, worker: Rounds, allowance_ms: float = ALLOWANCE_MS) -> float:
    """The largest per-call time the candidate's worker could leave unclaimed without being caught,
    beyond the tenth of its claim: what the harness's clock cannot tell from noise (with the allowance
    that refutes; ``verify_allowance`` gives the one that verifies)."""
    return allowance_ms + hidden_ms(judge, worker)[1]


def verify_allowance(device: str) -> float:
    """The rounds' allowance for verifying a claim on ``device`` (``VERIFY_ALLOWANCE_MS``)."""
    return VERIFY_ALLOWANCE_MS["cuda" if device.startswith("cuda") else "cpu"]


def _excess(judge: Rounds, worker: Rounds, allowance_ms: float = ALLOWANCE_MS) -> tuple[float, float, float]:
    """(claimed per call, hidden per round, allowed per round) of the candidate's rounds."""
    claimed = quantile(worker.claimed_ms, 0.5)
    return claimed, hidden_ms(judge, worker)[0], claimed * (SLACK - 1.0) + resolution_ms(judge, worker, allowance_ms)


def unverified(judge: Rounds, worker: Rounds, device: str = "cpu") -> bool:
    """True when the claimed time is below the rounds' resolution (a worker could claim half its real
    time, a speed-up twice the true one, and pass), when fewer than MIN_ROUNDS rounds ran, when more
    time is hidden than verifying allows on ``device`` (``verify_allowance``), or when only the discount
    for waiting for a core (``Rounds.discounted``) kept the raw walls from refuting the claim: the rounds
    do not verify it, and verification bursts are tried (else the timing is flagged ``timing_unverified``)."""
    if len(worker.claimed_ms) < MIN_ROUNDS:
        return True
    allowance = verify_allowance(device)
    _, hidden, allowed = _excess(judge, worker, allowance)
    return resolution_ms(judge, worker, allowance) > quantile(worker.claimed_ms, 0.5) or hidden > allowed


def check(judge: Rounds, worker: Rounds) -> str | None:
    """Why the candidate's own timings cannot be right, if they cannot: a claim beyond the raw walls,
    or more hidden time than allowed even with each round's wait for a core discounted on both sides
    (on a loaded two-core host the raw walls alone refuted honest candidates)."""
    claimed_total, wall_total = sum(worker.claimed_ms), sum(worker.wall_ms)
    if claimed_total > wall_total * 1.02 + 1.0:
        return (f"the candidate's worker claims {claimed_total:.3f} ms of timed calls in rounds that took "
                f"{wall_total:.3f} ms by the harness's clock")
    if len(worker.claimed_ms) < MIN_ROUNDS:
        return None
    claimed, hidden, allowed = _excess(judge.discounted(), worker.discounted())
    if hidden > allowed:
        return (f"the candidate's worker claims {claimed:.4f} ms per call, but by the harness's clock its rounds "
                f"took {hidden:.4f} ms more than the judge's identical rounds (at most {allowed:.4f} ms allowed)")
    return None


def burst_calls(claimed_ms: float, reference_ms: float, output_bytes: int, device: str) -> int:
    """How many calls a burst makes: enough for ``BURST_TARGET_MS`` of the candidate's claimed calls (by device)
    (a claim of more than ``BURST_MAX_SPEEDUP`` over the reference counts as that), as many as the
    budget for every call's outputs allows."""
    per_call = max(claimed_ms, reference_ms / BURST_MAX_SPEEDUP, 1e-3)
    kind = "cuda" if device.startswith("cuda") else "cpu"
    budget = BURST_BYTES[kind] // max(output_bytes, 1)
    return max(1, min(int(BURST_TARGET_MS[kind] / per_call) + 1, BURST_MAX_CALLS, budget))


def bursts_could_verify(calls: int, claimed_ms: float) -> bool:
    """Whether bursts of ``calls`` calls could verify the claim even without noise (the allowance alone,
    over the calls, must be at most ``VERIFIED_SHARE`` of it): large outputs leave too few calls."""
    return ALLOWANCE_MS / calls <= VERIFIED_SHARE * claimed_ms


@dataclass(frozen=True)
class Bursts:
    """The verification bursts of both sides: ``calls`` calls each; per burst the harness's wall time of
    each side's command, and the judge's own mean time per call (a trusted clock)."""

    calls: int
    judge_wall_ms: list[float]
    worker_wall_ms: list[float]
    judge_call_ms: list[float]
    judge_queued_ms: list[float] = field(default_factory=list)  # per burst, each side's main thread's wait for a core
    worker_queued_ms: list[float] = field(default_factory=list)

    def discounted(self) -> "Bursts":
        """The same bursts, each command's wall time less what its side's main thread waited for a core
        (``Rounds.discounted``): a loaded host stretches a long burst more than a short one."""
        return Bursts(self.calls, less_waiting(self.judge_wall_ms, self.judge_queued_ms),
                      less_waiting(self.worker_wall_ms, self.worker_queued_ms), self.judge_call_ms)

    def per_call_ms(self) -> list[float]:
        """Per burst, the candidate's time per call by the harness's clock: the judge's per call plus the
        difference of the two commands' wall times per call (the work around each call is the same)."""
        return [j + (w - jw) / self.calls
                for j, w, jw in zip(self.judge_call_ms, self.worker_wall_ms, self.judge_wall_ms)]

    def resolution_ms(self) -> float:
        """What the bursts cannot tell from noise, per call: the allowance plus four standard errors of
        the median paired difference, over the number of calls."""
        paired = [w - j for w, j in zip(self.worker_wall_ms, self.judge_wall_ms)]
        spread = quantile(paired, 0.75) - quantile(paired, 0.25)
        return (ALLOWANCE_MS + 4.0 * spread / max(len(paired), 1) ** 0.5) / self.calls


def _bound(bursts: Bursts, claimed_ms: float) -> tuple[float, float, float]:
    """(measured per call, allowed per call, resolution) of a set of bursts against a claim."""
    resolution = bursts.resolution_ms()
    return quantile(bursts.per_call_ms(), 0.5), claimed_ms * SLACK + resolution, resolution


def check_bursts(bursts: Bursts, claimed_ms: float) -> tuple[str | None, bool]:
    """(why the claim cannot be right, whether the bursts verify it). By the bursts the candidate's call
    takes ``measured``: up to a tenth more than the claim plus the resolution is noise. The commands' raw
    wall times verify the claim (nothing can make them shorter) when they are within that and the
    resolution is at most ``VERIFIED_SHARE`` of the claim; the walls less each side's wait for a core
    (``Bursts.discounted``, which a candidate whose own threads crowd out its main thread could shorten,
    never lengthen) refute it when they exceed twice that bound. In between: unverified."""
    measured, allowed, resolution = _bound(bursts.discounted(), claimed_ms)
    if measured > allowed + claimed_ms:
        return (f"the candidate's worker claims {claimed_ms:.4f} ms per call, but by the harness's clock over "
                f"{bursts.calls} calls back to back it takes {measured:.4f} ms (at most {allowed:.4f} ms allowed)"), False
    measured, allowed, resolution = _bound(bursts, claimed_ms)
    return None, measured <= allowed and resolution <= VERIFIED_SHARE * claimed_ms
