"""``qimeng hw learn``: learn, emit, simulate against the oracle, count cells, report."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from qimeng.core.verdict import BadInput
from qimeng.hardware.bsd.bits import all_vectors
from qimeng.hardware.bsd.decompose import DECOMPOSE_MAX_NODES
from qimeng.hardware.bsd.emit import emit_verilog
from qimeng.hardware.bsd.learn import learn_circuit
from qimeng.hardware.bsd.oracle import load_oracle
from qimeng.hardware.bsd.sampling import SamplingPlan
from qimeng.hardware.bsd.verify import simulate_against_oracle, yosys_cell_count
from qimeng.hardware.ports import Interface, Port, is_valid_identifier
from qimeng.hardware.tools import private_dir

SIMULATION_NODE_BUDGET = 2_000_000  # vectors x diagram nodes simulated when --sim-vectors is not given
SIMULATION_MIN_VECTORS, SIMULATION_MAX_VECTORS = 4096, 131_072


@dataclass
class LearnReport:
    """The JSON of ``qimeng hw learn --json``."""

    oracle: str
    inputs: int
    outputs: int
    out: str
    module: str
    success: bool  # target met both by the diagrams (check vectors) and by the simulated Verilog
    accuracy: float
    target: float
    check: str  # "exhaustive" or "random"
    check_vectors: int
    bit_accuracy: list[float]
    simulated_vectors: int
    simulation_mismatches: int
    simulation_accuracy: float
    nodes: int
    cells: int | None  # None: synthesis skipped (--no-cells)
    rounds: int
    oracle_queries: int
    learn_seconds: float
    total_seconds: float

    def to_json(self) -> dict:
        return asdict(self)


def learn_to_verilog(
    oracle_spec: str, n: int, m: int, out: Path, name: str = "learned", target: float | None = None,
    samples: int = 1024, max_rounds: int = 4, check_count: int = 100_000, sim_vectors: int | None = None,
    seed: int = 0, count_cells: bool = True,
) -> LearnReport:
    """Learn the oracle, write ``out`` and check it; raises BadInput for unusable arguments.

    ``sim_vectors`` None: vectors x nodes <= SIMULATION_NODE_BUDGET, between 4,096 and 131,072 (all
    of them when 2**N is fewer). Simulation and Yosys synthesis run at the same time.
    With two candidate emissions, their synthesis runs first and the chosen one is simulated.
    """
    if n < 1 or m < 1:
        raise BadInput("--inputs and --outputs must be at least 1")
    if not is_valid_identifier(name):
        raise BadInput(f"--name {name!r} is not a Verilog identifier")
    start = time.perf_counter()
    oracle = load_oracle(oracle_spec, n, m)
    plan = SamplingPlan(samples=samples, min_samples=min(128, samples))
    result = learn_circuit(oracle, plan, target, max_rounds, check_count, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    if sim_vectors is None:  # Icarus needs about 40 ns per node update: keep the check well under a second
        budget = SIMULATION_NODE_BUDGET // max(result.n_nodes, 1)
        sim_vectors = int(np.clip(budget, SIMULATION_MIN_VECTORS, SIMULATION_MAX_VECTORS))
    if (1 << min(n, 62)) <= sim_vectors:
        x = all_vectors(n)
    else:
        x = np.random.default_rng(seed + 3_000_017).integers(0, 2, size=(sim_vectors, n), dtype=np.uint8)
    iface = Interface(name, (Port("x", "input", n), Port("y", "output", m)))
    # With cell counts and a diagram small enough to decompose, Yosys synthesises both emissions (in
    # parallel) and the smaller is kept: decomposition suits adders and comparators, not barrel shifters.
    options = (True, False) if count_cells and result.n_nodes <= DECOMPOSE_MAX_NODES else (True,)
    texts = [emit_verilog(result.diagram, n, name, decompose) for decompose in options]
    with private_dir("qimeng-learn-") as tmp, ThreadPoolExecutor(max_workers=2) as pool:
        paths = [Path(tmp) / f"candidate{i}.v" for i in range(len(texts))]
        for path, text in zip(paths, texts):
            path.write_text(text)
        counts = list(pool.map(lambda p: yosys_cell_count(p, name), paths)) if count_cells and len(paths) > 1 else None
        best = int(np.argmin(counts)) if counts else 0
        out.write_text(texts[best])
        synthesis = pool.submit(yosys_cell_count, out, name) if count_cells and counts is None else None
        sim = simulate_against_oracle(out, name, oracle, x, iface)  # runs while a single synthesis does
        cells = counts[best] if counts else (synthesis.result() if synthesis else None)
    target = (1.0 if result.exhaustive else 0.9999) if target is None else target
    return LearnReport(
        oracle=oracle_spec, inputs=n, outputs=m, out=str(out), module=name,
        success=result.accuracy >= target and sim.accuracy >= target,
        accuracy=result.accuracy, target=target, check="exhaustive" if result.exhaustive else "random",
        check_vectors=result.check_vectors, bit_accuracy=result.bit_accuracy,
        simulated_vectors=sim.vectors, simulation_mismatches=sim.mismatches,
        simulation_accuracy=sim.accuracy, nodes=result.n_nodes,
        cells=cells, rounds=result.rounds, oracle_queries=result.oracle_queries,
        learn_seconds=round(result.learn_seconds, 3), total_seconds=round(time.perf_counter() - start, 3),
    )
