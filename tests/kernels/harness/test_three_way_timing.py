"""Three-way timing (``EvalOptions.interleave_baselines``): eager, torch.compile and the candidate timed
in the same rounds, the order rotated each round, under both protocols; each figure says which
measurement produced it. The problem sleeps 2 ms a call and the candidate 4 ms, so every figure has a
lower bound that no clock can beat, and the candidate's speed-up over either baseline is about 0.5."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from qimeng.cli import app
from qimeng.core.verdict import Status
from qimeng.kernels.harness.evaluate import evaluate_many
from qimeng.kernels.harness.referee import round_order
from qimeng.kernels.result import protocol_options

DATA = Path(__file__).parent / "data"
PROBLEM = DATA / "problem_sleep.py"


class CachingStore:
    """The two Store methods the harness uses for baselines, with a cached torch.compile figure."""

    def __init__(self) -> None:
        self.put: dict[str, float] = {}

    def baseline_ms(self, problem_hash, device, torch_version, mode):
        return 0.5 if mode == "compile" else None

    def put_baseline(self, problem_hash, device, torch_version, mode, ms):
        self.put[mode] = ms


def test_the_order_of_the_sides_rotates_so_none_always_goes_first() -> None:
    sides = ["judge", "compile", "worker"]
    orders = [round_order(sides, k) for k in range(6)]
    assert orders[:3] == [sides, ["compile", "worker", "judge"], ["worker", "judge", "compile"]]
    assert orders[3:] == orders[:3] and round_order(["judge", "worker"], 1) == ["worker", "judge"]


def test_eager_compile_and_the_candidate_are_timed_in_the_same_rounds() -> None:
    store = CachingStore()
    options = protocol_options("qimeng", timing_trials=15, warmup=1, correctness_trials=1, timeout_s=120.0,
                               baselines=("eager", "compile"), interleave_baselines=True)
    [result] = evaluate_many(PROBLEM, [DATA / "sleep_twice.py"], options, store=store)
    assert result.status is Status.OK, result.reason
    assert result.baselines_from == {"eager": "rounds", "compile": "rounds"}  # not the store's 0.5
    assert result.baselines_ms["compile"] >= 2.0 and result.ref_ms >= 2.0 and result.candidate_ms >= 4.0
    assert result.timing_trials == 15 and set(result.speedup_ci) == {"eager", "compile"}
    assert all(0 < low <= high for low, high in result.speedup_ci.values())
    assert result.speedup < 1.0 and result.baselines_ms["compile"] / result.candidate_ms < 1.0  # 2 ms against 4
    assert store.put["compile"] == result.baselines_ms["compile"]  # what the rounds measured is cached


def test_qimeng_eval_protocol_kernelbench_times_the_baselines_in_its_own_rounds_too() -> None:
    shown = CliRunner().invoke(app, ["eval", str(PROBLEM), str(DATA / "sleep_twice.py"), "--device", "cpu", "--json",
                                     "--protocol", "kernelbench", "--trials", "1", "--timing-trials", "6",
                                     "--baselines", "eager,compile", "--interleave-baselines", "--no-store"])
    assert shown.exit_code == 0, shown.output
    result = json.loads(shown.stdout.strip().splitlines()[-1])
    assert result["status"] == "ok" and result["protocol"] == "kernelbench" and result["timing_trials"] == 6
    assert result["baselines_from"] == {"eager": "rounds", "compile": "rounds"}
    assert result["baselines_ms"]["compile"] >= 2.0 and result["ref_ms"] >= 2.0 and result["candidate_ms"] >= 4.0
    assert result["speedup_ci"] == {}  # its rounds are not interleaved: no paired interval
