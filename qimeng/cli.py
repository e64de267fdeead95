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
    rich_markup_mode=None,
)
app.add_typer(hw_app, name="hw", help="Hardware: Verilog equivalence, VerilogEval harness, circuit learning.")
app.add_typer(llm_app, name="llm", help="The LLM client's memory: insights learnt from fixed failures.")

DEVICE_HELP = "auto (cuda when a CUDA device is visible, else cpu), cpu, cuda or cuda:N."


def bad_input(message: str, as_json: bool = False) -> typer.Exit:
    """Say what is wrong in one line (on stderr; also as a JSON object on stdout with ``--json``): exit 2."""
    import json

    if as_json:
        typer.echo(json.dumps({"status": "bad_input", "error": message}))
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def chosen_device(device: str, as_json: bool = False) -> str:
    """``--device`` resolved (``auto``: cuda when visible, else cpu), printed on stderr before any work."""
    from qimeng.core.devices import resolve_device
    from qimeng.core.verdict import BadInput

    try:
        resolved, line = resolve_device(device)
    except BadInput as exc:
        raise bad_input(str(exc), as_json) from None
    typer.echo(line, err=True)
    return resolved


def _pool_device(device: str, executor: str) -> str:
    """The device of a run over an executor: checked against this machine (and ``auto`` resolved by it)
    for ``local``; under Ray the cluster's to resolve and check (``core/ray_executor.py``)."""
    return chosen_device(device) if executor == "local" else device


# -- eval (qimeng.kernels.harness.eval_cli) ----------------------------------------------------------------

@app.command("eval")
def eval_(
    problem: Path = typer.Argument(..., help="Problem file (KernelBench format: Model, get_inputs, get_init_inputs)."),
    candidate: Path = typer.Argument(..., help="Candidate file defining ModelNew."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
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
    interleave_baselines: bool = typer.Option(False, "--interleave-baselines",
                                              help="Time torch.compile in the candidate's own rounds, three-way with "
                                              "eager and the candidate (compiled afresh, not read from the store)."),
    small: bool = typer.Option(False, "--small", help="Use the problem's SMALL sizes (quick CPU runs)."),
    seed: int = typer.Option(0, help="Seed of the models' parameters and the trials' inputs."),
    store: bool = typer.Option(True, "--store/--no-store", help="Cache baselines in and record the result to the store."),
) -> None:
    """Check one candidate against its problem's reference in a sandbox, then time both."""
    from qimeng.core.verdict import BadInput
    from qimeng.kernels.harness.eval_cli import eval_command, parse_baselines
    from qimeng.kernels.result import protocol_options

    device = chosen_device(device, as_json)
    try:
        options = protocol_options(protocol, device=device, correctness_trials=trials, timing_trials=timing_trials,
                                   warmup=warmup, timing_budget_s=timing_budget, mode=mode, timeout_s=timeout,
                                   atol=atol, rtol=rtol, baselines=parse_baselines(baselines), seed=seed, small=small,
                                   interleave_baselines=interleave_baselines)
    except BadInput as exc:
        raise bad_input(str(exc), as_json) from None
    raise typer.Exit(eval_command(problem, candidate, options, as_json=as_json, use_store=store))


# -- bench, report, export (qimeng.kernels.bench.run / metrics / report) ------------------------------

@app.command()
def bench(
    problems_dir: Path = typer.Argument(..., help="Directory of problems (KernelBench format), searched recursively."),
    candidates_dir: Path = typer.Argument(..., help="Candidates named like the problems: NAME.py or NAME/*.py."),
    run: Optional[str] = typer.Option(None, help="Run name in the store; the same name resumes a run. "
                                      "Default: CANDIDATES_DIR's name and the device."),
    device: str = typer.Option("auto", help="auto (every visible GPU, else cpu), cpu, cuda (every visible GPU) "
                               "or cuda:N."),
    workers: Optional[int] = typer.Option(None, help="Parallel workers: CPU slots (default 1), or the number "
                                          "of GPUs to use (default all)."),
    baselines: str = typer.Option("eager,compile", help="Comma list of eager, compile, compile-max-autotune."),
    trials: int = typer.Option(5, help="Correctness trials per pair."),
    timing_trials: int = typer.Option(100, help="Timing trials per pair."),
    small: bool = typer.Option(False, "--small", help="Use the problems' SMALL sizes (quick CPU runs)."),
    mode: str = typer.Option("train", help="train (the modules as the problems build them) or eval."),
    protocol: str = typer.Option("qimeng", help="qimeng (strict) or kernelbench (its trial counts, clock and mean)."),
    jobs_per_gpu: int = typer.Option(1, help="Problems evaluated side by side on each GPU, admitted by memory."),
    executor: str = typer.Option("local", help="local (this machine's GPUs or CPU slots) or ray (a Ray cluster: "
                                 "one GPU or CPU per problem; needs qimeng[ray])."),
    ray_address: str = typer.Option("auto", help="With --executor ray: auto (the running cluster), local (start "
                                    "one here), or HOST:PORT / ray://HOST:PORT."),
) -> None:
    """Evaluate every (problem, candidate) pair; resumable, results go to the store."""
    from qimeng.kernels.bench.run import bench_command

    device = _pool_device(device, executor)
    raise typer.Exit(bench_command(problems_dir, candidates_dir, run=run, device=device, workers=workers,
                                   baselines=baselines, trials=trials, timing_trials=timing_trials, small=small,
                                   mode=mode, protocol=protocol, jobs_per_gpu=jobs_per_gpu, executor=executor,
                                   ray_address=ray_address))


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
    problem: Path = typer.Argument(..., help="Problem file (KernelBench format: Model, get_inputs, get_init_inputs), "
                                   "or a directory: every problem in it, each into OUT/<name>/."),
    out: Path = typer.Option(..., "--out", help="Directory for model_new.py and report.md."),
    device: str = typer.Option("auto", help=DEVICE_HELP + " On cpu the kernels run under the Triton "
                               "interpreter and are verified, not timed."),
    budget: float = typer.Option(60.0, help="Seconds of the run's own work: no candidate starts after them (the "
                                 "best verified so far is written). Alone on a GPU it is the wall cap; time waiting "
                                 "for a GPU other runs share is not counted, up to a wall cap of the budget x the runs "
                                 "on that GPU (at most 4)."),
    precision: str = typer.Option("strict", help="strict, tf32 or bf16."),
    small: Optional[bool] = typer.Option(None, "--small/--full", help="SMALL sizes (default on cpu) or as written."),
    store: bool = typer.Option(True, "--store/--no-store", help="Record every candidate and step in the store."),
    executor: str = typer.Option("local", help="For a directory: local (this machine) or ray (a Ray cluster, one "
                                 "GPU per problem; needs qimeng[ray])."),
    ray_address: str = typer.Option("auto", help="With --executor ray: auto (the running cluster), local, or "
                                    "HOST:PORT."),
    workers: Optional[int] = typer.Option(None, help="For a directory: CPU slots (default 1), or GPUs to use (default "
                                          "all)."),
    jobs_per_gpu: int = typer.Option(1, help="For a directory: problems optimised side by side on each GPU, "
                                     "admitted by memory."),
    llm_url: Optional[str] = typer.Option(None, "--llm-url", help="OpenAI-compatible base URL: a model proposes "
                                          "steps too (default: $QIMENG_LLM_BASE_URL; none: the expert alone)."),
    llm_model: Optional[str] = typer.Option(None, "--llm-model", help="Model name (default: $QIMENG_LLM_MODEL)."),
    llm_replay: bool = typer.Option(False, "--llm-replay", help="Answer from the store's response cache alone."),
    llm_rounds: int = typer.Option(2, help="Model proposals, each verified before the next (with a model)."),
    insights: bool = typer.Option(True, "--insights/--no-insights", help="Lessons of earlier fixed failures in "
                                  "the model's prompts (see `qimeng llm insights`)."),
    dynamic: list[str] = typer.Option([], "--dynamic", help="NAME=MIN:MAX: a dynamic dimension's range (batch, seq, "
                                      "or ARG.AXIS such as 0.1); repeatable."),
    static: bool = typer.Option(False, "--static", help="Kernels for the captured shapes only (no dynamic dimensions "
                                "by default)."),
) -> None:
    """Turn a PyTorch module into verified, fused Triton kernels (writes model_new.py and report.md)."""
    if problem.is_dir():
        from qimeng.kernels.engine.batch_cli import optimize_dir_command

        device = _pool_device(device, executor)
        raise typer.Exit(optimize_dir_command(problem, out, device=device, budget=budget, precision=precision,
                                              small=small, use_store=store, executor=executor,
                                              ray_address=ray_address, workers=workers, jobs_per_gpu=jobs_per_gpu))
    if (executor, workers, jobs_per_gpu) != ("local", None, 1):
        typer.echo("error: --executor, --workers and --jobs-per-gpu apply to a directory of problems", err=True)
        raise typer.Exit(2)
    from qimeng.kernels.engine.optimize_cli import optimize_command

    device = chosen_device(device)
    raise typer.Exit(optimize_command(problem, out, device=device, budget=budget, precision=precision, small=small,
                                      use_store=store, llm_url=llm_url, llm_model=llm_model, llm_replay=llm_replay,
                                      insights=insights, llm_rounds=llm_rounds, dynamic=tuple(dynamic),
                                      static=static))


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
    run: Optional[str] = typer.Option(None, help="Store run of the samples, for `qimeng report RUN` (pass@k, "
                                      "fast_p); default generate-MODEL-DEVICE."),
) -> None:
    """Ask an LLM for a complete ModelNew, verify each sample, debug failing ones, keep the best verified."""
    from qimeng.kernels.generate.generate_cli import generate_command

    raise typer.Exit(generate_command(problem, out, llm_url=llm_url, llm_model=llm_model, replay=llm_replay,
                                      samples=samples, debug_rounds=debug_rounds, device=device, small=small,
                                      timing_trials=timing_trials, use_store=store, insights=insights, run=run))


if __name__ == "__main__":
    app()
