"""``qimeng bench``: evaluate many (problem, candidate) pairs, one sandboxed worker per device slot (or one
Ray task per problem, ``--executor ray``), storing each result as soon as it is known.

Matching by name: the problem ``PROBLEMS/<family>/<name>.py`` (name ``<family>/<name>``) gets the
candidate ``CANDIDATES/<family>/<name>.py``, or every ``CANDIDATES/<family>/<name>/*.py`` (several
samples); when neither exists, ``CANDIDATES/<name>.py`` or ``CANDIDATES/<name>/*.py`` (a flat candidate
directory), provided no other problem has the same file name.

Resumable: a run is a name in the store. Running the same command again skips every pair whose result
is stored and whose problem and candidate files are unchanged; killing it at any moment loses only the
pairs in flight (each result is one transaction).
"""

from __future__ import annotations

import dataclasses
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qimeng.core.admission import MemoryGate, gpu_capacity_bytes
from qimeng.core.executor import Executor, StreamingExecutor, WorkerLost, device_slots
from qimeng.kernels.forwarding_store import apply_write
from qimeng.kernels.store import Store, content_hash
from qimeng.core.verdict import BadInput, Status
from qimeng.kernels.harness.problem import problem_hash
from qimeng.kernels.result import EvalOptions, EvalResult, protocol_options
from qimeng.settings import Settings

BASELINE_MODES = ("eager", "compile", "compile-max-autotune")

# The options that define what a run measures: resuming a run with other values would mix results
# that are not comparable, so it is refused.
RUN_IDENTITY = ("device", "baselines", "correctness_trials", "timing_trials", "small", "atol", "rtol", "seed", "mode",
                "protocol")

EvaluateMany = Callable[..., list[EvalResult]]
Footprint = Callable[[Path], "int | None"]


@dataclass(frozen=True)
class Pair:
    """One (problem, candidate) pair to evaluate, named as in the store."""

    problem: str
    problem_path: Path
    candidate: str
    candidate_path: Path


@dataclass(frozen=True)
class Matching:
    pairs: list[Pair]
    problems: list[str]  # every problem found, with or without a candidate
    missing: list[str]  # problems without a candidate
    orphans: list[str]  # candidate files that match no problem


@dataclass
class BenchSummary:
    """What one invocation of ``run_bench`` did."""

    run: str
    total: int  # pairs in the run
    skipped: int  # already stored, not evaluated again
    evaluated: int  # stored by this invocation
    statuses: Counter[str] = field(default_factory=Counter)
    bad_problems: dict[str, str] = field(default_factory=dict)  # problem -> BadInput message
    errors: dict[str, str] = field(default_factory=dict)  # "problem :: candidate" -> harness error
    missing: list[str] = field(default_factory=list)  # problems without a candidate
    orphans: list[str] = field(default_factory=list)  # candidates without a problem


def relative_name(path: Path, root: Path) -> str:
    """A file's name under ``root``: its relative path without ``.py``."""
    return path.relative_to(root).with_suffix("").as_posix()


def python_files(root: Path) -> list[Path]:
    """The ``*.py`` files under ``root``, recursively, without those in or named ``_*`` or ``.*``."""
    return sorted(p for p in root.rglob("*.py")
                  if not any(part.startswith(("_", ".")) for part in p.relative_to(root).parts))


def _candidates_at(base: Path) -> list[Path]:
    """``base.py``, or the samples ``base/*.py``."""
    single = base.with_name(base.name + ".py")
    if single.is_file():
        return [single]
    if base.is_dir():
        return sorted(p for p in base.glob("*.py") if not p.name.startswith(("_", ".")))
    return []


def match(problems_dir: Path, candidates_dir: Path) -> Matching:
    """Pair the problems of ``problems_dir`` with their candidates in ``candidates_dir``."""
    for label, directory in (("problems", problems_dir), ("candidates", candidates_dir)):
        if not directory.is_dir():
            raise BadInput(f"{directory}: the {label} directory does not exist")
    problem_files = python_files(problems_dir)
    if not problem_files:
        raise BadInput(f"{problems_dir}: no problem files (*.py) found")
    stems = Counter(p.stem for p in problem_files)
    pairs: list[Pair] = []
    missing: list[str] = []
    used: set[Path] = set()
    for path in problem_files:
        name = relative_name(path, problems_dir)
        found = _candidates_at(candidates_dir / name)
        if not found and stems[path.stem] == 1:
            found = _candidates_at(candidates_dir / path.stem)
        if not found:
            missing.append(name)
        for candidate in found:
            used.add(candidate.resolve())
            pairs.append(Pair(name, path, relative_name(candidate, candidates_dir), candidate))
    orphans = [relative_name(p, candidates_dir) for p in python_files(candidates_dir) if p.resolve() not in used]
    return Matching(pairs, [relative_name(p, problems_dir) for p in problem_files], missing, orphans)


def run_config(options: EvalOptions, problems_dir: Path, candidates_dir: Path,
               matching: Matching) -> dict[str, Any]:
    opts = dataclasses.asdict(options)
    config = {key: opts[key] for key in RUN_IDENTITY}
    config["baselines"] = list(config["baselines"])
    config.update(problems_dir=str(problems_dir), candidates_dir=str(candidates_dir),
                  problems=matching.problems)
    return config


def _check_resume(run: str, stored: dict[str, Any], wanted: dict[str, Any]) -> None:
    differing = [k for k in RUN_IDENTITY if k in stored and stored[k] != wanted[k]]
    if differing:
        details = ", ".join(f"{k}: stored {stored[k]!r}, now {wanted[k]!r}" for k in differing)
        raise BadInput(f"run {run!r} was started with other options ({details}); "
                       f"resume it with the same options or choose a new --run name")


def _source(path: Path) -> str:
    """A file's text for the store ('' when it is gone; undecodable bytes replaced)."""
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _is_current(result: EvalResult, pair: Pair, problem_hashes: dict[Path, str]) -> bool:
    """Whether a stored result still describes the files on disk."""
    source = _source(pair.candidate_path)
    if result.candidate_hash and result.candidate_hash != content_hash(source):
        return False
    stored = result.problem_hash
    return not stored or stored == problem_hashes.get(pair.problem_path, stored)


@dataclass(frozen=True)
class _Group:
    """The pairs of one problem, evaluated by one job. ``files`` (file name -> bytes: the problem, then
    each candidate) and the problem's cached ``baselines`` travel with a job that runs on another
    machine, which may not see these paths or the store."""

    pairs: tuple[Pair, ...]
    files: tuple[tuple[str, bytes], ...] | None = None
    baselines: tuple[tuple[tuple[str, str, str, str], float], ...] = ()  # Store.baselines_of, as items


def _ship(pairs: list[Pair], baselines: dict[tuple[str, str, str, str], float]) -> _Group:
    paths = [pairs[0].problem_path, *(p.candidate_path for p in pairs)]
    return _Group(tuple(pairs), tuple((f"{f'c{i}' if i else 'problem'}/{path.name}", _bytes(path))
                                      for i, path in enumerate(paths)), tuple(baselines.items()))


def _bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _rest(group: _Group, values: list[tuple]) -> _Group | None:
    """What a retried job still has to evaluate: the pairs whose results did not come back."""
    reported = {value[1] for value in values if value[0] == "result"}
    left = [i for i, pair in enumerate(group.pairs) if pair not in reported]
    if not left:
        return None
    files = None if group.files is None else (group.files[0], *(group.files[i + 1] for i in left))
    return _Group(tuple(group.pairs[i] for i in left), files, group.baselines)


def run_bench(problems_dir: Path, candidates_dir: Path, *, run: str, options: EvalOptions,
              store: Store, workers: int | None = None, settings: Settings | None = None,
              evaluate_many: EvaluateMany | None = None, progress: bool = True, jobs_per_gpu: int = 1,
              gate: MemoryGate | None = None, footprint: Footprint | None = None,
              executor: StreamingExecutor | None = None) -> BenchSummary:
    """Evaluate every pair not yet stored in ``run``; store each result as soon as it is known.

    The samples of one problem share a sandboxed worker (``evaluate_many``, by default
    :func:`qimeng.kernels.harness.evaluate.evaluate_many`); problems run on the device slots in parallel
    (``executor``, by default a local pool; a :class:`~qimeng.core.ray_executor.RayExecutor` runs each
    problem as a Ray task, and its results and store writes come back here, the only writer of ``store``).
    With ``jobs_per_gpu`` > 1 several problems share a GPU, each admitted by memory (``gate``, by
    default each GPU's free memory; ``footprint(problem_path)``, by default measured or estimated by
    ``harness/footprint.py``): one that does not fit beside the running ones waits.
    A problem whose Ray worker kept dying gets ``crashed`` results naming the cause.
    Raises ``BadInput`` for missing directories or a run resumed with other options; a malformed
    problem is reported in the summary (its pairs are not stored) and the other problems go on.
    """
    matching = match(problems_dir, candidates_dir)
    config = run_config(options, problems_dir, candidates_dir, matching)
    _check_resume(run, store.run_config(run) or {}, config)
    settings = settings or Settings.from_env()
    if executor is None:
        slots = device_slots(options.device, workers, jobs_per_gpu)
        admit = (memory_admission(slots, options.device, options.small, store, settings, gate, footprint,
                                  lambda group: group.pairs[0].problem_path)
                 if len(set(slots)) < len(slots) else None)
        executor = Executor(slots, admit)
    if evaluate_many is None:
        from qimeng.kernels.harness.evaluate import evaluate_many
    store.put_run(run, config)

    problem_hashes = _problem_hashes({p.problem_path for p in matching.pairs}, options.small)
    stored = {(r.problem, r.candidate): r.result for r in store.iter_evaluations(run)}
    todo = [p for p in matching.pairs
            if (p.problem, p.candidate) not in stored
            or not _is_current(stored[(p.problem, p.candidate)], p, problem_hashes)]
    summary = BenchSummary(run, total=len(matching.pairs), skipped=len(matching.pairs) - len(todo),
                           evaluated=0, missing=matching.missing, orphans=matching.orphans)
    by_problem: dict[str, list[Pair]] = {}
    for pair in todo:
        by_problem.setdefault(pair.problem, []).append(pair)
    remote = executor.remote
    groups = [_ship(pairs, store.baselines_of(problem_hashes.get(pairs[0].problem_path, ""))) if remote
              else _Group(tuple(pairs)) for pairs in by_problem.values()]
    local_store = None if remote else store

    def job(group: _Group, slot: str, emit: Callable[[tuple], None]) -> None:
        """Evaluate a group's pairs on ``slot``, emitting ``("result", pair, result)`` as each is known
        (and, on another machine, the harness's store writes)."""
        device_options = dataclasses.replace(options, device=slot)
        if group.files is None:
            evaluate_many(group.pairs[0].problem_path, [p.candidate_path for p in group.pairs], device_options,
                          settings=settings, store=local_store,
                          on_result=lambda index, result: emit(("result", group.pairs[index], result)))
            return
        from qimeng.kernels.forwarding_store import ForwardingStore

        with tempfile.TemporaryDirectory(prefix="qimeng-job-") as tmp:
            paths = [Path(tmp) / name for name, _ in group.files]
            for path, (_, data) in zip(paths, group.files):
                path.parent.mkdir(exist_ok=True)
                path.write_bytes(data)
            evaluate_many(paths[0], paths[1:], device_options, settings=settings,
                          store=ForwardingStore(emit, dict(group.baselines)),
                          on_result=lambda index, result: emit(("result", group.pairs[index], result)))

    recorded: set[Pair] = set()
    with progress_bar(progress, len(todo), run, executor.workers) as advance:
        def record(pair: Pair, result: EvalResult) -> None:
            store.record_eval(run, pair.problem, pair.candidate, result,
                              problem_source=_source(pair.problem_path), problem_path=str(pair.problem_path),
                              candidate_source=_source(pair.candidate_path))
            recorded.add(pair)
            summary.evaluated += 1
            summary.statuses[result.status.value] += 1
            advance(summary.statuses, len(summary.bad_problems) + len(summary.errors))

        for event in executor.stream(job, groups, rest=_rest):
            if not event.done:
                if event.value[0] == "result":
                    record(*event.value[1:])
                else:
                    apply_write(store, event.value)
                continue
            if event.error is None:
                continue
            for pair in event.item.pairs:
                if pair in recorded:
                    continue
                if isinstance(event.error, WorkerLost):
                    record(pair, _crashed(pair, options, str(event.error), problem_hashes))
                    continue
                if isinstance(event.error, BadInput):
                    summary.bad_problems[pair.problem] = str(event.error)
                else:
                    summary.errors[f"{pair.problem} :: {pair.candidate}"] = repr(event.error)
                advance(summary.statuses, len(summary.bad_problems) + len(summary.errors))
    return summary


def _crashed(pair: Pair, options: EvalOptions, cause: str, problem_hashes: dict[Path, str]) -> EvalResult:
    """The result of a pair whose worker kept dying (a finished result: a rerun does not retry it)."""
    return EvalResult(status=Status.CRASHED, reason=cause, device=options.device,
                      candidate_hash=content_hash(_source(pair.candidate_path)),
                      problem_hash=problem_hashes.get(pair.problem_path, ""))


def memory_admission(slots: list[str], device: str, small: bool, store: Store | None, settings: Settings,
                     gate: MemoryGate | None, footprint: Footprint | None,
                     problem_of: Callable[[Any], Path]) -> Callable[[Any, str], AbstractContextManager[None]] | None:
    """What a job holds while it runs on a shared GPU: the footprint of its problem (``problem_of(item)``)
    in the GPU's gate (a problem of unknown footprint reserves the whole GPU: it runs alone)."""
    if not device.startswith("cuda"):
        return None
    if gate is None:
        gate = MemoryGate({slot: capacity for slot in set(slots)
                           if (capacity := gpu_capacity_bytes(int(slot.split(":")[1]), settings.gpu_memory_fraction))})
    if footprint is None:
        from qimeng.kernels.harness.footprint import problem_footprint

        footprint = lambda path: problem_footprint(path, small=small, store=store, settings=settings)  # noqa: E731
    known: dict[Path, int | None] = {}
    lock = threading.Lock()

    def admit(item: Any, slot: str) -> AbstractContextManager[None]:
        path = problem_of(item)
        with lock:
            cached = path in known
        if not cached:
            value = footprint(path)
            with lock:
                known[path] = value
        need = known[path]
        return gate.admit(slot, gate.capacity.get(slot, 0) if need is None else need)

    return admit


def _problem_hashes(paths: Iterable[Path], small: bool) -> dict[Path, str]:
    """Content hashes of the problem files, as the harness computes them (unreadable ones left out)."""
    hashes = {}
    for path in paths:
        try:
            hashes[path] = problem_hash(path, small=small)
        except (OSError, BadInput):
            continue
    return hashes


class progress_bar:
    """A rich progress bar with a tally of statuses (or nothing when ``enabled`` is false); entering it
    gives ``advance(statuses, failures)``."""

    def __init__(self, enabled: bool, total: int, run: str, slots: int) -> None:
        self.enabled, self.total, self.run, self.slots = enabled, total, run, slots

    def __enter__(self) -> Callable[[Counter[str], int], None]:
        if not self.enabled:
            return lambda statuses, failures: None
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[tally]}"),
                             console=Console(stderr=True))
        self._bar.__enter__()
        task = self._bar.add_task(f"{self.run} ({self.slots} worker{'s' if self.slots > 1 else ''})",
                                  total=self.total, tally="")

        def advance(statuses: Counter[str], failures: int) -> None:
            tally = " ".join(f"{k}={v}" for k, v in sorted(statuses.items()))
            if failures:
                tally += f" harness-errors={failures}"
            self._bar.update(task, advance=1, tally=tally)

        return advance

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._bar.__exit__(*exc)


def parse_baselines(text: str) -> tuple[str, ...]:
    """``"eager,compile"`` -> ``("eager", "compile")``; ``BadInput`` for an unknown mode."""
    modes = tuple(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))
    unknown = [m for m in modes if m not in BASELINE_MODES]
    if unknown or not modes:
        raise BadInput(f"--baselines {text!r}: expected a comma list of {', '.join(BASELINE_MODES)}")
    return modes


def default_run_name(candidates_dir: Path, device: str) -> str:
    return f"{candidates_dir.resolve().name}-{device.replace(':', '')}"


def bench_command(problems_dir: Path, candidates_dir: Path, *, run: str | None, device: str,
                  workers: int | None, baselines: str, trials: int, timing_trials: int, small: bool,
                  mode: str = "train", protocol: str = "qimeng", jobs_per_gpu: int = 1, executor: str = "local",
                  ray_address: str = "auto") -> int:
    """``qimeng bench``: returns the exit status (0 done, 1 harness errors, 2 bad input, 130 interrupted)."""
    from qimeng.core.ray_executor import RayUnavailable, cluster_executor

    from rich.console import Console

    from qimeng.kernels.bench.metrics import compute_metrics

    console = Console(stderr=True)
    settings = Settings.from_env()
    try:
        options = protocol_options(protocol, device=device, correctness_trials=trials, timing_trials=timing_trials,
                                   baselines=parse_baselines(baselines), small=small, mode=mode,
                                   timeout_s=settings.eval_timeout_s)
        if executor == "local":
            device_slots(device, workers, jobs_per_gpu)  # fail early on a bad --device/--workers/--jobs-per-gpu
        match(problems_dir, candidates_dir)  # fail on bad directories before a cluster is joined
        pool = cluster_executor(executor, device, ray_address, settings.ray_retries, workers, jobs_per_gpu)
        if pool is not None:  # under Ray, --device auto is what the cluster has
            options = dataclasses.replace(options, device=pool.device)
        run = run or default_run_name(candidates_dir, options.device)
        with Store.open(settings) as store:
            summary = run_bench(problems_dir, candidates_dir, run=run, options=options, store=store,
                                workers=workers, settings=settings, jobs_per_gpu=jobs_per_gpu, executor=pool)
            metrics = compute_metrics(store.evaluations(run), (store.run_config(run) or {}).get("problems"),
                                      baselines=options.baselines)
    except (BadInput, ValueError, RayUnavailable) as exc:
        from rich.markup import escape

        console.print(f"[red]error:[/red] {escape(str(exc))}")
        return 2
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted[/yellow]: finished results are stored; run the same command"
                      f"{f' (--run {run})' if run else ''} to continue")
        return 130
    for what, names in (("problem(s) without a candidate", summary.missing),
                        ("candidate(s) without a problem", summary.orphans)):
        if names:
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            console.print(f"[yellow]{len(names)} {what}[/yellow]: {shown}")
    for name, message in summary.bad_problems.items():
        console.print(f"[red]bad problem[/red] {name}: {message}")
    for name, message in summary.errors.items():
        console.print(f"[red]harness error[/red] {name}: {message}")
    fast = " ".join(f"fast_{p:g}({b})={v:.2f}" for b, ps in metrics.fast_p.items() for p, v in ps.items())
    console.print(f"run [bold]{run}[/bold]: {summary.evaluated} evaluated, {summary.skipped} already stored, "
                  f"{metrics.n_samples} samples of {metrics.n_problems} problems; "
                  f"correct {metrics.correctness_rate:.1%}; clean scores: {fast}")
    if metrics.flagged:
        from rich.markup import escape

        shown = escape("; ".join(f"{f.problem} :: {f.candidate} [{', '.join(f.flags)}]" for f in metrics.flagged[:5]))
        console.print(f"[yellow]{len(metrics.flagged)} flagged sample(s), correct but counted in no score[/yellow]: "
                      f"{shown}{' ...' if len(metrics.flagged) > 5 else ''}")
    if metrics.timing_unlocked:
        console.print(f"[yellow]{metrics.timing_unlocked} sample(s) timed without the GPU's lock[/yellow] "
                      f"(timing_unlocked: another process may have shared the GPU while they were timed)")
    console.print(f"report: qimeng report {run}")
    if summary.bad_problems:
        return 2
    return 1 if summary.errors else 0
