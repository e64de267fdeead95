"""The per-family table of scripts/engine_family_table.py on hand-made rows, geomeans computed by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
sys.path.insert(0, str(SCRIPTS))
from engine_family_table import family_rows, markdown  # noqa: E402

GIB = 2**30


def _row(problem: str, status: str, speedup=None, speedup_compile=None, peak=None, wall=10.0) -> dict:
    return {"problem": problem, "status": status, "speedup": speedup, "speedup_compile": speedup_compile,
            "peak_device_bytes": peak, "wall_s": wall}


ROWS = [
    _row("cnn/01_a", "optimized", 2.0, 4.0, 3 * GIB, 175.0),
    _row("cnn/02_b", "reference", 0.5, 1.0, 5 * GIB, 60.0),  # 0.5: hand-made, to make the geomean visible
    _row("cnn/03_c", "optimized", 8.0, None, None, 90.0),
    _row("norm/01_x", "capture_failed", wall=3.0),
    _row("norm/02_y", "error: RuntimeError: boom", wall=1.5),
    _row("norm/03_z", "optimized", 1.44, 0.81, GIB // 2, 20.0),
]


def test_counts_geomeans_peaks_and_walls_per_family():
    cnn, norm = family_rows(ROWS)
    assert (cnn["family"], cnn["problems"], cnn["optimized"], cnn["reference"], cnn["failed"]) == ("cnn", 3, 2, 1, 0)
    assert cnn["speedup_eager"] == pytest.approx(2.0)  # (2 * 0.5 * 8) ** (1/3)
    assert cnn["speedup_compile"] == pytest.approx(2.0)  # (4 * 1) ** (1/2): the row without a figure is left out
    assert cnn["peak_device_bytes"] == 5 * GIB and cnn["max_wall_s"] == 175.0
    assert (norm["optimized"], norm["reference"], norm["failed"]) == (1, 0, 2)
    assert norm["speedup_eager"] == pytest.approx(1.44) and norm["speedup_compile"] == pytest.approx(0.81)
    assert norm["max_wall_s"] == 20.0


def test_the_markdown_rows():
    text = markdown(family_rows(ROWS))
    lines = text.splitlines()
    assert lines[0].startswith("| family | problems | optimized | reference | failed |")
    assert lines[2] == "| cnn | 3 | 2 | 1 | 0 | 2.00 | 2.00 | 5.0 | 175 |"
    assert lines[3] == "| norm | 3 | 1 | 0 | 2 | 1.44 | 0.81 | 0.5 | 20 |"
    assert markdown(family_rows([_row("x/1", "crashed", wall=None)])).splitlines()[2] == "| x | 1 | 0 | 0 | 1 | - | - | - | - |"


def test_the_script_reads_rows_and_rejects_a_bad_file_in_one_line(tmp_path):
    rows = tmp_path / "engine_rows.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    done = subprocess.run([sys.executable, str(SCRIPTS / "engine_family_table.py"), str(rows)],
                          capture_output=True, text=True)
    assert done.returncode == 0 and "| cnn | 3 | 2 | 1 | 0 | 2.00 | 2.00 | 5.0 | 175 |" in done.stdout
    (tmp_path / "engine.json").write_text(json.dumps({"rows": ROWS, "summary": {}}))
    assert "| norm | 3 |" in subprocess.run([sys.executable, str(SCRIPTS / "engine_family_table.py"),
                                              str(tmp_path / "engine.json")], capture_output=True, text=True).stdout
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    done = subprocess.run([sys.executable, str(SCRIPTS / "engine_family_table.py"), str(bad)],
                          capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and str(bad) in done.stderr
