"""A sandboxed job that takes commands one at a time: :class:`Job` on the parent's side, :func:`serve`
on the job's. Same sandbox as :func:`qimeng.core.sandbox.run_job` (own session, allowlisted environment,
private directories, a private result channel whose lines carry a nonce); the parent can SIGSTOP and
SIGCONT the job between commands and see whether it stayed stopped. Given ``binds``, the job runs under
:mod:`qimeng.core.isolation` (bubblewrap: a read-only system, a private /tmp, its own PID namespace)
where that works here, else as it is (``Job.isolation`` says which, and why). Like ``run_job``'s, its
process group is killed when the executor thread that started it is cancelled (``core/cancel.py``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable

from qimeng.core.cancel import kill_group, raise_if_cancelled
from qimeng.core.isolation import Binds, Isolation, isolate, probe
from qimeng.core.sandbox import (_DRAIN_S, _MAX_MESSAGE_BYTES, JobOutput, _die_with, _open_envelope, _read_chunk,
                                 _TailBuffer, _track, _untrack, sandbox_env)
from qimeng.settings import Settings


class Job:
    """A sandboxed job that takes commands one at a time and answers each on its private channel.

    Started like :func:`run_job` (own session, allowlisted environment, private directories, the
    payload and the nonce in a first line on stdin); afterwards each :meth:`send` writes one JSON line
    to its stdin, and :meth:`receive` returns its next message with the right nonce. :meth:`stop` and
    :meth:`resume` SIGSTOP/SIGCONT its process group, :meth:`close` kills the group and removes the
    private directory. The job side is :func:`serve`.
    """

    def __init__(self, module: str, payload: dict, *, settings: Settings | None = None,
                 extra_env: dict[str, str] | None = None, binds: Binds | None = None) -> None:
        raise_if_cancelled()
        settings = settings or Settings.from_env()
        self.nonce = secrets.token_hex(16)
        self._tmp = tempfile.TemporaryDirectory(prefix="qimeng-job-")
        env = sandbox_env(settings, Path(self._tmp.name), extra_env)
        read_fd, write_fd = os.pipe()
        cmd = [sys.executable, "-m", module]
        self.isolation = probe(settings) if binds is not None else Isolation("none", "no filesystem isolation asked for")
        kept = [write_fd]
        if self.isolation.mode == "bwrap":
            info_read, info_write = os.pipe()  # bubblewrap writes the job's pid (outside its namespace) here
            kept.append(info_write)
            cmd = isolate(cmd, Path(self._tmp.name), settings=settings,
                          binds=dataclasses.replace(binds, info_fd=info_write)).argv
        try:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, cwd=self._tmp.name, env=env, start_new_session=True,
                pass_fds=tuple(kept), close_fds=True)
        finally:
            for fd in kept:
                os.close(fd)
        self._scope = _track(self.proc.pid)
        self.target_pid = self.proc.pid  # the job's own process, whose state and clocks are read
        if self.isolation.mode == "bwrap":
            self.target_pid = _sandboxed_pid(info_read, self.proc)
            os.close(info_read)
        self._fd = read_fd
        limit = settings.max_captured_output_bytes
        self._out, self._err = _TailBuffer(limit), _TailBuffer(limit)
        self._streams = {self.proc.stdout.fileno(): self._out, self.proc.stderr.fileno(): self._err,  # type: ignore[union-attr]
                         read_fd: None}
        self._selector = selectors.DefaultSelector()
        for fd in self._streams:
            os.set_blocking(fd, False)
            self._selector.register(fd, selectors.EVENT_READ)
        self._channel = bytearray()
        self._pending: list[dict] = []
        self.forged_messages = 0
        self.timed_out = False
        self.closed = False
        self.kill_s: float | None = None  # seconds from SIGKILL (on timeout) until the process was reaped
        # under bubblewrap the job's parent is not this process: bwrap's --die-with-parent ends it instead
        supervisor = None if self.isolation.mode == "bwrap" else os.getpid()
        envelope = {"nonce": self.nonce, "fd": write_fd, "payload": payload, "supervisor": supervisor}
        self.send(envelope)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, message: dict) -> bool:
        """Write one command line; False when the job no longer reads."""
        try:
            self.proc.stdin.write(json.dumps(message).encode() + b"\n")  # type: ignore[union-attr]
            self.proc.stdin.flush()  # type: ignore[union-attr]
            return True
        except (BrokenPipeError, OSError, ValueError):
            return False

    def receive(self, timeout_s: float) -> dict | None:
        """The job's next message; None when it died, or sent nothing for ``timeout_s`` (then it is killed)."""
        deadline = time.monotonic() + timeout_s
        while not self._pending:
            if self.closed or self._fd not in self._selector.get_map():
                self._drain()
                return None
            now = time.monotonic()
            if now >= deadline:
                self.timed_out = True
                self.close()
                return None
            for key, _ in self._selector.select(timeout=min(0.05, deadline - now)):
                self._read(key.fd)
            if self.proc.poll() is not None and not self._pending:
                self._drain()
                if not self._pending:
                    return None
        return self._pending.pop(0)

    def unasked(self) -> int:
        """Messages (and lines without the nonce) the job has written that were not read yet: a job
        stopped between commands should have none."""
        if not self.closed:
            while self._selector.select(timeout=0):
                before = len(self._channel), len(self._pending), self.forged_messages
                for key, _ in self._selector.select(timeout=0):
                    self._read(key.fd)
                if (len(self._channel), len(self._pending), self.forged_messages) == before:
                    break
        return len(self._pending) + self.forged_messages + (1 if self._channel else 0)

    def _read(self, fd: int) -> None:
        chunk = _read_chunk(fd)
        if chunk is None:
            return
        if not chunk:
            self._selector.unregister(fd)
            return
        sink = self._streams[fd]
        if sink is not None:
            sink.add(chunk)
            return
        self._channel += chunk
        if len(self._channel) > _MAX_MESSAGE_BYTES:
            self.forged_messages += 1
            self._channel.clear()
        while b"\n" in self._channel:
            line, _, rest = bytes(self._channel).partition(b"\n")
            self._channel[:] = rest
            message = _open_envelope(line, self.nonce)
            if message is None:
                self.forged_messages += 1
            else:
                self._pending.append(message)

    def _drain(self) -> None:
        """Read what the pipes still hold (the job is gone or going)."""
        until = time.monotonic() + _DRAIN_S
        while self._selector.get_map() and time.monotonic() < until:
            ready = self._selector.select(timeout=0.02)
            if not ready and self.proc.poll() is not None:
                break
            for key, _ in ready:
                self._read(key.fd)

    def output(self) -> JobOutput:
        """What the job printed so far (bounded)."""
        for fd, sink in ([] if self.closed else self._streams.items()):
            while sink is not None and fd in self._selector.get_map() and (chunk := _read_chunk(fd)):
                sink.add(chunk)
        return JobOutput(self._out.text(), self._err.text())

    def stop(self) -> None:
        """SIGSTOP the job's process group: nothing in it runs until :meth:`resume`."""
        _signal_group(self.proc.pid, signal.SIGSTOP)

    def stop_and_wait(self, timeout_s: float, every_thread: bool = False) -> bool:
        """Stop the job and wait until its main process (``every_thread``: each of its threads) is
        stopped, or gone; False if it never is."""
        self.stop()
        deadline = time.monotonic() + timeout_s
        while not (self.is_stopped() and (not every_thread or self._threads_stopped())):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.0002)
        return True

    def is_stopped(self) -> bool:
        """True when the job's main process is stopped by a signal, or gone."""
        state = self._stat()
        return state is None or state[0] in ("T", "t", "Z", "X")

    def _threads_stopped(self) -> bool:
        try:
            tasks = os.listdir(f"/proc/{self.target_pid}/task")
        except OSError:
            return True
        for task in tasks:
            try:
                state = Path(f"/proc/{self.target_pid}/task/{task}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if state not in ("T", "t", "Z", "X"):
                return False
        return True

    def _stat(self) -> list[str] | None:
        try:
            return Path(f"/proc/{self.target_pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None

    def resume(self, timeout_s: float = 1.0) -> None:
        """SIGCONT the job's process group and wait until its main process runs again (or is gone)."""
        _signal_group(self.proc.pid, signal.SIGCONT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = self._stat()
            if state is None or state[0] not in ("T", "t"):
                return
            time.sleep(0.0001)

    def queued_ns(self) -> int:
        """Nanoseconds the job's main thread has waited on a run queue, ready but not running (Linux
        schedstat, kept by the kernel); 0 where that is not known."""
        try:
            return int(Path(f"/proc/{self.target_pid}/schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            return 0

    def cpu_ticks(self) -> int | None:
        """User plus system CPU time of the job's main process in clock ticks (None when it is gone)."""
        fields = self._stat()
        return None if fields is None else int(fields[11]) + int(fields[12])

    def describe_exit(self) -> str:
        if self.timed_out:
            return "timed out"
        code = self.proc.poll()
        if code is None:
            return "is still running"
        if self.isolation.mode == "bwrap" and code > 128:  # bwrap exits with 128 + the signal that ended its child
            code = 128 - code
        if code < 0:
            try:
                return f"killed by signal {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exited with status {code}"

    def close(self) -> None:
        """Kill the job's process group (also when stopped) and remove its private directory."""
        if self.closed:
            return
        self.closed = True
        kill_start = time.monotonic()
        kill_group(self.proc.pid)
        self.proc.wait()
        if self.timed_out:
            self.kill_s = time.monotonic() - kill_start
        self._drain()
        _untrack(self.proc.pid, self._scope)
        self._selector.close()
        for closing in (lambda: os.close(self._fd), self.proc.stdout.close, self.proc.stderr.close,  # type: ignore[union-attr]
                        self.proc.stdin.close):  # type: ignore[union-attr]
            with contextlib.suppress(OSError, ValueError):
                closing()
        self._tmp.cleanup()


def _sandboxed_pid(info_fd: int, proc: subprocess.Popen, timeout_s: float = 30.0) -> int:
    """The pid (here) of the job's own process, as bubblewrap reports it on ``info_fd``; bwrap's own pid
    when it reports none (it failed: its exit status says why)."""
    data = bytearray()
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as selector:
        selector.register(info_fd, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=0.05):
                chunk = os.read(info_fd, 4096)
                if not chunk:
                    break
                data += chunk
                with contextlib.suppress(ValueError):
                    pid = json.loads(bytes(data)).get("child-pid")
                    if isinstance(pid, int):
                        return pid
            elif proc.poll() is not None:
                break
    return proc.pid


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def serve(handler: Callable[[dict, Callable[[], dict | None]], Iterable[dict]]) -> None:
    """Entry point of a :class:`Job` module: ``handler(payload, next_command)`` yields the messages to
    send; ``next_command()`` blocks for the next command line (None at end of input)."""
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    commands = os.fdopen(os.dup(0), "rb", buffering=0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    pending = bytearray()

    def next_command() -> dict | None:
        while b"\n" not in pending:
            chunk = commands.read(65536)
            if not chunk:
                return None
            pending.extend(chunk)
        line, _, rest = bytes(pending).partition(b"\n")
        pending[:] = rest
        return json.loads(line)

    envelope = next_command()
    assert envelope is not None
    _die_with(envelope.get("supervisor"))
    channel = os.fdopen(envelope["fd"], "wb", buffering=0)
    nonce = envelope["nonce"]
    dumps = json.dumps
    for message in handler(envelope["payload"], next_command):
        channel.write(dumps({"nonce": nonce, "message": message}).encode() + b"\n")
    channel.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
