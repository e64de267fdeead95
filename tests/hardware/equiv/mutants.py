"""Single-point mutants of the small designs in ``data/equiv/mutants`` (for the mutant suite).

Each operator finds its sites in the source text and yields one mutant per site: binary operators,
negations, constants, clock edge and clock signal, reset polarity, bit selects and concatenation
order, flip-flop to latch (not in designs marked ``// nolatch``, whose latch would loop on itself without
end), and initial values added or removed. ``// altclk: NAME`` names the input a clock mutant uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

DESIGNS = Path(__file__).parents[1] / "data" / "equiv" / "mutants"

BINARY = {
    " + ": (" - ", " ^ "), " - ": (" + ",), " & ": (" | ", " ^ "), " | ": (" & ", " ^ "), " ^ ": (" & ", " | "),
    " < ": (" > ", " == "), " == ": (" != ",), " != ": (" == ",),
}


@dataclass(frozen=True)
class Mutant:
    design: str  # file stem
    kind: str
    site: int  # character offset of the mutation
    source: str

    @property
    def id(self) -> str:
        return f"{self.design}-{self.kind}@{self.site}"


def _body_start(text: str) -> int:
    """Offset just past the module header (mutations never touch the port list)."""
    return text.index(");", text.index("module ")) + 2


def _sub_each(text: str, pattern: str, replace: Callable[[re.Match], str | None]) -> Iterator[tuple[int, str]]:
    start = _body_start(text)
    for m in re.finditer(pattern, text[start:]):
        new = replace(m)
        if new is not None and new != m.group(0):
            at = start + m.start()
            yield at, text[:at] + new + text[start + m.end():]


def _constant(m: re.Match) -> str:
    width, base, digits = int(m.group(1)), m.group(2), m.group(3)
    value = int(digits, {"d": 10, "b": 2, "h": 16}[base])
    new = (value + 1) % (1 << width)
    return f"{width}'d{new}"


def _index(m: re.Match) -> str:
    return f"{m.group(1)}[{int(m.group(2)) ^ 1}]"


def _add_initial(text: str) -> Iterator[tuple[int, str]]:
    if "initial" in text:
        return
    for m in re.finditer(r"\breg\s+(?:\[\d+:0\]\s+)?(\w+)", text):
        at = text.index("endmodule")
        yield at, text[:at] + f"  initial {m.group(1)} = 0;\n" + text[at:]


def _remove_initial(text: str) -> Iterator[tuple[int, str]]:
    for m in re.finditer(r"  initial [^;]*;\n", text):
        yield m.start(), text[: m.start()] + text[m.end():]


def _operators(text: str) -> dict[str, Iterator[tuple[int, str]]]:
    altclk = re.search(r"// altclk: (\w+)", text)
    ops = {
        **{f"op{a.strip()}{b.strip()}": _sub_each(text, re.escape(a), lambda m, b=b: b) for a, bs in BINARY.items() for b in bs},
        "ternary": _sub_each(text, r"\? (\w+(?:'d\d+)?) : (\w+(?:'d\d+)?)(?= :|;)", lambda m: f"? {m.group(2)} : {m.group(1)}"),
        "not": _sub_each(text, r"~(?=\w)", lambda m: ""),
        "const": _sub_each(text, r"(\d+)'([dbh])([0-9a-fA-F]+)", _constant),
        "negedge": _sub_each(text, r"posedge clk", lambda m: "negedge clk"),
        "resetpol": _sub_each(text, r"if \((!?)(rst\w*|reset)\)", lambda m: f"if ({'' if m.group(1) else '!'}{m.group(2)})"),
        "arstedge": _sub_each(text, r"negedge rst_n", lambda m: "posedge rst_n"),
        "bit": _sub_each(text, r"(\w+)\[(\d+)\]", _index),
        "swap": _sub_each(text, r"\{(\w+\[\d+(?::\d+)?\]), (\w+(?:\[\d+\])?)\}", lambda m: f"{{{m.group(2)}, {m.group(1)}}}"),
        "latch": _sub_each(text, r"always @\(posedge clk\)", lambda m: None if "// nolatch" in text else "always @* if (clk)"),
        "init+": _add_initial(text),
        "init-": _remove_initial(text),
    }
    if altclk:
        ops["clock"] = _sub_each(text, r"posedge clk", lambda m: f"posedge {altclk.group(1)}")
    return ops


def mutants() -> list[Mutant]:
    """Every single-point mutant of every design, in a stable order."""
    found = []
    for path in sorted(DESIGNS.glob("*.*v")):
        text = path.read_text()
        for kind, sites in _operators(text).items():
            found += [Mutant(path.stem, kind, at, source) for at, source in sites]
    return found
