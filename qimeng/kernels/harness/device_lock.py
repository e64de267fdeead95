"""One evaluation at a time on a GPU: an exclusive file lock held while a worker runs work there.

Evaluations may run side by side on one GPU (several ``qimeng optimize`` processes, ``--jobs``): they
import and compile candidates in parallel (a candidate's first call, where Triton compiles, holds the
lock *shared*: many at once), but its checks and its clock only run while the worker holds the device's
lock *exclusively*, so no measurement shares the GPU, or the host's cores, with another process's
first call or compilation. A killed worker's lock is released with its process. The lock
directory comes from ``Settings.device_lock_dir`` through the judge's ``QIMENG_DEVICE_LOCKS``
variable; without it (or on the CPU) nothing is locked. A lock file is named after the GPU's UUID, so processes that see
the same GPU under different ``CUDA_VISIBLE_DEVICES`` numbers still share it. The seconds a process spent
blocked on a lock are counted (``waited_s``): the judge reports them with each evaluation (``lock_wait_s``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import torch

LOCK_DIR_ENV = "QIMENG_DEVICE_LOCKS"
_flock = fcntl.flock  # bound before any candidate code exists
_open: dict[Path, int] = {}  # lock files this process holds, with how many blocks hold each (re-entrant)
_waited = [0.0]  # seconds this process has spent blocked on a lock held by another process


def waited_s() -> float:
    """Seconds this process has spent, so far, waiting for locks other processes held."""
    return _waited[0]


def _device_id(device: "torch.device") -> str:
    import torch

    props = torch.cuda.get_device_properties(device)
    uuid = getattr(props, "uuid", None)
    return str(uuid) if uuid is not None else f"{props.name}-{getattr(props, 'pci_bus_id', device.index)}"


@contextlib.contextmanager
def exclusive(device: str, shared: bool = False) -> Iterator[bool | None]:
    """Hold ``device``'s lock for the block (``shared``: beside other shared holders, but never beside an
    exclusive one). Yields True when it is held, False when it could not be taken (no lock directory
    set, or one this user cannot write: the block runs unlocked), None on the CPU, where nothing is
    locked."""
    import torch

    where = os.environ.get(LOCK_DIR_ENV)
    dev = torch.device(device)
    if dev.type != "cuda":
        yield None
        return
    if not where:
        yield False
        return
    if dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in _device_id(dev))
    with held(Path(where) / f"gpu-{name}.lock", shared) as taken:
        yield taken


def shared(device: str) -> contextlib.AbstractContextManager[bool | None]:
    """Hold ``device``'s lock shared: work that may run beside other such work, but not beside a clock."""
    return exclusive(device, shared=True)


@contextlib.contextmanager
def held(path: Path, shared: bool = False) -> Iterator[bool]:
    """Hold a lock on ``path`` (created with its directory if missing) for the block, exclusive or
    ``shared``; re-entrant within this process (a nested block keeps the outer block's mode). Yields
    whether the lock is held (False: it could not be taken)."""
    if _open.get(path):
        _open[path] += 1
        try:
            yield True
        finally:
            _open[path] -= 1
        return
    try:
        fd = _open_lock_file(path)
    except OSError:  # a directory this user cannot write (shared machine) or a broken path: run unlocked
        yield False
        return
    try:
        began = time.monotonic()
        _flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        _waited[0] += time.monotonic() - began
        _open[path] = 1
        try:
            yield True
        finally:
            _open[path] = 0
            _flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _open_lock_file(path: Path) -> int:
    """The lock file's descriptor; directory and file are made writable for every user of the machine
    (as /tmp is), so that one user's lock files do not lock another user out."""
    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(path.parent, 0o1777)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    with contextlib.suppress(OSError):
        os.fchmod(fd, 0o666)
    return fd
