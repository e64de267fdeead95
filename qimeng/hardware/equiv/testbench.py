"""Testbenches that drive a renamed reference (``ref_TOP``) and design (``dut_TOP``) side by side.

Each cycle (task ``qm_cycle``, 10 time units): the data inputs and the reset take their values while
the clock is low and outputs are compared; an optional reset pulse is raised and dropped before the
edge (only an asynchronous reset reacts), outputs are compared; the clock rises, outputs are compared;
then, at a random time while the clock is high, the data inputs may change again and outputs are
compared once more (so a latch cannot pass for a flip-flop). Comparison is per output bit: where the
reference bit is X or Z it is don't-care; where it is 0/1 the design must give exactly that (an X from
the design is a mismatch). Every comparison counts, per output bit, whether the reference was known.

The random testbench runs several stimulus runs (seed, reset polarity, reset timing), each starting
with two reset cycles, and stops at the first mismatch; it writes each run's stimulus to ``trace.txt``
so that a replay testbench can repeat exactly the cycles that led to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from qimeng.hardware.ports import Interface, Port, Reset

PHASES = (
    "with the clock low, after the inputs changed",
    "during an asynchronous reset pulse",
    "after the rising clock edge",
    "after an input change while the clock is high",
)


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
class Step:
    """One cycle of stimulus: data inputs (binary, first data input in the lowest bits) low and high."""

    data: str
    reset: int
    pulse: int  # bit 1: pulse the reset before the edge; bit 0: the pulse's level
    data_high: str  # data inputs after the change while the clock is high
    high_delay: int  # 0..2: when, after the rising edge + 1, that change happens


@dataclass(frozen=True)
class Bench:
    """The roles of the ports of the (common) interface."""

    iface: Interface  # of the reference; the design has the same ports
    clock: str | None
    reset: Reset | None
    dut_module: str = ""  # the design's top module name, when it differs from the reference's
    x_inputs: bool = False  # drive X/Z on data inputs now and then

    @property
    def data_inputs(self) -> tuple[Port, ...]:
        skip = {self.clock, self.reset.name if self.reset else None}
        return tuple(p for p in self.iface.inputs if p.name not in skip)

    @property
    def data_width(self) -> int:
        return max(1, sum(p.width for p in self.data_inputs))

    @property
    def output_bits(self) -> list[str]:
        """Names of the compared output bits, least significant bit of the concatenation first."""
        return [p.name if p.width == 1 else f"{p.name}[{i}]" for p in reversed(self.iface.outputs) for i in range(p.width)]

    def pack(self, values: dict[str, str]) -> str:
        """Binary data word (as ``qm_cycle`` takes it) from per-input binary values."""
        parts = [values.get(p.name, "0" * p.width).rjust(p.width, "0")[-p.width:] for p in reversed(self.data_inputs)]
        return "".join(parts) or "0"


def _decl(p: Port, kind: str, name: str) -> str:
    width = f"[{p.width - 1}:0] " if p.width > 1 else ""
    return f"  {kind} {width}{name};"


def _module_body(b: Bench) -> list[str]:
    """Declarations, both instances and the ``qm_check``/``qm_cycle`` tasks."""
    iface, dw, ow = b.iface, b.data_width, len(b.output_bits)
    lines = [_decl(p, "reg", p.name) for p in iface.inputs]
    lines += [_decl(p, "wire", f"ref_{p.name}") for p in iface.outputs]
    lines += [_decl(p, "wire", f"dut_{p.name}") for p in iface.outputs]
    lines += [
        "  integer qm_mismatches = 0, qm_run = 0, qm_cycle_no = 0, qm_checks = 0, qm_b;",
        f"  integer qm_known [0:{ow - 1}];",
        f"  reg [{ow - 1}:0] qm_ref, qm_dut;",
        "  reg qm_bad;",
        f"  initial for (qm_b = 0; qm_b < {ow}; qm_b = qm_b + 1) qm_known[qm_b] = 0;",
    ]
    for role, module in (("ref", iface.module), ("dut", b.dut_module or iface.module)):
        conns = [f".{p.name}({p.name})" for p in iface.inputs] + [f".{p.name}({role}_{p.name})" for p in iface.outputs]
        lines.append(f"  {role}_{module} {role}_i({', '.join(conns)});")
    ref_cat = "{" + ", ".join(f"ref_{p.name}" for p in iface.outputs) + "}"
    dut_cat = "{" + ", ".join(f"dut_{p.name}" for p in iface.outputs) + "}"
    lines += [
        "  task qm_check(input integer phase);",
        "    begin",
        f"      qm_ref = {ref_cat}; qm_dut = {dut_cat}; qm_bad = 0; qm_checks = qm_checks + 1;",
        f"      for (qm_b = 0; qm_b < {ow}; qm_b = qm_b + 1)",
        "        if (^qm_ref[qm_b] !== 1'bx) begin",
        "          qm_known[qm_b] = qm_known[qm_b] + 1;",
        "          if (qm_dut[qm_b] !== qm_ref[qm_b]) qm_bad = 1;",
        "        end",
        "      if (qm_bad) begin",
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
        f"  task qm_cycle(input [{dw - 1}:0] qm_d, input qm_r, input [1:0] qm_p, input [{dw - 1}:0] qm_dh, input integer qm_h);",
        "    begin",
        f"      {data_target} = qm_d;" if data_target else "",
        f"      {rst} = qm_r;" if rst else "",
        "      #1 qm_check(0);",
        f"      if (qm_p[1]) begin {rst} = qm_p[0]; #1 qm_check(1); {rst} = qm_r; #1; end else #2;" if rst else "      #2;",
        f"      #1 {b.clock} = 1;" if b.clock else "      #1;",
        "      #1 qm_check(2);",
        "      #(qm_h);",
        f"      {data_target} = qm_dh;" if data_target else "",
        "      #1 qm_check(3);",
        f"      #(3 - qm_h) {b.clock} = 0;" if b.clock else "      #(3 - qm_h);",
        "      #1;",
        "    end",
        "  endtask",
    ]
    return [ln for ln in lines if ln]


def _random_fields(b: Bench, target: str, indent: str) -> list[str]:
    """Random values for every data input in ``target``, with corner values (and X/Z) now and then."""
    lines, lo = [], 0
    for p in b.data_inputs:
        chunks = ", ".join(["$random(qm_seed)"] * ((p.width + 31) // 32))
        field = f"{target}[{lo + p.width - 1}:{lo}]"
        lines += [
            f"{indent}{field} = {{{chunks}}};",
            f"{indent}qm_k = $random(qm_seed) & 15;",
            f"{indent}if (qm_k == 0) {field} = 0; else if (qm_k == 1) {field} = {{{p.width}{{1'b1}}}}; "
            f"else if (qm_k == 2) {field} = {field} & 3;",
        ]
        if b.x_inputs:
            lines.append(
                f"{indent}if (($random(qm_seed) & 15) == 0) {field} = ($random(qm_seed) & 1) ? "
                f"{{{p.width}{{1'bx}}}} : {{{p.width}{{1'bz}}}}; else if (($random(qm_seed) & 15) == 0) {target}[{lo}] = 1'bx;"
            )
        lo += p.width
    return lines


def random_testbench(b: Bench, runs: list[Run], cycles: int) -> str:
    """The random-stimulus testbench (top module ``qimeng_equiv_tb``)."""
    dw, ow = b.data_width, len(b.output_bits)
    lines = ["`timescale 1ns/1ps", "module qimeng_equiv_tb;"] + _module_body(b)
    lines += [
        "  task qm_random_run(input integer qm_run_in, input integer qm_seed_in, input qm_active, input qm_async);",
        "    integer qm_seed, qm_i, qm_k, qm_tf, qm_h;",
        f"    reg [{dw - 1}:0] qm_d, qm_dh;",
        "    reg qm_r;",
        "    reg [1:0] qm_p;",
        "    begin",
        "      qm_seed = qm_seed_in; qm_run = qm_run_in;",
        '      qm_tf = $fopen("trace.txt", "w");',
        f"      for (qm_i = 0; qm_i < {cycles}; qm_i = qm_i + 1) begin",
        "        qm_cycle_no = qm_i;",
        "        qm_d = 0; qm_dh = 0;",
        *_random_fields(b, "qm_d", "        "),
        "        if ($random(qm_seed) & 1) qm_dh = qm_d;",
        "        else begin",
        *_random_fields(b, "qm_dh", "          "),
        "        end",
        "        qm_h = $unsigned($random(qm_seed)) % 3;",
        "        if (qm_i < 2) qm_r = qm_active;",
        "        else if (qm_async) qm_r = ~qm_active;",
        "        else qm_r = (($random(qm_seed) & 31) == 0) ? qm_active : ~qm_active;",
        "        qm_p = (qm_async && qm_i >= 2 && (($random(qm_seed) & 15) == 0)) ? {1'b1, qm_active} : 2'b00;",
        '        $fwrite(qm_tf, "%b %b %b %b %0d\\n", qm_d, qm_r, qm_p, qm_dh, qm_h);',
        "        qm_cycle(qm_d, qm_r, qm_p, qm_dh, qm_h);",
        '        if (qm_mismatches != 0) begin $fclose(qm_tf); $display("QIMENG_STOP"); $finish; end',
        "      end",
        "      $fclose(qm_tf);",
        "    end",
        "  endtask",
        "  initial begin",
        f"    {b.clock} = 0;" if b.clock else "",
    ]
    lines += [f"    qm_random_run({i}, {r.seed}, 1'b{r.active_level}, {int(r.async_pulses)});" for i, r in enumerate(runs)]
    lines += [
        '    $write("QIMENG_KNOWN checks=%0d", qm_checks);',
        f"    for (qm_b = 0; qm_b < {ow}; qm_b = qm_b + 1) $write(\" %0d\", qm_known[qm_b]);",
        '    $display("");',
        f'    $display("QIMENG_DONE cycles=%0d", {len(runs) * cycles});',
        "    $finish;",
        "  end",
        "endmodule",
        "",
    ]
    return "\n".join(ln for ln in lines if ln)


def replay_testbench(b: Bench, stimulus: list[Step], title: str) -> str:
    """A testbench repeating ``stimulus`` cycle by cycle."""
    dw = b.data_width
    lines = [f"// {line}" for line in title.splitlines()]
    lines += ["`timescale 1ns/1ps", "module qimeng_replay;"] + _module_body(b)
    lines += ["  initial begin", f"    {b.clock} = 0;" if b.clock else ""]
    for i, s in enumerate(stimulus):
        lines.append(
            f"    qm_cycle_no = {i}; qm_cycle({dw}'b{s.data}, 1'b{s.reset}, 2'b{s.pulse:02b}, {dw}'b{s.data_high}, {s.high_delay});"
        )
    lines += [
        '    if (qm_mismatches == 0) $display("replay: outputs agree");',
        '    else $display("replay: %0d mismatching comparison(s): NOT EQUIVALENT", qm_mismatches);',
        f'    $display("QIMENG_DONE cycles={len(stimulus)}");',
        "    $finish;",
        "  end",
        "endmodule",
        "",
    ]
    return "\n".join(ln for ln in lines if ln)
