"""An optimize run's time: its own work capped at ``--budget``, its wait for a shared GPU bounded apart.

Several runs may share one GPU (``--jobs-per-gpu``, ``gpu_engine_check.py --jobs``); the harness's device
lock lets one evaluation at a time check and time there (``harness/device_lock``), and each result says
how long its judge waited for it (``EvalResult.lock_wait_s``). The rule, checked before each candidate
starts:

- the run's own time (wall time less the seconds its evaluations waited for the GPU's lock) stops at
  ``budget_s``;
- the judge's compilation of the torch.compile baselines (``baselines.COMPILE_PHASE`` of the first
  result's start-up, and the wait for their compilation ahead: ``harness/compile_cache``) is the
  competitor's work, timed for the comparison: it counts as neither (on a host shared by four runs,
  compiling a ResNet's baseline took a whole 60 s budget before any candidate);
- its wall time stops at ``budget_s * min(sharing, MAX_SHARING)``, ``sharing`` being the number of runs
  that share its GPU: a run alone (``sharing`` 1) has ``--budget`` as its wall cap, as before; five runs on
  one GPU each get up to four budgets of wall time, at most one of them their own work.

The seconds are reported (``describe``); a run stopped by its budget says whether waiting took most of it
(``reason``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from qimeng.kernels.harness.baselines import COMPILE_PHASE
from qimeng.kernels.result import EvalResult

MAX_SHARING = 4  # the wall cap is at most this many budgets, however many runs share the GPU


@dataclass
class Budget:
    budget_s: float
    sharing: int = 1  # optimize runs sharing this run's GPU (itself included)
    clock: Callable[[], float] = time.monotonic
    start: float | None = None  # clock() when the run began (None: now)
    waited_s: float = 0.0  # seconds this run's evaluations waited for the GPU's lock
    baselines_s: float = 0.0  # seconds the judges spent compiling torch.compile baselines
    not_tried: int = 0  # candidates left out because the budget was spent

    def __post_init__(self) -> None:
        if self.start is None:
            self.start = self.clock()

    @property
    def wall_cap_s(self) -> float:
        return self.budget_s * min(max(1, self.sharing), MAX_SHARING) + self.baselines_s

    def wall_s(self) -> float:
        assert self.start is not None
        return self.clock() - self.start

    def own_s(self) -> float:
        """Wall seconds so far less those spent waiting for the GPU's lock and compiling the baselines."""
        return max(0.0, self.wall_s() - self.waited_s - self.baselines_s)

    def count(self, result: EvalResult) -> None:
        """Add an arrived result's wait for the GPU's lock and its judge's baseline compilation."""
        self.waited_s += max(0.0, result.lock_wait_s)
        self.baselines_s += max(0.0, result.phases_s.get(COMPILE_PHASE, 0.0))

    def waited_for_baselines(self, seconds: float) -> None:
        """Add seconds the run waited for its torch.compile baselines compiled ahead (the competitor's work)."""
        self.baselines_s += max(0.0, seconds)

    def spent(self) -> bool:
        return self.own_s() > self.budget_s or self.wall_s() > self.wall_cap_s

    def left_s(self) -> float:
        """Seconds of own work left before either cap is reached."""
        return min(self.budget_s - self.own_s(), self.wall_cap_s - self.wall_s())

    def skipped(self, candidates: int) -> None:
        self.not_tried += candidates

    def describe(self) -> str:
        """E.g. ``budget: 60 s, 41 s waiting for the GPU`` (with the wall cap when runs share the GPU)."""
        text = f"budget: {self.budget_s:g} s"
        if self.sharing > 1:
            text += f" of own work (wall cap {self.wall_cap_s:.0f} s: {self.sharing} runs share the GPU)"
        text += f", {self.waited_s:.0f} s waiting for the GPU"
        return text + (f", {self.baselines_s:.0f} s compiling the torch.compile baselines" if self.baselines_s >= 0.5 else "")

    def reason(self) -> str:
        """Why candidates were left out ("" when none was): which cap was reached, and whether the run spent
        most of its time waiting for the GPU."""
        if not self.not_tried:
            return ""
        wall, own = self.wall_s(), self.own_s()
        cap = (f"its own work reached the budget of {self.budget_s:g} s" if own > self.budget_s
               else f"the wall cap of {self.wall_cap_s:.0f} s was reached")
        mostly = "; most of it waiting for the GPU (other runs held its lock)" if self.waited_s > own else ""
        return (f"{self.not_tried} candidate(s) not tried: {cap} ({self.waited_s:.0f} s of {wall:.0f} s waiting "
                f"for the GPU){mostly}")

    def result_fields(self) -> dict[str, object]:
        """OptimizeResult's fields on the budget: its seconds waiting for the GPU, the line, the reason."""
        return {"lock_wait_s": round(self.waited_s, 3), "budget": self.describe(), "reason": self.reason()}
