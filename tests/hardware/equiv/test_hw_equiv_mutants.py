"""The mutant suite: every single-point mutant of the suite's designs gets the verdict of the oracle.

The oracle (``oracle_bench.py``) is a separate simulation testbench; qimeng runs with a shallow proof and
short simulations to keep the suite fast. A design whose reference is X forever (``free_cnt``) must be
``inconclusive`` whatever the mutant; mutants of dead code must be ``equivalent``.
"""

from __future__ import annotations

from collections import Counter

import pytest

from oracle_bench import oracle_verdict
from mutants import DESIGNS, Mutant, mutants
from qimeng.hardware.equiv.check import EquivOptions, check_equivalence

MUTANTS = mutants()
SUITE_OPTIONS = EquivOptions(depth=8, cycles=300, seeds=(1, 2), timeout_s=20)


def test_suite_is_large_and_varied():
    kinds = Counter(m.kind.rstrip("+-") if m.kind.startswith("init") else m.kind[:2] if m.kind.startswith("op") else m.kind
                    for m in MUTANTS)
    assert len(MUTANTS) >= 100 and len({m.design for m in MUTANTS}) >= 10
    for kind in ("op", "const", "negedge", "clock", "resetpol", "bit", "swap", "latch", "init"):
        assert kinds[kind] > 0, kind


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.id for m in MUTANTS])
def test_mutant_verdict_matches_oracle(mutant: Mutant, tmp_path):
    ref_path = next(DESIGNS.glob(f"{mutant.design}.*v"))
    dut_path = tmp_path / f"mutant{ref_path.suffix}"
    dut_path.write_text(mutant.source)
    expected = oracle_verdict(ref_path.read_text(), mutant.source, tmp_path)
    result = check_equivalence(ref_path, dut_path, SUITE_OPTIONS)
    assert result.verdict == expected, (result.method, result.coverage, result.notes)
    if expected == "not_equivalent":
        assert result.counterexample is not None or "ran past" in result.coverage
    if result.proof:
        assert result.cycles > 0  # every proof was cross-checked by simulation
