"""The hardware agent's tables in qimeng's SQLite store (``Settings.store_path``), all prefixed ``hw_``.

Tables (schema version in ``hw_schema_version``):
  hw_eval_runs      one row per ``qimeng hw verilog-eval`` run: directories, tool versions, overall pass@k
  hw_eval_problems  per run and problem: samples n, passing c, pass@1/5/10
  hw_eval_samples   per run and sample file: status (qimeng.core.verdict.Status), mismatches, reason, time
WAL mode; each run is written in one transaction, so a crash leaves no half-written run.
"""

from __future__ import annotations

import json
import platform
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING

from qimeng.settings import Settings

if TYPE_CHECKING:
    from qimeng.hardware.verilog_eval import VerilogEvalReport

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS hw_schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS hw_eval_runs (
    id INTEGER PRIMARY KEY, created REAL NOT NULL, problems_dir TEXT NOT NULL, samples_dir TEXT NOT NULL,
    problems INTEGER NOT NULL, samples INTEGER NOT NULL, pass_at_1 REAL, pass_at_5 REAL, pass_at_10 REAL,
    tools TEXT NOT NULL, host TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hw_eval_problems (
    run_id INTEGER NOT NULL REFERENCES hw_eval_runs(id), problem TEXT NOT NULL, n INTEGER NOT NULL,
    c INTEGER NOT NULL, pass_at_1 REAL, pass_at_5 REAL, pass_at_10 REAL, PRIMARY KEY (run_id, problem));
CREATE TABLE IF NOT EXISTS hw_eval_samples (
    run_id INTEGER NOT NULL REFERENCES hw_eval_runs(id), problem TEXT NOT NULL, sample TEXT NOT NULL,
    sha256 TEXT NOT NULL, status TEXT NOT NULL, mismatches INTEGER, total INTEGER, reason TEXT NOT NULL,
    seconds REAL NOT NULL, PRIMARY KEY (run_id, sample));
"""


class HardwareStore:
    """Opens (and creates or checks) the hw_ tables of one SQLite file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path or Settings.from_env().store_path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30.0)
        self.db.execute("PRAGMA journal_mode=WAL")
        with self.db:
            self.db.executescript(_SCHEMA)
            row = self.db.execute("SELECT version FROM hw_schema_version").fetchone()
            if row is None:
                self.db.execute("INSERT INTO hw_schema_version VALUES (?)", (SCHEMA_VERSION,))
            elif row[0] != SCHEMA_VERSION:
                raise RuntimeError(f"{self.path}: hw_ tables have schema version {row[0]}, this qimeng expects {SCHEMA_VERSION}")

    def save_eval_run(self, report: "VerilogEvalReport") -> int:
        """Store one verilog-eval report in one transaction; returns its run id."""
        with self.db:
            cur = self.db.execute(
                "INSERT INTO hw_eval_runs (created, problems_dir, samples_dir, problems, samples, pass_at_1, "
                "pass_at_5, pass_at_10, tools, host) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (time.time(), report.problems_dir, report.samples_dir, len(report.problems),
                 sum(p.n for p in report.problems), report.pass_at.get("1"), report.pass_at.get("5"),
                 report.pass_at.get("10"), json.dumps(report.tools), platform.node()),
            )
            run_id = int(cur.lastrowid)
            for p in report.problems:
                self.db.execute(
                    "INSERT INTO hw_eval_problems VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (run_id, p.problem, p.n, p.c, p.pass_at.get("1"), p.pass_at.get("5"), p.pass_at.get("10")),
                )
                for s in p.samples:
                    self.db.execute(
                        "INSERT INTO hw_eval_samples VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (run_id, p.problem, s.sample, s.sha256, s.status, s.mismatches, s.total, s.reason, s.seconds),
                    )
        return run_id

    def eval_runs(self) -> list[dict]:
        cur = self.db.execute("SELECT * FROM hw_eval_runs ORDER BY id")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    def close(self) -> None:
        self.db.close()
