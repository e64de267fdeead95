"""The `qimeng hw learn` benchmark (docs/PERFORMANCE.md): nodes, Yosys cells, accuracy and time per function.

    PYTHONPATH=$PWD python scripts/bsd_benchmark.py            # small functions, end to end (hw learn)
    PYTHONPATH=$PWD python scripts/bsd_benchmark.py --mul12    # 12x12 multiplier, exhaustive numpy check

Times are wall-clock and CPU seconds (this process and its children: Icarus, Yosys); the machine
is shared, so CPU seconds are the steadier figure.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "hardware" / "data"), str(ROOT / "tests" / "hardware" / "bsd")]

from qimeng.hardware.bsd.learn import learn_circuit  # noqa: E402
from qimeng.hardware.bsd.oracle import FunctionOracle  # noqa: E402
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
    from arith_oracles import mul12 as fn

    oracle = FunctionOracle(fn, 24, 24)
    cpu, wall = cpu_seconds(), time.perf_counter()
    result = learn_circuit(oracle)
    learn_wall, learn_cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    wrong, rows = 0, np.arange(1 << 24, dtype=np.int64)
    for lo in range(0, 1 << 24, 1 << 20):  # every one of the 16,777,216 input vectors
        x = ((rows[lo : lo + (1 << 20), None] >> np.arange(24)) & 1).astype(np.uint8)
        wrong += int((result.diagram.evaluate(x) != fn(x)).any(axis=1).sum())
    print(f"mul12 (24, 24): {result.n_nodes} nodes, {result.rounds} round(s), {result.oracle_queries} queries; "
          f"learning {learn_wall:.1f} s wall, {learn_cpu:.1f} s CPU; random-check accuracy {result.accuracy:.6f}; "
          f"exhaustive accuracy {1 - wrong / (1 << 24):.6f} ({wrong} of 16,777,216 vectors wrong); "
          f"total {time.perf_counter() - wall:.1f} s wall", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mul12", action="store_true", help="learn the 12x12 multiplier instead")
    mul12() if parser.parse_args().mul12 else small()
