"""A harness compatible with VerilogEval v2's layout.

PROBLEMS_DIR holds, per problem ``ProbNNN_name``: ``ProbNNN_name_prompt.txt``, ``_ifc.txt``,
``_ref.sv`` (module ``RefModule``) and ``_test.sv`` (a testbench instantiating ``RefModule`` and
``TopModule`` that prints ``Mismatches: N in M samples``). SAMPLES_DIR holds the samples of each
problem as ``SAMPLES_DIR/ProbNNN_name/*.sv`` (or ``.v``), or flat as ``ProbNNN_name_sample*.sv``.

Each sample is compiled with the testbench and reference under Icarus Verilog (``-g2012``, as
VerilogEval does) and simulated isolated (``tools.run_tool``) with hard timeouts. Under the ``qimeng``
protocol, where Icarus cannot compile them, Verilator 5 builds the same sources
(:mod:`qimeng.hardware.simulators`); each result names the simulator that decided. Two protocols:

- ``qimeng`` (default, stricter): a sample passes when it compiles, its run exits cleanly without a
  ``TIMEOUT`` line, and prints exactly one ``Mismatches: 0 in M samples`` line where M is the count
  the testbench reaches with the reference itself as the sample (run once per problem, cached), and
  it elaborates on its own (``-s TopModule``). A sample that ends the simulation early (``$finish``,
  ``$fatal``, ``$stop``), prints its own Mismatches line, instantiates ``RefModule`` or writes into
  the testbench by hierarchical name fails.
- ``verilog-eval``: the benchmark's own analysis (``verilog_eval_protocol.py``), for pass@k that can
  be set next to published numbers.

Problems without any sample count as failed in the overall pass@k and are listed as missing.
"""

from __future__ import annotations

import enum
import hashlib
import os
import re
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rich.progress import Progress

from qimeng.core.verdict import BadInput, Status
from qimeng.hardware import simulators
from qimeng.hardware import verilog_eval_protocol as protocol_ve
from qimeng.hardware.eval_report import EvalReport, SampleResult, problem_result, summarize
from qimeng.hardware.tools import ToolRun, private_dir, run_tool

DEFAULT_TIMEOUT_S = 60.0
_MISMATCHES = re.compile(r"Mismatches:\s*(\d+)\s+in\s+(\d+)\s+samples")


class Protocol(str, enum.Enum):
    """How samples are judged (see the module docstring)."""

    QIMENG = "qimeng"
    VERILOG_EVAL = "verilog-eval"


@dataclass(frozen=True)
class Problem:
    name: str
    ref: Path
    test: Path


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


ICARUS_FLAGS = ("-Wall", "-Winfloop", "-Wno-timescale")  # VerilogEval's Makefile
SOURCES = ["sample.sv", "test.sv", "ref.sv"]


def _copy_in(problem: Problem, design: Path, work: Path) -> str | None:
    """Copy ``design`` (as the sample), the testbench and the reference into ``work``; the top module."""
    for src, dst in zip((design, problem.test, problem.ref), SOURCES):
        shutil.copyfile(src, work / dst)
    return "tb" if re.search(r"\bmodule\s+tb\b", problem.test.read_text()) else None


def _stage(problem: Problem, design: Path, work: Path, timeout_s: float, merged: bool = False) -> ToolRun:
    """Copy the sources into ``work`` and compile them as the benchmark does (Icarus only)."""
    top = _copy_in(problem, design, work)
    return run_tool(["iverilog", *ICARUS_FLAGS, "-g2012", *(["-s", top] if top else []), "-o", "test.vvp",
                     *SOURCES], work, timeout_s, merge_output=merged)


_REFERENCE_COUNTS: dict[tuple[str, str], tuple[int | None, str]] = {}
_REFERENCE_LOCK = threading.Lock()


def reference_sample_count(problem: Problem, timeout_s: float) -> tuple[int | None, str]:
    """Samples the testbench checks when the reference itself is the sample (cached per ref and test text).

    Returns (count, "") or (None, why the reference run gave no clean ``Mismatches: 0 in M`` line).
    """
    key = (hashlib.sha256(problem.ref.read_bytes()).hexdigest(), hashlib.sha256(problem.test.read_bytes()).hexdigest())
    with _REFERENCE_LOCK:
        if key in _REFERENCE_COUNTS:
            return _REFERENCE_COUNTS[key]
    with private_dir("qimeng-veval-ref-") as tmp:
        work = Path(tmp)
        as_top = work / "reference_as_top.sv"
        as_top.write_text(re.sub(r"\bRefModule\b", "TopModule", problem.ref.read_text()))
        built = simulators.build(SOURCES, _copy_in(problem, as_top, work), work, timeout_s, ICARUS_FLAGS)
        ran = simulators.run(built, work, timeout_s) if built.ok else None
    if ran is None:
        result: tuple[int | None, str] = (None, "the reference does not compile as the sample: "
                                          + built.compiled.output[-500:] + built.note())
    else:
        found = _MISMATCHES.findall(ran.stdout)
        if ran.timed_out or "TIMEOUT" in ran.stdout or len(found) != 1 or int(found[0][0]) != 0:
            result = (None, "the reference fails its own testbench: " + ran.output[-500:])
        else:
            result = (int(found[0][1]), "")
    with _REFERENCE_LOCK:
        _REFERENCE_COUNTS[key] = result
    return result


def _benchmark_log(problem: Problem, sample: Path, timeout_s: float) -> tuple[str, bool]:
    """The log VerilogEval's Makefile writes for a sample (compile, then ``./BIN`` without ``-n``, then
    ``TIMEOUT`` if the timeout struck; stdout and stderr merged), and whether it compiled."""
    with private_dir("qimeng-veval-") as tmp:
        work = Path(tmp)
        compiled = _stage(problem, sample, work, timeout_s, merged=True)
        log = compiled.stdout
        if compiled.ok:
            ran = run_tool(["vvp", "test.vvp"], work, timeout_s, merge_output=True)
            log += "\n" + ran.stdout + ("\nTIMEOUT" if ran.timed_out else "")
    return log.replace(str(work) + "/", ""), compiled.ok


def evaluate_sample(problem: Problem, sample: Path, timeout_s: float, protocol: Protocol = Protocol.QIMENG,
                    expected: tuple[int | None, str] | None = None) -> SampleResult:
    """Compile and simulate one sample against its problem's testbench; failures are values.

    ``expected`` is :func:`reference_sample_count`'s answer (computed here when None; unused under
    the verilog-eval protocol).
    """
    start = time.perf_counter()
    digest = hashlib.sha256(sample.read_bytes()).hexdigest()
    compiled_ok = False

    simulator = simulators.Simulator.ICARUS

    def done(status: Status, reason: str, mismatches: int | None = None, total: int | None = None,
             code: str | None = None, note: str = "") -> SampleResult:
        reason = reason.strip()[-2000:] + (f"\n[{note}]" if note else "")
        return SampleResult(str(sample), digest, status.value, mismatches, total, reason,
                            round(time.perf_counter() - start, 3), compiled_ok, code, simulator.value)

    if protocol is Protocol.VERILOG_EVAL:
        log, compiled_ok = _benchmark_log(problem, sample, timeout_s)
        code, mismatches = protocol_ve.classify_log(log, sample.read_text(errors="replace"))
        found = _MISMATCHES.findall(log)
        total = int(found[-1][1]) if found else None
        reason = f"VerilogEval '{code}' ({protocol_ve.CODES[code]}): " + log[-1500:]
        return done(protocol_ve.status_of(code, mismatches), reason, mismatches if found else None, total, code)

    expected = expected or reference_sample_count(problem, timeout_s)
    with private_dir("qimeng-veval-") as tmp:
        work = Path(tmp)
        built = simulators.build(SOURCES, _copy_in(problem, sample, work), work, timeout_s, ICARUS_FLAGS)
        simulator, note = built.simulator, built.note()
        if built.compiled.timed_out:
            return done(Status.TIMEOUT, f"compilation ran past {timeout_s:.0f} s", note=note)
        if not built.ok:
            return done(Status.COMPILE_ERROR, built.compiled.output.replace(str(work) + "/", ""),
                        note=note)
        compiled_ok = True
        alone = simulators.elaborates_alone(built, "sample.sv", "TopModule", work, timeout_s)
        if not alone.ok:
            return done(Status.REJECTED, "the sample does not elaborate on its own (does it use RefModule, or reach into "
                        "the testbench by name?): " + alone.output.replace(str(work) + "/", "")[-1500:], note=note)
        ran = simulators.run(built, work, timeout_s)
    if ran.timed_out:
        return done(Status.TIMEOUT, f"simulation ran past {timeout_s:.0f} s", note=note)
    if "TIMEOUT" in ran.stdout:
        return done(Status.TIMEOUT, "the testbench printed TIMEOUT: " + ran.output[-1500:], note=note)
    found = _MISMATCHES.findall(ran.stdout)
    if len(found) != 1:
        what = "no" if not found else f"{len(found)} (the sample prints its own?)"
        return done(Status.RUNTIME_ERROR, f"{what} 'Mismatches: N in M samples' line(s): " + ran.output[-1500:], note=note)
    mismatches, total = map(int, found[0])
    if mismatches:
        return done(Status.INCORRECT, f"Mismatches: {mismatches} in {total} samples", mismatches, total, note=note)
    if ran.returncode != 0:
        return done(Status.RUNTIME_ERROR, f"the simulation exited with status {ran.returncode} ($fatal?): "
                    + ran.output[-1500:], mismatches, total, note=note)
    reference, why = expected
    if reference is None:
        return done(Status.RUNTIME_ERROR, f"cannot judge: {why}", mismatches, total, note=note)
    if total != reference:
        return done(Status.RUNTIME_ERROR, f"the simulation ended after {total} of the reference's {reference} samples "
                    "($finish, $stop or $fatal in the sample?)", mismatches, total, note=note)
    return done(Status.OK, f"Mismatches: 0 in {total} samples", 0, total, note=note)


def run_verilog_eval(problems_dir: Path, samples_dir: Path, timeout_s: float | None = None, workers: int | None = None,
                     progress: bool = False, protocol: Protocol = Protocol.QIMENG) -> EvalReport:
    """Evaluate every sample of every problem; pass@k per problem and overall (missing problems count 0).

    ``timeout_s`` (per compile and per run) defaults to 60 s, or to the benchmark's 30 s under its protocol.
    """
    if not samples_dir.is_dir():
        raise BadInput(f"{samples_dir}: not a directory")
    if timeout_s is None:
        timeout_s = protocol_ve.RUN_TIMEOUT_S if protocol is Protocol.VERILOG_EVAL else DEFAULT_TIMEOUT_S
    problems = find_problems(problems_dir)
    jobs = [(p, s) for p in problems for s in find_samples(samples_dir, p.name)]
    if not jobs:
        raise BadInput(f"{samples_dir}: no samples for any problem of {problems_dir}")
    workers = workers or os.cpu_count() or 1
    with_samples = sorted({p.name for p, _ in jobs})
    by_problem: dict[str, list[SampleResult]] = {p.name: [] for p in problems}
    references: dict[str, tuple[int | None, str]] = {}
    with Progress(disable=not progress, transient=True) as bar, ThreadPoolExecutor(workers) as pool:
        if protocol is Protocol.QIMENG:
            task = bar.add_task("running the references", total=len(with_samples))
            ref_futures = {p.name: pool.submit(reference_sample_count, p, timeout_s) for p in problems if p.name in with_samples}
            for name, fut in ref_futures.items():
                references[name] = fut.result()
                bar.advance(task)
        task = bar.add_task("evaluating samples", total=len(jobs))
        futures = [(p, pool.submit(evaluate_sample, p, s, timeout_s, protocol, references.get(p.name))) for p, s in jobs]
        for p, fut in futures:
            by_problem[p.name].append(fut.result())
            bar.advance(task)
    results = [problem_result(p.name, by_problem[p.name], *references.get(p.name, (None, ""))) for p in problems]
    return summarize(str(problems_dir), str(samples_dir), results, protocol.value, "verilog-eval")
