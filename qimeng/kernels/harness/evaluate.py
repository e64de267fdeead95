"""Evaluate kernel candidates against a problem's reference in sandboxed workers.

This process never imports candidate code (nor torch). It starts two sandboxed workers: the judge
(``qimeng.kernels.harness.judge``), which loads the problem and the reference and never any candidate,
and the candidate's worker (``qimeng.kernels.harness.worker``), which loads the candidates one by one.
:mod:`referee` drives both for each candidate and makes the verdict from the judge's comparisons and
this process's own clock; what the candidate's worker reports is evidence, never a verdict. Several
candidates share a worker until one of them crashes it, hangs it, tampers with it or hits a CUDA error;
then a fresh worker takes the rest. The judge stays, unless it dies (a candidate may kill it).
``evaluate_problems`` runs one candidate on several problems (one problem at several sizes) the same
way: between candidates both processes load the next problem file in place.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

from qimeng.core.command_job import Job
from qimeng.core.isolation import Binds, gpu_device_nodes
from qimeng.core.privileges import set_not_dumpable
from qimeng.core.verdict import BadInput, Status
from qimeng.kernels.harness import baselines
from qimeng.kernels.harness.compile_cache import JUDGE_MODULE, judge_environment
from qimeng.kernels.harness.problem import check_problem_source, problem_hash
from qimeng.kernels.harness.referee import Ended, JudgeLost, Referee, ask_worker
from qimeng.kernels.result import EvalOptions, EvalResult, check_options
from qimeng.settings import Settings

if TYPE_CHECKING:
    from qimeng.kernels.store import Store

WORKER_MODULE = "qimeng.kernels.harness.worker"
STARTUP_S = 120.0  # importing torch and the problem, before the first candidate's clock starts
BASELINE_S = 600.0  # extra start-up allowance per torch.compile baseline to measure
LOG_MARK = "\n\x1eqimeng candidate {index}\n"  # the worker prints it where each candidate's output starts


@dataclasses.dataclass
class _Candidate:
    name: str
    source: str
    hash: str
    label: str  # how messages name it: the user's file (the worker loads a copy in its sandbox)


def _read_candidate(candidate: Path | str) -> _Candidate:
    """A Path is read as a file; a str is the candidate's source text."""
    if isinstance(candidate, Path):
        try:
            source = candidate.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"{candidate}: cannot read the candidate file ({exc})") from exc
        name = candidate.name if candidate.suffix == ".py" else candidate.name + ".py"
        label = str(candidate)
    else:
        source, name = candidate, "candidate.py"
        label = name
    return _Candidate(name, source, hashlib.sha256(source.encode()).hexdigest(), label)


def evaluate(problem: Path, candidate: Path | str, options: EvalOptions, *, settings: Settings | None = None,
             store: "Store | None" = None, on_progress: Callable[[str], None] | None = None) -> EvalResult:
    """Evaluate one candidate (a file, or source text) on ``problem``. BadInput for a malformed problem."""
    return evaluate_many(problem, [candidate], options, settings=settings, store=store, on_progress=on_progress)[0]


def evaluate_many(problem: Path, candidates: Sequence[Path | str], options: EvalOptions, *,
                  settings: Settings | None = None, store: "Store | None" = None,
                  on_result: Callable[[int, EvalResult], None] | None = None,
                  on_progress: Callable[[str], None] | None = None,
                  stop: Callable[[], bool] | None = None) -> list[EvalResult]:
    """Evaluate several candidates of one problem in as few sandboxed workers as is safe.

    ``on_result(index, result)`` is called as each result arrives; ``on_progress(line)`` with each phase
    (start-up, trial n of N, timing rounds), the seconds since the start leading. When ``stop()`` is
    true before a candidate starts, it and the rest are left out: the results are those of a prefix. It is
    not asked between the start-up and the first candidate: the start-up's wait for the GPU's lock and
    its torch.compile baselines reach the caller only with the first result (``lock_wait_s``, ``phases_s``),
    so a budget cannot yet tell them from its own work, and the start-up is paid already.
    A broken candidate is a result (compile_error, runtime_error, timeout, crashed, rejected, ...);
    BadInput is raised only for a malformed problem or an unreadable candidate file, before anything
    is stored. With no candidates nothing starts (the problem's source is still checked).
    """
    target = _target(Path(problem), options, store)
    items = [_read_candidate(c) for c in candidates]
    return _evaluate([(target, item) for item in items], settings, store, on_result, on_progress, stop)


def evaluate_problems(problems: Sequence[Path], candidate: Path | str, options: Sequence[EvalOptions], *,
                      settings: Settings | None = None, store: "Store | None" = None,
                      on_result: Callable[[int, EvalResult], None] | None = None,
                      on_progress: Callable[[str], None] | None = None,
                      stop: Callable[[], bool] | None = None) -> list[EvalResult]:
    """Evaluate one candidate on each problem, ``problems[i]`` under ``options[i]`` (one problem at several
    sizes, say), one after the other, as ``evaluate_many`` does: ``on_result``, ``on_progress`` and
    ``stop`` alike. The judge and the candidate's worker are pointed at each next problem in place (the
    judge loads it and builds its reference afresh; the worker loads it between candidates; on the CPU
    only, ``_loads_in_place``); they are
    started afresh where ``evaluate_many`` would start them (a crash, a hang, tampering, a CUDA error) and
    where the options differ in more than ``time_candidate``, which only this process reads."""
    if len(problems) != len(options):
        raise ValueError(f"{len(problems)} problems and {len(options)} options")
    targets: list[_Target] = []
    for path, opts in zip(problems, options):
        same = [t for t in targets if t.problem == Path(path) and t.options == opts]
        targets.append(same[0] if same else _target(Path(path), opts, store))
    item = _read_candidate(candidate)
    return _evaluate([(target, item) for target in targets], settings, store, on_result, on_progress, stop)


@dataclasses.dataclass(eq=False)
class _Target:
    """A problem under its options, with the torch.compile baselines its judge must measure."""

    problem: Path
    options: EvalOptions
    hash: str
    known: dict[str, float]  # read from the store
    to_measure: list[str]
    measured: dict[str, float] = dataclasses.field(default_factory=dict)  # by the judge pointed at it


def _target(problem: Path, options: EvalOptions, store: "Store | None") -> _Target:
    """BadInput for an unknown device, bad options or a malformed problem."""
    if not re.fullmatch(r"cpu|cuda(:\d+)?", options.device):
        raise BadInput(f"unknown device {options.device!r}: use cpu, cuda or cuda:N")
    check_options(options)
    check_problem_source(problem)
    phash = problem_hash(problem, small=options.small)
    compile_modes = tuple(m for m in options.baselines if m != "eager")
    # timed in each candidate's rounds (three-way): compiled by the judge, never read from the cache
    known = {} if options.interleave_baselines else baselines.cached_baselines(store, phash, options.device,
                                                                              compile_modes)
    return _Target(problem, options, phash, known, [m for m in compile_modes if m not in known])


def _evaluate(pairs: list[tuple[_Target, _Candidate]], settings: Settings | None, store: "Store | None",
              on_result: Callable[[int, EvalResult], None] | None, on_progress: Callable[[str], None] | None,
              stop: Callable[[], bool] | None) -> list[EvalResult]:
    """Evaluate each candidate on its target, in order (``evaluate_many``, ``evaluate_problems``)."""
    settings = settings or Settings.from_env()
    if stop is not None and stop():
        return []
    results: list[EvalResult] = []
    started = time.monotonic()

    def say(message: str) -> None:
        if on_progress is not None:
            on_progress(f"[{time.monotonic() - started:7.1f} s] {message}")

    problems = list(dict.fromkeys(t.problem.resolve() for t, _ in pairs))
    with _not_dumpable(), tempfile.TemporaryDirectory(prefix="qimeng-exchange-", dir=_shared_memory_dir()) as tmp:
        pool = _Pool(problems, settings, Path(tmp), say)
        try:
            for index, (target, item) in enumerate(pairs):
                if index and stop is not None and stop():
                    break
                pool.point_at(target)
                if len(pairs) > 1:
                    say(f"candidate {index + 1} of {len(pairs)}")
                result = pool.evaluate(index, item)
                result.candidate_hash, result.problem_hash = item.hash, target.hash
                if result.status is Status.OK:
                    result.baselines_ms.update({**target.known, **target.measured})
                    result.baselines_from.update({**dict.fromkeys(target.known, "store"),
                                                  **dict.fromkeys(target.measured, "start-up"),
                                                  **{m: f"failed: {why}" for m, why in pool.baseline_errors.items()
                                                     if m not in result.baselines_from}})
                results.append(result)
                if on_result is not None:
                    on_result(index, result)
        finally:
            pool.close()
    for target in dict.fromkeys(t for t, _ in pairs):
        mine = [r for (t, _), r in zip(pairs, results) if t is target]
        _save_baselines(store, target.hash, target.options.device, target.measured, mine)
    return results


SHM_MIN_FREE_BYTES = 16 * 2**30  # /dev/shm is used only with this much room (containers often give it 64 MB)


def _shared_memory_dir() -> str | None:
    """/dev/shm where it has room (outputs handed to the judge stay in memory), else the temporary directory."""
    try:
        info = os.statvfs("/dev/shm")
    except OSError:
        return None
    return "/dev/shm" if info.f_bavail * info.f_frsize >= SHM_MIN_FREE_BYTES else None


_DUMPABLE_LOCK = threading.Lock()
_dumpable_holders = 0


@contextlib.contextmanager
def _not_dumpable() -> Iterator[None]:
    """While candidates run, no process of this user may ptrace this one or read its memory and
    descriptors (where the seeds are drawn and the verdict is made). Threads share the setting."""
    global _dumpable_holders
    with _DUMPABLE_LOCK:
        _dumpable_holders += 1
        set_not_dumpable(True)
    try:
        yield
    finally:
        with _DUMPABLE_LOCK:
            _dumpable_holders -= 1
            if not _dumpable_holders:
                set_not_dumpable(False)


def _same_processes(a: EvalOptions, b: EvalOptions) -> bool:
    """Can processes started under ``a`` serve ``b``? Yes when they differ at most in what only this process
    reads (``time_candidate``)."""
    return dataclasses.replace(a, time_candidate=b.time_candidate) == b


def _loads_in_place(options: EvalOptions) -> bool:
    """Can a judge load another problem in place? Not on CUDA: on the H200 the reference of the next problem
    failed with "CUDA error: resource already mapped" in the judge that served the last one."""
    return not options.device.startswith("cuda")


class _Pool:
    """The judge and the candidate's worker; each started again when it must be, and pointed at the next
    problem in place when only the problem file changes."""

    def __init__(self, problems: Sequence[Path], settings: Settings, exchange: Path, say: Callable[[str], None]) -> None:
        self.problems, self.settings, self.exchange = tuple(problems), settings, exchange  # every process reads them all
        self.say = say
        self.target: _Target | None = None  # the problem and options the next candidate is evaluated on
        self.judge: Job | None = None
        self.worker: Job | None = None
        self.worker_problem: Path | None = None  # the problem the running worker has loaded
        self.startup: dict[str, float] = {}  # start-up phases to report with the next result
        self.startup_lock_wait_s = 0.0  # the judge's wait for the GPU's lock while starting, for the next result
        self.versions: dict[str, str] = {}
        self.backend_flags: dict[str, object] = {}  # the judge's: the numerics the reference ran under
        self.in_rounds: tuple[str, ...] = ()  # torch.compile baselines the judge times in each candidate's rounds
        self.baseline_errors: dict[str, str] = {}  # baselines the judge could not build or time, and why

    @property
    def problem(self) -> Path:
        assert self.target is not None
        return self.target.problem

    @property
    def options(self) -> EvalOptions:
        assert self.target is not None
        return self.target.options

    def point_at(self, target: _Target) -> None:
        """Make the judge serve ``target`` (started, or its problem loaded in place); the worker follows
        when the next candidate needs it (``_ready_worker``). The baselines it measured go to ``target``."""
        if self.target is not None and target is not self.target and (
                not _same_processes(self.target.options, target.options) or not _loads_in_place(target.options)):
            self.close()
        if target is self.target:  # a judge that died meanwhile is started again by ``evaluate``
            return
        self.target = target
        if self.judge is None:
            self.say(f"starting the judge and the candidate's worker on {self.options.device} "
                     f"(loading {self.problem.name})")
            target.measured = self.start_judge(target.to_measure)
        else:
            self.say(f"loading {self.problem.name} in the judge")
            self.judge.resume()  # stopped after a timed command of the last candidate, or running
            self.judge.send({"cmd": "problem", "problem": str(self.problem.resolve()), "baselines": target.to_measure})
            target.measured = self._judge_ready(target.to_measure)

    def _payload(self, **extra: object) -> dict:
        return {"problem": str(self.problem.resolve()), "options": dataclasses.asdict(self.options),
                "exchange": str(self.exchange), **extra}

    def _binds(self, *writable: Path) -> Binds:
        """What a worker reaches in its private mount namespace: the exchange (and ``writable``), the
        problem files, the GPU's device nodes."""
        devices = gpu_device_nodes() if self.options.device.startswith("cuda") else ()
        return Binds(writable=(self.exchange, *writable), read_only=self.problems, devices=devices)

    def start_judge(self, to_measure: list[str]) -> dict[str, float]:
        """Start the judge (and the first worker, whose start-up overlaps it); the baselines it measured."""
        extra_env, writable = judge_environment(self.settings, self.options.device)  # compile caches, lock files
        self.judge = Job(JUDGE_MODULE, self._payload(baselines=to_measure), settings=self.settings, extra_env=extra_env,
                         binds=self._binds(*writable))
        _warn_once(self.judge.isolation.warning)
        if self.worker is None:
            self._start_worker()
        return self._judge_ready(to_measure)

    def _judge_ready(self, to_measure: list[str]) -> dict[str, float]:
        """The judge's ready message, once it has loaded the problem; the baselines it measured."""
        assert self.judge is not None
        ready = self.judge.receive(STARTUP_S + BASELINE_S * len(to_measure))
        if ready is None or ready.get("kind") != "ready":
            reason = ready["reason"] if ready and ready.get("kind") == "bad_input" else (
                f"{self.problem}: the judge {self.judge.describe_exit()} while loading the problem"
                f"{_tail(self.judge.output().stderr)}")
            raise BadInput(reason)
        self.versions = ready.get("versions", {})
        self.backend_flags = ready.get("backend_flags", {})
        self.startup.update(ready.get("startup_s", {}))
        waited = ready.get("lock_wait_s")
        self.startup_lock_wait_s += float(waited) if isinstance(waited, (int, float)) else 0.0
        self.in_rounds = tuple(ready.get("in_rounds", ()))
        self.baseline_errors = dict(ready.get("baseline_errors", {}))
        return dict(ready.get("baselines", {}))

    def _start_worker(self) -> None:
        extra_env = {"TRITON_INTERPRET": "1"} if self.options.device == "cpu" else {}
        self.worker = Job(WORKER_MODULE, self._payload(), settings=self.settings, extra_env=extra_env, binds=self._binds())
        self.worker_problem = self.problem
        self._worker_ready = False

    def _ready_worker(self) -> Job | EvalResult:
        """The candidate's worker, started (or pointed at this problem) and ready; a result when it could not start."""
        if self.worker is not None and self.worker_problem != self.problem:
            if self._worker_ready:
                self._point_worker()
            else:  # still starting on the last problem
                self._drop_worker()
        if self.worker is None:
            self._start_worker()
        assert self.worker is not None
        if not self._worker_ready:
            ready = self.worker.receive(STARTUP_S)
            if ready is None or ready.get("kind") != "ready":
                if ready is not None and ready.get("kind") == "bad_input":
                    raise BadInput(ready["reason"])
                return EvalResult(status=Status.CRASHED, device=self.options.device,
                                  reason=f"the worker {self.worker.describe_exit()} while starting"
                                  f"{_tail(self.worker.output().stderr)}")
            self.startup.update(ready.get("startup_s", {}))
            self._worker_ready = True
            self.worker.stop_and_wait(1.0)
        return self.worker

    def _point_worker(self) -> None:
        """Load this problem in the running worker, which ran candidates: anything but its ready answer
        drops it (a fresh worker then starts, and is believed about the problem)."""
        assert self.worker is not None
        try:
            ready = ask_worker(self.worker, {"cmd": "problem", "problem": str(self.problem.resolve())}, "ready", STARTUP_S)
        except Ended:
            self._drop_worker()
            return
        self.startup.update(ready.get("startup_s", {}))
        self.worker_problem = self.problem

    def evaluate(self, index: int, item: "_Candidate") -> EvalResult:
        if self.judge is None:  # a judge that died: the next one compiles again what is timed in the rounds
            self.start_judge(list(self.in_rounds))
        worker = self._ready_worker()
        if isinstance(worker, EvalResult):
            self._drop_worker()
            return worker
        path = Path(worker._tmp.name) / f"candidate_{index}_{item.name}"
        path.write_text(item.source)
        referee = Referee(self.judge, worker, self.options, item.source, self.backend_flags,  # type: ignore[arg-type]
                          self.say, self.in_rounds)
        try:
            outcome = referee.run(index, str(path))
            result, discard = outcome.result, outcome.discard
        except JudgeLost as lost:
            result = EvalResult(status=Status.CRASHED, device=self.options.device,
                                reason=f"{lost} while judging the candidate{_tail(self.judge.output().stderr)}")  # type: ignore[union-attr]
            discard = True
            self.judge.close()  # type: ignore[union-attr]
            self.judge = None
        output = worker.output()
        result.log = _users_name(_log_of(index, output.stdout, output.stderr), path, item.label)
        result.reason = _users_name(result.reason, path, item.label)
        if result.status is Status.CRASHED and result.log and "judge" not in result.reason:
            lines = [line.strip() for line in result.log.splitlines() if line.strip()]
            cause = next((line for line in lines if line.startswith("Fatal Python error")), lines[-1] if lines else "")
            result.reason += f": {cause}" if cause else ""
        result.versions = dict(self.versions)
        result.phases_s = {**self.startup, **result.phases_s}
        result.lock_wait_s += self.startup_lock_wait_s
        self.startup, self.startup_lock_wait_s = {}, 0.0
        if discard:
            self._drop_worker()
        return result

    def _drop_worker(self) -> None:
        if self.worker is not None:
            self.worker.close()
            self.worker = None

    def close(self) -> None:
        """End both processes (the next candidate starts them afresh)."""
        for job in (self.worker, self.judge):
            if job is not None:
                job.send({"cmd": "exit"})
                job.close()
        self.worker = self.judge = None


_WARNED: set[str] = set()


def _warn_once(warning: str) -> None:
    """Say once per process that the kernel workers run without filesystem isolation, and why."""
    if warning and warning not in _WARNED:
        _WARNED.add(warning)
        print(f"qimeng: kernel workers: {warning}", file=sys.stderr)


def _log_of(index: int, stdout: str, stderr: str) -> str:
    """The part of the worker's output printed while candidate ``index`` ran."""
    parts = []
    for text in (stdout, stderr):
        mark = LOG_MARK.format(index=index)
        dropped = text.startswith("[... ")  # the bounded tail lost its start: the mark too, when it is not here
        section = text.split(mark, 1)[1] if mark in text else (text if dropped else "")
        parts.append(section.split(LOG_MARK.split("{")[0], 1)[0].strip())  # up to the next candidate
    return "\n".join(p for p in parts if p)


def _users_name(text: str, copy: Path, label: str) -> str:
    """``text`` with the sandbox's copy of a candidate named as the user's file."""
    return text.replace(str(copy), label).replace(copy.name, label)


def _tail(text: str, lines: int = 3) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return (": " + " | ".join(kept)) if kept else ""


def _save_baselines(store: "Store | None", phash: str, device: str, measured: dict[str, float],
                    results: list[EvalResult]) -> None:
    timed = next((r for r in results if r.status is Status.OK and r.ref_ms is not None and r.timing_meaningful), None)
    in_rounds = {m: ms for m, ms in timed.baselines_ms.items() if timed.baselines_from.get(m) == "rounds"} if timed else {}
    found = {**measured, **in_rounds}  # eager, and torch.compile when it was timed in the rounds
    baselines.save_baselines(store, phash, device, found)
