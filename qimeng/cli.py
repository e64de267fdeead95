"""The ``qimeng`` command: one Typer app; each agent adds its commands here as thin wrappers.

Each command imports its implementation lazily so that ``qimeng --help`` stays fast and a missing
optional dependency of one agent never breaks another agent's commands.
"""

from __future__ import annotations

import typer

from qimeng.hardware.cli import app as hw_app

app = typer.Typer(
    name="qimeng",
    help="Design fast, verified low-level code: kernels for PyTorch programs and Verilog hardware.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(hw_app, name="hw", help="Hardware: Verilog equivalence, VerilogEval harness, circuit learning.")


if __name__ == "__main__":
    app()
