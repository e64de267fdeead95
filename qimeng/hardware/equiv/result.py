"""Options and result of ``qimeng hw equiv`` (the JSON of ``--json``), and the semantics every result states."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from qimeng.hardware.ports import Reset

SEMANTICS = (
    "registers start at X unless an initial statement gives their value; with a reset input, the reset is "
    "asserted first; an output bit is compared only where the reference gives 0/1, and there the design "
    "must give the same 0/1 value"
)
EXIT_STATUS = {"equivalent": 0, "not_equivalent": 1, "inconclusive": 4}


@dataclass(frozen=True)
class EquivOptions:
    top: str | None = None
    clock: str | None = None
    reset: Reset | None = None
    formal: bool = True
    depth: int = 20  # induction / bounded-check depth in cycles
    cycles: int = 2000  # per simulation run
    seeds: tuple[int, ...] = (1, 2, 3)
    timeout_s: float = 300.0
    replay_path: Path | None = None  # where a counterexample's replay testbench goes
    x_inputs: bool = False  # also drive X/Z on data inputs in simulation
    min_known: float = 0.1  # share of comparisons in which each reference output bit must be 0/1


@dataclass
class Counterexample:
    cycle: int  # cycle of the stimulus (0 = first) at which outputs differ
    phase: str
    stimulus: str  # which run produced it
    inputs: dict[str, str]
    ref_outputs: dict[str, str]
    dut_outputs: dict[str, str]
    replay: str  # path of the replay testbench
    replay_command: str


@dataclass
class FormalReport:
    """What the proof attempt said, before simulation had its say."""

    status: str  # "proven" | "counterexample" | "bounded" | "error" | "not run"
    exact: bool  # whether the formal model represents both designs exactly
    limits: list[str] = field(default_factory=list)  # why it does not
    replayed: bool | None = None  # for a counterexample: whether simulation reproduced it
    message: str = ""


@dataclass
class EquivResult:
    """The JSON of ``qimeng hw equiv --json``."""

    verdict: str  # "equivalent" | "not_equivalent" | "inconclusive"
    method: str  # "formal-sat" | "formal-induction" | "simulation"
    coverage: str  # what was proven or simulated
    top: str
    clock: str | None
    reset: str | None
    sequential: bool
    yosys: str  # which Yosys ran: program and version
    simulator: str = "icarus"
    semantics: str = SEMANTICS
    inputs: str = "0/1"
    proof: bool = False
    depth: int = 0
    cycles: int = 0
    seeds: list[int] = field(default_factory=list)
    formal: FormalReport | None = None
    known: dict[str, int] = field(default_factory=dict)  # per output bit: comparisons with a 0/1 reference
    checks: int = 0  # comparisons made by the random simulation
    counterexample: Counterexample | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def equivalent(self) -> bool:
        return self.verdict == "equivalent"

    @property
    def exit_status(self) -> int:
        return EXIT_STATUS[self.verdict]

    def to_json(self) -> dict:
        return {**asdict(self), "equivalent": self.equivalent}
