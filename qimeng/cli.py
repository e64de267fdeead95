"""The ``qimeng`` command: one Typer app; each agent adds its commands here as thin wrappers.

Each command imports its implementation lazily so that ``qimeng --help`` stays fast and a missing
optional dependency of one agent never breaks another agent's commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from qimeng.hardware.cli import app as hw_app
from qimeng.llm.cli import app as llm_app

app = typer.Typer(
    name="qimeng",
    help="Design fast, verified low-level code: kernels for PyTorch programs and Verilog hardware.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(hw_app, name="hw", help="Hardware: Verilog equivalence, VerilogEval harness, circuit learning.")
app.add_typer(llm_app, name="llm", help="The LLM client's memory: insights learnt from fixed failures.")


# -- eval (qimeng.kernels.harness.eval_cli) ----------------------------------------------------------------

@app.command("eval")
def eval_(
    problem: Path = typer.Argument(..., help="Problem file (KernelBench format: Model, get_inputs, get_init_inputs)."),
    candidate: Path = typer.Argument(..., help="Candidate file defining ModelNew."),
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:N."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (the EvalResult)."),
    timeout: float = typer.Option(180.0, help="Seconds before a hung candidate's worker is killed."),
    trials: Optional[int] = typer.Option(None, help="Correctness trials, each with fresh inputs (default 5)."),
    timing_trials: Optional[int] = typer.Option(None, help="Timing trials (default 100; 0: do not time)."),
    warmup: Optional[int] = typer.Option(None, help="Warm-up calls before timing (default 10; kernelbench 3)."),
    timing_budget: Optional[float] = typer.Option(None, help="Seconds after which slow timing stops (at least 5 "
                                                  "rounds; default 10; kernelbench: none)."),
    mode: Optional[str] = typer.Option(None, help="train (default: the modules as the problem builds them) or eval."),
    protocol: str = typer.Option("qimeng", help="qimeng (strict, default) or kernelbench (its trial counts, "
                                 "clock and mean)."),
    atol: Optional[float] = typer.Option(None, help="Absolute tolerance (default by dtype: fp32 1e-4, fp16/bf16 1e-2)."),
    rtol: Optional[float] = typer.Option(None, help="Relative tolerance (default by dtype)."),
    baselines: str = typer.Option("eager", help="Comma list of eager, compile, compile-max-autotune."),
    small: bool = typer.Option(False, "--small", help="Use the problem's SMALL sizes (quick CPU runs)."),
    seed: int = typer.Option(0, help="Seed of the models' parameters and the trials' inputs."),
    store: bool = typer.Option(True, "--store/--no-store", help="Cache baselines in and record the result to the store."),
) -> None:
    """Check one candidate against its problem's reference in a sandbox, then time both."""
    from qimeng.core.verdict import BadInput
    from qimeng.kernels.harness.eval_cli import eval_command, parse_baselines
    from qimeng.kernels.result import protocol_options

    try:
        options = protocol_options(protocol, device=device, correctness_trials=trials, timing_trials=timing_trials,
                                   warmup=warmup, timing_budget_s=timing_budget, mode=mode, timeout_s=timeout,
                                   atol=atol, rtol=rtol, baselines=parse_baselines(baselines), seed=seed, small=small)
    except BadInput as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    raise typer.Exit(eval_command(problem, candidate, options, as_json=as_json, use_store=store))


# -- bench, report, export (qimeng.kernels.bench.run / metrics / report) ------------------------------

@app.command()
def bench(
    problems_dir: Path = typer.Argument(..., help="Directory of problems (KernelBench format), searched recursively."),
    candidates_dir: Path = typer.Argument(..., help="Candidates named like the problems: NAME.py or NAME/*.py."),
    run: Optional[str] = typer.Option(None, help="Run name in the store; the same name resumes a run. "
                                      "Default: CANDIDATES_DIR's name and the device."),
    device: str = typer.Option("cpu", help="cpu, cuda (every visible GPU) or cuda:N."),
    workers: Optional[int] = typer.Option(None, help="Parallel workers: CPU slots (default 1), or the number "
                                          "of GPUs to use (default all)."),
    baselines: str = typer.Option("eager,compile", help="Comma list of eager, compile, compile-max-autotune."),
    trials: int = typer.Option(5, help="Correctness trials per pair."),
    timing_trials: int = typer.Option(100, help="Timing trials per pair."),
    small: bool = typer.Option(False, "--small", help="Use the problems' SMALL sizes (quick CPU runs)."),
    mode: str = typer.Option("train", help="train (the modules as the problems build them) or eval."),
    protocol: str = typer.Option("qimeng", help="qimeng (strict) or kernelbench (its trial counts, clock and mean)."),
    jobs_per_gpu: int = typer.Option(1, help="Problems evaluated side by side on each GPU, admitted by memory."),
) -> None:
    """Evaluate every (problem, candidate) pair; resumable, results go to the store."""
    from qimeng.kernels.bench.run import bench_command

    raise typer.Exit(bench_command(problems_dir, candidates_dir, run=run, device=device, workers=workers,
                                   baselines=baselines, trials=trials, timing_trials=timing_trials, small=small,
                                   mode=mode, protocol=protocol, jobs_per_gpu=jobs_per_gpu))


@app.command()
def report(
    run: str = typer.Argument(..., help="Run name (see `qimeng export` or the bench output)."),
    out: Optional[Path] = typer.Option(None, help="Output directory. Default: QIMENG_WORK_DIR/reports/RUN."),
) -> None:
    """Write report.md and a standalone report.html (metrics, plots) of a bench run."""
    from qimeng.kernels.bench.report import report_command

    raise typer.Exit(report_command(run, out))


@app.command()
def export(
    run: Optional[str] = typer.Argument(None, help="Run to export; every run when omitted."),
    out: Path = typer.Option(..., help="JSONL file to write: one evaluation per line."),
) -> None:
    """Write the stored evaluations as JSON lines (run, problem, candidate and every result field)."""
    from qimeng.kernels.bench.report import export_command

    raise typer.Exit(export_command(run, out))


# -- optimize (qimeng.kernels.engine.optimize) -----------------------------------------------------------

@app.command()
def optimize(
    problem: Path = typer.Argument(..., help="Problem file (KernelBench format: Model, get_inputs, get_init_inputs)."),
    out: Path = typer.Option(..., "--out", help="Directory for model_new.py and report.md."),
    device: str = typer.Option("cuda", help="cuda (or cuda:N), or cpu (Triton interpreter; timing not meaningful)."),
    budget: float = typer.Option(60.0, help="Seconds of search before the last stages are skipped."),
    precision: str = typer.Option("strict", help="strict, tf32 or bf16."),
    small: Optional[bool] = typer.Option(None, "--small/--full", help="SMALL sizes (default on cpu) or as written."),
    store: bool = typer.Option(True, "--store/--no-store", help="Record every candidate and step in the store."),
    dynamic: list[str] = typer.Option([], "--dynamic", help="NAME=MIN:MAX: a dynamic dimension's range (batch, seq, "
                                      "or ARG.AXIS such as 0.1); repeatable."),
    static: bool = typer.Option(False, "--static", help="Kernels for the captured shapes only (no dynamic dimensions "
                                "by default)."),
) -> None:
    """Turn a PyTorch module into verified, fused Triton kernels (writes model_new.py and report.md)."""
    from qimeng.kernels.engine.optimize_cli import optimize_command

    raise typer.Exit(optimize_command(problem, out, device=device, budget=budget, precision=precision, small=small,
                                      use_store=store, dynamic=tuple(dynamic), static=static))


# -- generate (qimeng.kernels.generate) --------------------------------------------------------------------

@app.command()
def generate(
    problem: Path = typer.Argument(..., help="Problem file (KernelBench format: Model, get_inputs, get_init_inputs)."),
    out: Path = typer.Option(..., "--out", help="Directory for model_new.py, report.md and samples/."),
    llm_url: Optional[str] = typer.Option(None, "--llm-url", help="OpenAI-compatible base URL, e.g. "
                                          "http://127.0.0.1:8000/v1 (default: $QIMENG_LLM_BASE_URL)."),
    llm_model: Optional[str] = typer.Option(None, "--llm-model", help="Model name (default: $QIMENG_LLM_MODEL)."),
    llm_replay: bool = typer.Option(False, "--llm-replay", help="Answer from the store's response cache alone; "
                                    "a request not in it fails the run."),
    samples: int = typer.Option(1, help="Independent samples (seeds QIMENG_LLM_SEED + i)."),
    debug_rounds: int = typer.Option(2, help="Times a failing sample gets the harness's verdict back to fix."),
    device: str = typer.Option("cuda", help="cuda (or cuda:N), or cpu (Triton interpreter; timing not meaningful)."),
    small: bool = typer.Option(False, "--small", help="Verify with the problem's SMALL sizes (quick CPU runs)."),
    timing_trials: int = typer.Option(100, help="Timing trials of each verified sample (0: do not time)."),
    store: bool = typer.Option(True, "--store/--no-store", help="Cache the model's answers in the store."),
    insights: bool = typer.Option(True, "--insights/--no-insights", help="Give the model the lessons of earlier "
                                  "fixed failures, and distil new ones (see `qimeng llm insights`)."),
) -> None:
    """Ask an LLM for a complete ModelNew, verify each sample, debug failing ones, keep the best verified."""
    from qimeng.kernels.generate.generate_cli import generate_command

    raise typer.Exit(generate_command(problem, out, llm_url=llm_url, llm_model=llm_model, replay=llm_replay,
                                      samples=samples, debug_rounds=debug_rounds, device=device, small=small,
                                      timing_trials=timing_trials, use_store=store, insights=insights))


if __name__ == "__main__":
    app()
