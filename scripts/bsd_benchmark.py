"""The `qimeng hw learn` benchmark (docs/PERFORMANCE.md): nodes, Yosys cells, accuracy and time per function.

    PYTHONPATH=$PWD python scripts/bsd_benchmark.py            # small functions, end to end (hw learn)
    PYTHONPATH=$PWD python scripts/bsd_benchmark.py --mul12    # 12x12 multiplier, every vector checked

Times are wall-clock and CPU seconds (this process and its children: Yosys); the machine
is shared, so CPU seconds are the steadier figure.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "hardware" / "data"), str(ROOT / "tests" / "hardware" / "bsd")]

from qimeng.hardware.bsd.report import learn_to_verilog  # noqa: E402

SMALL = [  # (oracle spec, inputs, outputs)
    ("tests/hardware/data/oracles.py:adder8", 17, 9),
    ("tests/hardware/bsd/arith_oracles.py:comparator8", 16, 3),
    ("tests/hardware/data/oracles.py:alu8", 19, 8),
    ("tests/hardware/bsd/arith_oracles.py:mul4", 8, 8),
    ("tests/hardware/bsd/arith_oracles.py:mul6", 12, 12),
    ("tests/hardware/data/oracles.py:mul8", 16, 16),
]


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def small() -> None:
    print("| function | nodes | Yosys cells | accuracy (check) | simulated vectors, mismatches | learning s | total s (wall) | CPU s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for spec, n, m in SMALL:
            cpu, wall = cpu_seconds(), time.perf_counter()
            r = learn_to_verilog(str(ROOT / spec), n, m, Path(tmp) / "c.v")
            wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
            print(f"| {spec.split(':')[1]} ({n}, {m}) | {r.nodes} | {r.cells} | {r.accuracy:.6f} ({r.check}) | "
                  f"{r.simulated_vectors}, {r.simulation_mismatches} | {r.learn_seconds:.2f} | {wall:.2f} | {cpu:.2f} |", flush=True)


def mul12() -> None:
    """`hw learn` of the 12x12 multiplier without the Yosys cell count (687,662 nodes): the written
    Verilog is read back and evaluated on all 16,777,216 input vectors."""
    with tempfile.TemporaryDirectory() as tmp:
        cpu, wall = cpu_seconds(), time.perf_counter()
        r = learn_to_verilog(str(ROOT / "tests/hardware/bsd/arith_oracles.py:mul12"), 24, 24, Path(tmp) / "m.v",
                             count_cells=False)
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    print(f"mul12 (24, 24): {r.nodes} nodes; written Verilog on {r.simulated_vectors} {r.simulation} vectors: "
          f"{r.simulation_mismatches} wrong (accuracy {r.simulation_accuracy:.6f}); learning {r.learn_seconds:.1f} s; "
          f"total {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mul12", action="store_true", help="learn the 12x12 multiplier instead")
    mul12() if parser.parse_args().mul12 else small()
