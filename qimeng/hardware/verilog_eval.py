"""A harness compatible with VerilogEval v2's layout.

PROBLEMS_DIR holds, per problem ``ProbNNN_name``: ``ProbNNN_name_prompt.txt``, ``_ifc.txt``,
``_ref.sv`` (module ``RefModule``) and ``_test.sv`` (a testbench instantiating ``RefModule`` and
``TopModule`` that prints ``Mismatches: N in M samples``). SAMPLES_DIR holds the samples of each
problem as ``SAMPLES_DIR/ProbNNN_name/*.sv`` (or ``.v``), or flat as ``ProbNNN_name_sample*.sv``.

Each sample is compiled with the testbench and reference under Icarus Verilog (``-g2012``, as
VerilogEval does) and simulated in a private directory with hard timeouts; it passes when it
compiles and reports zero mismatches.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.progress import Progress

from qimeng.core.verdict import BadInput, Status
from qimeng.hardware.pass_at_k import mean_pass_at_k, pass_at_k
from qimeng.hardware.tools import private_dir, run_tool

KS = (1, 5, 10)
_MISMATCHES = re.compile(r"Mismatches:\s*(\d+)\s+in\s+(\d+)\s+samples")


@dataclass(frozen=True)
class Problem:
    name: str
    ref: Path
    test: Path


@dataclass
class SampleResult:
    sample: str
    sha256: str
    status: str  # a qimeng.core.verdict.Status value
    mismatches: int | None
    total: int | None
    reason: str
    seconds: float


@dataclass
class ProblemResult:
    problem: str
    n: int
    c: int
    pass_at: dict[str, float | None]
    samples: list[SampleResult] = field(default_factory=list)


@dataclass
class VerilogEvalReport:
    """The JSON of ``qimeng hw verilog-eval --json``."""

    problems_dir: str
    samples_dir: str
    pass_at: dict[str, float | None]
    problems: list[ProblemResult]
    tools: dict[str, str]
    run_id: int | None = None

    def to_json(self) -> dict:
        return asdict(self)


def find_problems(problems_dir: Path) -> list[Problem]:
    """Every ``*_test.sv`` with its ``*_ref.sv``; BadInput when the directory holds none."""
    if not problems_dir.is_dir():
        raise BadInput(f"{problems_dir}: not a directory")
    problems = []
    for test in sorted(problems_dir.rglob("*_test.sv")):
        name = test.name[: -len("_test.sv")]
        ref = test.with_name(f"{name}_ref.sv")
        if not ref.is_file():
            raise BadInput(f"{test}: its reference {ref.name} is missing")
        problems.append(Problem(name, ref, test))
    if not problems:
        raise BadInput(f"{problems_dir}: no VerilogEval problems (ProbNNN_name_test.sv files)")
    return problems


def find_samples(samples_dir: Path, problem: str) -> list[Path]:
    """The sample files of one problem (its own folder, or flat ``PROBLEM_sample*`` files)."""
    found = []
    folder = samples_dir / problem
    if folder.is_dir():
        found += [p for p in folder.iterdir() if p.suffix in (".sv", ".v") and p.is_file()]
    found += [p for p in samples_dir.glob(f"{problem}_sample*") if p.suffix in (".sv", ".v") and p.is_file()]
    return sorted(found)


def evaluate_sample(problem: Problem, sample: Path, timeout_s: float) -> SampleResult:
    """Compile and simulate one sample against its problem's testbench; failures are values."""
    start = time.perf_counter()
    digest = hashlib.sha256(sample.read_bytes()).hexdigest()

    def done(status: Status, reason: str, mismatches: int | None = None, total: int | None = None) -> SampleResult:
        return SampleResult(str(sample), digest, status.value, mismatches, total, reason.strip()[-2000:],
                            round(time.perf_counter() - start, 3))

    with private_dir("qimeng-veval-") as tmp:
        work = Path(tmp)
        for src, dst in ((sample, "sample.sv"), (problem.test, "test.sv"), (problem.ref, "ref.sv")):
            shutil.copyfile(src, work / dst)
        top = ["-s", "tb"] if re.search(r"\bmodule\s+tb\b", problem.test.read_text()) else []
        compiled = run_tool(
            ["iverilog", "-Wall", "-Winfloop", "-Wno-timescale", "-g2012", *top, "-o", "test.vvp",
             "sample.sv", "test.sv", "ref.sv"], work, timeout_s,
        )
        if compiled.timed_out:
            return done(Status.TIMEOUT, f"compilation ran past {timeout_s:.0f} s")
        if not compiled.ok:
            return done(Status.COMPILE_ERROR, compiled.output.replace(str(work) + "/", ""))
        ran = run_tool(["vvp", "-n", "test.vvp"], work, timeout_s)
        if ran.timed_out:
            return done(Status.TIMEOUT, f"simulation ran past {timeout_s:.0f} s")
        found = _MISMATCHES.findall(ran.stdout)
        if not found:
            status = Status.TIMEOUT if "TIMEOUT" in ran.stdout else Status.RUNTIME_ERROR
            return done(status, "no 'Mismatches: N in M samples' line: " + ran.output[-1500:])
        mismatches, total = map(int, found[-1])
        if mismatches == 0:
            return done(Status.OK, f"Mismatches: 0 in {total} samples", 0, total)
        return done(Status.INCORRECT, f"Mismatches: {mismatches} in {total} samples", mismatches, total)


def run_verilog_eval(problems_dir: Path, samples_dir: Path, timeout_s: float = 60.0, workers: int | None = None,
                     progress: bool = False) -> VerilogEvalReport:
    """Evaluate every sample of every problem; pass@k per problem and overall."""
    if not samples_dir.is_dir():
        raise BadInput(f"{samples_dir}: not a directory")
    problems = find_problems(problems_dir)
    jobs = [(p, s) for p in problems for s in find_samples(samples_dir, p.name)]
    if not jobs:
        raise BadInput(f"{samples_dir}: no samples for any problem of {problems_dir}")
    workers = workers or os.cpu_count() or 1
    by_problem: dict[str, list[SampleResult]] = {p.name: [] for p in problems}
    with Progress(disable=not progress, transient=True) as bar, ThreadPoolExecutor(workers) as pool:
        task = bar.add_task("evaluating samples", total=len(jobs))
        futures = [(p, pool.submit(evaluate_sample, p, s, timeout_s)) for p, s in jobs]
        for p, fut in futures:
            by_problem[p.name].append(fut.result())
            bar.advance(task)
    results = []
    for p in problems:
        samples = by_problem[p.name]
        n, c = len(samples), sum(s.status == Status.OK.value for s in samples)
        results.append(ProblemResult(p.name, n, c, {str(k): pass_at_k(n, c, k) for k in KS}, samples))
    counts = [(r.n, r.c) for r in results if r.n]
    overall = {str(k): mean_pass_at_k(counts, k) for k in KS}
    return VerilogEvalReport(str(problems_dir), str(samples_dir), overall, results, tool_versions())


def tool_versions() -> dict[str, str]:
    run = run_tool(["iverilog", "-V"], Path.cwd(), 30)
    return {"iverilog": (run.stdout.splitlines() or ["unknown"])[0].strip()}
