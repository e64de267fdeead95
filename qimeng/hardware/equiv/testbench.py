"""Testbenches that drive a renamed reference (``ref_TOP``) and design (``dut_TOP``) side by side.

Each cycle (task ``qm_cycle``): the data inputs and the reset take their values while the clock is
low, outputs are compared; an optional reset pulse is raised and dropped before the edge (only an
asynchronous reset reacts), outputs are compared; the clock rises, outputs are compared again.
Comparison is four-state: where the reference output is X any value matches; where it is 0/1 the
design must give exactly that (an X from the design is a mismatch).

The random testbench runs several stimulus runs (seed, reset polarity, reset timing), each starting
with two reset cycles, and stops at the first mismatch; it writes each run's stimulus to
``trace.txt`` so that a replay testbench can repeat exactly the cycles that led to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from qimeng.hardware.ports import Interface, Port, Reset

PHASES = ("before the clock edge", "during an asynchronous reset pulse", "after the clock edge")


@dataclass(frozen=True)
class Run:
    """One stimulus run of the random testbench."""

    seed: int
    active_level: int  # level that asserts the reset (ignored without a reset)
    async_pulses: bool  # reset pulses between clock edges instead of whole reset cycles

    def describe(self, has_reset: bool) -> str:
        if not has_reset:
            return f"seed {self.seed}"
        timing = "asynchronous pulses" if self.async_pulses else "synchronous cycles"
        return f"seed {self.seed}, reset active-{'high' if self.active_level else 'low'}, {timing}"


@dataclass(frozen=True)
class Bench:
    """The roles of the ports of the (common) interface."""

    iface: Interface  # of the reference; the design has the same ports
    clock: str | None
    reset: Reset | None
    dut_module: str = ""  # the design's top module name, when it differs from the reference's

    @property
    def data_inputs(self) -> tuple[Port, ...]:
        skip = {self.clock, self.reset.name if self.reset else None}
        return tuple(p for p in self.iface.inputs if p.name not in skip)

    @property
    def data_width(self) -> int:
        return max(1, sum(p.width for p in self.data_inputs))

    def unpack(self, data: int) -> dict[str, int]:
        """Data-input values packed by ``qm_cycle`` (the first data input in the lowest bits)."""
        values, lo = {}, 0
        for p in self.data_inputs:
            values[p.name] = (data >> lo) & ((1 << p.width) - 1)
            lo += p.width
        return values

    def pack(self, values: dict[str, int]) -> int:
        data, lo = 0, 0
        for p in self.data_inputs:
            data |= (values.get(p.name, 0) & ((1 << p.width) - 1)) << lo
            lo += p.width
        return data


def _decl(p: Port, kind: str, name: str) -> str:
    width = f"[{p.width - 1}:0] " if p.width > 1 else ""
    return f"  {kind} {width}{name};"


def _module_body(b: Bench) -> list[str]:
    """Declarations, both instances and the ``qm_check``/``qm_cycle`` tasks."""
    iface, dw = b.iface, b.data_width
    lines = [_decl(p, "reg", p.name) for p in iface.inputs]
    lines += [_decl(p, "wire", f"ref_{p.name}") for p in iface.outputs]
    lines += [_decl(p, "wire", f"dut_{p.name}") for p in iface.outputs]
    lines += ["  integer qm_mismatches = 0, qm_run = 0, qm_cycle_no = 0;"]
    for role, module in (("ref", iface.module), ("dut", b.dut_module or iface.module)):
        conns = [f".{p.name}({p.name})" for p in iface.inputs] + [f".{p.name}({role}_{p.name})" for p in iface.outputs]
        lines.append(f"  {role}_{module} {role}_i({', '.join(conns)});")
    ref_cat = "{" + ", ".join(f"ref_{p.name}" for p in iface.outputs) + "}"
    dut_cat = "{" + ", ".join(f"dut_{p.name}" for p in iface.outputs) + "}"
    lines += [
        "  task qm_check(input integer phase);",
        "    begin",
        f"      if ({ref_cat} !== ({ref_cat} ^ {dut_cat} ^ {ref_cat})) begin",
        "        qm_mismatches = qm_mismatches + 1;",
        "        if (qm_mismatches <= 10) begin",
        '          $display("QIMENG_MISMATCH run=%0d cycle=%0d phase=%0d", qm_run, qm_cycle_no, phase);',
    ]
    lines += [f'          $display("QIMENG_IN {p.name}=%b", {p.name});' for p in iface.inputs]
    lines += [f'          $display("QIMENG_REF {p.name}=%b", ref_{p.name});' for p in iface.outputs]
    lines += [f'          $display("QIMENG_DUT {p.name}=%b", dut_{p.name});' for p in iface.outputs]
    data_target = "{" + ", ".join(p.name for p in reversed(b.data_inputs)) + "}" if b.data_inputs else None
    rst = b.reset.name if b.reset else None
    lines += [
        "        end",
        "      end",
        "    end",
        "  endtask",
        f"  task qm_cycle(input [{dw - 1}:0] qm_d, input qm_r, input [1:0] qm_p);",
        "    begin",
        f"      {data_target} = qm_d;" if data_target else "",
        f"      {rst} = qm_r;" if rst else "",
        "      #1 qm_check(0);",
        f"      if (qm_p[1]) begin {rst} = qm_p[0]; #1 qm_check(1); {rst} = qm_r; #1; end else #2;" if rst else "      #2;",
        f"      #1 {b.clock} = 1;" if b.clock else "      #1;",
        "      #1 qm_check(2);",
        f"      #2 {b.clock} = 0;" if b.clock else "      #2;",
        "      #1;",
        "    end",
        "  endtask",
    ]
    return [ln for ln in lines if ln]


def random_testbench(b: Bench, runs: list[Run], cycles: int) -> str:
    """The random-stimulus testbench (top module ``qimeng_equiv_tb``)."""
    dw = b.data_width
    lines = ["`timescale 1ns/1ps", "module qimeng_equiv_tb;"] + _module_body(b)
    lines += [
        "  task qm_random_run(input integer qm_run_in, input integer qm_seed_in, input qm_active, input qm_async);",
        "    integer qm_seed, qm_i, qm_k, qm_tf;",
        f"    reg [{dw - 1}:0] qm_d;",
        "    reg qm_r;",
        "    reg [1:0] qm_p;",
        "    begin",
        "      qm_seed = qm_seed_in; qm_run = qm_run_in;",
        '      qm_tf = $fopen("trace.txt", "w");',
        f"      for (qm_i = 0; qm_i < {cycles}; qm_i = qm_i + 1) begin",
        "        qm_cycle_no = qm_i;",
        "        qm_d = 0;",
    ]
    lo = 0
    for p in b.data_inputs:  # random value per input, with corner values now and then
        chunks = ", ".join(["$random(qm_seed)"] * ((p.width + 31) // 32))
        field = f"qm_d[{lo + p.width - 1}:{lo}]"
        lines += [
            f"        {field} = {{{chunks}}};",
            "        qm_k = $random(qm_seed) & 15;",
            f"        if (qm_k == 0) {field} = 0; else if (qm_k == 1) {field} = {{{p.width}{{1'b1}}}}; "
            f"else if (qm_k == 2) {field} = {field} & 3;",
        ]
        lo += p.width
    lines += [
        "        if (qm_i < 2) qm_r = qm_active;",
        "        else if (qm_async) qm_r = ~qm_active;",
        "        else qm_r = (($random(qm_seed) & 31) == 0) ? qm_active : ~qm_active;",
        "        qm_p = (qm_async && qm_i >= 2 && (($random(qm_seed) & 15) == 0)) ? {1'b1, qm_active} : 2'b00;",
        '        $fwrite(qm_tf, "%h %b %b\\n", qm_d, qm_r, qm_p);',
        "        qm_cycle(qm_d, qm_r, qm_p);",
        '        if (qm_mismatches != 0) begin $fclose(qm_tf); $display("QIMENG_STOP"); $finish; end',
        "      end",
        "      $fclose(qm_tf);",
        "    end",
        "  endtask",
        "  initial begin",
        f"    {b.clock} = 0;" if b.clock else "",
    ]
    lines += [f"    qm_random_run({i}, {r.seed}, 1'b{r.active_level}, {int(r.async_pulses)});" for i, r in enumerate(runs)]
    lines += [f'    $display("QIMENG_DONE cycles=%0d", {len(runs) * cycles});', "    $finish;", "  end", "endmodule", ""]
    return "\n".join(ln for ln in lines if ln)


def replay_testbench(b: Bench, stimulus: list[tuple[int, int, int]], title: str) -> str:
    """A testbench repeating ``stimulus`` (data, reset level, pulse bits) cycle by cycle."""
    dw = b.data_width
    lines = [f"// {line}" for line in title.splitlines()]
    lines += ["`timescale 1ns/1ps", "module qimeng_replay;"] + _module_body(b)
    lines += ["  initial begin", f"    {b.clock} = 0;" if b.clock else ""]
    for i, (d, r, p) in enumerate(stimulus):
        lines.append(f"    qm_cycle_no = {i}; qm_cycle({dw}'h{d:x}, 1'b{r}, 2'b{p:02b});")
    lines += [
        '    if (qm_mismatches == 0) $display("replay: outputs agree");',
        '    else $display("replay: %0d mismatching comparison(s): NOT EQUIVALENT", qm_mismatches);',
        "    $finish;",
        "  end",
        "endmodule",
        "",
    ]
    return "\n".join(ln for ln in lines if ln)
