"""Batch ``qimeng optimize DIR --out OUTDIR``: optimise every problem of a directory, several at once.

Each problem ``DIR/<name>.py`` (searched recursively, as ``qimeng bench`` does) gets ``OUTDIR/<name>/``
with ``model_new.py``, ``report.md``, ``optimize.log`` and, written last, ``result.json`` (the summary of
its :class:`~qimeng.kernels.engine.optimize.OptimizeResult`, the problem's content hash and the options).
A problem whose ``result.json`` matches its file and the options is done: running the command again
optimises only the others, so a kill loses only the problems in flight.

Locally the problems run on the device slots (one per visible GPU, ``jobs_per_gpu`` sharing each one by
memory admission; or N CPU slots). Under Ray each problem is a task holding one GPU: its files come back
to the driver, which alone writes OUTDIR and the store; a problem whose worker kept dying is ``crashed``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qimeng.core.executor import Executor, StreamingExecutor, WorkerLost, device_slots
from qimeng.core.verdict import BadInput
from qimeng.kernels.bench.run import memory_admission, progress_bar, python_files, relative_name
from qimeng.kernels.forwarding_store import ForwardingStore, apply_write
from qimeng.kernels.store import Store
from qimeng.settings import Settings

RESULT_FILE = "result.json"
OUTPUT_FILES = ("model_new.py", "report.md", "optimize.log")


@dataclass(frozen=True)
class BatchOptions:
    """What every problem of a batch is optimised with (part of each problem's result.json: a rerun with
    other options optimises the problems again)."""

    device: str = "cuda"
    budget_s: float = 60.0
    precision: str = "strict"
    small: bool | None = None


@dataclass(frozen=True)
class _Problem:
    name: str
    path: Path
    digest: str
    source: bytes | None = None  # the file's bytes, for a job on another machine


@dataclass
class BatchSummary:
    total: int
    skipped: int  # done by an earlier invocation
    optimized: int = 0  # done by this invocation
    statuses: Counter[str] = field(default_factory=Counter)
    bad_problems: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


Optimize = Callable[..., Any]


def _is_done(out: Path, digest: str, options: BatchOptions) -> bool:
    try:
        done = json.loads((out / RESULT_FILE).read_text())
    except (OSError, ValueError):
        return False
    return done.get("problem_hash") == digest and done.get("options") == dataclasses.asdict(options)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def optimize_dir(problems_dir: Path, out_dir: Path, options: BatchOptions, *, store: Store | None,
                 executor: StreamingExecutor | None = None, workers: int | None = None, jobs_per_gpu: int = 1,
                 settings: Settings | None = None, progress: bool = True,
                 optimize: Optimize | None = None) -> BatchSummary:
    """Optimise every problem of ``problems_dir`` not yet done into ``out_dir/<name>/`` (see the module)."""
    if not problems_dir.is_dir():
        raise BadInput(f"{problems_dir}: the problems directory does not exist")
    files = python_files(problems_dir)
    if not files:
        raise BadInput(f"{problems_dir}: no problem files (*.py) found")
    settings = settings or Settings.from_env()
    if executor is None:
        slots = device_slots(options.device, workers, jobs_per_gpu)
        admit = (memory_admission(slots, options.device, bool(options.small), store, settings, None, None,
                                  lambda problem: problem.path) if len(set(slots)) < len(slots) else None)
        executor = Executor(slots, admit)
    if optimize is None:
        from qimeng.kernels.engine.optimize import optimize
    problems = [_Problem(relative_name(path, problems_dir), path, hashlib.sha256(path.read_bytes()).hexdigest())
                for path in files]
    todo = [p for p in problems if not _is_done(out_dir / p.name, p.digest, options)]
    if executor.remote:
        todo = [dataclasses.replace(p, source=p.path.read_bytes()) for p in todo]
    summary = BatchSummary(total=len(problems), skipped=len(problems) - len(todo))
    local_store = None if executor.remote else store
    sharing = 1 if options.device == "cpu" else jobs_per_gpu  # runs sharing a GPU: their budgets' wall cap (budget)

    def job(problem: _Problem, slot: str, emit: Callable[[tuple], None]) -> None:
        """Optimise one problem on ``slot``; emit its output files, then ``("result", summary)``."""
        with tempfile.TemporaryDirectory(prefix="qimeng-optimize-") as tmp:
            path, out = problem.path, out_dir / problem.name
            if problem.source is not None:  # on another machine: the problem's bytes, outputs sent back
                path, out = Path(tmp) / "problem" / problem.path.name, Path(tmp) / "out"
                path.parent.mkdir()
                path.write_bytes(problem.source)
            out.mkdir(parents=True, exist_ok=True)
            with open(out / "optimize.log", "w") as log:
                result = optimize(path, out, device=slot, budget_s=options.budget_s, precision=options.precision,
                                  small=options.small, store=local_store if problem.source is None else
                                  ForwardingStore(emit), sharing=sharing,
                                  log=lambda line: print(line, file=log, flush=True))
            if problem.source is not None:
                emit(("files", {name: (out / name).read_text() for name in OUTPUT_FILES if (out / name).is_file()}))
        emit(("result", {**dataclasses.asdict(result), "out_dir": str(out_dir / problem.name)}))

    def finish(problem: _Problem, result: dict[str, Any]) -> None:
        done = {"problem": problem.name, "problem_hash": problem.digest, "options": dataclasses.asdict(options),
                **result}
        _write_atomic(out_dir / problem.name / RESULT_FILE, json.dumps(done, indent=1, sort_keys=True, default=str))
        summary.optimized += 1
        summary.statuses[result["status"]] += 1

    with progress_bar(progress, len(todo), f"optimize {problems_dir.name}", executor.workers) as advance:
        for event in executor.stream(job, todo):
            problem = event.item
            if not event.done:
                kind, value = event.value[0], event.value[-1]
                if kind == "store":
                    apply_write(store, event.value)
                elif kind == "files":
                    for name, text in value.items():
                        _write_atomic(out_dir / problem.name / name, text)
                else:
                    finish(problem, value)
                    advance(summary.statuses, len(summary.bad_problems) + len(summary.errors))
                continue
            if event.error is None:
                continue
            if isinstance(event.error, WorkerLost):
                finish(problem, {"status": "crashed", "reason": str(event.error)})
            elif isinstance(event.error, BadInput):
                summary.bad_problems[problem.name] = str(event.error)
            else:
                summary.errors[problem.name] = repr(event.error)
            advance(summary.statuses, len(summary.bad_problems) + len(summary.errors))
    return summary
