"""The trusted side of one candidate's evaluation: it drives the judge and the candidate's worker, and
makes the verdict from what they return.

The harness draws every trial's seed when the trial starts and sends it to both. The candidate's
worker runs only between a command and its answer: it is SIGSTOPped otherwise, so while the judge reads
its outputs from shared memory, or times the reference, nothing of it runs (the harness checks that its
CPU time did not move meanwhile). What the worker answers is evidence (where its outputs are, its own
timings); a failure it reports is believed, an answer of the wrong kind, or anything else it writes on
its channel, is tampering. ``ok`` needs the judge's comparisons of every correctness trial, of the timed
rounds the harness picks after seeing them, and timings the harness's own clock allows (outside_clock).
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, Callable

from qimeng.core.command_job import Job
from qimeng.core.verdict import BadInput, Status
from qimeng.kernels.harness import outside_clock
from qimeng.kernels.harness.stats import mean, median_interval, quantile
from qimeng.kernels.result import EvalOptions, EvalResult

_TRITON_IMPORT = re.compile(r"^\s*(import|from)\s+triton\b", re.MULTILINE)  # its kernels run interpreted on CPU
CHECK_FAST_ROUND = 0.25  # chance that a timed round whose claim is at most the median so far is checked
CHECK_SLOW_ROUND = 0.05  # ... and one whose claim is above it (the last round is always checked)
_STOP_SETTLE_S = 1.0
LOCK_WAIT_S = 3600.0  # how long the judge may wait for the GPU's lock
PROGRESS_EVERY_S = 5.0  # timing rounds are reported at most this often
MIN_BUDGET_ROUNDS = 5  # timed rounds that run even when the time budget (EvalOptions.timing_budget_s) is spent


class Ended(Exception):
    """The candidate's evaluation ends with this status (``discard``: its worker is not reused)."""

    def __init__(self, status: Status, reason: str, discard: bool = False) -> None:
        super().__init__(reason)
        self.status, self.reason, self.discard = status, reason, discard


class JudgeLost(Exception):
    """The judge died or stopped answering (a candidate can kill it: the candidate's result says so)."""


def draw_seed() -> int:
    return secrets.randbelow(2**62)


@dataclass
class Outcome:
    result: EvalResult
    discard: bool  # the candidate's worker must not evaluate another candidate


def ask_worker(worker: Job, command: dict, expect: str, timeout_s: float) -> dict:
    """Run the candidate's worker for one command; its answer, with the harness's wall time in ``wall_ms``.
    Ended when it was not stopped and silent before, died, hung past ``timeout_s``, failed or answered
    anything but ``expect``."""
    if not worker.stop_and_wait(_STOP_SETTLE_S):  # stopped since its last answer: usually at once
        raise Ended(Status.REJECTED, "the candidate's worker could not be stopped", True)
    if worker.unasked():
        raise Ended(Status.REJECTED, "the candidate's worker wrote on its channel before it was asked", True)
    worker.resume()
    started = time.perf_counter()
    sent = worker.send(command)
    message = worker.receive(timeout_s) if sent else None
    wall_ms = (time.perf_counter() - started) * 1e3
    worker.stop()  # delivered within microseconds; the judge's reads wait for it (judge_while_stopped)
    if message is None:
        raise _death(worker, timeout_s)
    if worker.forged_messages:
        raise Ended(Status.REJECTED, "the candidate wrote on the harness's channel "
                    f"({worker.forged_messages} line(s) without the channel's nonce)", True)
    if message.get("kind") == "failed":
        try:
            status = Status(message.get("status"))
        except ValueError:
            status = Status.REJECTED
        status = Status.REJECTED if status is Status.OK else status
        raise Ended(status, str(message.get("reason", "")), bool(message.get("discard", True)))
    if message.get("kind") != expect:
        raise Ended(Status.REJECTED, f"the candidate's worker answered {str(message.get('kind'))[:40]!r} "
                    f"where {expect!r} was due", True)
    return {**message, "wall_ms": wall_ms}


def _death(worker: Job, timeout_s: float) -> Ended:
    if worker.timed_out:
        freed = f" (process gone {worker.kill_s:.2f} s after SIGKILL)" if worker.kill_s is not None else ""
        return Ended(Status.TIMEOUT, f"no result within {timeout_s:g} s; the worker was killed{freed}", True)
    worker.close()
    return Ended(Status.CRASHED, f"the worker {worker.describe_exit()} while evaluating the candidate", True)


def _waited(job: Job, ask: Callable[[], dict]) -> dict:
    """``ask()``'s answer with ``queued_ms``: how long ``job``'s main thread waited for a core meanwhile
    (set here, after the answer: nothing the side wrote can set it)."""
    before = job.queued_ns()
    answer = ask()
    return {**answer, "queued_ms": (job.queued_ns() - before) / 1e6}

class Referee:
    """Evaluates one candidate with a judge and a candidate worker that are both ready."""

    def __init__(self, judge: Job, worker: Job, options: EvalOptions, source: str,
                 backend_flags: dict | None = None, say: Callable[[str], None] | None = None,
                 in_rounds: tuple[str, ...] = ()) -> None:
        self.judge, self.worker, self.options, self.source = judge, worker, options, source
        self.in_rounds = in_rounds  # torch.compile baselines the judge times in the rounds (three-way)
        self.say = say or (lambda message: None)  # progress: each phase as it starts
        self.result = EvalResult(status=Status.OK, device=options.device, mode=options.mode,
                                 protocol=options.protocol, backend_flags=dict(backend_flags or {}))
        self.judge_waiting = 0  # commands sent to the judge whose answer is still to be read

    # -- talking to the two processes -------------------------------------------------------------

    def ask_worker(self, command: dict, expect: str) -> dict:
        return ask_worker(self.worker, command, expect, self.options.timeout_s)

    def judge_send(self, command: dict, resume: bool = True) -> None:
        if resume:
            self.judge.resume()  # stopped after its last timed command (judge_timed); at once when it runs
        self.judge.send(command)
        self.judge_waiting += 1

    def judge_receive(self, expect: str, timeout_s: float | None = None) -> dict:
        message = self.judge.receive(timeout_s or self.options.timeout_s + 60.0)
        self.judge_waiting -= 1
        if message is None:
            raise JudgeLost(f"the judge {self.judge.describe_exit()}")
        if message.get("kind") == "bad_input":
            raise BadInput(message["reason"])
        if message.get("kind") != expect:
            raise JudgeLost(f"the judge answered {message.get('kind')!r} where {expect!r} was due")
        return message

    def ask_judge(self, command: dict, expect: str, timeout_s: float | None = None, resumed: bool = False) -> dict:
        """Send one command to the judge; its answer, with the harness's wall time in ``wall_ms``
        (from before the command was written, as for the candidate's worker; ``resumed``: the judge was
        woken before, as the worker is before its clock starts, so no wake-up is inside the clock)."""
        started = time.perf_counter()
        self.judge_send(command, resume=not resumed)
        answer = self.judge_receive(expect, timeout_s)
        return {**answer, "wall_ms": (time.perf_counter() - started) * 1e3}

    def judge_timed(self, command: dict, expect: str) -> dict:
        """One of the judge's timed commands (a round, a burst), woken from a stop and stopped again after
        its answer, as the candidate's worker is for its own: the harness's clock sees the same path on
        both sides, and neither side's idle threads run beside the other's timed calls (after a parallel
        region OpenMP's threads spin for a while: on a 2-core CPU the judge's, left running, slowed a
        kept reference's rounds to 0.80-0.92x of its own)."""
        self.judge.stop_and_wait(_STOP_SETTLE_S)
        self.judge.resume()
        answer = self.ask_judge(command, expect, resumed=True)
        self.judge.stop()
        return answer

    def judge_round(self, seed: int, baseline: str | None = None) -> dict:
        """One of the judge's timed rounds: of the reference, or of a torch.compile ``baseline``."""
        return self.judge_timed({"cmd": "round", "seed": seed, "baseline": baseline}, "round")

    def judge_while_stopped(self, command: dict) -> dict:
        """Ask the judge to read the worker's shared memory; the worker must stay stopped meanwhile."""
        if not self.worker.stop_and_wait(_STOP_SETTLE_S, every_thread=True):
            raise Ended(Status.REJECTED, "the candidate's worker could not be stopped", True)
        before = self.worker.cpu_ticks()
        answer = self.ask_judge(command, "checked")
        if not self.worker.is_stopped() or self.worker.cpu_ticks() != before:
            raise Ended(Status.REJECTED, "the candidate's worker ran while the judge read its outputs", True)
        return answer

    def settle_judge(self) -> None:
        """Read the answers still due from the judge (after the candidate's evaluation ended early)."""
        while self.judge_waiting:
            self.judge_receive_any()

    def judge_receive_any(self) -> None:
        message = self.judge.receive(self.options.timeout_s + 60.0)
        self.judge_waiting -= 1
        if message is None:
            raise JudgeLost(f"the judge {self.judge.describe_exit()}")

    # -- stages ----------------------------------------------------------------------------------

    def flag(self, name: str) -> None:
        if name not in self.result.flags:
            self.result.flags.append(name)

    def trial(self, when: str, fingerprint: bool = False, counted: bool = True) -> None:
        """One correctness trial on a seed drawn now: the judge computes the reference while the
        candidate runs, then compares the candidate's exported outputs with it."""
        seed = draw_seed()
        self.judge_send({"cmd": "reference", "seed": seed, "tag": "trial", "fingerprint": fingerprint})
        evidence = self.ask_worker({"cmd": "trial", "seed": seed, "when": when}, "outputs")
        if self.judge_receive("reference").get("random"):
            self.flag("random_reference")
        verdict = self.judge_while_stopped({"cmd": "check", "tag": "trial", "leaves": evidence.get("leaves"),
                                            "buffers": evidence.get("buffers"),
                                            "buffer_names": evidence.get("buffer_names")})
        self.result.atol, self.result.rtol = verdict["atol"], verdict["rtol"]
        if verdict["reason"]:
            raise Ended(Status.INCORRECT, f"{verdict['reason']} ({when})")
        for name in verdict["flags"]:
            self.flag(name)
        if "output_aliases_input" in (evidence.get("flags") or []):
            self.flag("output_aliases_input")
        self.result.trials += counted

    def timing(self) -> None:
        """Timed rounds, a fresh seed each; some of the candidate's rounds are compared. Our protocol
        interleaves the sides round by round (the reference, the torch.compile baselines the judge times
        in the rounds, the candidate), in an order that rotates (``round_order``); ``--protocol
        kernelbench`` runs the reference's rounds, then each baseline's, then the candidate's, by that
        evaluator's clock (kernelbench.py), and reports the means. After ``timing_budget_s`` (slow calls)
        the rounds end, once ``MIN_BUDGET_ROUNDS`` ran."""
        opts = self.options
        kb = opts.protocol == "kernelbench"
        seed = draw_seed()
        warm_budget = None if opts.timing_budget_s is None else opts.timing_budget_s / 5
        warm = {"cmd": "warmup", "seed": seed, "calls": opts.warmup, "budget_s": warm_budget}
        self.say(f"timing: {opts.warmup} warm-up calls, then up to {opts.timing_trials} rounds"
                 + (f" (eager, {', '.join(self.in_rounds)} and the candidate)" if self.in_rounds else ""))
        self.ask_judge(warm, "warm")
        self.ask_worker(warm, "warm")
        judge = outside_clock.Rounds([], [])
        worker = outside_clock.Rounds([], [])
        compiled: dict[str, list[float]] = {mode: [] for mode in self.in_rounds}  # the judge's own clock: trusted
        failed: dict[str, str] = {}
        late = 0
        last_reference: dict = {}  # the judge's answer of the last round: its output's size
        seeds = [draw_seed() for _ in range(opts.timing_trials)] if kb else []
        if kb:
            started = time.perf_counter()
            for k in range(opts.timing_trials):
                self._record(judge, _waited(self.judge, lambda: self.judge_round(seeds[k])))
                if self._last_round(k, started):
                    break
            for mode in self.in_rounds:
                for k in range(len(judge.claimed_ms)):
                    if mode not in failed:
                        self._record_baseline(mode, self.judge_round(seeds[k], mode), compiled, failed)
        started = said = time.perf_counter()
        for k in range(opts.timing_trials):
            seed = seeds[k] if kb else draw_seed()
            answers = {}
            sides = ["worker"] if kb else round_order(["judge", *self.in_rounds, "worker"], k)
            for side in sides:
                if side == "worker":
                    answers[side] = _waited(self.worker, lambda: self.ask_worker({"cmd": "round", "seed": seed}, "round"))
                elif side == "judge":
                    answers[side] = _waited(self.judge, lambda: self.judge_round(seed))
                elif side not in failed:
                    self._record_baseline(side, self.judge_round(seed, side), compiled, failed)
            if not kb:
                self._record(judge, answers["judge"])
                last_reference = answers["judge"]
            self._record(worker, answers["worker"])
            late += bool(answers["worker"].get("late"))
            last = self._last_round(k, started) or (kb and k == len(judge.claimed_ms) - 1)
            if self._check_round(last, worker.claimed_ms):
                if kb:  # the judge's own round of this seed is long gone: its reference for it, now
                    self.ask_judge({"cmd": "reference", "seed": seed, "tag": "round", "fingerprint": False}, "reference")
                verdict = self.judge_while_stopped({"cmd": "check", "tag": "round", "keep": True,
                                                    "leaves": answers["worker"].get("leaves")})
                if verdict["reason"]:
                    raise Ended(Status.INCORRECT, f"{verdict['reason']} (in timed round {k + 1})")
            if last:
                break
            if time.perf_counter() - said > PROGRESS_EVERY_S:
                self.say(f"timing round {k + 1} of {opts.timing_trials}")
                said = time.perf_counter()
        reason = outside_clock.check(judge, worker)
        if reason:
            raise Ended(Status.REJECTED, f"{reason} (while timing)", True)
        res = self.result
        centre = mean if kb else (lambda v: quantile(v, 0.5))
        res.ref_ms, res.candidate_ms = centre(judge.claimed_ms), centre(worker.claimed_ms)
        meaningful = not (opts.device == "cpu" and _TRITON_IMPORT.search(self.source))
        verified = not outside_clock.unverified(judge, worker, opts.device)
        if not verified and not kb and meaningful and last_reference.get("tensors_only"):
            verified = self.bursts(res.candidate_ms, res.ref_ms, int(last_reference.get("output_bytes") or 0))
        self.ask_worker({"cmd": "end_timing"}, "timed")
        res.ref_iqr_ms = quantile(judge.claimed_ms, 0.75) - quantile(judge.claimed_ms, 0.25)
        res.candidate_iqr_ms = quantile(worker.claimed_ms, 0.75) - quantile(worker.claimed_ms, 0.25)
        res.timing_trials = len(worker.claimed_ms)
        res.baselines_ms["eager"] = res.ref_ms
        res.baselines_from["eager"] = "rounds"
        for mode, times in compiled.items():
            if mode in failed:
                res.baselines_from[mode] = f"failed: {failed[mode]}"
            else:
                res.baselines_ms[mode], res.baselines_from[mode] = centre(times), "rounds"
        if not kb:
            res.speedup_ci = {mode: list(ratio_interval(times, worker.claimed_ms)) for mode, times
                              in {"eager": judge.claimed_ms, **compiled}.items() if mode not in failed}
        res.speedup = res.ref_ms / res.candidate_ms if res.candidate_ms > 0 else None
        if not verified:
            self.flag("timing_unverified")
        if res.speedup is not None and res.speedup > 10:
            self.flag("speedup_over_10x")
        if late > res.timing_trials // 10:  # more than stray host jitter
            self.flag("work_left_on_side_stream")
        if not meaningful:
            res.timing_meaningful = False
            self.flag("timing_not_meaningful")
        roofline = self.ask_judge({"cmd": "roofline", "seed": draw_seed()}, "roofline")["ms"]
        res.roofline_ms = roofline
        if roofline is not None and res.candidate_ms is not None and res.candidate_ms < roofline:
            self.flag("beyond_roofline")

    @staticmethod
    def _record_baseline(mode: str, answer: dict, times: dict[str, list[float]], failed: dict[str, str]) -> None:
        """A baseline's round, by the judge's own clock; one that failed is timed no more."""
        if answer.get("error") is not None or not isinstance(answer.get("ms"), (int, float)):
            failed[mode] = str(answer.get("error"))[:200]
        else:
            times[mode].append(float(answer["ms"]))

    def bursts(self, claimed_ms: float, reference_ms: float, output_bytes: int) -> bool:
        """Verification bursts (burst.py, outside_clock.Bursts) for a claim shorter than the rounds'
        clock resolves: whether they verify it (a claim they refute ends the evaluation, rejected)."""
        calls = outside_clock.burst_calls(claimed_ms, reference_ms, output_bytes, self.options.device)
        if not outside_clock.bursts_could_verify(calls, claimed_ms):
            self.result.reason = (f"timing not verified: bursts of {calls} call(s) (sized from the reference's "
                                  f"{reference_ms:.3f} ms and {output_bytes} output bytes a call) cannot resolve "
                                  f"a claim of {claimed_ms:.4f} ms a call")
            return False
        reseed = "random_reference" in self.result.flags
        walls: dict[str, list[float]] = {"judge": [], "worker": []}  # the harness's clock around each command
        queued: dict[str, list[float]] = {"judge": [], "worker": []}  # each side's main thread waiting for a core
        judge_call: list[float] = []
        for b in range(outside_clock.BURSTS + 1):  # the first pair warms both sides up: not counted
            command = {"cmd": "burst", "seed": draw_seed(), "calls": calls, "reseed": reseed}
            committed: dict = {}
            for side in ("judge", "worker") if b % 2 == 0 else ("worker", "judge"):
                if side == "judge":
                    answer = _waited(self.judge, lambda: self.judge_timed(command, "burst"))
                    judge_call.append(_milliseconds(answer.get("call_ms")))
                else:
                    answer = committed = _waited(self.worker, lambda: self.ask_worker(command, "burst"))
                walls[side].append(answer["wall_ms"])
                queued[side].append(answer["queued_ms"])
            self._check_burst(calls, committed.get("digests"))
        bursts = outside_clock.Bursts(calls, walls["judge"][1:], walls["worker"][1:], judge_call[1:],
                                      queued["judge"][1:], queued["worker"][1:])
        reason, verified = outside_clock.check_bursts(bursts, claimed_ms)
        if reason and self.options.device == "cpu":
            # On a loaded CPU the bursts' clock refuted honest calls too (an honest 0.15 ms call measured at
            # 3.7 ms per call with three busy processes on two cores): there a refutation only leaves the
            # timing unverified, which keeps the result out of the clean scores, never a false rejection.
            self.result.reason = f"timing not verified: {reason}"
            return False
        if reason:
            raise Ended(Status.REJECTED, f"{reason} (while verifying its timing)", True)
        return verified

    def _check_burst(self, calls: int, digests: Any) -> None:
        """Compare a few calls of the last burst, picked now (after its answer committed to every call)."""
        if not (isinstance(digests, list) and digests and all(isinstance(d, list) and len(d) == calls for d in digests)):
            raise Ended(Status.REJECTED, "the candidate's worker committed to its burst's outputs wrongly", True)
        picked = sorted({secrets.randbelow(calls) for _ in range(outside_clock.BURST_CHECKED_CALLS)})
        exported = self.ask_worker({"cmd": "burst_export", "calls": picked}, "burst_outputs")
        verdict = self.judge_while_stopped({"cmd": "burst_check", "calls": picked, "leaves": exported.get("leaves"),
                                            "digests": [[leaf[c] for leaf in digests] for c in picked]})
        if verdict["reason"]:
            tampered = bool(verdict.get("tampered"))
            raise Ended(Status.REJECTED if tampered else Status.INCORRECT, verdict["reason"], tampered)
        for name in verdict["flags"]:
            self.flag(name)

    def _last_round(self, k: int, started: float) -> bool:
        """Whether round ``k``, just answered, is the last: the ``timing_trials``-th, or one after
        ``MIN_BUDGET_ROUNDS`` once the time budget (from ``started``) is spent. Known only now."""
        opts = self.options
        spent = opts.timing_budget_s is not None and time.perf_counter() - started > opts.timing_budget_s
        return k == opts.timing_trials - 1 or (spent and k + 1 >= MIN_BUDGET_ROUNDS)

    @staticmethod
    def _record(rounds: outside_clock.Rounds, answer: dict) -> None:
        rounds.claimed_ms.append(_milliseconds(answer.get("ms")))
        rounds.wall_ms.append(answer["wall_ms"])
        rounds.queued_ms.append(answer["queued_ms"])

    def _check_round(self, last: bool, claimed: list[float]) -> bool:
        """Whether to compare a round, decided after its answer: the last one always; the others by
        chance, likelier when the claim is fast (a round whose work was skipped claims a fast time)."""
        if last:
            return True
        chance = CHECK_FAST_ROUND if claimed[-1] <= quantile(claimed, 0.5) else CHECK_SLOW_ROUND
        return secrets.randbelow(10_000) < chance * 10_000

    def run(self, index: int, path: str) -> Outcome:
        """Evaluate the candidate; JudgeLost and BadInput propagate."""
        opts, phases = self.options, self.result.phases_s
        started = time.perf_counter()
        locked = False
        self.ask_judge({"cmd": "memory_start"}, "memory")
        try:
            with _phase(phases, "load"):
                self.ask_worker({"cmd": "load", "index": index, "path": path}, "loaded")
            # Triton compiles here: beside other evaluations' first calls (the lock shared), never beside a clock
            self._count_wait(self.ask_judge({"cmd": "lock", "shared": True}, "locked", LOCK_WAIT_S))
            locked = True
            with _phase(phases, "first_call"):
                self.say("first call (load and compile)")
                self.trial("first call", counted=False)
            self.ask_judge({"cmd": "unlock"}, "unlocked")
            locked = False
            self.result.compile_ms = (time.perf_counter() - started) * 1e3
            # the rest has the device to itself; other evaluations of this GPU may hold it a while
            held = self._count_wait(self.ask_judge({"cmd": "lock"}, "locked", LOCK_WAIT_S))["held"]
            locked = True
            if held is False:
                self.flag("timing_unlocked")
            with _phase(phases, "correctness"):
                for t in range(opts.correctness_trials):
                    self.say(f"correctness trial {t + 1} of {opts.correctness_trials}")
                    self.trial(f"trial {t + 1}", fingerprint=True)
            with _phase(phases, "inspect"):
                found = self.ask_worker({"cmd": "inspect", "seed": draw_seed()}, "inspected")
                self.result.ops_called = [str(op) for op in found.get("ops_called") or []]
            if opts.time_candidate and opts.timing_trials > 0:
                with _phase(phases, "timing"):
                    self.timing()
            with _phase(phases, "recheck"):
                self.say("check after timing")
                self.trial("after timing")
            if opts.kernel_share and opts.device.startswith("cuda"):
                with _phase(phases, "kernel_share"):  # last: the profiler slows the worker's later calls
                    share = self.ask_worker({"cmd": "kernel_share", "seed": draw_seed()}, "kernel_share").get("own_kernel_share")
                    self.result.own_kernel_share = float(share) if isinstance(share, (int, float)) else None
            degenerate = self.ask_judge({"cmd": "degenerate"}, "degenerate")["reason"]
            if degenerate:
                self.flag("degenerate_reference")
                self.result.reason = degenerate
            discard = self.unload()
        except Ended as end:
            self.result.status, self.result.reason = end.status, end.reason
            self._clear_timings()
            discard = end.discard
        finally:
            self.settle_judge()
            if locked:
                self.ask_judge({"cmd": "unlock"}, "unlocked")
            judge_peaks = self.ask_judge({"cmd": "memory"}, "memory")
            self.result.judge_peak_device_bytes = _bytes(judge_peaks.get("peak_device_bytes"))
            self.result.judge_peak_rss_bytes = _bytes(judge_peaks.get("peak_rss_bytes"))
        if not discard and self.result.status is not Status.OK:
            try:
                discard = self.unload()
            except Ended:
                discard = True
        return Outcome(self.result, discard)

    def _count_wait(self, locked: dict) -> dict:
        """The judge's answer to a lock command, its wait for other evaluations added to ``lock_wait_s``."""
        waited = locked.get("waited_s")
        if isinstance(waited, (int, float)) and waited > 0:
            self.result.lock_wait_s += float(waited)
        return locked

    def unload(self) -> bool:
        """Unload the candidate; its worker's memory peaks and backend flags are evidence (its own
        figures), recorded as such. Returns whether the worker must be discarded."""
        answer = self.ask_worker({"cmd": "unload"}, "unloaded")
        res = self.result
        res.peak_device_bytes = _bytes(answer.get("peak_device_bytes"))
        res.peak_rss_bytes = _bytes(answer.get("peak_rss_bytes"))
        if res.backend_flags and answer.get("backend_flags") != res.backend_flags:
            self.flag("backend_flags_changed")  # the candidate's process computed under other numerics
        return bool(answer.get("discard"))

    def _clear_timings(self) -> None:
        res = self.result
        res.ref_ms = res.candidate_ms = res.ref_iqr_ms = res.candidate_iqr_ms = res.speedup = None
        res.baselines_ms.clear()
        res.baselines_from.clear()
        res.speedup_ci.clear()


def round_order(sides: list[str], k: int) -> list[str]:
    """The order of the sides in round ``k``: rotated by one each round, so none always goes first."""
    shift = k % len(sides)
    return sides[shift:] + sides[:shift]


def ratio_interval(baseline_ms: list[float], candidate_ms: list[float]) -> tuple[float, float]:
    """A 95% interval of the median per-round speed-up (baseline / candidate of the same round)."""
    ratios = [b / c for b, c in zip(baseline_ms, candidate_ms) if c > 0]
    return median_interval(ratios) if ratios else (0.0, 0.0)


def _milliseconds(value: Any) -> float:
    """A time the candidate's worker claimed, as a float (anything else is tampering)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value == value or value < 0:
        raise Ended(Status.REJECTED, f"the candidate's worker claimed a time of {str(value)[:40]!r}", True)
    return float(value)


def _bytes(value: Any) -> int | None:
    """A memory figure from a worker's answer, if it is one."""
    return int(value) if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


class _phase:
    """Record the harness's wall seconds of one stage in ``phases[name]`` (also when it fails)."""

    def __init__(self, phases: dict[str, float], name: str) -> None:
        self.phases, self.name = phases, name

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.phases[self.name] = round(time.perf_counter() - self.t0, 4)
