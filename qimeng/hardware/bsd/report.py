"""``qimeng hw learn``: learn, emit, count cells (Yosys started ahead), check the written file, report.

The check reads the written Verilog back as a netlist (:mod:`qimeng.hardware.bsd.netlist`), apart
from the diagram that produced it, and evaluates it in numpy against the oracle: on every input
vector when N <= EXACT_MAX_INPUTS (24), else on random vectors."""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from qimeng.core.verdict import BadInput
from qimeng.hardware.bsd.decompose import DECOMPOSE_MAX_NODES
from qimeng.hardware.bsd.emit import emit_verilog
from qimeng.hardware.bsd.exact import EXACT_MAX_INPUTS
from qimeng.hardware.bsd.learn import learn_circuit
from qimeng.hardware.bsd.netlist import read_netlist
from qimeng.hardware.bsd.oracle import load_oracle
from qimeng.hardware.bsd.sampling import SamplingPlan
from qimeng.hardware.cell_count import CANDIDATE_SLOTS, CellCounter
from qimeng.hardware.ports import is_valid_identifier

SIMULATION_WIRE_BUDGET = 2_000_000_000  # random vectors x wires evaluated when --sim-vectors is not given
SIMULATION_MIN_VECTORS, SIMULATION_MAX_VECTORS = 4096, 1 << 20


@dataclass
class LearnReport:
    """The JSON of ``qimeng hw learn --json``."""

    oracle: str
    inputs: int
    outputs: int
    out: str
    module: str
    success: bool  # target met both by the diagram (check vectors) and by the written Verilog
    accuracy: float
    target: float
    check: str  # "exhaustive" or "random"
    check_vectors: int
    bit_accuracy: list[float]
    simulated_vectors: int  # input vectors the written Verilog was evaluated on (netlist read back, numpy)
    simulation_mismatches: int
    simulation_accuracy: float
    simulation: str  # "exhaustive" (every input vector) or "random"
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
    seed: int = 0, count_cells: bool = True, exact_max_inputs: int = EXACT_MAX_INPUTS,
    cells: CellCounter | None = None,
) -> LearnReport:
    """Learn the oracle, write ``out`` and check it; raises BadInput for unusable arguments.

    ``exact_max_inputs``: up to this many inputs the diagram is built from the truth table (0: always
    sampled). ``sim_vectors`` (N > 24 only) None: random vectors x wires <= SIMULATION_WIRE_BUDGET, between
    4,096 and 2**20. With cell counts and a decomposable diagram, both emissions (cut decomposition,
    one multiplexer per node) are synthesised side by side and the one with fewer cells is kept.
    ``cells``: Yosys processes the caller started (CANDIDATE_SLOTS of them, so that their start-up
    overlaps the learning; the CLI starts them before it imports numpy); started here when none are
    given, unused without ``count_cells``.
    """
    if n < 1 or m < 1:
        raise BadInput("--inputs and --outputs must be at least 1")
    if not is_valid_identifier(name):
        raise BadInput(f"--name {name!r} is not a Verilog identifier")
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        cells = (cells or stack.enter_context(CellCounter(name, CANDIDATE_SLOTS))) if count_cells else None
        oracle = load_oracle(oracle_spec, n, m)
        plan = SamplingPlan(samples=samples, min_samples=min(128, samples))
        result = learn_circuit(oracle, plan, target, max_rounds, check_count, seed, exact_max_inputs=exact_max_inputs)
        out.parent.mkdir(parents=True, exist_ok=True)
        # Decomposition suits adders and comparators, not barrel shifters: Yosys decides by cell count.
        options = (True, False) if cells and result.n_nodes <= DECOMPOSE_MAX_NODES else (True,)
        texts = [emit_verilog(result.diagram, n, name, decompose) for decompose in options]
        counts = None
        if cells:
            cells.submit(texts, [f"{out} ({'cut decomposition' if d else 'one multiplexer per node'})" for d in options])
            counts = cells.counts()
    cell_count = min(counts) if counts else None
    out.write_text(texts[counts.index(cell_count)] if counts else texts[0])
    netlist = read_netlist(out)
    if n <= EXACT_MAX_INPUTS:
        vectors, mismatches = 1 << n, netlist.exhaustive_mismatches(oracle)
    else:
        vectors = sim_vectors or int(np.clip(SIMULATION_WIRE_BUDGET // max(len(netlist.sel), 1),
                                             SIMULATION_MIN_VECTORS, SIMULATION_MAX_VECTORS))
        x = np.random.default_rng(seed + 3_000_017).integers(0, 2, size=(vectors, n), dtype=np.uint8)
        mismatches = int((netlist.evaluate(x) != oracle(x)).any(axis=1).sum())
    target = (1.0 if result.exhaustive else 0.9999) if target is None else target
    sim_accuracy = 1.0 - mismatches / vectors
    return LearnReport(
        oracle=oracle_spec, inputs=n, outputs=m, out=str(out), module=name,
        success=result.accuracy >= target and sim_accuracy >= target,
        accuracy=result.accuracy, target=target, check="exhaustive" if result.exhaustive else "random",
        check_vectors=result.check_vectors, bit_accuracy=result.bit_accuracy,
        simulated_vectors=vectors, simulation_mismatches=mismatches, simulation_accuracy=sim_accuracy,
        simulation="exhaustive" if n <= EXACT_MAX_INPUTS else "random", nodes=result.n_nodes,
        cells=cell_count, rounds=result.rounds, oracle_queries=result.oracle_queries,
        learn_seconds=round(result.learn_seconds, 3), total_seconds=round(time.perf_counter() - start, 3),
    )
