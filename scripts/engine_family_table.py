#!/usr/bin/env python3
"""The per-family table of an engine check (docs/PERFORMANCE.md): ``gpu_engine_check.py``'s rows by family.

    python3 scripts/engine_family_table.py $OUT/engine.json      (or engine_rows.jsonl, one row a line)

A family is the folder of a problem (``cnn`` of ``cnn/02_dense_cnn_200``). Per family: its problems;
how many were optimized, kept the reference, or failed (any other status: capture_failed, crashed,
error: ...); the geometric-mean speed-up of the written file over eager and over torch.compile, both
timed in the check's own run (rows with a figure only; a kept reference counts as its own 1.00x); the
largest device footprint of a problem (candidate's worker and judge together); the longest wall time.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qimeng.kernels.bench.metrics import geometric_mean  # noqa: E402

HEADER = ("| family | problems | optimized | reference | failed | x eager (geomean) | x compile (geomean) | "
          "peak device GiB | longest wall s |")
RULE = "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"


def family_of(problem: str) -> str:
    return problem.split("/", 1)[0] if "/" in problem else "-"


def family_rows(rows: list[dict]) -> list[dict]:
    """One summary per family, in name order (see the module docstring)."""
    families: dict[str, list[dict]] = {}
    for row in rows:
        families.setdefault(family_of(row["problem"]), []).append(row)
    table = []
    for name in sorted(families):
        group = families[name]
        peaks = [r["peak_device_bytes"] for r in group if r.get("peak_device_bytes")]
        table.append({
            "family": name, "problems": len(group),
            "optimized": sum(r["status"] == "optimized" for r in group),
            "reference": sum(r["status"] == "reference" for r in group),
            "failed": sum(r["status"] not in ("optimized", "reference") for r in group),
            "speedup_eager": geometric_mean([r["speedup"] for r in group if r.get("speedup")]),
            "speedup_compile": geometric_mean([r["speedup_compile"] for r in group if r.get("speedup_compile")]),
            "peak_device_bytes": max(peaks) if peaks else None,
            "max_wall_s": max((r["wall_s"] for r in group if r.get("wall_s") is not None), default=None),
        })
    return table


def _cell(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def markdown(table: list[dict]) -> str:
    """The table as docs/PERFORMANCE.md's Markdown."""
    lines = [HEADER, RULE]
    for f in table:
        gib = f["peak_device_bytes"] / 2**30 if f["peak_device_bytes"] else None
        lines.append(f"| {f['family']} | {f['problems']} | {f['optimized']} | {f['reference']} | {f['failed']} | "
                     f"{_cell(f['speedup_eager'], '.2f')} | {_cell(f['speedup_compile'], '.2f')} | "
                     f"{_cell(gib, '.1f')} | {_cell(f['max_wall_s'], '.0f')} |")
    return "\n".join(lines) + "\n"


def read_rows(path: Path) -> list[dict]:
    """engine.json's rows, or engine_rows.jsonl's lines."""
    text = path.read_text()
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return json.loads(text)["rows"]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: engine_family_table.py ENGINE.json|ENGINE_ROWS.jsonl", file=sys.stderr)
        return 2
    path = Path(argv[0])
    try:
        rows = read_rows(path)
        table = family_rows(rows)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"error: {path}: not an engine check's rows ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 2
    print(markdown(table), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
