"""``qimeng hw`` commands: thin wrappers that parse options, call the library and set the exit status.

Exit status: 0 success (equivalent, target met), 1 a negative answer (not equivalent, target missed),
2 bad input (unparsable Verilog, mismatched ports, bad arguments), 3 a required tool is missing,
4 an inconclusive answer (`hw equiv`: too little evidence, or proof and simulation disagree).
"""

from __future__ import annotations

import functools
import json
from contextlib import nullcontext
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, TypeVar

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from qimeng.hardware.eval_report import EvalReport

E = TypeVar("E", bound=Enum)
app = typer.Typer(no_args_is_help=True)


@functools.cache
def _err() -> "Console":
    """Rich's console on stderr, made on first use (importing rich costs `hw learn` about 0.05 s)."""
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)


@functools.cache
def _out() -> "Console":
    from rich.console import Console

    return Console(soft_wrap=True)


def _guard(body: Callable[[], int], warn_isolation: bool = True) -> None:
    """Run a command body; BadInput exits 2 and MissingTool exits 3, each with its message.

    When tools cannot be isolated here, says so first on stderr (``warn_isolation``; reports that
    carry the warning themselves pass False).
    """
    from qimeng.core.isolation import probe
    from qimeng.core.verdict import BadInput
    from qimeng.hardware.tools import MissingTool

    if warn_isolation and probe().warning:
        _err().print(f"[yellow]warning:[/yellow] {probe().warning}", highlight=False)
    try:
        code = body()
    except BadInput as exc:
        _err().print(f"[red]error:[/red] {exc}", highlight=False, markup=True)
        raise typer.Exit(2) from None
    except MissingTool as exc:
        _err().print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(3) from None
    raise typer.Exit(code)


def _oracle_error(spec: str, exc: Exception) -> Exception | None:
    """BadInput naming the oracle when ``exc`` was raised inside a Python oracle's file, else None."""
    import traceback

    from qimeng.core.verdict import BadInput

    path = Path(spec.partition(":")[0]).resolve()
    if path.suffix != ".py" or isinstance(exc, BadInput):
        return None
    if not any(Path(frame.filename).resolve() == path for frame in traceback.extract_tb(exc.__traceback__)):
        return None
    lines = str(exc).strip().splitlines()
    return BadInput(f"oracle {spec} raised {type(exc).__name__}: {lines[0] if lines else ''}")


@app.command()
def learn(
    oracle: str = typer.Argument(..., help="path/to/file.py:function (numpy (B,N) uint8 -> (B,M)) or a Verilog file[:module]"),
    inputs: int = typer.Option(..., "--inputs", help="N, number of input bits"),
    outputs: int = typer.Option(..., "--outputs", help="M, number of output bits"),
    out_path: Path = typer.Option(..., "--out", help="where to write the learned Verilog"),
    name: str = typer.Option("learned", "--name", help="module name"),
    target: Optional[float] = typer.Option(None, "--target", help="accuracy to reach (default 1.0 when N <= 20, else 0.9999)"),
    samples: int = typer.Option(1024, "--samples", help="signature length at the root"),
    rounds: int = typer.Option(4, "--rounds", help="learning rounds (refinement of wrong bits)"),
    check: int = typer.Option(100_000, "--check", help="random check vectors of the diagram when N > 20"),
    sim_vectors: Optional[int] = typer.Option(None, "--sim-vectors", help="random vectors the written Verilog is evaluated on when N > 24 (N <= 24: every vector; default vectors x wires <= 2e9, 4096 to 2**20)"),
    seed: int = typer.Option(0, "--seed"),
    exact_max_inputs: int = typer.Option(24, "--exact-max-inputs", help="up to this many inputs, build the diagram from the whole truth table (0: always learn by sampling)"),
    no_cells: bool = typer.Option(False, "--no-cells", help="skip the Yosys synthesis that counts cells (slow on huge circuits)"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Learn a combinational circuit from an oracle with Binary Speculation Diagrams."""

    def body() -> int:
        from qimeng.hardware.cell_count import CANDIDATE_SLOTS, CellCounter
        from qimeng.hardware.ports import is_valid_identifier

        # Yosys starts first (checked name only), so that its start-up overlaps numpy's import and the learning.
        early = not no_cells and is_valid_identifier(name)
        with CellCounter(name, CANDIDATE_SLOTS) if early else nullcontext() as cells:
            from qimeng.hardware.bsd.report import learn_to_verilog

            try:
                report = learn_to_verilog(oracle, inputs, outputs, out_path, name, target, samples, rounds, check,
                                          sim_vectors, seed, count_cells=not no_cells,
                                          exact_max_inputs=exact_max_inputs, cells=cells)
            except Exception as exc:
                error = _oracle_error(oracle, exc)
                if error is None:
                    raise
                raise error from exc
        if as_json:
            typer.echo(json.dumps(report.to_json(), indent=2))
        else:  # typer.echo, not rich: importing rich would cost this command about 0.05 s
            verdict = typer.style("success", fg="green") if report.success else typer.style("target not met", fg="red")
            typer.echo(
                f"{verdict}: {report.out} (module {report.module})\n"
                f"  accuracy {report.accuracy:.6%} on {report.check_vectors} {report.check} vectors (target {report.target:.4%})\n"
                f"  written Verilog evaluated on {report.simulated_vectors} {report.simulation} vectors: {report.simulation_mismatches} mismatches\n"
                f"  {report.nodes} diagram nodes, {'no' if report.cells is None else report.cells} Yosys cells, {report.rounds} round(s), "
                f"{report.oracle_queries} oracle queries\n"
                f"  learning {report.learn_seconds:.2f} s, total {report.total_seconds:.2f} s"
            )
        return 0 if report.success else 1

    _guard(body)


@app.command()
def equiv(
    ref: Path = typer.Argument(..., help="reference Verilog"),
    dut: Path = typer.Argument(..., help="design under test"),
    top: Optional[str] = typer.Option(None, "--top", help="top module (found automatically when omitted)"),
    clock: Optional[str] = typer.Option(None, "--clock", help="clock input (default: inferred from its name)"),
    reset: Optional[str] = typer.Option(None, "--reset", help="NAME[:active-low][:async] (default: inferred)"),
    depth: int = typer.Option(20, "--depth", help="induction / bounded proof depth in cycles"),
    cycles: int = typer.Option(2000, "--cycles", help="cycles per simulation run"),
    seeds: str = typer.Option("1,2,3", "--seeds", help="comma-separated simulation seeds"),
    no_formal: bool = typer.Option(False, "--no-formal", help="skip the Yosys proof, simulate only"),
    timeout: float = typer.Option(300.0, "--timeout", help="seconds allowed to the simulation (the proof gets at most 60)"),
    cex: Optional[Path] = typer.Option(None, "--cex", help="where to write a counterexample's replay testbench"),
    x_inputs: bool = typer.Option(False, "--x-inputs", help="also drive X/Z on data inputs in simulation"),
    min_known: float = typer.Option(0.1, "--min-known", help="share of comparisons in which every reference output bit must be 0/1"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
) -> None:
    """Check that DUT is equivalent to REF (exit 0 equivalent, 1 not equivalent, 4 inconclusive, 2 bad input)."""

    def body() -> int:
        from qimeng.core.verdict import BadInput
        from qimeng.hardware.equiv.check import EquivOptions, check_equivalence
        from qimeng.hardware.ports import Reset

        try:
            seed_list = tuple(int(s) for s in seeds.split(",") if s.strip())
        except ValueError:
            raise BadInput(f"--seeds {seeds!r}: expected comma-separated integers") from None
        options = EquivOptions(top, clock, Reset.parse(reset) if reset else None, not no_formal, depth, cycles,
                               seed_list or (1,), timeout, cex, x_inputs, min_known)
        with _err().status("checking equivalence", spinner="dots") if not as_json else nullcontext():
            result = check_equivalence(ref, dut, options)
        if as_json:
            _out().print_json(json.dumps(result.to_json()))
        else:
            word = {"equivalent": "[green]EQUIVALENT[/green]", "not_equivalent": "[red]NOT EQUIVALENT[/red]",
                    "inconclusive": "[yellow]INCONCLUSIVE[/yellow]"}[result.verdict]
            _out().print(f"{word} ({result.method}): {result.coverage}")
            _out().print(f"  semantics: {result.semantics}; inputs {result.inputs}; {result.yosys}", highlight=False)
            for note in result.notes:
                _out().print(f"  note: {note}", highlight=False)
            c = result.counterexample
            if c:
                _out().print(f"  cycle {c.cycle}, {c.phase} ({c.stimulus})", highlight=False)
                _out().print("  inputs: " + ", ".join(f"{k}={v}" for k, v in c.inputs.items()), highlight=False)
                _out().print("  reference: " + ", ".join(f"{k}={v}" for k, v in c.ref_outputs.items()), highlight=False)
                _out().print("  design:    " + ", ".join(f"{k}={v}" for k, v in c.dut_outputs.items()), highlight=False)
                _out().print(f"  replay: {c.replay_command}", highlight=False)
        return result.exit_status

    _guard(body)



@app.command("verilog-eval")
def verilog_eval(
    problems_dir: Path = typer.Argument(..., help="VerilogEval v2 problems (ProbNNN_name_{prompt.txt,ifc.txt,ref.sv,test.sv})"),
    samples_dir: Path = typer.Argument(..., help="samples: SAMPLES_DIR/ProbNNN_name/*.sv or SAMPLES_DIR/ProbNNN_name_sample*.sv"),
    protocol: str = typer.Option("qimeng", "--protocol", help="qimeng (stricter) or verilog-eval (the benchmark's own analysis)"),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="seconds allowed to compile, and to simulate, one sample (default 60; 30 under --protocol verilog-eval)"),
    workers: int = typer.Option(0, "--workers", help="parallel samples (0: one per CPU core)"),
    store: bool = typer.Option(True, "--store/--no-store", help="record the run in the store (QIMENG_STORE)"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Evaluate samples against VerilogEval problems; print pass@1/5/10 per problem and overall."""

    def body() -> int:
        from qimeng.hardware.verilog_eval import Protocol, run_verilog_eval

        chosen = _choice(Protocol, protocol, "--protocol")
        report = run_verilog_eval(problems_dir, samples_dir, timeout, workers or None, not as_json, chosen)
        return _finish_eval(report, f"VerilogEval ({chosen.value} protocol): {problems_dir}", store, as_json)

    _guard(body, warn_isolation=False)


@app.command()
def rtllm(
    designs_dir: Path = typer.Argument(..., help="RTLLM v1.1 designs (folders with design_description.txt, testbench.v, verified_*.v)"),
    samples_dir: Path = typer.Argument(..., help="samples: SAMPLES_DIR/t1/NAME.v, t2/NAME.v, ... or SAMPLES_DIR/NAME/*.v"),
    protocol: str = typer.Option("qimeng", "--protocol", help="qimeng (stricter) or rtllm (RTLLM's own 'pass in output' check)"),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="seconds allowed to compile, and to simulate, one sample (default 60; 8 under --protocol rtllm)"),
    workers: int = typer.Option(0, "--workers", help="parallel samples (0: one per CPU core)"),
    store: bool = typer.Option(True, "--store/--no-store", help="record the run in the store (QIMENG_STORE)"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Evaluate samples against RTLLM designs; print syntax and functional pass@1/5/10 per design and overall."""

    def body() -> int:
        from qimeng.hardware.rtllm import RtllmProtocol, run_rtllm

        chosen = _choice(RtllmProtocol, protocol, "--protocol")
        report = run_rtllm(designs_dir, samples_dir, timeout, workers or None, not as_json, chosen)
        return _finish_eval(report, f"RTLLM ({chosen.value} protocol): {designs_dir}", store, as_json)

    _guard(body, warn_isolation=False)


def _choice(kind: type[E], value: str, option: str) -> E:
    """The member of enum ``kind`` whose value is ``value``; BadInput naming ``option`` otherwise."""
    from qimeng.core.verdict import BadInput

    try:
        return kind(value)
    except ValueError:
        raise BadInput(f"{option} {value!r}: expected one of {', '.join(m.value for m in kind)}") from None


def _finish_eval(report: "EvalReport", title: str, store: bool, as_json: bool) -> int:
    """Store a verilog-eval / RTLLM report and print it (a table, or JSON)."""
    from rich.table import Table

    from qimeng.hardware.eval_report import KS
    from qimeng.hardware.store import HardwareStore

    if store:
        db = HardwareStore()
        report.run_id = db.save_eval_run(report)
        db.close()
    if as_json:
        _out().print_json(json.dumps(report.to_json()))
        return 0
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    table = Table(title=title)
    first = "design" if report.benchmark == "rtllm" else "problem"
    for col in [first, "n", "c", *(f"pass@{k}" for k in KS), "compiles", "syntax pass@1", "failures"]:
        table.add_column(col)
    for p in report.problems:
        failures = sorted({s.status for s in p.samples} - {"ok"})
        syntax = fmt(p.syntax_c / p.n) if p.n else "-"
        table.add_row(p.problem, str(p.n), str(p.c), *(fmt(p.pass_at[str(k)]) for k in KS), str(p.syntax_c), syntax,
                      ", ".join(failures) if p.n else "missing")
    table.add_row("overall", str(sum(p.n for p in report.problems)), str(sum(p.c for p in report.problems)),
                  *(fmt(report.pass_at[str(k)]) for k in KS), str(sum(p.syntax_c for p in report.problems)),
                  fmt(report.syntax_pass_at["1"]), "")
    _out().print(table)
    for warning in report.warnings:
        _err().print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    _out().print(f"isolation: {report.isolation}", highlight=False)
    if report.run_id is not None:
        _out().print(f"stored as run {report.run_id} in the hw_eval_* tables of the store")
    return 0
