"""``qimeng eval``: evaluate one candidate on one problem and print the result (JSON or a Rich summary).

Exit status: 0 when the candidate is ``ok``, 2 for bad input (a malformed problem, an unreadable
candidate file, bad options), 1 otherwise.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

from qimeng.core.verdict import BadInput, Status
from qimeng.kernels.result import EvalOptions, EvalResult
from qimeng.kernels.store import command_store
from qimeng.settings import Settings

EVAL_RUN = "eval"  # the store run that `qimeng eval` results are recorded under


def parse_baselines(text: str) -> tuple[str, ...]:
    from qimeng.kernels.harness.baselines import COMPILE_MODES

    modes = tuple(m.strip() for m in text.split(",") if m.strip())
    unknown = [m for m in modes if m != "eager" and m not in COMPILE_MODES]
    if unknown:
        raise BadInput(f"unknown baseline {unknown[0]!r}; known: eager, {', '.join(COMPILE_MODES)}")
    return modes


def eval_command(problem: Path, candidate: Path, options: EvalOptions, *, as_json: bool, use_store: bool) -> int:
    """Run the evaluation, print it, record it in the store; returns the exit status."""
    from qimeng.kernels.harness.evaluate import evaluate

    settings = Settings.from_env()
    try:
        if options.device == "cpu" and not options.small:
            warn_if_too_slow(problem, candidate, options, settings)
        with (command_store(settings) if use_store else contextlib.nullcontext()) as store:
            result = evaluate(problem, candidate, options, settings=settings, store=store, on_progress=progress)
            if store is not None:
                store.record_eval(EVAL_RUN, content_key(problem.stem, result.problem_hash),
                                  content_key(candidate.name, result.candidate_hash), result,
                                  problem_source=problem.read_text(), problem_path=str(problem),
                                  candidate_source=candidate.read_text())
    except BadInput as exc:
        if as_json:
            print(json.dumps({"status": "bad_input", "error": str(exc)}))
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if as_json:
        print(json.dumps(result.to_json()))
    else:
        print_summary(result, problem, candidate)
    return 0 if result.status is Status.OK else 1


def content_key(name: str, content_hash: str) -> str:
    """The store's key of a problem or candidate of ``qimeng eval``: its name and content hash, so that
    another file of the same name is a row of its own, and the same content under the same name one row."""
    return f"{name}@{content_hash[:16]}"


def warn_if_too_slow(problem: Path, candidate: Path, options: EvalOptions, settings: Settings) -> None:
    """Propose ``--small`` on stderr, before anything runs, when the estimated cost passes the timeout."""
    from qimeng.kernels.harness.cpu_cost import advice, cpu_cost
    from qimeng.kernels.harness.problem import check_problem_source

    check_problem_source(problem)
    try:
        source = candidate.read_text()
    except (OSError, UnicodeDecodeError):
        return  # the evaluation says so, as bad input
    cost = cpu_cost(problem, source, options, settings)
    line = advice(cost, options) if cost is not None else None
    if line:
        print(f"warning: {line}", file=sys.stderr, flush=True)


def progress(message: str) -> None:
    """Progress of an evaluation, on stderr (results go to stdout)."""
    print(message, file=sys.stderr, flush=True)


def _ms(value: float | None, iqr: float | None = None) -> str:
    if value is None:
        return "-"
    return f"{value:.4f} ms" + (f" (IQR {iqr:.4f})" if iqr is not None else "")


def print_summary(result: EvalResult, problem: Path, candidate: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    color = "green" if result.correct else "red"
    table = Table(title=f"{candidate.name} on {problem.name}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("status", f"[{color}]{result.status.value}[/{color}]")
    if result.reason:
        table.add_row("reason", result.reason)
    table.add_row("device", result.device)
    table.add_row("mode, protocol", f"{result.mode}, {result.protocol}")
    table.add_row("trials", f"{result.trials} correctness, {result.timing_trials} timing")
    if result.atol is not None:
        table.add_row("tolerance", f"atol={result.atol:g} rtol={result.rtol:g}")
    table.add_row("reference", _ms(result.ref_ms, result.ref_iqr_ms))
    table.add_row("candidate", _ms(result.candidate_ms, result.candidate_iqr_ms))
    table.add_row("speed-up", "-" if result.speedup is None else f"{result.speedup:.3f}x"
                  + ("" if result.timing_meaningful else " (not meaningful)"))
    for mode, ms in result.baselines_ms.items():
        table.add_row(f"baseline {mode}", _ms(ms))
    if result.roofline_ms is not None:
        table.add_row("roofline", _ms(result.roofline_ms))
    table.add_row("load + first call", _ms(result.compile_ms))
    if result.ops_called:
        table.add_row("ATen ops", ", ".join(result.ops_called))
    if result.own_kernel_share is not None:
        table.add_row("own kernels", f"{result.own_kernel_share:.0%} of GPU time")
    for side, device_bytes, rss_bytes in (("candidate", result.peak_device_bytes, result.peak_rss_bytes),
                                          ("judge", result.judge_peak_device_bytes, result.judge_peak_rss_bytes)):
        memory = [f"{label} {value / 2**30:.2f} GiB" for label, value in
                  (("device", device_bytes), ("host RSS", rss_bytes)) if value is not None]
        if memory:
            table.add_row(f"peak memory ({side})", ", ".join(memory))
    if result.flags:
        table.add_row("flags", f"[yellow]{', '.join(result.flags)}[/yellow]")
    Console().print(table)
