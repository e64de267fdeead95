"""Synthesizable Verilog from learned diagrams: one multiplexer per decision node."""

from __future__ import annotations

from qimeng.hardware.bsd.diagram import CONST0, CONST1, Diagram


def emit_verilog(diagrams: list[Diagram], n_inputs: int, name: str = "learned") -> str:
    """``module NAME(input [N-1:0] x, output [M-1:0] y)`` computing every diagram's output bit."""
    m = len(diagrams)
    lines = [
        f"// Learned by qimeng (Binary Speculation Diagrams): {m} output bits, "
        f"{sum(d.n_nodes for d in diagrams)} decision nodes.",
        f"module {name}(input [{n_inputs - 1}:0] x, output [{m - 1}:0] y);",
    ]
    body = []
    for j, d in enumerate(diagrams):
        nodes = d.reachable()

        def ref(k: int, j: int = j) -> str:
            return {CONST0: "1'b0", CONST1: "1'b1"}.get(k, f"o{j}_n{k}")

        if nodes:
            lines.append("  wire " + ", ".join(ref(k) for k in nodes) + ";")
        for k in nodes:
            lo, hi, v = int(d.lo[k]), int(d.hi[k]), int(d.var[k])
            body.append(f"  assign {ref(k)} = x[{v}] ? {ref(hi)} : {ref(lo)};")
        body.append(f"  assign y[{j}] = {ref(d.root)};")
    return "\n".join(lines + body + ["endmodule", ""])
