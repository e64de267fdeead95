"""Evaluate kernel candidates against a problem's reference in sandboxed workers.

This process never imports candidate code (nor torch): it parses the problem, hands the candidates'
source text to a worker (``qimeng.kernels.harness.worker``) in the sandbox, and turns what comes back, or the
way the worker died, into one :class:`EvalResult` per candidate. Several candidates share a worker
until one of them crashes it, hangs it, tampers with it or hits a CUDA error; then a fresh worker
takes the rest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from qimeng.core.sandbox import JobOutput, SandboxResult, run_job
from qimeng.core.verdict import BadInput, Status
from qimeng.kernels.harness import baselines, device_lock
from qimeng.kernels.harness.problem import check_problem_source, problem_hash
from qimeng.kernels.result import EvalOptions, EvalResult, check_options
from qimeng.settings import Settings

if TYPE_CHECKING:
    from qimeng.core.store import Store

WORKER_MODULE = "qimeng.kernels.harness.worker"
STARTUP_S = 120.0  # importing torch and the problem, before the first candidate's clock starts
BASELINE_S = 600.0  # extra start-up allowance per torch.compile baseline to measure
LOG_MARK = "\n\x1eqimeng candidate {index}\n"  # the worker prints it where each candidate's output starts


@dataclasses.dataclass
class _Candidate:
    name: str
    source: str
    hash: str


def _read_candidate(candidate: Path | str) -> _Candidate:
    """A Path is read as a file; a str is the candidate's source text."""
    if isinstance(candidate, Path):
        try:
            source = candidate.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"{candidate}: cannot read the candidate file ({exc})") from exc
        name = candidate.name if candidate.suffix == ".py" else candidate.name + ".py"
    else:
        source, name = candidate, "candidate.py"
    return _Candidate(name, source, hashlib.sha256(source.encode()).hexdigest())


def evaluate(problem: Path, candidate: Path | str, options: EvalOptions, *, settings: Settings | None = None,
             store: "Store | None" = None) -> EvalResult:
    """Evaluate one candidate (a file, or source text) on ``problem``. BadInput for a malformed problem."""
    return evaluate_many(problem, [candidate], options, settings=settings, store=store)[0]


def evaluate_many(problem: Path, candidates: Sequence[Path | str], options: EvalOptions, *,
                  settings: Settings | None = None, store: "Store | None" = None,
                  on_result: Callable[[int, EvalResult], None] | None = None) -> list[EvalResult]:
    """Evaluate several candidates of one problem in as few sandboxed workers as is safe.

    ``on_result(index, result)`` is called as each result arrives. A broken candidate is a result
    (compile_error, runtime_error, timeout, crashed, rejected, ...); BadInput is raised only for a
    malformed problem or an unreadable candidate file, before anything is stored.
    """
    problem = Path(problem)
    settings = settings or Settings.from_env()
    if not re.fullmatch(r"cpu|cuda(:\d+)?", options.device):
        raise BadInput(f"unknown device {options.device!r}: use cpu, cuda or cuda:N")
    check_options(options)
    check_problem_source(problem)
    items = [_read_candidate(c) for c in candidates]
    phash = problem_hash(problem, small=options.small)
    compile_modes = tuple(m for m in options.baselines if m != "eager")
    known = baselines.cached_baselines(store, phash, options.device, compile_modes)
    results: dict[int, EvalResult] = {}
    measured: dict[str, float] = {}
    to_measure = [m for m in compile_modes if m not in known]

    def deliver(index: int, result: EvalResult) -> None:
        results[index] = result
        if on_result is not None:
            on_result(index, result)

    if to_measure:  # torch.compile leaves threads and rebound modules behind: never in a candidate's worker
        _run_worker(problem, items, [], options, settings, to_measure, measured, deliver)
    while len(results) < len(items):
        pending = [i for i in range(len(items)) if i not in results]
        run = _run_worker(problem, items, pending, options, settings, [], measured,
                          lambda i, r: deliver(i, _finish(r, items[i], phash, {**known, **measured})))
        missing = [i for i in pending if i not in results]
        if missing and not run.discarded:
            log = _log_of(missing[0], run.sandbox.stdout, run.sandbox.stderr)
            deliver(missing[0], _finish(_death(run.sandbox, options, log), items[missing[0]], phash, {}))
    ordered = [results[i] for i in range(len(items))]
    _save_baselines(store, phash, options.device, measured, ordered)
    return ordered


@dataclasses.dataclass
class _WorkerRun:
    sandbox: SandboxResult
    discarded: bool  # the worker stopped on purpose after a candidate that made it untrustworthy


def _run_worker(problem: Path, items: list[_Candidate], pending: list[int], options: EvalOptions,
                settings: Settings, to_measure: list[str], measured: dict[str, float],
                deliver: Callable[[int, EvalResult], None]) -> _WorkerRun:
    """One sandboxed worker over the pending candidates; ``deliver`` gets each result as it arrives,
    ``measured`` the torch.compile baselines the worker measured before them."""
    payload = {
        "problem": str(problem.resolve()),
        "options": dataclasses.asdict(options),
        "baselines": to_measure,
        "candidates": [{"index": i, "name": items[i].name, "source": items[i].source} for i in pending],
    }
    ready: dict = {}
    discarded = False

    def on_message(message: dict, output: JobOutput) -> None:
        nonlocal discarded
        if message.get("kind") == "ready":
            ready.update(message)
            measured.update(message.get("baselines", {}))
        elif message.get("kind") == "result" and message.get("index") in pending:
            result = EvalResult.from_json(message["result"])
            # the worker's first result also waited for its start-up (taken once)
            result.phases_s = {**ready.pop("startup_s", {}), **result.phases_s}
            result.log = _log_of(message["index"], output.stdout, output.stderr)
            discarded = bool(message.get("discard"))
            deliver(message["index"], result)

    if options.device == "cpu":
        extra_env = {"TRITON_INTERPRET": "1"}  # Triton kernels run interpreted on CPU tensors
    else:
        extra_env = {device_lock.LOCK_DIR_ENV: str(settings.device_lock_dir.resolve())}
    sandbox = run_job(WORKER_MODULE, payload, timeout_s=options.timeout_s, settings=settings, extra_env=extra_env,
                      startup_s=STARTUP_S + BASELINE_S * len(to_measure), on_message=on_message)
    bad = next((m for m in sandbox.messages if m.get("kind") == "bad_input"), None)
    if bad is not None:
        raise BadInput(bad["reason"])
    if not ready:
        raise BadInput(f"{problem}: the evaluation worker {sandbox.describe_exit()} while loading the problem"
                       f"{_tail(sandbox.stderr)}")
    return _WorkerRun(sandbox, discarded)


def _log_of(index: int, stdout: str, stderr: str) -> str:
    """The part of the worker's output printed while candidate ``index`` ran."""
    parts = []
    for text in (stdout, stderr):
        mark = LOG_MARK.format(index=index)
        section = text.split(mark, 1)[1] if mark in text else ""
        parts.append(section.split(LOG_MARK.split("{")[0], 1)[0].strip())  # up to the next candidate
    return "\n".join(p for p in parts if p)


def _death(sandbox: SandboxResult, options: EvalOptions, log: str) -> EvalResult:
    """The result of the candidate that was running when its worker died or was killed."""
    if sandbox.timed_out:
        freed = f" (process gone {sandbox.kill_s:.2f} s after SIGKILL)" if sandbox.kill_s is not None else ""
        reason = f"no result within {options.timeout_s:g} s; the worker was killed{freed}"
        return EvalResult(status=Status.TIMEOUT, device=options.device, reason=reason, log=log)
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    cause = next((line for line in lines if line.startswith("Fatal Python error")), lines[-1] if lines else "")
    reason = f"the worker {sandbox.describe_exit()} while evaluating the candidate" + (f": {cause}" if cause else "")
    return EvalResult(status=Status.CRASHED, device=options.device, reason=reason, log=log)


def _tail(text: str, lines: int = 3) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return (": " + " | ".join(kept)) if kept else ""


def _finish(result: EvalResult, item: _Candidate, phash: str, compile_baselines: dict[str, float]) -> EvalResult:
    result.candidate_hash = item.hash
    result.problem_hash = phash
    if result.status is Status.OK:
        result.baselines_ms.update(compile_baselines)
    return result


def _save_baselines(store: "Store | None", phash: str, device: str, measured: dict[str, float],
                    results: list[EvalResult]) -> None:
    eager = next((r.ref_ms for r in results if r.status is Status.OK and r.ref_ms is not None and r.timing_meaningful), None)
    found = {**measured, **({"eager": eager} if eager is not None else {})}
    baselines.save_baselines(store, phash, device, found)
