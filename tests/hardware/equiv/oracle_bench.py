"""The mutant suite's independent oracle: a testbench of its own, written here, that decides a verdict.

It shares no code with ``qimeng.hardware.equiv``: ports are parsed from the (uniform, ANSI-style) headers
of the suite's designs, the clock runs freely (period 10 ns), every other input takes a new random value
at 2 ns and 7 ns of every cycle (both clock phases), the reset (by name: ``*_n`` active low) is asserted
for the first two cycles and now and then afterwards, and outputs are compared every nanosecond. A
reference bit that is X/Z is don't-care; where it is 0/1 the mutant must match. Verdict: a mismatch or a
simulation that does not finish is ``not_equivalent``; a reference output bit known in fewer than 10% of
the comparisons makes it ``inconclusive``; otherwise ``equivalent``.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

MIN_KNOWN = 0.1


def ports(source: str) -> list[tuple[str, int, str]]:
    """(direction, width, name) of each port of the first module header."""
    header = re.search(r"module\s+\w+\s*\((.*?)\);", source, re.S).group(1)
    found = []
    for part in header.split(","):
        m = re.fullmatch(r"\s*(input|output)\s+(?:reg\s+)?(?:\[(\d+):0\]\s+)?(\w+)\s*", part)
        found.append((m.group(1), int(m.group(2) or 0) + 1, m.group(3)))
    return found


def _testbench(plist: list[tuple[str, int, str]], cycles: int, seed: int) -> str:
    ins = [(w, n) for d, w, n in plist if d == "input" and n != "clk"]
    outs = [(w, n) for d, w, n in plist if d == "output"]
    width = sum(w for w, _ in outs)
    decl = lambda kind, w, n: f"  {kind} [{w - 1}:0] {n};"  # noqa: E731
    lines = ["`timescale 1ns/100ps", "module o_tb;", "  reg clk = 0;"]
    lines += [decl("reg", w, n) for w, n in ins]
    lines += [decl("wire", w, f"r_{n}") for w, n in outs] + [decl("wire", w, f"m_{n}") for w, n in outs]
    has_clk = any(n == "clk" for _, _, n in plist)
    for inst, pre in (("o_ref", "r_"), ("o_mut", "m_")):
        conns = [f".{n}({n})" for d, _, n in plist if d == "input"] + [f".{n}({pre}{n})" for _, n in outs]
        lines.append(f"  {inst} u_{inst}({', '.join(conns)});")
    resets = [(n, n.endswith("_n")) for _, n in ins if re.fullmatch(r"a?(rst|reset)(_n)?", n)]
    lines += [
        f"  integer o_seed = {seed}, o_cyc, o_b, o_checks = 0, o_bad = 0;",
        f"  integer o_known [0:{width - 1}];",
        f"  reg [{width - 1}:0] o_rv, o_mv;",
        "  task o_drive(input integer o_c);",
        "    begin",
    ]
    for w, n in ins:
        lines.append(f"      {n} = $random(o_seed);")
    for n, low in resets:
        on, off = ("1'b0", "1'b1") if low else ("1'b1", "1'b0")
        lines.append(f"      {n} = (o_c < 2 || ($random(o_seed) & 7) == 0) ? {on} : {off};")
    lines += [
        "    end",
        "  endtask",
        "  initial begin",
        f"    for (o_b = 0; o_b < {width}; o_b = o_b + 1) o_known[o_b] = 0;",
        f"    for (o_cyc = 0; o_cyc < {cycles}; o_cyc = o_cyc + 1) begin",
        "      #2 o_drive(o_cyc);",
        "      #3 clk = 1;" if has_clk else "      #3;",
        "      #2 o_drive(o_cyc);",
        "      #3 clk = 0;" if has_clk else "      #3;",
        "    end",
        '    $write("ORACLE bad=%0d checks=%0d", o_bad, o_checks);',
        f"    for (o_b = 0; o_b < {width}; o_b = o_b + 1) $write(\" %0d\", o_known[o_b]);",
        '    $display("");',
        "    $finish;",
        "  end",
        "  initial begin",
        "    #0.5;",
        "    forever begin",
        "      o_rv = {" + ", ".join(f"r_{n}" for _, n in outs) + "};",
        "      o_mv = {" + ", ".join(f"m_{n}" for _, n in outs) + "};",
        "      o_checks = o_checks + 1;",
        f"      for (o_b = 0; o_b < {width}; o_b = o_b + 1)",
        "        if (o_rv[o_b] === 1'b0 || o_rv[o_b] === 1'b1) begin",
        "          o_known[o_b] = o_known[o_b] + 1;",
        "          if (o_mv[o_b] !== o_rv[o_b]) o_bad = o_bad + 1;",
        "        end",
        "      #1;",
        "    end",
        "  end",
        "endmodule",
    ]
    return "\n".join(lines) + "\n"


def oracle_verdict(ref: str, mutant: str, work: Path, cycles: int = 3000, seed: int = 7, timeout_s: float = 20) -> str:
    """``equivalent`` | ``not_equivalent`` | ``inconclusive`` for ``mutant`` against ``ref`` (sources)."""
    rename = lambda text, name: re.sub(r"\bmodule\s+\w+", f"module {name}", text, count=1)  # noqa: E731
    (work / "o_ref.v").write_text(rename(ref, "o_ref"))
    (work / "o_mut.v").write_text(rename(mutant, "o_mut"))
    (work / "o_tb.v").write_text(_testbench(ports(ref), cycles, seed))
    subprocess.run(["iverilog", "-g2012", "-o", "o.vvp", "o_tb.v", "o_ref.v", "o_mut.v"], cwd=work, check=True,
                   capture_output=True, timeout=60)
    try:
        run = subprocess.run(["vvp", "-n", "o.vvp"], cwd=work, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return "not_equivalent"  # the mutant hangs the simulator (the reference alone never does)
    m = re.search(r"ORACLE bad=(\d+) checks=(\d+)((?: \d+)*)", run.stdout)
    if m is None:
        return "not_equivalent"
    bad, checks, known = int(m.group(1)), int(m.group(2)), [int(k) for k in m.group(3).split()]
    if bad:
        return "not_equivalent"
    return "inconclusive" if min(known) < MIN_KNOWN * checks else "equivalent"
