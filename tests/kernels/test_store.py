"""The store keeps every EvalResult field, writes whole transactions, and serves the caches."""

from __future__ import annotations

import dataclasses
import sqlite3
import subprocess
import sys
import threading

import pytest

from qimeng.kernels.store import SCHEMA_VERSION, Store, StoreError, content_hash
from qimeng.core.verdict import Status
from qimeng.kernels.result import EvalResult


def full_result(**overrides: object) -> EvalResult:
    """An EvalResult with every field set to a value other than its default."""
    values = dict(
        status=Status.OK, reason="all checks passed", device="cuda:1", ref_ms=2.5, candidate_ms=1.25,
        ref_iqr_ms=0.01, candidate_iqr_ms=0.02, speedup=2.0, compile_ms=812.5,
        baselines_ms={"eager": 2.5, "compile": 1.75}, trials=5, timing_trials=100, timing_meaningful=False,
        atol=1e-4, rtol=1e-3, flags=["suspicious_speedup", "aliases_input"], ops_called=["aten::add.Tensor"],
        own_kernel_share=0.875, versions={"torch": "2.11.0", "gpu": "NVIDIA H100"}, problem_hash="p" * 64,
        candidate_hash="c" * 64, log="worker said hello\n")
    defaults = EvalResult(status=Status.INCORRECT)
    for f in dataclasses.fields(EvalResult):  # fields added later get a non-default value by type
        if f.name not in values:
            values[f.name] = _non_default(str(f.type), getattr(defaults, f.name))
    values.update(overrides)
    return EvalResult(**values)


def _non_default(type_name: str, default: object) -> object:
    for prefix, value in (("bool", not default), ("int", 7), ("float", 0.125), ("str", "text"),
                          ("list", ["item"]), ("dict", {"key": 0.5})):
        if type_name.startswith(prefix):
            return value
    raise AssertionError(f"no test value for a field of type {type_name}")


def test_every_field_round_trips(tmp_path):
    result = full_result()
    defaults = EvalResult(status=Status.INCORRECT)
    for f in dataclasses.fields(EvalResult):  # the fixture must differ from the defaults everywhere
        assert getattr(result, f.name) != getattr(defaults, f.name), f.name
    with Store(tmp_path / "q.db") as store:
        store.record_eval("r1", "elementwise/relu", "relu", result)
    with Store(tmp_path / "q.db") as store:  # persisted, read back by a fresh connection
        [record] = store.evaluations("r1")
    assert (record.run, record.problem, record.candidate) == ("r1", "elementwise/relu", "relu")
    assert record.result == result
    assert record.to_json()["correct"] is True and record.to_json()["status"] == "ok"


def test_wal_and_schema_version(tmp_path):
    with Store(tmp_path / "q.db") as store:
        assert store.journal_mode() == "wal"
        assert store.schema_version() == SCHEMA_VERSION


def test_newer_schema_is_refused(tmp_path):
    Store(tmp_path / "q.db").close()
    conn = sqlite3.connect(tmp_path / "q.db")
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        Store(tmp_path / "q.db")


def test_not_a_database_is_a_clear_error(tmp_path):
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="junk.db"):
        Store(tmp_path / "junk.db")


def test_missing_result_columns_are_added(tmp_path):
    """A store from before a new EvalResult field gains the column; old rows read back with defaults."""
    with Store(tmp_path / "q.db") as store:
        store.record_eval("r", "p", "c", full_result())
    conn = sqlite3.connect(tmp_path / "q.db")
    conn.execute("ALTER TABLE evaluations DROP COLUMN own_kernel_share")
    conn.execute("ALTER TABLE evaluations DROP COLUMN flags")
    conn.commit()
    conn.close()
    with Store(tmp_path / "q.db") as store:
        [record] = store.evaluations("r")
        assert record.result.flags == [] and record.result.own_kernel_share is None
        store.record_eval("r", "p", "c", full_result())
        assert store.evaluations("r")[0].result == full_result()


def test_rows_from_before_the_memory_and_mode_columns_are_kept(tmp_path):
    """A store written before peak memory (the worker's and the judge's), mode, protocol and backend flags were recorded: its rows stay
    and read back with the defaults; new rows carry the values; the largest measured peak is found."""
    with Store(tmp_path / "q.db") as store:
        store.record_eval("r", "p", "old", full_result())
    conn = sqlite3.connect(tmp_path / "q.db")
    for column in ("peak_device_bytes", "peak_rss_bytes", "judge_peak_device_bytes", "judge_peak_rss_bytes", "mode",
                   "protocol", "backend_flags"):
        conn.execute(f"ALTER TABLE evaluations DROP COLUMN {column}")
    conn.commit()
    conn.close()
    with Store(tmp_path / "q.db") as store:
        [old] = store.evaluations("r")
        assert old.candidate == "old" and old.result.peak_device_bytes is None
        assert old.result.mode == "train" and old.result.protocol == "qimeng" and old.result.backend_flags == {}
        phash = old.result.problem_hash
        assert store.peak_device_bytes(phash) is None
        store.record_eval("r", "p", "new", full_result(peak_device_bytes=5 << 30, judge_peak_device_bytes=None))
        store.record_eval("r", "p", "newer", full_result(peak_device_bytes=3 << 30, judge_peak_device_bytes=None))
        assert store.peak_device_bytes(phash) == 5 << 30 and store.peak_device_bytes("other") is None
        store.record_eval("r", "p", "both", full_result(peak_device_bytes=3 << 30, judge_peak_device_bytes=4 << 30))
        assert store.peak_device_bytes(phash) == 7 << 30  # the candidate's worker and the judge share the GPU


def test_record_eval_replaces_same_names_and_stores_sources(tmp_path):
    with Store(tmp_path / "q.db") as store:
        store.record_eval("r", "p", "c", full_result(status=Status.TIMEOUT, speedup=None),
                          problem_source="class Model: ...", problem_path="p.py", candidate_source="class ModelNew: ...")
        store.record_eval("r", "p", "c", full_result())
        store.record_eval("r", "p", "c2", full_result(status=Status.INCORRECT))
        records = store.evaluations("r")
        assert [(r.candidate, r.result.status) for r in records] == [("c", Status.OK), ("c2", Status.INCORRECT)]
        assert store.finished("r") == {("p", "c"), ("p", "c2")}
        assert store.problem_source("p" * 64) == "class Model: ..."
        source, lineage = store.candidate(content_hash("class ModelNew: ..."))
        assert source == "class ModelNew: ..." and lineage == {"run": "r", "name": "c"}
        assert [r.name for r in store.runs()] == ["r"] and store.runs()[0].evaluations == 2


def test_failed_write_leaves_nothing_half_written(tmp_path):
    """An unencodable result aborts its transaction: no run, problem or evaluation row appears."""
    with Store(tmp_path / "q.db") as store:
        store.record_eval("r", "p", "ok", full_result())
        bad = full_result(baselines_ms={"eager": object()})
        with pytest.raises(TypeError):
            store.record_eval("r2", "p2", "c", bad, problem_source="x", candidate_source="y")
        assert store.run_config("r2") is None
        assert store.evaluations("r2") == []
        assert store.candidate(content_hash("y")) is None
        assert len(store.evaluations()) == 1
        store.record_eval("r2", "p2", "c", full_result())  # the store is still usable
        assert len(store.evaluations()) == 2


def test_runs_and_configs(tmp_path):
    with Store(tmp_path / "q.db") as store:
        assert store.run_config("nope") is None
        store.put_run("a", {"device": "cpu", "problems": ["x"]})
        store.put_run("a", {"device": "cpu", "problems": ["x", "y"]})
        assert store.run_config("a") == {"device": "cpu", "problems": ["x", "y"]}
        store.record_eval("b", "p", "c", full_result())  # a run named by record_eval alone
        assert store.run_config("b") == {}
        assert [(r.name, r.evaluations) for r in store.runs()] == [("a", 0), ("b", 1)]


def test_baselines_are_cached_per_hash_device_and_torch_version(tmp_path):
    with Store(tmp_path / "q.db") as store:
        assert store.baseline_ms("h", "NVIDIA H100", "2.11.0", "eager") is None
        store.put_baseline("h", "NVIDIA H100", "2.11.0", "eager", 1.5)
        store.put_baseline("h", "NVIDIA H100", "2.11.0", "compile", 0.75)
        assert store.baseline_ms("h", "NVIDIA H100", "2.11.0", "eager") == 1.5
        assert store.baseline_ms("h", "NVIDIA H100", "2.11.0", "compile") == 0.75
        assert store.baseline_ms("h", "NVIDIA H100", "2.12.0", "eager") is None
        assert store.baseline_ms("h", "NVIDIA H200", "2.11.0", "eager") is None
        assert store.baseline_ms("other", "NVIDIA H100", "2.11.0", "eager") is None
        store.put_baseline("h", "NVIDIA H100", "2.11.0", "eager", 1.25)
        assert store.baseline_ms("h", "NVIDIA H100", "2.11.0", "eager") == 1.25


def test_tuning_keeps_the_fastest_config(tmp_path):
    with Store(tmp_path / "q.db") as store:
        assert store.tuning("k", "cpu") is None
        store.put_tuning("k", "cpu", {"BLOCK": 128}, 2.0)
        store.put_tuning("k", "cpu", {"BLOCK": 256}, 3.0)  # slower: ignored
        assert store.tuning("k", "cpu") == {"config": {"BLOCK": 128}, "ms": 2.0}
        store.put_tuning("k", "cpu", {"BLOCK": 64}, 1.0)
        assert store.tuning("k", "cpu") == {"config": {"BLOCK": 64}, "ms": 1.0}
        assert store.tuning("k", "cuda:0") is None


def test_candidates_and_steps(tmp_path):
    with Store(tmp_path / "q.db") as store:
        parent = store.put_candidate("ph", "v1", {"parent": None})
        child = store.put_candidate("ph", "v2", {"parent": parent, "step": "fuse"})
        assert parent == content_hash("v1") and store.put_candidate("ph", "v1", {"other": 1}) == parent
        assert store.candidate(parent) == ("v1", {"parent": None})  # first lineage wins
        store.put_step("opt", "ph", {"kind": "fuse", "ops": [1, 2]}, child, full_result())
        store.put_step("opt", "ph", {"kind": "tile", "block": 64}, child, full_result(status=Status.INCORRECT))
        steps = store.steps("opt", "ph")
        assert [s.step["kind"] for s in steps] == ["fuse", "tile"]
        assert steps[0].result == full_result() and steps[1].result.status is Status.INCORRECT
        assert steps[0].candidate_hash == child and store.steps("opt", "other") == []


def test_threads_share_one_store(tmp_path):
    with Store(tmp_path / "q.db") as store:
        def write(worker: int) -> None:
            for i in range(25):
                store.record_eval("r", f"p{worker}", f"c{i}", full_result(trials=i))
                store.put_baseline(f"h{worker}", "cpu", "2", "eager", float(i))

        threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(store.finished("r")) == 100


def test_two_processes_write_the_same_store(tmp_path):
    """A second process writing concurrently (WAL + busy timeout) loses nothing."""
    script = (
        "import sys\n"
        "from qimeng.kernels.store import Store\n"
        "from qimeng.core.verdict import Status\n"
        "from qimeng.kernels.result import EvalResult\n"
        "with Store(sys.argv[1]) as s:\n"
        "    for i in range(40):\n"
        "        s.record_eval('r', sys.argv[2], str(i), EvalResult(status=Status.OK))\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "q.db"), name]) for name in ("a", "b")]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    with Store(tmp_path / "q.db") as store:
        assert len(store.finished("r")) == 80


def test_result_columns_do_not_collide_with_row_keys():
    from qimeng.kernels.store import RESULT_COLUMNS

    own = {"id", "run", "problem", "candidate", "created", "step", "step_problem_hash", "step_candidate_hash"}
    assert not own & {c.name for c in RESULT_COLUMNS}
