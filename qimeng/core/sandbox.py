"""Run a job module in a sandboxed subprocess and get its result back through a private channel.

The parent side (:func:`run_job`) starts ``python -m <module>`` in a new process session with an
allowlisted environment and a private temporary cwd/HOME/TMPDIR/TRITON_CACHE_DIR/TORCH_EXTENSIONS_DIR,
writes the payload to its stdin, and reads its messages from a pipe that is neither stdout nor stderr.
Every message carries a random nonce from the payload, so text a job prints can never pass for a result.
A job that sends nothing for ``timeout_s`` seconds has its whole process group SIGKILLed, as has every
job of an executor thread whose consumer stopped (``core/cancel.py``).

The job side (:func:`job_main`) reads the payload, calls the handler and sends what it returns (a dict,
or an iterator of dicts for a job that streams several messages).

``qimeng.core.command_job`` is the same sandbox for a job that takes commands one at a time.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, NamedTuple

from qimeng.core.cancel import CancelScope, kill_group, raise_if_cancelled, current as current_scope
from qimeng.settings import Settings

# The directory that holds the ``qimeng`` package: put on the job's PYTHONPATH so ``-m`` finds it.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_DRAIN_S = 0.5  # how long to keep reading pipes after the job's process is gone
_LIVE_GROUPS: set[int] = set()  # process groups of jobs still running, killed if this process exits first


@dataclass(frozen=True)
class SandboxResult:
    """What a sandboxed job did. ``payload`` is its last valid message, ``messages`` all of them."""

    returncode: int | None
    signal: int | None
    timed_out: bool
    stdout: str
    stderr: str
    wall_s: float
    payload: dict | None
    messages: tuple[dict, ...] = ()
    kill_s: float | None = None  # seconds from SIGKILL (on timeout) until the process was reaped
    forged_messages: int = 0  # lines on the result channel without the right nonce

    def describe_exit(self) -> str:
        """A short human description of how the process ended."""
        if self.timed_out:
            return "timed out"
        if self.signal is not None:
            try:
                name = signal.Signals(self.signal).name
            except ValueError:
                name = str(self.signal)
            return f"killed by signal {name}"
        return f"exited with status {self.returncode}"


class JobOutput(NamedTuple):
    """What a job printed so far (each stream bounded to its tail)."""

    stdout: str
    stderr: str


class _TailBuffer:
    """Keeps the last ``limit`` bytes of a stream and counts what was dropped."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        self.data += chunk
        excess = len(self.data) - self.limit
        if excess > 0:
            del self.data[:excess]
            self.dropped += excess

    def text(self) -> str:
        body = self.data.decode("utf-8", errors="replace")
        return f"[... {self.dropped} bytes dropped ...]\n{body}" if self.dropped else body


def sandbox_env(settings: Settings, private_dir: Path, extra_env: dict[str, str] | None) -> dict[str, str]:
    """The job's environment: allowlisted variables, private directories, then ``extra_env``."""
    env = {k: os.environ[k] for k in settings.env_allowlist if k in os.environ}
    for name in ("HOME", "TMPDIR", "TRITON_CACHE_DIR", "TORCH_EXTENSIONS_DIR", "TORCHINDUCTOR_CACHE_DIR"):
        path = private_dir / name.lower()
        path.mkdir()
        env[name] = str(path)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra_env or {})
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p)
    return env


def run_job(
    module: str,
    payload: dict,
    *,
    timeout_s: float,
    settings: Settings | None = None,
    extra_env: dict[str, str] | None = None,
    startup_s: float = 0.0,
    on_message: Callable[[dict, "JobOutput"], None] | None = None,
) -> SandboxResult:
    """Run ``python -m module`` sandboxed with ``payload`` on stdin and return what it did.

    ``timeout_s`` is the wall-clock limit, counted anew from each message the job sends (a job that
    sends one message has exactly this limit); the first message gets ``startup_s`` more. On timeout
    the whole process group is SIGKILLed. ``on_message`` is called with each message as it arrives, and
    the job's (bounded) output up to that message.
    """
    raise_if_cancelled()
    settings = settings or Settings.from_env()
    nonce = secrets.token_hex(16)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="qimeng-job-") as tmp:
        private_dir = Path(tmp)
        env = sandbox_env(settings, private_dir, extra_env)
        read_fd, write_fd = os.pipe()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", module],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=private_dir,
                env=env,
                start_new_session=True,
                pass_fds=(write_fd,),
                close_fds=True,
            )
        finally:
            os.close(write_fd)
        scope = _track(proc.pid)
        try:
            envelope = {"nonce": nonce, "fd": write_fd, "payload": payload, "supervisor": os.getpid()}
            feeder = threading.Thread(target=_feed_stdin, args=(proc, json.dumps(envelope).encode()), daemon=True)
            feeder.start()
            return _supervise(proc, read_fd, nonce, timeout_s, startup_s, settings, started, on_message)
        except BaseException:  # interrupted (Ctrl-C) or failed while supervising: the job must not outlive it
            kill_group(proc.pid)
            proc.wait()
            raise
        finally:
            _untrack(proc.pid, scope)


def _track(pgid: int) -> CancelScope | None:
    """Register a job's process group: killed when this process exits, and when the cancel scope of
    this thread is cancelled (returned, for :func:`_untrack`)."""
    _LIVE_GROUPS.add(pgid)
    scope = current_scope()
    if scope is not None:
        scope.add(pgid)
    return scope


def _untrack(pgid: int, scope: CancelScope | None) -> None:
    """The job's process group is gone: forget it."""
    _LIVE_GROUPS.discard(pgid)
    if scope is not None:
        scope.discard(pgid)


def _supervise(
    proc: subprocess.Popen,
    result_fd: int,
    nonce: str,
    timeout_s: float,
    startup_s: float,
    settings: Settings,
    started: float,
    on_message: Callable[[dict, JobOutput], None] | None,
) -> SandboxResult:
    limit = settings.max_captured_output_bytes
    out, err = _TailBuffer(limit), _TailBuffer(limit)
    channel = bytearray()
    messages: list[dict] = []
    forged = 0
    selector = selectors.DefaultSelector()
    streams = {proc.stdout.fileno(): out, proc.stderr.fileno(): err, result_fd: None}  # type: ignore[union-attr]
    for fd in streams:
        os.set_blocking(fd, False)
        selector.register(fd, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout_s + startup_s
    timed_out = False
    kill_s: float | None = None
    exited_at: float | None = None
    while True:
        now = time.monotonic()
        if exited_at is None and proc.poll() is not None:
            exited_at = now
            kill_group(proc.pid)  # leftovers of the job (forked children) go with it
        if exited_at is not None and (not selector.get_map() or now - exited_at > _DRAIN_S):
            break
        if exited_at is None and now >= deadline:
            timed_out = True
            kill_start = time.monotonic()
            kill_group(proc.pid)
            proc.wait()
            kill_s = time.monotonic() - kill_start
            exited_at = time.monotonic()
            continue
        if not selector.get_map():
            time.sleep(0.01)
            continue
        for key, _ in selector.select(timeout=0.05):
            chunk = _read_chunk(key.fd)
            if chunk is None:
                continue
            if not chunk:
                selector.unregister(key.fd)
                continue
            sink = streams[key.fd]
            if sink is not None:
                sink.add(chunk)
                continue
            channel += chunk
            if len(channel) > _MAX_MESSAGE_BYTES:
                forged += 1
                channel.clear()
            while b"\n" in channel:
                line, _, rest = bytes(channel).partition(b"\n")
                channel[:] = rest
                message = _open_envelope(line, nonce)
                if message is None:
                    forged += 1
                    continue
                messages.append(message)
                deadline = time.monotonic() + timeout_s
                if on_message is not None:
                    for fd, sink in streams.items():  # what the job printed before this message
                        while sink is not None and fd in selector.get_map() and (chunk := _read_chunk(fd)):
                            sink.add(chunk)
                    on_message(message, JobOutput(out.text(), err.text()))
    selector.close()
    os.close(result_fd)
    proc.stdout.close()  # type: ignore[union-attr]
    proc.stderr.close()  # type: ignore[union-attr]
    returncode = proc.wait()
    return SandboxResult(
        returncode=None if returncode < 0 else returncode,
        signal=-returncode if returncode < 0 else None,
        timed_out=timed_out,
        stdout=out.text(),
        stderr=err.text(),
        wall_s=time.monotonic() - started,
        payload=messages[-1] if messages else None,
        messages=tuple(messages),
        kill_s=kill_s,
        forged_messages=forged,
    )


def _read_chunk(fd: int) -> bytes | None:
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return None


def _feed_stdin(proc: subprocess.Popen, data: bytes) -> None:
    try:
        proc.stdin.write(data)  # type: ignore[union-attr]
        proc.stdin.close()  # type: ignore[union-attr]
    except (BrokenPipeError, OSError, ValueError):
        pass  # the job died (or was killed) before reading its payload; its exit status says why


def _open_envelope(line: bytes, nonce: str) -> dict | None:
    try:
        envelope = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(envelope, dict) or envelope.get("nonce") != nonce:
        return None
    message = envelope.get("message")
    return message if isinstance(message, dict) else None


@atexit.register
def _kill_live_groups() -> None:
    """Jobs supervised by threads that die with this process (e.g. daemon workers after Ctrl-C) go too."""
    for pid in list(_LIVE_GROUPS):
        kill_group(pid)


# ----------------------------------------------------------------------------------------- job side


def _die_with(supervisor: int | None) -> None:
    """Have the kernel SIGKILL this job when its supervisor dies, however it dies (SIGKILL and SIGTERM
    included, which no atexit hook sees). Linux only (PR_SET_PDEATHSIG); elsewhere the supervisor's
    own clean-up is all there is."""
    if supervisor is None or not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != supervisor:  # it died before the line above
        os._exit(1)


def job_main(handler: Callable[[dict], dict | Iterable[dict]]) -> None:
    """Entry point of a job module: read the payload, run ``handler``, send its message(s)."""
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crashing candidate leaves no core file
    envelope = json.loads(sys.stdin.buffer.read())
    _die_with(envelope.get("supervisor"))
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    channel = os.fdopen(envelope["fd"], "wb", buffering=0)
    nonce = envelope["nonce"]
    dumps = json.dumps  # bound before the handler runs code that could patch the json module

    def send(message: dict[str, Any]) -> None:
        channel.write(dumps({"nonce": nonce, "message": message}).encode() + b"\n")

    result = handler(envelope["payload"])
    for message in [result] if isinstance(result, dict) else result:
        send(message)
    channel.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip interpreter teardown: after a CUDA error or a candidate's threads it can hang
