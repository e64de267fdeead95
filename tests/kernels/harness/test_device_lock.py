"""The device lock: one clock per GPU across processes; nothing locked on the CPU."""

from __future__ import annotations

import subprocess
import sys

import pytest

from qimeng.kernels.harness import device_lock

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
