"""The hardware agent's tables in qimeng's SQLite store (``Settings.store_path``), all prefixed ``hw_``.

Tables (schema version in ``hw_schema_version``):
  hw_eval_runs      one row per ``qimeng hw verilog-eval`` or ``qimeng hw rtllm`` run: benchmark, protocol,
                    directories, tool versions, isolation, problems without samples, overall (syntax) pass@k
  hw_eval_problems  per run and problem (RTLLM: design): samples n, passing c, compiling syntax_c, pass@1/5/10,
                    the reference's sample count
  hw_eval_samples   per run and sample file: status (qimeng.core.verdict.Status), compiled, the protocol's
                    own code, mismatches, reason, time, the simulator that decided (icarus / verilator)
WAL mode; each run is written in one transaction, so a crash leaves no half-written run. Version 1
stores (verilog-eval only, before syntax and protocol columns) and version 2 stores (before the
simulator column) are migrated in place; their rows stay, with benchmark 'verilog-eval', protocol
'qimeng' and NULL in the new per-problem/sample columns.
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
    from qimeng.hardware.eval_report import EvalReport

SCHEMA_VERSION = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS hw_schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS hw_eval_runs (
    id INTEGER PRIMARY KEY, created REAL NOT NULL, problems_dir TEXT NOT NULL, samples_dir TEXT NOT NULL,
    problems INTEGER NOT NULL, samples INTEGER NOT NULL, pass_at_1 REAL, pass_at_5 REAL, pass_at_10 REAL,
    tools TEXT NOT NULL, host TEXT NOT NULL, benchmark TEXT NOT NULL DEFAULT 'verilog-eval',
    protocol TEXT NOT NULL DEFAULT 'qimeng', missing INTEGER NOT NULL DEFAULT 0, isolation TEXT NOT NULL DEFAULT '',
    syntax_pass_at_1 REAL, syntax_pass_at_5 REAL, syntax_pass_at_10 REAL);
CREATE TABLE IF NOT EXISTS hw_eval_problems (
    run_id INTEGER NOT NULL REFERENCES hw_eval_runs(id), problem TEXT NOT NULL, n INTEGER NOT NULL,
    c INTEGER NOT NULL, pass_at_1 REAL, pass_at_5 REAL, pass_at_10 REAL, syntax_c INTEGER, reference_samples INTEGER,
    PRIMARY KEY (run_id, problem));
CREATE TABLE IF NOT EXISTS hw_eval_samples (
    run_id INTEGER NOT NULL REFERENCES hw_eval_runs(id), problem TEXT NOT NULL, sample TEXT NOT NULL,
    sha256 TEXT NOT NULL, status TEXT NOT NULL, mismatches INTEGER, total INTEGER, reason TEXT NOT NULL,
    seconds REAL NOT NULL, compiled INTEGER, code TEXT, simulator TEXT, PRIMARY KEY (run_id, sample));
"""

# Version 1 -> 2: RTLLM runs, protocols, syntax pass@k, missing problems, isolation.
_MIGRATE_1_TO_2 = """
ALTER TABLE hw_eval_runs ADD COLUMN benchmark TEXT NOT NULL DEFAULT 'verilog-eval';
ALTER TABLE hw_eval_runs ADD COLUMN protocol TEXT NOT NULL DEFAULT 'qimeng';
ALTER TABLE hw_eval_runs ADD COLUMN missing INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hw_eval_runs ADD COLUMN isolation TEXT NOT NULL DEFAULT '';
ALTER TABLE hw_eval_runs ADD COLUMN syntax_pass_at_1 REAL;
ALTER TABLE hw_eval_runs ADD COLUMN syntax_pass_at_5 REAL;
ALTER TABLE hw_eval_runs ADD COLUMN syntax_pass_at_10 REAL;
ALTER TABLE hw_eval_problems ADD COLUMN syntax_c INTEGER;
ALTER TABLE hw_eval_problems ADD COLUMN reference_samples INTEGER;
ALTER TABLE hw_eval_samples ADD COLUMN compiled INTEGER;
ALTER TABLE hw_eval_samples ADD COLUMN code TEXT;
UPDATE hw_schema_version SET version = 2;
"""

# Version 2 -> 3: the simulator that decided each sample.
_MIGRATE_2_TO_3 = """
ALTER TABLE hw_eval_samples ADD COLUMN simulator TEXT;
UPDATE hw_schema_version SET version = 3;
"""


class HardwareStore:
    """Opens (and creates or checks) the hw_ tables of one SQLite file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path or Settings.from_env().store_path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30.0)
        self.db.execute("PRAGMA journal_mode=WAL")
        with self.db:
            exists = self.db.execute("SELECT name FROM sqlite_master WHERE name = 'hw_schema_version'").fetchone()
            row = self.db.execute("SELECT version FROM hw_schema_version").fetchone() if exists else None
            if row is not None and row[0] == 1:
                self.db.executescript("BEGIN;" + _MIGRATE_1_TO_2 + "COMMIT;")
                row = (2,)
            if row is not None and row[0] == 2:
                self.db.executescript("BEGIN;" + _MIGRATE_2_TO_3 + "COMMIT;")
                row = (3,)
            self.db.executescript(_SCHEMA)
            if row is None:
                self.db.execute("INSERT INTO hw_schema_version VALUES (?)", (SCHEMA_VERSION,))
            elif row[0] != SCHEMA_VERSION:
                raise RuntimeError(f"{self.path}: hw_ tables have schema version {row[0]}, this qimeng expects {SCHEMA_VERSION}")

    def save_eval_run(self, report: "EvalReport") -> int:
        """Store one verilog-eval or RTLLM report in one transaction; returns its run id."""
        with self.db:
            cur = self.db.execute(
                "INSERT INTO hw_eval_runs (created, problems_dir, samples_dir, problems, samples, pass_at_1, "
                "pass_at_5, pass_at_10, tools, host, benchmark, protocol, missing, isolation, syntax_pass_at_1, "
                "syntax_pass_at_5, syntax_pass_at_10) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (time.time(), report.problems_dir, report.samples_dir, len(report.problems),
                 sum(p.n for p in report.problems), report.pass_at.get("1"), report.pass_at.get("5"),
                 report.pass_at.get("10"), json.dumps(report.tools), platform.node(), report.benchmark,
                 report.protocol, len(report.missing), report.isolation, report.syntax_pass_at.get("1"),
                 report.syntax_pass_at.get("5"), report.syntax_pass_at.get("10")),
            )
            run_id = int(cur.lastrowid)
            for p in report.problems:
                self.db.execute(
                    "INSERT INTO hw_eval_problems (run_id, problem, n, c, pass_at_1, pass_at_5, pass_at_10, syntax_c, "
                    "reference_samples) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (run_id, p.problem, p.n, p.c, p.pass_at.get("1"), p.pass_at.get("5"), p.pass_at.get("10"),
                     p.syntax_c, p.reference_samples),
                )
                for s in p.samples:
                    self.db.execute(
                        "INSERT INTO hw_eval_samples (run_id, problem, sample, sha256, status, mismatches, total, "
                        "reason, seconds, compiled, code, simulator) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (run_id, p.problem, s.sample, s.sha256, s.status, s.mismatches, s.total, s.reason, s.seconds,
                         int(s.compiled), s.code, s.simulator),
                    )
        return run_id

    def eval_runs(self) -> list[dict]:
        cur = self.db.execute("SELECT * FROM hw_eval_runs ORDER BY id")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    def close(self) -> None:
        self.db.close()
