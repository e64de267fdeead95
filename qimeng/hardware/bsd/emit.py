"""Synthesizable Verilog from a learned diagram: one gate or multiplexer per shared decision node.

Nodes with a constant child are written as the gate they are (``x & h``, ``~x | h``, ...), a node
``x ? 1 : 0`` is the input itself, so no constant multiplexer reaches synthesis; every node is
one wire, shared by all the output bits that use it.
"""

from __future__ import annotations

from qimeng.hardware.bsd.diagram import CONST0, CONST1, Diagram


def _expression(x: str, lo: str, hi: str) -> str:
    """The value of node ``x ? hi : lo`` with constant children folded."""
    folded = {
        ("1'b0", "1'b1"): x, ("1'b1", "1'b0"): f"~{x}",
        ("1'b0", hi): f"{x} & {hi}", (lo, "1'b0"): f"~{x} & {lo}",
        ("1'b1", hi): f"~{x} | {hi}", (lo, "1'b1"): f"{x} | {lo}",
    }
    for (want_lo, want_hi), text in folded.items():
        if (lo, hi) == (want_lo, want_hi):
            return text
    return f"{x} ? {hi} : {lo}"


def emit_verilog(d: Diagram, n_inputs: int, name: str = "learned") -> str:
    """``module NAME(input [N-1:0] x, output [M-1:0] y)`` computing every output bit of ``d``."""
    m = len(d.roots)
    nodes = d.reachable()[::-1].tolist()  # children first

    def ref(k: int) -> str:
        return {CONST0: "1'b0", CONST1: "1'b1"}.get(k, f"n{k}")

    lines = [
        f"// Learned by qimeng (Binary Speculation Diagrams): {m} output bits, {len(nodes)} shared decision nodes.",
        f"module {name}(input [{n_inputs - 1}:0] x, output [{m - 1}:0] y);",
    ]
    if nodes:
        lines.append("  wire " + ", ".join(ref(k) for k in nodes) + ";")
    for k in nodes:
        text = _expression(f"x[{int(d.var[k])}]", ref(int(d.lo[k])), ref(int(d.hi[k])))
        lines.append(f"  assign {ref(k)} = {text};")
    lines.append("  assign y = {" + ", ".join(ref(int(r)) for r in d.roots[::-1]) + "};")
    return "\n".join(lines + ["endmodule", ""])
