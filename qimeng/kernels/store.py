"""The store: one SQLite database (WAL mode, a schema version) of problems, candidates, evaluations,
runs, baselines, tuning results and optimiser steps, with the hardware/software versions of each
measurement.

Every write is one transaction: a crash (even SIGKILL) in the middle of a run leaves each finished row
intact and no half-written row. One ``Store`` may be shared by threads; several processes may open the
same file (SQLite's locking plus a busy timeout serialise their writes).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qimeng.core.verdict import Status
from qimeng.kernels.result import EvalResult

if TYPE_CHECKING:
    from qimeng.settings import Settings

SCHEMA_VERSION = 1

_BASE_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS problems (
    hash TEXT PRIMARY KEY, name TEXT NOT NULL, path TEXT, source TEXT, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS candidates (
    hash TEXT PRIMARY KEY, problem_hash TEXT, source TEXT NOT NULL, lineage TEXT NOT NULL,
    created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS runs (name TEXT PRIMARY KEY, config TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS evaluations (
    id INTEGER PRIMARY KEY, run TEXT NOT NULL REFERENCES runs(name), problem TEXT NOT NULL,
    candidate TEXT NOT NULL, created REAL NOT NULL, UNIQUE (run, problem, candidate));
CREATE TABLE IF NOT EXISTS baselines (
    problem_hash TEXT NOT NULL, device TEXT NOT NULL, torch_version TEXT NOT NULL, mode TEXT NOT NULL,
    ms REAL NOT NULL, created REAL NOT NULL, PRIMARY KEY (problem_hash, device, torch_version, mode));
CREATE TABLE IF NOT EXISTS tuning (
    kernel_hash TEXT NOT NULL, device TEXT NOT NULL, config TEXT NOT NULL, ms REAL NOT NULL,
    created REAL NOT NULL, PRIMARY KEY (kernel_hash, device));
CREATE TABLE IF NOT EXISTS steps (
    id INTEGER PRIMARY KEY, run TEXT NOT NULL, step_problem_hash TEXT NOT NULL, step TEXT NOT NULL,
    step_candidate_hash TEXT NOT NULL, created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS steps_by_run ON steps (run, step_problem_hash);
"""

# Tables that hold one EvalResult per row, one column per EvalResult field.
_RESULT_TABLES = ("evaluations", "steps")


@dataclass(frozen=True)
class _Column:
    name: str
    sql_type: str  # TEXT, INTEGER, REAL
    kind: str  # "json", "bool", "status" or "plain"


def _result_columns() -> tuple[_Column, ...]:
    """One column per EvalResult field: nested values (lists, dicts) as JSON text."""
    columns = []
    for f in dataclasses.fields(EvalResult):
        type_name = str(f.type)
        if f.name == "status":
            columns.append(_Column(f.name, "TEXT", "status"))
        elif f.default_factory is not dataclasses.MISSING:  # list / dict
            columns.append(_Column(f.name, "TEXT", "json"))
        elif type_name.startswith("bool"):
            columns.append(_Column(f.name, "INTEGER", "bool"))
        elif type_name.startswith("int"):
            columns.append(_Column(f.name, "INTEGER", "plain"))
        elif type_name.startswith("float"):
            columns.append(_Column(f.name, "REAL", "plain"))
        else:
            columns.append(_Column(f.name, "TEXT", "plain"))
    columns.append(_Column("correct", "INTEGER", "bool"))  # derived, stored for queries
    return tuple(columns)


RESULT_COLUMNS = _result_columns()


def _encode(result: EvalResult) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for col in RESULT_COLUMNS:
        value = result.correct if col.name == "correct" else getattr(result, col.name)
        if col.kind == "json":
            row[col.name] = json.dumps(value, sort_keys=True)
        elif col.kind == "status":
            row[col.name] = Status(value).value
        elif col.kind == "bool":
            row[col.name] = None if value is None else int(bool(value))
        else:
            row[col.name] = value
    return row


def _decode(row: sqlite3.Row) -> EvalResult:
    kwargs: dict[str, Any] = {}
    keys = set(row.keys())
    for col in RESULT_COLUMNS:
        if col.name == "correct" or col.name not in keys:
            continue
        value = row[col.name]
        if col.kind == "json":
            kwargs[col.name] = json.loads(value) if value is not None else None
        elif col.kind == "status":
            kwargs[col.name] = Status(value)
        elif col.kind == "bool":
            kwargs[col.name] = None if value is None else bool(value)
        else:
            kwargs[col.name] = value
    defaults = EvalResult(status=Status.OK)
    for name, value in list(kwargs.items()):
        if value is None and not _nullable(name):
            kwargs[name] = getattr(defaults, name)  # a column added by a migration, unset in old rows
    return EvalResult(**kwargs)


def _nullable(field_name: str) -> bool:
    f = next(f for f in dataclasses.fields(EvalResult) if f.name == field_name)
    return "None" in str(f.type)


def content_hash(text: str) -> str:
    """The content hash of a source text (sha256, hex)."""
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class EvalRecord:
    """One stored evaluation: where it belongs and what it found."""

    run: str
    problem: str
    candidate: str
    created: float
    result: EvalResult

    def to_json(self) -> dict[str, Any]:
        return {"run": self.run, "problem": self.problem, "candidate": self.candidate,
                "created": self.created, **self.result.to_json()}


@dataclass(frozen=True)
class StepRecord:
    """One stored optimiser step: the decision taken, the candidate it produced and its result."""

    id: int
    run: str
    problem_hash: str
    step: dict[str, Any]
    candidate_hash: str
    created: float
    result: EvalResult


@dataclass(frozen=True)
class RunInfo:
    name: str
    config: dict[str, Any]
    created: float
    evaluations: int


class StoreError(Exception):
    """The database cannot be used (written by a newer qimeng, not a qimeng store, ...)."""


class Store:
    """The qimeng database. ``Store(path)`` creates or opens it; ``Store.open(settings)`` uses
    ``Settings.store_path``. Use as a context manager or call :meth:`close`."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(str(path), timeout=30.0, check_same_thread=False,
                                         isolation_level=None)
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: not a usable qimeng store ({exc})") from exc

    @classmethod
    def open(cls, settings: "Settings | None" = None) -> "Store":
        from qimeng.settings import Settings

        return cls((settings or Settings.from_env()).store_path)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions and schema ------------------------------------------------------------------

    def _transaction(self) -> "_Transaction":
        return _Transaction(self._conn, self._lock)

    def _migrate(self) -> None:
        # executescript() issues its own COMMIT, so the idempotent DDL runs outside _Transaction; the
        # version check and the additive column migration (new EvalResult fields) run inside one.
        with self._lock:
            self._conn.executescript(_BASE_SCHEMA)
        with self._transaction() as db:
            row = db.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            elif row["version"] > SCHEMA_VERSION:
                raise StoreError(f"{self.path}: schema version {row['version']} was written by a newer "
                                 f"qimeng (this one reads up to {SCHEMA_VERSION})")
            for table in _RESULT_TABLES:
                present = {r["name"] for r in db.execute(f"PRAGMA table_info({table})")}
                for col in RESULT_COLUMNS:
                    if col.name not in present:
                        db.execute(f"ALTER TABLE {table} ADD COLUMN {col.name} {col.sql_type}")

    # -- runs and evaluations ---------------------------------------------------------------------

    def put_run(self, run: str, config: dict[str, Any]) -> None:
        """Create ``run`` with ``config``, or replace the config of an existing run (keeping its rows)."""
        with self._transaction() as db:
            db.execute("INSERT INTO runs (name, config, created) VALUES (?, ?, ?) "
                       "ON CONFLICT (name) DO UPDATE SET config = excluded.config",
                       (run, json.dumps(config, sort_keys=True), time.time()))

    def runs(self) -> list[RunInfo]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT r.name, r.config, r.created, COUNT(e.id) AS n FROM runs r "
                "LEFT JOIN evaluations e ON e.run = r.name GROUP BY r.name ORDER BY r.created").fetchall()
        return [RunInfo(r["name"], json.loads(r["config"]), r["created"], r["n"]) for r in rows]

    def run_config(self, run: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute("SELECT config FROM runs WHERE name = ?", (run,)).fetchone()
        return None if row is None else json.loads(row[0])

    def record_eval(self, run: str, problem: str, candidate: str, result: EvalResult, *,
                    problem_source: str | None = None, problem_path: str | None = None,
                    candidate_source: str | None = None) -> None:
        """Store the result of ``candidate`` on ``problem`` in ``run`` (replacing an earlier one of the
        same names), with the problem's and candidate's sources when given, in one transaction."""
        row = _encode(result)
        names = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        updates = ", ".join(f"{n} = excluded.{n}" for n in row)
        now = time.time()
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO runs (name, config, created) VALUES (?, '{}', ?)", (run, now))
            if problem_source is not None and result.problem_hash:
                db.execute("INSERT OR IGNORE INTO problems (hash, name, path, source, created) "
                           "VALUES (?, ?, ?, ?, ?)",
                           (result.problem_hash, problem, problem_path, problem_source, now))
            if candidate_source is not None:
                self._insert_candidate(db, result.problem_hash, candidate_source,
                                       {"run": run, "name": candidate}, now)
            db.execute(
                f"INSERT INTO evaluations (run, problem, candidate, created, {names}) "
                f"VALUES (?, ?, ?, ?, {marks}) ON CONFLICT (run, problem, candidate) DO UPDATE SET "
                f"created = excluded.created, {updates}",
                (run, problem, candidate, now, *row.values()))

    def finished(self, run: str) -> set[tuple[str, str]]:
        """The (problem, candidate) pairs of ``run`` that have a stored result."""
        with self._lock:
            rows = self._conn.execute("SELECT problem, candidate FROM evaluations WHERE run = ?",
                                      (run,)).fetchall()
        return {(r["problem"], r["candidate"]) for r in rows}

    def evaluations(self, run: str | None = None) -> list[EvalRecord]:
        """Stored evaluations of ``run`` (of every run when ``None``), in the order they were stored."""
        return list(self.iter_evaluations(run))

    def iter_evaluations(self, run: str | None = None) -> Iterator[EvalRecord]:
        query = "SELECT * FROM evaluations"
        args: tuple[Any, ...] = ()
        if run is not None:
            query += " WHERE run = ?"
            args = (run,)
        with self._lock:
            rows = self._conn.execute(query + " ORDER BY id", args).fetchall()
        for r in rows:
            yield EvalRecord(r["run"], r["problem"], r["candidate"], r["created"], _decode(r))

    def peak_device_bytes(self, problem_hash: str) -> int | None:
        """The largest device memory peak measured for a problem (evaluations and optimiser steps): the
        candidate's worker's and the judge's together, both processes being on the device."""
        both = "COALESCE(peak_device_bytes, 0) + COALESCE(judge_peak_device_bytes, 0)"
        with self._lock:
            row = self._conn.execute(
                f"SELECT MAX(peak) FROM (SELECT MAX({both}) AS peak FROM evaluations WHERE problem_hash = ? "
                f"AND (peak_device_bytes IS NOT NULL OR judge_peak_device_bytes IS NOT NULL) "
                f"UNION ALL SELECT MAX({both}) FROM steps WHERE problem_hash = ? "
                f"AND (peak_device_bytes IS NOT NULL OR judge_peak_device_bytes IS NOT NULL))",
                (problem_hash, problem_hash)).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    # -- problems and candidates ------------------------------------------------------------------

    def put_problem(self, problem_hash: str, name: str, source: str, path: str | None = None) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO problems (hash, name, path, source, created) "
                       "VALUES (?, ?, ?, ?, ?)", (problem_hash, name, path, source, time.time()))

    def problem_source(self, problem_hash: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT source FROM problems WHERE hash = ?", (problem_hash,)).fetchone()
        return None if row is None else row[0]

    def put_candidate(self, problem_hash: str, source: str, lineage: dict[str, Any]) -> str:
        """Store a candidate's source (first lineage wins for identical sources); return its hash."""
        with self._transaction() as db:
            return self._insert_candidate(db, problem_hash, source, lineage, time.time())

    @staticmethod
    def _insert_candidate(db: sqlite3.Connection, problem_hash: str, source: str,
                          lineage: dict[str, Any], now: float) -> str:
        digest = content_hash(source)
        db.execute("INSERT OR IGNORE INTO candidates (hash, problem_hash, source, lineage, created) "
                   "VALUES (?, ?, ?, ?, ?)", (digest, problem_hash, source, json.dumps(lineage, sort_keys=True), now))
        return digest

    def candidate(self, candidate_hash: str) -> tuple[str, dict[str, Any]] | None:
        """The (source, lineage) of a stored candidate."""
        with self._lock:
            row = self._conn.execute("SELECT source, lineage FROM candidates WHERE hash = ?",
                                     (candidate_hash,)).fetchone()
        return None if row is None else (row["source"], json.loads(row["lineage"]))

    # -- caches -----------------------------------------------------------------------------------

    def baseline_ms(self, problem_hash: str, device: str, torch_version: str, mode: str) -> float | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT ms FROM baselines WHERE problem_hash = ? AND device = ? AND torch_version = ? "
                "AND mode = ?", (problem_hash, device, torch_version, mode)).fetchone()
        return None if row is None else row[0]

    def baselines_of(self, problem_hash: str) -> dict[tuple[str, str, str, str], float]:
        """Every cached baseline of a problem, keyed as ``baseline_ms`` asks: (problem hash, device,
        torch version, mode) -> ms (what a job on another machine takes with it)."""
        with self._lock:
            rows = self._conn.execute("SELECT device, torch_version, mode, ms FROM baselines WHERE problem_hash = ?",
                                      (problem_hash,)).fetchall()
        return {(problem_hash, row[0], row[1], row[2]): row[3] for row in rows}

    def put_baseline(self, problem_hash: str, device: str, torch_version: str, mode: str, ms: float) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO baselines (problem_hash, device, torch_version, mode, ms, "
                       "created) VALUES (?, ?, ?, ?, ?, ?)",
                       (problem_hash, device, torch_version, mode, float(ms), time.time()))

    def tuning(self, kernel_hash: str, device: str) -> dict[str, Any] | None:
        """The best stored configuration of a kernel on a device: ``{"config": {...}, "ms": ...}``."""
        with self._lock:
            row = self._conn.execute("SELECT config, ms FROM tuning WHERE kernel_hash = ? AND device = ?",
                                     (kernel_hash, device)).fetchone()
        return None if row is None else {"config": json.loads(row["config"]), "ms": row["ms"]}

    def put_tuning(self, kernel_hash: str, device: str, config: dict[str, Any], ms: float) -> None:
        """Keep ``config`` for the kernel on the device if it is faster than the one stored."""
        with self._transaction() as db:
            db.execute("INSERT INTO tuning (kernel_hash, device, config, ms, created) VALUES (?, ?, ?, ?, ?) "
                       "ON CONFLICT (kernel_hash, device) DO UPDATE SET config = excluded.config, "
                       "ms = excluded.ms, created = excluded.created WHERE excluded.ms < tuning.ms",
                       (kernel_hash, device, json.dumps(config, sort_keys=True), float(ms), time.time()))

    # -- optimiser steps --------------------------------------------------------------------------

    def put_step(self, run: str, problem_hash: str, step: dict[str, Any], candidate_hash: str,
                 result: EvalResult) -> None:
        row = _encode(result)
        names = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self._transaction() as db:
            db.execute(f"INSERT INTO steps (run, step_problem_hash, step, step_candidate_hash, created, {names}) "
                       f"VALUES (?, ?, ?, ?, ?, {marks})",
                       (run, problem_hash, json.dumps(step, sort_keys=True), candidate_hash, time.time(),
                        *row.values()))

    def steps(self, run: str, problem_hash: str | None = None) -> list[StepRecord]:
        query, args = "SELECT * FROM steps WHERE run = ?", [run]
        if problem_hash is not None:
            query += " AND step_problem_hash = ?"
            args.append(problem_hash)
        with self._lock:
            rows = self._conn.execute(query + " ORDER BY id", args).fetchall()
        return [StepRecord(r["id"], r["run"], r["step_problem_hash"], json.loads(r["step"]), r["step_candidate_hash"],
                           r["created"], _decode(r)) for r in rows]

    def journal_mode(self) -> str:
        with self._lock:
            return self._conn.execute("PRAGMA journal_mode").fetchone()[0]

    def schema_version(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT version FROM schema_version").fetchone()[0]


class _Transaction:
    """``with`` block = one transaction (BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any exception)."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock) -> None:
        self._conn = conn
        self._lock = lock

    def __enter__(self) -> sqlite3.Connection:
        self._lock.acquire()
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._lock.release()
            raise
        return self._conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            self._conn.execute("COMMIT" if exc_type is None else "ROLLBACK")
        finally:
            self._lock.release()
