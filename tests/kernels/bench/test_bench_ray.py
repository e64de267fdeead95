"""``qimeng bench`` on a local Ray cluster of two CPU workers, with the real sandboxed harness: a worker
killed in the middle of a problem is replaced, and every pair ends stored once with the verdict that
the hand-made candidates of tests/kernels/bench/data call for."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from qimeng.kernels.bench.run import run_bench
from qimeng.kernels.result import EvalOptions
from qimeng.kernels.store import Store

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'qimeng[ray]')")

from test_bench import DATA, EXPECTED  # noqa: E402  (the same problems and verdicts as the local end-to-end test)


def _proc(pid: str, name: str) -> str:
    try:
        return Path(f"/proc/{pid}/{name}").read_text()
    except OSError:
        return ""


def _parent(pid: str) -> str:
    stat = _proc(pid, "stat")
    return stat.rsplit(")", 1)[-1].split()[1] if stat else "0"


def _descends_from_us(pid: str) -> bool:
    while pid not in ("0", "1"):
        pid = _parent(pid)
        if pid == str(os.getpid()):
            return True
    return False


def busy_ray_workers() -> list[int]:
    """Workers (``ray::...``) of the Ray cluster this test started that have a child: a sandboxed
    evaluation is running in them."""
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    parents = {_parent(p) for p in pids}
    return [int(p) for p in pids
            if p in parents and _proc(p, "cmdline").startswith("ray::") and _descends_from_us(p)]


@pytest.mark.slow
def test_bench_on_ray_survives_a_killed_worker(tmp_path):
    from qimeng.core.ray_executor import RayExecutor

    try:
        executor = RayExecutor("cpu", "local", retries=2, num_cpus=2)
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"Ray cannot start here: {exc}")
    killed: list[int] = []
    finished = threading.Event()

    def kill_one() -> None:
        while not finished.is_set() and not killed:
            busy = busy_ray_workers()
            if busy:
                os.kill(busy[0], signal.SIGKILL)
                killed.append(busy[0])
            time.sleep(0.2)

    watcher = threading.Thread(target=kill_one, daemon=True)
    options = EvalOptions(device="cpu", correctness_trials=2, timing_trials=5, small=True, baselines=("eager",))
    try:
        with Store(tmp_path / "q.db") as store:
            watcher.start()
            summary = run_bench(DATA / "problems", DATA / "candidates", run="ray", options=options, store=store,
                                progress=False, executor=executor)
            finished.set()
            stored = {(r.problem, r.candidate): r.result for r in store.evaluations("ray")}
            again = run_bench(DATA / "problems", DATA / "candidates", run="ray", options=options, store=store,
                              progress=False, executor=executor)
    finally:
        finished.set()
        ray.shutdown()
    assert killed, "no Ray worker was seen running an evaluation"
    assert summary.errors == {} and summary.bad_problems == {}
    assert summary.evaluated == len(EXPECTED) == sum(summary.statuses.values())  # each pair recorded once
    assert {k: r.status for k, r in stored.items()} == EXPECTED, {k: r.reason for k, r in stored.items()}
    assert (again.evaluated, again.skipped) == (0, len(EXPECTED))  # a rerun repeats nothing
