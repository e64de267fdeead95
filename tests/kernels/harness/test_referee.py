"""The referee's order of commands (referee.Referee.run), with two scripted stand-ins for the judge and
the candidate's worker: no process, no torch."""

from __future__ import annotations

from typing import Any, Callable

from qimeng.core.verdict import Status
from qimeng.kernels.harness.referee import Referee
from qimeng.kernels.result import EvalOptions


class ScriptedJob:
    """A job that answers each command at once with ``answer(command)`` and records what it was sent."""

    def __init__(self, answer: Callable[[dict], dict]) -> None:
        self.answer, self.sent, self.pending = answer, [], []
        self.forged_messages, self.timed_out, self.kill_s = 0, False, None

    def send(self, command: dict) -> bool:
        self.sent.append(command["cmd"])
        self.pending.append(self.answer(command))
        return True

    def receive(self, timeout_s: float) -> dict | None:
        return self.pending.pop(0) if self.pending else None

    def stop_and_wait(self, timeout_s: float, every_thread: bool = False) -> bool:
        return True

    def unasked(self) -> int:
        return 0

    def stop(self) -> None: ...

    def resume(self, timeout_s: float = 1.0) -> None: ...

    def is_stopped(self) -> bool:
        return True

    def cpu_ticks(self) -> int:
        return 0

    def queued_ns(self) -> int:
        return 0

    def close(self) -> None: ...

    def describe_exit(self) -> str:
        return "is still running"


def _judge(command: dict) -> dict:
    answers: dict[str, dict[str, Any]] = {
        "reference": {"kind": "reference", "random": False},
        "check": {"kind": "checked", "reason": None, "flags": [], "atol": 1e-4, "rtol": 1e-4},
        "burst_check": {"kind": "checked", "reason": None, "flags": []},
        "round": {"kind": "round", "ms": 0.01, "output_bytes": 4096, "tensors_only": True},
        "burst": {"kind": "burst", "call_ms": 0.01},
        "lock": {"kind": "locked", "held": True},
        "degenerate": {"kind": "degenerate", "reason": None},
        "roofline": {"kind": "roofline", "ms": None},
    }
    plain = {"memory_start": "memory", "memory": "memory", "unlock": "unlocked", "warmup": "warm"}
    return answers[command["cmd"]] if command["cmd"] in answers else {"kind": plain[command["cmd"]]}


def _worker(command: dict) -> dict:
    cmd = command["cmd"]
    if cmd == "burst":
        return {"kind": "burst", "digests": [[0] * command["calls"]]}
    return {"load": {"kind": "loaded"}, "trial": {"kind": "outputs", "leaves": []}, "inspect": {"kind": "inspected"},
            "warmup": {"kind": "warm"}, "round": {"kind": "round", "ms": 0.01}, "end_timing": {"kind": "timed"},
            "burst_export": {"kind": "burst_outputs", "leaves": []}, "unload": {"kind": "unloaded", "discard": True},
            "kernel_share": {"kind": "kernel_share", "own_kernel_share": 0.75}}[cmd]


def _run(kernel_share: bool) -> tuple[ScriptedJob, Any]:
    worker = ScriptedJob(_worker)
    options = EvalOptions(device="cuda", timing_trials=10, warmup=1, correctness_trials=1, kernel_share=kernel_share)
    outcome = Referee(ScriptedJob(_judge), worker, options, "class ModelNew: ...").run(0, "candidate.py")  # type: ignore[arg-type]
    return worker, outcome


def test_the_cuda_profiler_runs_only_after_every_timed_command() -> None:
    worker, outcome = _run(kernel_share=True)
    assert outcome.result.status is Status.OK, outcome.result.reason
    timed = [i for i, cmd in enumerate(worker.sent) if cmd in ("round", "burst", "warmup")]
    assert "burst" in worker.sent  # the 0.01 ms claim needed the bursts: they ran
    assert worker.sent.count("kernel_share") == 1 and worker.sent.index("kernel_share") > max(timed)
    assert worker.sent.index("kernel_share") > len(worker.sent) - 1 - worker.sent[::-1].index("trial")  # after the recheck
    assert outcome.result.own_kernel_share == 0.75


def test_without_kernel_share_no_profiler_runs() -> None:
    worker, outcome = _run(kernel_share=False)
    assert outcome.result.status is Status.OK and "kernel_share" not in worker.sent
    assert outcome.result.own_kernel_share is None
