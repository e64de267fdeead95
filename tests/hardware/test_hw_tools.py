import os
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
