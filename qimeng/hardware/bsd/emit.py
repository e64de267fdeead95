"""Synthesizable Verilog from a learned diagram: one gate or multiplexer per shared decision node.

Nodes with a constant child are written as the gate they are (``x & h``, ``~x | h``, ...), a node
``x ? 1 : 0`` is the input itself, so no constant multiplexer reaches synthesis; every node is
one wire, shared by all the output bits that use it.
"""

from __future__ import annotations

from qimeng.hardware.bsd.decompose import Network
from qimeng.hardware.bsd.diagram import Diagram


def _expression(x: str, lo: str, hi: str) -> str:
    """The value of node ``x ? hi : lo`` with constant children folded."""
    zero, one = "1'b0", "1'b1"
    if (lo, hi) == (zero, one):
        return x
    if (lo, hi) == (one, zero):
        return f"~{x}"
    if lo == zero:
        return f"{x} & {hi}"
    if hi == zero:
        return f"~{x} & {lo}"
    if lo == one:
        return f"~{x} | {hi}"
    if hi == one:
        return f"{x} | {lo}"
    return f"{x} ? {hi} : {lo}"


def emit_verilog(d: Diagram, n_inputs: int, name: str = "learned", decompose: bool = True) -> str:
    """``module NAME(input [N-1:0] x, output [M-1:0] y)`` computing every output bit of ``d``
    (``decompose=False``: one multiplexer per node)."""
    net = Network(d, decompose)
    lines = [
        f"// Learned by qimeng (Binary Speculation Diagrams): {len(d.roots)} output bits, "
        f"{d.n_nodes} shared decision nodes, {len(net.assigns)} multiplexers"
        f"{' after cut decomposition' if net.decompose else ''}.",
        f"module {name}(input [{n_inputs - 1}:0] x, output [{len(d.roots) - 1}:0] y);",
    ]
    if net.assigns:
        lines.append("  wire " + ", ".join(w for w, *_ in net.assigns) + ";")
    lines += [f"  assign {w} = {_expression(select, lo, hi)};" for w, select, hi, lo in net.assigns]
    lines.append("  assign y = {" + ", ".join(net.outputs[::-1]) + "};")
    return "\n".join(lines + ["endmodule", ""])
