"""The budget caps an optimize run's own work; its wait for a shared GPU is counted apart, under a wall cap
of budget x the runs sharing the GPU (at most MAX_SHARING); what it says in the report."""

from __future__ import annotations

import sys
from pathlib import Path

from qimeng.core.verdict import Status
from qimeng.kernels.engine.budget import MAX_SHARING, Budget
from qimeng.kernels.harness.baselines import COMPILE_PHASE
from qimeng.kernels.harness import device_lock
from qimeng.kernels.result import EvalResult

sys.path.insert(0, str(Path(__file__).parents[1] / "harness"))
from lock_holder import hold_lock  # noqa: E402


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def waited(seconds: float) -> EvalResult:
    return EvalResult(Status.OK, lock_wait_s=seconds)


def test_a_run_alone_has_its_budget_as_wall_cap():
    clock = Clock()
    budget = Budget(60.0, 1, clock)
    clock.now += 59.0
    assert not budget.spent() and budget.left_s() == 1.0
    budget.count(waited(40.0))  # waiting does not extend a run that shares its GPU with nobody
    clock.now += 2.0
    assert budget.spent() and budget.own_s() == 21.0


def test_runs_sharing_a_gpu_wait_within_the_wall_cap_and_work_within_the_budget():
    clock = Clock()
    budget = Budget(60.0, 3, clock)
    assert budget.wall_cap_s == 180.0
    clock.now += 150.0
    budget.count(waited(100.0))
    assert not budget.spent() and budget.own_s() == 50.0 and budget.left_s() == 10.0
    clock.now += 11.0  # own work 61 s: over the budget, though the wall (161 s) is under its cap
    assert budget.spent()
    other = Budget(60.0, 3, clock)
    other.count(waited(170.0))
    clock.now += 181.0  # own work 11 s, but the wall passed 3 x 60 s
    assert other.spent()


def test_compiling_the_torch_compile_baselines_is_neither_own_work_nor_wall_cap():
    """A judge that spent 50 s compiling the baselines (the first result's start-up phase) leaves a lone
    60 s run 50 s of own work after 60 s of wall time, and its wall cap grows by the same 50 s."""
    clock = Clock()
    budget = Budget(60.0, 1, clock)
    clock.now += 60.0
    budget.count(EvalResult(Status.OK, phases_s={COMPILE_PHASE: 50.0, "load": 3.0}))
    assert budget.own_s() == 10.0 and budget.wall_cap_s == 110.0 and not budget.spent()
    assert budget.describe() == "budget: 60 s, 0 s waiting for the GPU, 50 s compiling the torch.compile baselines"
    clock.now += 51.0
    assert budget.spent()


def test_waiting_for_the_baselines_compiled_ahead_counts_as_their_compilation():
    clock = Clock()
    budget = Budget(60.0, 1, clock)
    clock.now += 70.0  # 30 s of capture beside the compile ahead, then 40 s waiting for it to end
    budget.waited_for_baselines(40.0)
    budget.count(EvalResult(Status.OK, phases_s={COMPILE_PHASE: 2.0}))  # the judge's compile: from the cache
    assert budget.own_s() == 28.0 and budget.wall_cap_s == 102.0 and not budget.spent()


def test_the_wall_cap_stops_growing_at_max_sharing():
    assert Budget(60.0, 9).wall_cap_s == 60.0 * MAX_SHARING == Budget(60.0, MAX_SHARING).wall_cap_s
    assert Budget(60.0, 0).wall_cap_s == 60.0


def test_the_report_says_the_wait_and_a_run_that_mostly_waited_says_so():
    clock = Clock()
    budget = Budget(60.0, 1, clock)
    assert budget.reason() == ""  # nothing was left out
    budget.count(waited(41.2))
    clock.now += 61.0
    budget.skipped(3)
    assert budget.describe() == "budget: 60 s, 41 s waiting for the GPU"
    assert budget.reason() == ("3 candidate(s) not tried: the wall cap of 60 s was reached (41 s of 61 s waiting "
                               "for the GPU); most of it waiting for the GPU (other runs held its lock)")
    shared = Budget(60.0, 5, clock)
    assert shared.describe() == "budget: 60 s of own work (wall cap 240 s: 5 runs share the GPU), 0 s waiting for the GPU"
    clock.now += 70.0
    shared.skipped(1)
    assert shared.reason() == "1 candidate(s) not tried: its own work reached the budget of 60 s (0 s of 70 s waiting for the GPU)"


def test_a_fake_lock_holder_spends_a_lone_runs_budget_but_not_a_sharing_runs(tmp_path):
    """A process holds the GPU's lock 2 s while the run waits for it (as its judge would): the lone run's
    1 s budget is spent by the wait; a run sharing the GPU with two others keeps its own second."""
    path = tmp_path / "gpu-x.lock"
    alone, sharing = Budget(1.0, 1), Budget(1.0, 3)
    holder = hold_lock(path, 2.0)
    before = device_lock.waited_s()
    with device_lock.held(path):
        result = waited(device_lock.waited_s() - before)
    holder.wait()
    alone.count(result)
    sharing.count(result)
    assert result.lock_wait_s >= 1.5
    assert alone.spent()
    assert not sharing.spent() and sharing.own_s() < 1.0 and sharing.wall_s() > 1.5
