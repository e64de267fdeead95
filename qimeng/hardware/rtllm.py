"""A harness in RTLLM v1.1's layout: syntax and functional pass rates and pass@k of generated designs.

DESIGNS_DIR holds, at any depth (RTLLM nests them by category), one folder per design, named after
it: ``design_description.txt``, ``testbench.v`` (module ``testbench``, instantiating the design by
its name and printing a line with "Pass" when it passes) and the reference ``verified_*.v``; other
files there (test data the testbench reads) are copied next to each sample. SAMPLES_DIR holds the
samples as RTLLM's ``auto_run.py`` reads them, ``SAMPLES_DIR/t1/NAME.v``, ``t2/NAME.v``, ..., or as
``SAMPLES_DIR/NAME/*.v``.

A sample's syntax passes when Icarus Verilog compiles it with the testbench (RTLLM: VCS builds
``simv``); under the ``qimeng`` protocol, where Icarus cannot, when Verilator 5 can
(:mod:`qimeng.hardware.simulators`; the result names the simulator). Its function passes, under the protocols:

- ``qimeng`` (default, stricter): the sample elaborates on its own (top: its name), the run ends by
  itself with status 0 and the lines of its output that mention pass, fail or error (any case) are
  exactly those of the reference's own run (taken once per design): a sample that prints the pass
  line itself, ends the run early, or writes into the testbench by hierarchical name fails.
- ``rtllm``: RTLLM's own rule: "Pass" or "pass" anywhere in the output of a run that ends within 8 s.
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
from qimeng.hardware.eval_report import EvalReport, SampleResult, problem_result, summarize
from qimeng.hardware import simulators
from qimeng.hardware.tools import ToolRun, private_dir

DEFAULT_TIMEOUT_S = 60.0
RTLLM_TIMEOUT_S = 8.0  # auto_run.py's exec_shell(timeout=8) around `make sim`
_VERDICT = re.compile(r"pass|fail|error", re.IGNORECASE)


class RtllmProtocol(str, enum.Enum):
    """How a sample's function is judged (see the module docstring)."""

    QIMENG = "qimeng"
    RTLLM = "rtllm"


@dataclass(frozen=True)
class Design:
    name: str
    folder: Path
    testbench: Path
    reference: Path


def find_designs(designs_dir: Path) -> list[Design]:
    """Every folder with a ``design_description.txt``; BadInput when one is incomplete or none exists."""
    if not designs_dir.is_dir():
        raise BadInput(f"{designs_dir}: not a directory")
    designs: dict[str, Design] = {}
    for description in sorted(designs_dir.rglob("design_description.txt")):
        folder = description.parent
        testbench, references = folder / "testbench.v", sorted(folder.glob("verified_*.v"))
        if not testbench.is_file():
            raise BadInput(f"{folder}: no testbench.v")
        if len(references) != 1:
            raise BadInput(f"{folder}: expected one verified_*.v reference, found {len(references)}")
        if folder.name in designs:
            raise BadInput(f"{folder}: a second design named {folder.name} (first: {designs[folder.name].folder})")
        designs[folder.name] = Design(folder.name, folder, testbench, references[0])
    if not designs:
        raise BadInput(f"{designs_dir}: no RTLLM designs (folders with design_description.txt)")
    return sorted(designs.values(), key=lambda d: d.name)


def find_samples(samples_dir: Path, name: str) -> list[Path]:
    """The samples of design ``name``: ``t*/NAME.v`` (RTLLM) and ``NAME/*.v``."""
    found = [p for p in samples_dir.glob(f"t*/{name}.v") if p.is_file()]
    folder = samples_dir / name
    if folder.is_dir():
        found += [p for p in folder.iterdir() if p.suffix in (".v", ".sv") and p.is_file()]
    return sorted(found)


@dataclass(frozen=True)
class _Runs:
    built: simulators.Build  # the design with its testbench
    alone: ToolRun | None  # the design elaborated on its own (top: its name)
    ran: ToolRun | None  # the simulation, when it compiled

    @property
    def compiled(self) -> ToolRun:
        return self.built.compiled


def _simulate(design: Design, source: Path, timeout_s: float, fallback: bool = True) -> _Runs:
    """Compile ``source`` as the design with its testbench (and the design's data files), elaborate it
    alone, and run the testbench. ``fallback``: Verilator builds what Icarus cannot compile."""
    with private_dir("qimeng-rtllm-") as tmp:
        work = Path(tmp)
        for item in design.folder.iterdir():
            if item.is_file() and item != design.reference:
                shutil.copyfile(item, work / item.name)
        shutil.copyfile(source, work / f"{design.name}.v")
        top = "testbench" if re.search(r"\bmodule\s+testbench\b", design.testbench.read_text()) else None
        built = simulators.build([f"{design.name}.v", "testbench.v"], top, work, timeout_s, fallback=fallback)
        if not built.ok:
            return _Runs(built, None, None)
        alone = simulators.elaborates_alone(built, f"{design.name}.v", design.name, work, timeout_s)
        return _Runs(built, alone, simulators.run(built, work, timeout_s))


def verdict_lines(output: str) -> list[str]:
    """The lines of a run's output that mention pass, fail or error."""
    return [line.strip() for line in output.splitlines() if _VERDICT.search(line)]


_REFERENCE_RUNS: dict[tuple[str, str], tuple[list[str] | None, str]] = {}
_REFERENCE_LOCK = threading.Lock()


def reference_verdict(design: Design, timeout_s: float) -> tuple[list[str] | None, str]:
    """The verdict lines of the reference's own run (cached), or (None, why it does not pass)."""
    key = (hashlib.sha256(design.reference.read_bytes()).hexdigest(),
           hashlib.sha256(design.testbench.read_bytes()).hexdigest())
    with _REFERENCE_LOCK:
        if key in _REFERENCE_RUNS:
            return _REFERENCE_RUNS[key]
    runs = _simulate(design, design.reference, timeout_s)
    compiled, ran = runs.compiled, runs.ran
    if ran is None:
        result: tuple[list[str] | None, str] = (None, "the reference does not compile: " + compiled.output[-500:])
    elif ran.timed_out or ran.returncode != 0 or not re.search("pass", ran.stdout, re.IGNORECASE):
        result = (None, "the reference does not pass its own testbench: " + ran.output[-500:])
    else:
        result = (verdict_lines(ran.stdout), "")
    with _REFERENCE_LOCK:
        _REFERENCE_RUNS[key] = result
    return result


def evaluate_sample(design: Design, sample: Path, timeout_s: float, protocol: RtllmProtocol = RtllmProtocol.QIMENG,
                    expected: tuple[list[str] | None, str] | None = None) -> SampleResult:
    """Syntax and function of one sample; failures are values. ``expected``: :func:`reference_verdict`."""
    start = time.perf_counter()
    digest = hashlib.sha256(sample.read_bytes()).hexdigest()
    runs = _simulate(design, sample, timeout_s, fallback=protocol is RtllmProtocol.QIMENG)
    compiled, ran, note = runs.compiled, runs.ran, runs.built.note()

    def done(status: Status, reason: str) -> SampleResult:
        code = "pass" if status is Status.OK else ("syntax" if not compiled.ok else "function")
        reason = reason.strip()[-2000:] + (f"\n[{note}]" if note else "")
        return SampleResult(str(sample), digest, status.value, None, None, reason, round(time.perf_counter() - start, 3),
                            compiled.ok, code, runs.built.simulator.value)

    if compiled.timed_out:
        return done(Status.TIMEOUT, f"compilation ran past {timeout_s:.0f} s")
    if ran is None:
        return done(Status.COMPILE_ERROR, compiled.output)
    if ran.timed_out:
        return done(Status.TIMEOUT, f"simulation ran past {timeout_s:.0f} s")
    lines = verdict_lines(ran.stdout)
    if protocol is RtllmProtocol.RTLLM:
        passed = "Pass" in ran.stdout or "pass" in ran.stdout
        return done(Status.OK if passed else Status.INCORRECT, "\n".join(lines) or ran.output[-1500:])
    reference, why = expected or reference_verdict(design, timeout_s)
    if reference is None:
        return done(Status.RUNTIME_ERROR, f"cannot judge: {why}")
    if runs.alone is not None and not runs.alone.ok:
        return done(Status.REJECTED, "the sample does not elaborate on its own (does it reach into the testbench by "
                    "name?): " + runs.alone.output[-1500:])
    if ran.returncode != 0:
        return done(Status.RUNTIME_ERROR, f"the simulation exited with status {ran.returncode}: " + ran.output[-1500:])
    if lines == reference:
        return done(Status.OK, "\n".join(lines))
    if not lines:
        return done(Status.RUNTIME_ERROR, "the run ended without a verdict ($finish in the sample?): " + ran.output[-1500:])
    return done(Status.INCORRECT, "verdict lines differ from the reference's run:\n" + "\n".join(lines[-20:]))


def run_rtllm(designs_dir: Path, samples_dir: Path, timeout_s: float | None = None, workers: int | None = None,
              progress: bool = False, protocol: RtllmProtocol = RtllmProtocol.QIMENG) -> EvalReport:
    """Evaluate every sample of every design; syntax and functional pass@k per design and overall."""
    if not samples_dir.is_dir():
        raise BadInput(f"{samples_dir}: not a directory")
    if timeout_s is None:
        timeout_s = RTLLM_TIMEOUT_S if protocol is RtllmProtocol.RTLLM else DEFAULT_TIMEOUT_S
    designs = find_designs(designs_dir)
    jobs = [(d, s) for d in designs for s in find_samples(samples_dir, d.name)]
    if not jobs:
        raise BadInput(f"{samples_dir}: no samples (t*/NAME.v or NAME/*.v) for any design of {designs_dir}")
    by_design: dict[str, list[SampleResult]] = {d.name: [] for d in designs}
    references: dict[str, tuple[list[str] | None, str]] = {}
    with Progress(disable=not progress, transient=True) as bar, ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
        if protocol is RtllmProtocol.QIMENG:
            needed = sorted({d.name: d for d, _ in jobs}.items())
            task = bar.add_task("running the references", total=len(needed))
            for name, fut in [(name, pool.submit(reference_verdict, d, timeout_s)) for name, d in needed]:
                references[name] = fut.result()
                bar.advance(task)
        task = bar.add_task("evaluating samples", total=len(jobs))
        futures = [(d, pool.submit(evaluate_sample, d, s, timeout_s, protocol, references.get(d.name))) for d, s in jobs]
        for d, fut in futures:
            by_design[d.name].append(fut.result())
            bar.advance(task)
    results = [problem_result(d.name, by_design[d.name], None, references.get(d.name, (None, ""))[1]) for d in designs]
    return summarize(str(designs_dir), str(samples_dir), results, protocol.value, "rtllm")
