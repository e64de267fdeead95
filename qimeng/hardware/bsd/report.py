"""``qimeng hw learn``: learn, emit, count cells (Yosys started ahead), check the written file, report.

The check reads the written Verilog back as a netlist (:mod:`qimeng.hardware.bsd.netlist`), apart
from the diagram that produced it, and evaluates it in numpy against the oracle: on every input
vector when N <= EXACT_MAX_INPUTS (24), else on random vectors. Every candidate emission is written
to a file and checked while Yosys synthesises them; the one kept is copied byte for byte to ``out``."""

from __future__ import annotations

import contextlib
import shutil
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
from qimeng.hardware.bsd.oracle import Oracle, load_oracle
from qimeng.hardware.bsd.sampling import SamplingPlan
from qimeng.hardware.cell_count import CANDIDATE_SLOTS, CellCounter
from qimeng.hardware.ports import is_valid_identifier
from qimeng.hardware.tools import private_dir

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
        work = Path(stack.enter_context(private_dir("qimeng-learn-")))
        paths = [work / f"candidate{i}.v" for i in range(len(texts))]
        for path, text in zip(paths, texts):
            path.write_text(text)
        if cells:  # Yosys synthesises the candidates while they are checked here
            cells.submit(texts, [f"{out} ({'cut decomposition' if d else 'one multiplexer per node'})" for d in options])
        checks = [_check_written(path, oracle, n, sim_vectors, seed) for path in paths]
        counts = cells.counts() if cells else None
        pick = counts.index(min(counts)) if counts else 0
        shutil.copyfile(paths[pick], out)  # the very bytes checked
    cell_count = counts[pick] if counts else None
    vectors, mismatches = checks[pick]
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


def _check_written(path: Path, oracle: Oracle, n: int, sim_vectors: int | None, seed: int) -> tuple[int, int]:
    """(vectors, mismatches) of the Verilog file ``path`` read back as a netlist, against ``oracle``: every
    vector when N <= EXACT_MAX_INPUTS, else random ones (``sim_vectors``, or as many as the wire budget allows)."""
    netlist = read_netlist(path)
    if n <= EXACT_MAX_INPUTS:
        return 1 << n, netlist.exhaustive_mismatches(oracle)
    vectors = sim_vectors or int(np.clip(SIMULATION_WIRE_BUDGET // max(len(netlist.sel), 1),
                                         SIMULATION_MIN_VECTORS, SIMULATION_MAX_VECTORS))
    x = np.random.default_rng(seed + 3_000_017).integers(0, 2, size=(vectors, n), dtype=np.uint8)
    return vectors, int((netlist.evaluate(x) != oracle(x)).any(axis=1).sum())
