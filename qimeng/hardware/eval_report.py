"""The report of a benchmark run (``hw verilog-eval``, ``hw rtllm``): per sample, per problem, overall.

Overall pass@k is the mean over problems, a problem without any sample counting 0 (and listed in
``missing``); syntax pass@k counts the samples that compile. The report names how tools were isolated
and carries the warnings a reader must see (missing problems, broken references, no isolation).
"""

from __future__ import annotations

import shutil

from dataclasses import asdict, dataclass, field
from pathlib import Path

from qimeng.core.isolation import probe
from qimeng.core.verdict import Status
from qimeng.hardware.pass_at_k import mean_pass_at_k, pass_at_k
from qimeng.hardware.tools import private_dir, run_tool

KS = (1, 5, 10)


@dataclass
class SampleResult:
    sample: str
    sha256: str
    status: str  # a qimeng.core.verdict.Status value
    mismatches: int | None
    total: int | None
    reason: str
    seconds: float
    compiled: bool = False
    code: str | None = None  # the protocol's own verdict: VerilogEval's letter, RTLLM's pass/syntax/function
    simulator: str = "icarus"  # which simulator decided: "icarus", or "verilator" where Icarus could not compile


@dataclass
class ProblemResult:
    problem: str  # a VerilogEval problem or an RTLLM design
    n: int
    c: int
    pass_at: dict[str, float | None]
    samples: list[SampleResult] = field(default_factory=list)
    syntax_c: int = 0  # samples that compile
    reference_samples: int | None = None  # VerilogEval: the count the testbench reaches with the reference
    reference_error: str = ""  # why the reference's own run cannot judge the samples


@dataclass
class EvalReport:
    """The JSON of ``qimeng hw verilog-eval --json`` and ``qimeng hw rtllm --json``."""

    problems_dir: str
    samples_dir: str
    pass_at: dict[str, float | None]
    problems: list[ProblemResult]
    tools: dict[str, str]
    protocol: str
    syntax_pass_at: dict[str, float | None]
    missing: list[str]  # problems without any sample (counted as failed)
    isolation: str  # qimeng.core.isolation.Isolation.describe
    benchmark: str  # "verilog-eval" or "rtllm"
    warnings: list[str] = field(default_factory=list)
    run_id: int | None = None

    def to_json(self) -> dict:
        return asdict(self)


def problem_result(name: str, samples: list[SampleResult], reference_samples: int | None = None,
                   reference_error: str = "") -> ProblemResult:
    """Counts and pass@k of one problem's samples."""
    n, c = len(samples), sum(s.status == Status.OK.value for s in samples)
    return ProblemResult(name, n, c, {str(k): pass_at_k(n, c, k) for k in KS}, samples,
                         sum(s.compiled for s in samples), reference_samples, reference_error)


def summarize(problems_dir: str, samples_dir: str, results: list[ProblemResult], protocol: str,
              benchmark: str) -> EvalReport:
    """The report of evaluated problems: overall pass@k (functional and syntax), missing problems, warnings."""
    isolation = probe()
    report = EvalReport(
        problems_dir, samples_dir, {str(k): mean_pass_at_k([(r.n, r.c) for r in results], k) for k in KS},
        results, tool_versions(), protocol, {str(k): mean_pass_at_k([(r.n, r.syntax_c) for r in results], k) for k in KS},
        [r.problem for r in results if not r.n], isolation.describe, benchmark,
    )
    if report.missing:
        report.warnings.append(f"{len(report.missing)} of {len(results)} problems have no sample: counted as failed")
    broken = [r.problem for r in results if r.reference_error]
    if broken:
        report.warnings.append(f"{len(broken)} reference(s) fail their own testbench, their samples cannot pass: "
                               + ", ".join(broken))
    if isolation.warning:
        report.warnings.append(isolation.warning)
    return report


def tool_versions() -> dict[str, str]:
    """Icarus' version line, and Verilator's (the fallback simulator) when it is installed."""
    with private_dir() as tmp:
        run = run_tool(["iverilog", "-V"], Path(tmp), 30)
        versions = {"iverilog": (run.stdout.splitlines() or ["unknown"])[0].strip()}
        if shutil.which("verilator"):
            run = run_tool(["verilator", "--version"], Path(tmp), 30)
            versions["verilator"] = (run.stdout.splitlines() or ["unknown"])[0].strip()
    return versions
