"""Filesystem isolation and parent-death for untrusted commands: bubblewrap where it works.

``isolate(cmd, work_dir, read_only)`` returns the argv to run instead of ``cmd`` and how it is isolated:

- ``bwrap``: a private mount namespace with a read-only view of the system (``/`` bound read-only),
  an empty private ``/tmp``, an ``/etc`` holding only what programs need to start (loader cache,
  passwd/group, alternatives, ...: no ``/etc/hostname``), a fresh ``/proc`` and ``/dev``, its own
  host name, no network, its own PID namespace. Writable: ``work_dir`` only. ``read_only`` paths
  (files the command names that would otherwise be hidden, e.g. under ``/tmp``) are bound read-only.
  ``--die-with-parent`` and the PID namespace make every process of the command die with the
  process (thread) that started it, grandchildren included.
- ``none``: the command as it is, with a warning saying why (bubblewrap missing or unable to make
  namespaces here, e.g. a container without user namespaces, or ``QIMENG_ISOLATION=none``). The
  command gets ``PR_SET_PDEATHSIG`` (``preexec_fn``), and ``guard(pid)`` registers its process group
  with a watchdog process (one per supervisor) that SIGKILLs every registered group when the
  supervisor dies, so the command's own children die too.

Callers start the command in its own session, run it inside ``guard(proc.pid)``, and kill its process
group on timeout. ``Binds`` adds what a long-lived job needs (the kernel workers, command_job.Job):
more writable directories (shared-memory exchange, lock files), GPU device nodes, and ``--as-pid-1``
with ``--info-fd``: the job's own process is the PID namespace's first, so when it ends every process
it started ends too, however it detached itself (``setsid``), and its pid outside is reported.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ContextManager, Iterator, Sequence

from qimeng.core.sandbox import _die_with
from qimeng.settings import Settings

# The only entries of /etc a sandboxed program sees (loader, user database, alternatives symlinks, perl).
ETC_KEPT: tuple[str, ...] = (
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "passwd", "group", "nsswitch.conf", "alternatives",
    "localtime", "perl",
)
SANDBOX_HOSTNAME = "qimeng-sandbox"


@dataclass(frozen=True)
class Isolation:
    """How a command is isolated: ``mode`` is "bwrap" or "none"; ``warning`` says why when "none"."""

    mode: str
    warning: str = ""

    @property
    def describe(self) -> str:
        return self.mode if not self.warning else f"{self.mode} ({self.warning})"


@dataclass(frozen=True)
class Binds:
    """What an isolated job may reach beyond its work directory: directories it may write, paths it may
    read, device nodes (``gpu_device_nodes()``), and the descriptor bubblewrap reports the job's pid on
    (the job is then the first process of its PID namespace)."""

    writable: tuple[Path, ...] = ()
    read_only: tuple[Path, ...] = ()
    devices: tuple[str, ...] = ()
    info_fd: int | None = None


def gpu_device_nodes() -> tuple[str, ...]:
    """The NVIDIA device nodes of this machine (none where there is no NVIDIA GPU)."""
    return tuple(sorted(glob.glob("/dev/nvidia*")))


@dataclass(frozen=True)
class IsolatedCommand:
    """The argv to run, the ``preexec_fn`` to give ``subprocess.Popen``, and how it is isolated.

    Run the started process inside ``guard(pid)``.
    """

    argv: list[str]
    preexec_fn: Callable[[], None] | None
    isolation: Isolation

    def guard(self, pid: int) -> ContextManager[None]:
        """While open, the process group ``pid`` is SIGKILLed if this process dies (bubblewrap does it itself)."""
        return contextlib.nullcontext() if self.isolation.mode == "bwrap" else _REAPER.watching(pid)


# The watchdog: reads "+PGID" / "-PGID" lines; at end of input (its supervisor is gone, however it died)
# it SIGKILLs the groups still registered.
_WATCHDOG = """
import os, signal, sys
groups = set()
for line in sys.stdin:
    (groups.add if line[0] == "+" else groups.discard)(int(line[1:]))
for group in groups:
    try:
        os.killpg(group, signal.SIGKILL)
    except OSError:
        pass
"""


class _GroupReaper:
    """One watchdog process per supervisor process, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._owner = 0

    def _send(self, line: str) -> None:
        with self._lock:
            if self._proc is None or self._owner != os.getpid() or self._proc.poll() is not None:
                self._proc = subprocess.Popen([sys.executable, "-c", _WATCHDOG], stdin=subprocess.PIPE,
                                              start_new_session=True, env={})
                self._owner = os.getpid()
            try:
                self._proc.stdin.write(line.encode())  # type: ignore[union-attr]
                self._proc.stdin.flush()  # type: ignore[union-attr]
            except OSError:
                pass  # the watchdog is gone: the caller's own kill on timeout still applies

    @contextlib.contextmanager
    def watching(self, pgid: int) -> Iterator[None]:
        self._send(f"+{pgid}\n")
        try:
            yield
        finally:
            self._send(f"-{pgid}\n")


_REAPER = _GroupReaper()


_PRIVATE = ("/tmp", "/etc")  # what the sandbox replaces with empty directories of its own


def _import_paths() -> list[str]:
    """The directories this Python imports from that the sandbox's private /tmp and /etc would hide (a
    checkout, editable install or virtual environment under /tmp): bound read-only, so a job imports
    what its parent does."""
    here = Path(__file__).resolve().parents[2]  # the directory holding the qimeng package
    roots = {str(Path(p).resolve()) for p in (*sys.path, sys.prefix, sys.exec_prefix, here) if p and Path(p).is_dir()}
    return sorted(r for r in roots if any(r == d or r.startswith(d + "/") for d in _PRIVATE))


def bwrap_argv(cmd: Sequence[str], work_dir: Path, read_only: Sequence[Path] = (), binds: Binds = Binds()) -> list[str]:
    """The bubblewrap command line that runs ``cmd`` isolated, with ``work_dir`` (and ``binds.writable``) writable."""
    work = str(Path(work_dir).resolve())
    argv = ["bwrap", "--die-with-parent", "--unshare-all", "--hostname", SANDBOX_HOSTNAME,
            "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--tmpfs", "/etc"]
    if binds.info_fd is not None:
        argv += ["--as-pid-1", "--info-fd", str(binds.info_fd)]
    for name in ETC_KEPT:
        argv += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    for node in binds.devices:
        argv += ["--dev-bind-try", node, node]
    writable = sorted({str(Path(p).resolve()) for p in binds.writable} - {work})
    for path in sorted({str(Path(p).resolve()) for p in (*read_only, *binds.read_only, *_import_paths())}):
        if not any(path == w or path.startswith(w + "/") for w in (work, *writable)):
            argv += ["--ro-bind-try", path, path]
    for path in writable:
        argv += ["--bind", path, path]
    return argv + ["--bind", work, work, "--chdir", work, "--", *cmd]


@functools.cache
def _bwrap_works() -> str:
    """"" when bubblewrap can build the sandbox here, else the reason it cannot."""
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed: apt-get install -y bubblewrap"
    with tempfile.TemporaryDirectory(prefix="qimeng-bwrap-probe-") as tmp:
        try:
            run = subprocess.run(bwrap_argv(["true"], Path(tmp)), capture_output=True, timeout=30,
                                 stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bubblewrap cannot run: {exc}"
    if run.returncode != 0:
        return "bubblewrap cannot create namespaces here: " + run.stderr.decode(errors="replace").strip()[:300]
    return ""


def probe(settings: Settings | None = None) -> Isolation:
    """How commands are isolated in this process (bubblewrap probed once)."""
    settings = settings or Settings.from_env()
    if settings.isolation == "none":
        return Isolation("none", "no filesystem isolation: disabled by QIMENG_ISOLATION=none")
    reason = _bwrap_works()
    if reason:
        return Isolation("none", f"no filesystem isolation: {reason}")
    return Isolation("bwrap")


def isolate(cmd: Sequence[str], work_dir: Path, read_only: Sequence[Path] = (),
            settings: Settings | None = None, binds: Binds = Binds()) -> IsolatedCommand:
    """``cmd`` wrapped to run isolated with ``work_dir`` writable (see the module docstring)."""
    isolation = probe(settings)
    if isolation.mode == "bwrap":
        return IsolatedCommand(bwrap_argv(cmd, work_dir, read_only, binds), None, isolation)
    parent = os.getpid()
    return IsolatedCommand(list(cmd), lambda: _die_with(parent), isolation)
