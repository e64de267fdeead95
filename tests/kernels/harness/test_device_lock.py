"""The device lock: one clock per GPU across processes; nothing locked on the CPU."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from qimeng.kernels.harness import device_lock

sys.path.insert(0, str(Path(__file__).parent))
from lock_holder import hold_lock  # noqa: E402

_TRY_LOCK = """
import fcntl, sys
with open(sys.argv[1], "a") as f:
    try:
        fcntl.flock(f.fileno(), (fcntl.LOCK_SH if sys.argv[2] == "shared" else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit(3)
"""


def _other_process_can_lock(path, mode: str = "exclusive") -> bool:
    return subprocess.run([sys.executable, "-c", _TRY_LOCK, str(path), mode]).returncode == 0


def test_shared_holders_coexist_but_never_beside_an_exclusive_one(tmp_path):
    """First calls (shared) run side by side; a clock (exclusive) waits for them, and they for it."""
    path = tmp_path / "gpu-x.lock"
    with device_lock.held(path, shared=True):
        assert _other_process_can_lock(path, "shared")
        assert not _other_process_can_lock(path, "exclusive")
    with device_lock.held(path):
        assert not _other_process_can_lock(path, "shared")
    assert _other_process_can_lock(path, "exclusive")


def test_held_excludes_other_processes_until_released(tmp_path):
    path = tmp_path / "locks" / "gpu-x.lock"
    with device_lock.held(path) as taken:
        assert taken and path.exists()
        assert not _other_process_can_lock(path)
    assert _other_process_can_lock(path)


def test_held_is_reentrant_within_a_process(tmp_path):
    path = tmp_path / "gpu-x.lock"
    with device_lock.held(path):
        with device_lock.held(path):  # the timing inside an evaluation that holds the device already
            assert not _other_process_can_lock(path)
        assert not _other_process_can_lock(path)
    assert _other_process_can_lock(path)


def test_an_unusable_lock_directory_runs_unlocked_instead_of_failing(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    with device_lock.held(blocker / "gpu-x.lock") as taken:  # the evaluation goes on, without a lock
        assert taken is False  # ... and says so: its result is flagged timing_unlocked


def test_lock_files_are_usable_by_every_user_of_the_machine(tmp_path):
    path = tmp_path / "locks" / "gpu-x.lock"
    with device_lock.held(path):
        pass
    assert path.stat().st_mode & 0o777 == 0o666 and path.parent.stat().st_mode & 0o1777 == 0o1777


def test_cpu_and_unset_directory_lock_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(device_lock.LOCK_DIR_ENV, str(tmp_path))
    with device_lock.exclusive("cpu") as taken:
        assert taken is None  # nothing to lock on the CPU: no flag
    monkeypatch.delenv(device_lock.LOCK_DIR_ENV)
    with device_lock.exclusive("cuda") as taken:  # no directory: no lock, and no CUDA call is needed
        assert taken is False
    assert list(tmp_path.iterdir()) == []


@pytest.mark.gpu
def test_cuda_lock_is_named_after_the_gpu(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    monkeypatch.setenv(device_lock.LOCK_DIR_ENV, str(tmp_path))
    with device_lock.exclusive("cuda"):
        (lock,) = tmp_path.iterdir()
        assert lock.name.startswith("gpu-") and not _other_process_can_lock(lock)


def test_the_seconds_spent_waiting_for_another_process_are_counted(tmp_path):
    path = tmp_path / "gpu-x.lock"
    before = device_lock.waited_s()
    with device_lock.held(path):  # nobody else holds it: no wait
        pass
    assert device_lock.waited_s() - before < 0.2
    holder = hold_lock(path, 1.5)
    before = device_lock.waited_s()
    with device_lock.held(path, shared=True):  # blocked until the holder's 1.5 s are over
        waited = device_lock.waited_s() - before
    holder.wait()
    assert 1.0 <= waited < 10.0


@pytest.mark.gpu
def test_an_evaluation_reports_its_wait_for_a_gpu_another_process_holds(tmp_path, monkeypatch):
    """A fake lock holder keeps the GPU 3 s: the evaluation's result says it waited about that long."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    from qimeng.kernels.engine.optimize import reference_source
    from qimeng.kernels.harness.evaluate import evaluate
    from qimeng.kernels.result import EvalOptions

    monkeypatch.setenv(device_lock.LOCK_DIR_ENV, str(tmp_path))
    with device_lock.exclusive("cuda"):
        (lock,) = tmp_path.iterdir()
    problem = Path(__file__).resolve().parents[3] / "problems" / "fused" / "01_silu_mul_add.py"
    holder = hold_lock(lock, 3.0)
    result = evaluate(problem, reference_source(problem.read_text()),
                      EvalOptions(device="cuda", correctness_trials=1, timing_trials=5, warmup=1, kernel_share=False))
    holder.wait()
    assert result.correct, result.reason
    assert 2.0 <= result.lock_wait_s < 60.0
