"""``qimeng hw`` commands: thin wrappers that parse options, call the library and set the exit status.

Exit status: 0 success (equivalent, target met), 1 a negative answer (not equivalent, target missed),
2 bad input (unparsable Verilog, mismatched ports, bad arguments), 3 a required tool is missing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional

import typer
from rich.console import Console

app = typer.Typer(no_args_is_help=True)
err = Console(stderr=True)
out = Console()


def _guard(body: Callable[[], int]) -> None:
    """Run a command body; BadInput exits 2 and MissingTool exits 3, each with its message."""
    from qimeng.core.verdict import BadInput
    from qimeng.hardware.tools import MissingTool

    try:
        code = body()
    except BadInput as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, markup=True)
        raise typer.Exit(2) from None
    except MissingTool as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(3) from None
    raise typer.Exit(code)


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
    check: int = typer.Option(100_000, "--check", help="random check vectors when N > 20"),
    sim_vectors: int = typer.Option(131_072, "--sim-vectors", help="vectors simulated with Icarus (all when 2**N is fewer)"),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Learn a combinational circuit from an oracle with Binary Speculation Diagrams."""

    def body() -> int:
        from qimeng.hardware.bsd.report import learn_to_verilog

        report = learn_to_verilog(oracle, inputs, outputs, out_path, name, target, samples, rounds, check,
                                  sim_vectors, seed, progress=not as_json)
        if as_json:
            out.print_json(json.dumps(report.to_json()))
        else:
            verdict = "[green]success[/green]" if report.success else "[red]target not met[/red]"
            out.print(
                f"{verdict}: {report.out} (module {report.module})\n"
                f"  accuracy {report.accuracy:.6%} on {report.check_vectors} {report.check} vectors (target {report.target:.4%})\n"
                f"  Verilog simulated on {report.simulated_vectors} vectors: {report.simulation_mismatches} mismatches\n"
                f"  {report.nodes} diagram nodes, {report.cells} Yosys cells, {report.rounds} round(s), "
                f"{report.oracle_queries} oracle queries\n"
                f"  learning {report.learn_seconds:.2f} s, total {report.total_seconds:.2f} s"
            )
        return 0 if report.success else 1

    _guard(body)
