"""``qimeng bench``: matching, resuming, and what a failure leaves in the store.

Most tests inject a fake ``evaluate`` (fast, deterministic); the end-to-end tests at the bottom run the
real sandboxed harness on the tiny problems of tests/kernels/bench/data.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from qimeng.kernels.store import Store, content_hash
from qimeng.core.verdict import BadInput, Status
from qimeng.kernels.bench.run import match, parse_baselines, run_bench
from qimeng.kernels.result import EvalOptions, EvalResult

PROBLEM = "import torch\nclass Model(torch.nn.Module):\n    pass\n"


def write(path: Path, text: str = PROBLEM) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture()
def tree(tmp_path):
    """problems: fam/a, fam/b, c, fam2/c2; candidates: fam/a.py, fam/b/{s0,s1}.py, c.py (flat), orphan.py."""
    p, c = tmp_path / "problems", tmp_path / "candidates"
    for name in ("fam/a", "fam/b", "c", "fam2/c2", "_helper", "fam/__init__"):
        write(p / f"{name}.py")
    write(c / "fam/a.py", "# ok 2.0\n")
    write(c / "fam/b/s0.py", "# incorrect\n")
    write(c / "fam/b/s1.py", "# ok 0.5\n")
    write(c / "c2.py", "# timeout\n")  # flat name for fam2/c2
    write(c / "orphan.py", "# ok 1\n")
    return p, c


class FakeEvaluate:
    """Reads the wanted status (and speed-up) from the candidate's first line; records every call."""

    def __init__(self, fail_on: str | None = None, bad_problem: str | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail_on, self.bad_problem = fail_on, bad_problem
        self.lock = threading.Lock()

    def __call__(self, problem: Path, candidates: list[Path], options: EvalOptions, *, settings=None, store=None,
                 on_result=None) -> list[EvalResult]:
        assert store is not None  # the harness caches baselines in the run's store
        results = []
        for index, candidate in enumerate(candidates):
            with self.lock:
                self.calls.append((problem.stem, candidate.stem))
            if self.bad_problem and problem.stem == self.bad_problem:
                raise BadInput(f"{problem}: no get_inputs()")
            if self.fail_on and candidate.stem == self.fail_on:
                raise RuntimeError("harness bug")
            results.append(self.one(problem, candidate, options))
            on_result(index, results[-1])
        return results

    @staticmethod
    def one(problem: Path, candidate: Path, options: EvalOptions) -> EvalResult:
        from qimeng.kernels.harness.problem import problem_hash

        source = candidate.read_text()
        words = source.lstrip("# ").split()
        speedup = float(words[1]) if len(words) > 1 else None
        flags = words[2].split(",") if len(words) > 2 else []
        return EvalResult(status=Status(words[0]), device=options.device, speedup=speedup, flags=flags,
                          candidate_ms=1.0 if speedup else None, candidate_hash=content_hash(source),
                          problem_hash=problem_hash(problem, small=options.small))


def bench(tree, store, fake, run="r", **kw):
    options = kw.pop("options", EvalOptions(timing_trials=3))
    return run_bench(*tree, run=run, options=options, store=store, evaluate_many=fake, progress=False, **kw)


def test_match(tree):
    m = match(*tree)
    assert [(p.problem, p.candidate) for p in m.pairs] == [
        ("fam/a", "fam/a"), ("fam/b", "fam/b/s0"), ("fam/b", "fam/b/s1"), ("fam2/c2", "c2")]
    assert m.problems == ["c", "fam/a", "fam/b", "fam2/c2"]  # files starting with _ are not problems
    assert m.missing == ["c"] and m.orphans == ["orphan"]


def test_match_bad_directories(tmp_path):
    with pytest.raises(BadInput, match="does not exist"):
        match(tmp_path / "nope", tmp_path)
    with pytest.raises(BadInput, match="no problem files"):
        match(tmp_path, tmp_path)


def test_run_stores_everything_and_resumes_without_repeating(tree, tmp_path):
    fake = FakeEvaluate()
    with Store(tmp_path / "q.db") as store:
        summary = bench(tree, store, fake)
        assert (summary.total, summary.evaluated, summary.skipped) == (4, 4, 0)
        assert summary.statuses == {"ok": 2, "incorrect": 1, "timeout": 1}
        assert summary.missing == ["c"] and summary.orphans == ["orphan"]
        assert len(fake.calls) == 4
        config = store.run_config("r")
        assert config["problems"] == ["c", "fam/a", "fam/b", "fam2/c2"] and config["timing_trials"] == 3

        again = bench(tree, store, fake)
        assert (again.evaluated, again.skipped) == (0, 4) and len(fake.calls) == 4

        # a changed candidate file is evaluated again; the others are not
        write(tree[1] / "fam/a.py", "# incorrect\n")
        third = bench(tree, store, fake)
        assert (third.evaluated, third.skipped) == (1, 3) and fake.calls[-1] == ("a", "a")
        assert {r.candidate: r.result.status for r in store.evaluations("r")}["fam/a"] is Status.INCORRECT
        assert len(store.evaluations("r")) == 4

        # so is every candidate of a changed problem
        write(tree[0] / "fam/b.py", PROBLEM + "# changed\n")
        fourth = bench(tree, store, fake)
        assert (fourth.evaluated, fourth.skipped) == (2, 2) and sorted(fake.calls[-2:]) == [("b", "s0"), ("b", "s1")]


def test_resuming_with_other_options_is_refused(tree, tmp_path):
    with Store(tmp_path / "q.db") as store:
        bench(tree, store, FakeEvaluate())
        with pytest.raises(BadInput, match="timing_trials: stored 3, now 50"):
            bench(tree, store, FakeEvaluate(), options=EvalOptions(timing_trials=50))
        bench(tree, store, FakeEvaluate(), run="other", options=EvalOptions(timing_trials=50))


def test_bad_problem_and_harness_errors_keep_the_other_results(tree, tmp_path):
    fake = FakeEvaluate(fail_on="s1", bad_problem="a")
    with Store(tmp_path / "q.db") as store:
        summary = bench(tree, store, fake)
        assert list(summary.bad_problems) == ["fam/a"] and "no get_inputs" in summary.bad_problems["fam/a"]
        assert list(summary.errors) == ["fam/b :: fam/b/s1"]
        assert store.finished("r") == {("fam/b", "fam/b/s0"), ("fam2/c2", "c2")}
        # fixed: the next run evaluates exactly the pairs that were not stored
        fixed = FakeEvaluate()
        summary = bench(tree, store, fixed)
        assert sorted(fixed.calls) == [("a", "a"), ("b", "s1")] and summary.evaluated == 2
        assert len(store.finished("r")) == 4


def test_several_workers(tree, tmp_path):
    fake = FakeEvaluate()
    with Store(tmp_path / "q.db") as store:
        bench(tree, store, fake, workers=3)
        assert len(store.finished("r")) == 4


class InProcessRemote:
    """Runs jobs here as a remote executor is asked to (files shipped, store writes sent back); the
    groups of the problems in ``lose`` report their first value, then end as a lost worker."""

    remote, workers = True, 1

    def __init__(self, lose: tuple[str, ...] = ()) -> None:
        self.lose = lose

    def stream(self, fn, items, rest=None):
        from qimeng.core.executor import Event, WorkerLost

        for item in items:
            values: list = []
            fn(item, "cpu", values.append)
            lost = item.pairs[0].problem in self.lose
            for value in values[:1] if lost else values:
                yield Event(item, "cpu", value=value)
            yield Event(item, "cpu", done=True, error=WorkerLost("the Ray worker died 3 times (NodeDiedError)")
                        if lost else None)


class StoresBaselines(FakeEvaluate):
    """Notes the cached eager baseline the job's store gives for its problem, then stores one."""

    def __call__(self, problem, candidates, options, *, settings=None, store=None, on_result=None):
        from qimeng.kernels.harness.problem import problem_hash

        phash = problem_hash(problem, small=options.small)
        self.seen[problem.stem] = store.baseline_ms(phash, "cpu", "t", "eager")
        store.put_baseline(phash, "cpu", "t", "eager", 1.5)
        return super().__call__(problem, candidates, options, settings=settings, store=store, on_result=on_result)


def test_remote_jobs_get_the_files_and_send_results_and_writes_back(tree, tmp_path):
    from qimeng.kernels.harness.problem import problem_hash

    fake = StoresBaselines()
    fake.seen = {}
    with Store(tmp_path / "q.db") as store:
        summary = bench(tree, store, fake, executor=InProcessRemote())
        assert summary.statuses == {"ok": 2, "incorrect": 1, "timeout": 1}
        assert {r.candidate: r.result.status.value for r in store.evaluations("r")} == {
            "fam/a": "ok", "fam/b/s0": "incorrect", "fam/b/s1": "ok", "c2": "timeout"}
        assert fake.seen == {"a": None, "b": None, "c2": None}  # nothing cached yet
        phash = problem_hash(tree[0] / "fam/a.py")
        assert store.baseline_ms(phash, "cpu", "t", "eager") == 1.5  # written by the driver, from the job's message
        assert bench(tree, store, fake, executor=InProcessRemote()).skipped == 4  # shipped hashes match the files
        bench(tree, store, fake, run="r2", executor=InProcessRemote())
        assert fake.seen == {"a": 1.5, "b": 1.5, "c2": 1.5}  # a new run's jobs took the cached baselines along


def test_pairs_of_a_lost_worker_are_stored_as_crashed_with_the_cause(tree, tmp_path):
    with Store(tmp_path / "q.db") as store:
        summary = bench(tree, store, FakeEvaluate(), executor=InProcessRemote(lose=("fam/b",)))
        results = {r.candidate: r.result for r in store.evaluations("r")}
    assert summary.evaluated == 4 and summary.errors == {}
    assert results["fam/b/s0"].status is Status.INCORRECT  # reported before the worker was lost
    assert results["fam/b/s1"].status is Status.CRASHED and "died 3 times" in results["fam/b/s1"].reason
    assert results["fam/b/s1"].candidate_hash == content_hash("# ok 0.5\n")  # a rerun counts it as done


def test_problems_share_a_gpu_only_while_their_footprints_fit(tree, tmp_path, monkeypatch):
    """Three jobs per GPU, a 10-byte gate: fam/a and fam/b (6 bytes each) never run together; the
    small ones (c2: 3 bytes) may run beside either; the footprints are asked once per problem."""
    import time

    from qimeng.core.admission import MemoryGate
    from qimeng.kernels.bench import run as run_mod

    monkeypatch.setattr(run_mod, "device_slots", lambda device, workers, jobs: ["cuda:0"] * jobs)
    sizes = {"a": 6, "b": 6, "c2": 3}
    asked: list[str] = []
    running: dict[str, int] = {}
    seen: list[dict[str, int]] = []
    lock = threading.Lock()

    class Slow(FakeEvaluate):
        def one(self, problem, candidate, options):
            with lock:
                running[problem.stem] = sizes[problem.stem]
                seen.append(dict(running))
            time.sleep(0.05)
            with lock:
                running.pop(problem.stem)
            return FakeEvaluate.one(problem, candidate, options)

    def footprint(path: Path) -> int:
        with lock:
            asked.append(path.stem)
        return sizes[path.stem]

    with Store(tmp_path / "q.db") as store:
        summary = bench(tree, store, Slow(), options=EvalOptions(device="cuda", timing_trials=3), jobs_per_gpu=3,
                        gate=MemoryGate({"cuda:0": 10}), footprint=footprint)
    assert summary.evaluated == 4
    assert all(sum(moment.values()) <= 10 for moment in seen)
    assert not any({"a", "b"} <= set(moment) for moment in seen)
    assert sorted(asked) == ["a", "b", "c2"]


def test_parse_baselines():
    assert parse_baselines("eager, compile,eager") == ("eager", "compile")
    with pytest.raises(BadInput, match="--baselines"):
        parse_baselines("eager,fast")


# -- end to end: the real sandboxed harness on tests/kernels/bench/data ---------------------------

DATA = Path(__file__).parent / "data"
EXPECTED = {
    ("tiny/relu_add", "tiny/relu_add"): Status.OK,
    ("tiny/row_softmax", "tiny/row_softmax/exp_over_sum"): Status.OK,
    ("tiny/row_softmax", "tiny/row_softmax/no_normalise"): Status.INCORRECT,
    ("tiny/scaled_sum", "tiny/scaled_sum"): Status.COMPILE_ERROR,
}


@pytest.mark.slow
def test_kill_and_resume(tmp_path):
    """End to end with the real harness: SIGKILL `qimeng bench` once it has stored a result; the same
    command then finishes the run without losing or repeating a stored result."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "QIMENG_STORE": str(tmp_path / "q.db"), "QIMENG_WORK_DIR": str(tmp_path / "work")}
    command = [sys.executable, "-m", "qimeng.cli", "bench", str(DATA / "problems"), str(DATA / "candidates"),
               "--run", "k", "--small", "--baselines", "eager", "--trials", "2", "--timing-trials", "5"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    stored: dict[tuple[str, str], float] = {}
    while not stored and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
        if (tmp_path / "q.db").exists():
            with Store(tmp_path / "q.db") as store:
                stored = {(r.problem, r.candidate): r.created for r in store.evaluations("k")}
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "bench finished before it could be killed"
    with Store(tmp_path / "q.db") as store:
        before = {(r.problem, r.candidate): r.created for r in store.evaluations("k")}
    assert 1 <= len(before) < len(EXPECTED)

    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"{len(EXPECTED) - len(before)} evaluated, {len(before)} already stored" in " ".join(done.stderr.split())
    with Store(tmp_path / "q.db") as store:
        after = {(r.problem, r.candidate): r for r in store.evaluations("k")}
    assert {k: r.result.status for k, r in after.items()} == EXPECTED
    assert all(after[k].created == created for k, created in before.items())  # not evaluated again
    ok = after[("tiny/relu_add", "tiny/relu_add")].result
    assert ok.speedup is not None and ok.candidate_ms > 0 and ok.versions.get("torch")
    assert ok.candidate_hash == content_hash((DATA / "candidates/tiny/relu_add.py").read_text())

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "0 evaluated, 4 already stored" in " ".join(again.stderr.split())


@pytest.mark.parametrize("args, message", [
    (["nope", "nope2"], "does not exist"),
    (["{p}", "{c}", "--baselines", "eager,turbo"], "--baselines"),
    (["{p}", "{c}", "--device", "tpu"], "unknown device"),
    (["{p}", "{c}", "--workers", "0"], "workers"),
    (["{p}", "{c}", "--executor", "mpi"], "expected local or ray"),
    (["{p}", "{c}", "--executor", "ray", "--workers", "2"], "apply to --executor local"),
    (["{p}", "{c}", "--executor", "ray", "--device", "cuda:1"], "Ray assigns the GPUs"),
    (["nope", "nope2", "--executor", "ray"], "does not exist"),
])
def test_bench_command_bad_input_exits_2_and_writes_nothing(tree, tmp_path, monkeypatch, args, message):
    from typer.testing import CliRunner

    from qimeng.cli import app

    monkeypatch.setenv("QIMENG_STORE", str(tmp_path / "q.db"))
    p, c = tree
    result = CliRunner().invoke(app, ["bench", *(a.format(p=p, c=c) for a in args), "--run", "x"])
    assert result.exit_code == 2 and message in " ".join(result.output.split())
    if (tmp_path / "q.db").exists():
        with Store(tmp_path / "q.db") as store:
            assert store.runs() == []


def test_bench_on_ray_without_ray_exits_2_with_the_install_command(tree, tmp_path, monkeypatch):
    import sys

    from typer.testing import CliRunner

    from qimeng.cli import app

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as where it is not installed
    monkeypatch.setenv("QIMENG_STORE", str(tmp_path / "q.db"))
    result = CliRunner().invoke(app, ["bench", *map(str, tree), "--executor", "ray"])
    assert result.exit_code == 2 and "pip install 'qimeng[ray]'" in " ".join(result.output.split())
    assert "Traceback" not in result.output


@pytest.mark.gpu
def test_bench_on_every_gpu_reuses_cached_baselines(tmp_path):
    """On CUDA: the problems spread over the visible GPUs; a second run times no baseline again."""
    import sqlite3

    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    options = EvalOptions(device="cuda", correctness_trials=2, timing_trials=20, baselines=("eager", "compile"))

    def compile_rows() -> set[tuple]:
        with sqlite3.connect(tmp_path / "q.db") as conn:
            return set(conn.execute("SELECT problem_hash, device, torch_version, ms, created FROM baselines "
                                    "WHERE mode = 'compile'"))

    with Store(tmp_path / "q.db") as store:
        run_bench(DATA / "problems", DATA / "candidates", run="g1", options=options, store=store, progress=False)
        first = {(r.problem, r.candidate): r.result for r in store.evaluations("g1")}
        assert {k: r.status for k, r in first.items()} == EXPECTED
        gpus = min(torch.cuda.device_count(), 3)  # three problems: at most three GPUs busy
        assert {r.device for r in first.values()} == {f"cuda:{i}" for i in range(gpus)}
        cached = compile_rows()
        assert len(cached) == 3  # one per problem (eager is the reference, timed in every run)

        run_bench(DATA / "problems", DATA / "candidates", run="g2", options=options, store=store, progress=False)
        second = {(r.problem, r.candidate): r.result for r in store.evaluations("g2")}
        assert compile_rows() == cached  # torch.compile not timed again
        for key, result in second.items():
            if result.correct:
                assert result.baselines_ms["compile"] == first[key].baselines_ms["compile"]


def test_bench_summary_names_flagged_samples_and_unlocked_timing(tree, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import qimeng.kernels.harness.evaluate as harness
    from qimeng.cli import app

    p, c = tree
    write(c / "fam/a.py", "# ok 40.0 speedup_over_10x,timing_unlocked\n")  # the only win is flagged
    monkeypatch.setenv("QIMENG_STORE", str(tmp_path / "q.db"))
    monkeypatch.setattr(harness, "evaluate_many", FakeEvaluate())
    result = CliRunner().invoke(app, ["bench", str(p), str(c), "--run", "flags"])
    text = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "fast_1(eager)=0.00" in text  # 40x counts in no score
    assert "1 flagged sample(s), correct but counted in no score: fam/a :: fam/a [speedup_over_10x, timing_unlocked]" in text
    assert "1 sample(s) timed without the GPU's lock" in text
