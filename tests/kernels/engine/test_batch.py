"""Batch ``qimeng optimize DIR --out OUTDIR``: every problem optimised once into OUTDIR/<name>/, resumable;
under a remote executor the outputs and store writes come back to the driver; a lost worker is crashed."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from qimeng.core.executor import Event, WorkerLost
from qimeng.core.verdict import BadInput, Status
from qimeng.kernels.engine.batch import BatchOptions, optimize_dir
from qimeng.kernels.store import Store

DATA = Path(__file__).parents[1] / "bench" / "data" / "problems" / "tiny"


@dataclass
class FakeResult:
    """Some of OptimizeResult's fields (without importing the engine, and torch, in Ray's workers)."""

    out_dir: Path
    status: str
    speedup: float


def fake_optimize(problem: Path, out: Path, *, device, budget_s, precision, small, store, sharing,
                  log) -> FakeResult:
    """Writes the problem's text as model_new.py; 'bad' problems are malformed; records one tuning."""
    if "bad" in problem.name:
        raise BadInput(f"{problem}: no get_inputs()")
    (out / "model_new.py").write_text(problem.read_text())
    (out / "report.md").write_text(f"# {problem.name} on {device}\n")
    log("done")
    if store is not None:
        store.put_tuning(problem.stem, device, {"BLOCK": 64}, 0.5)
    return FakeResult(out, "optimized", 2.0)


class InProcessRemote:
    """Runs jobs here as a remote executor is asked to (bytes shipped, outputs and writes sent back); the
    problems named in ``lose`` end as a lost worker."""

    remote, workers = True, 1

    def __init__(self, lose: tuple[str, ...] = ()) -> None:
        self.lose = lose

    def stream(self, fn, items, rest=None):
        for item in items:
            if item.name in self.lose:
                yield Event(item, "cuda:0", done=True, error=WorkerLost("the Ray worker died 3 times (OOM)"))
                continue
            assert item.source is not None  # the job gets the file's bytes, not only a path of this machine
            values: list = []
            try:
                fn(item, "cuda:0", values.append)
                error = None
            except BadInput as exc:
                error = exc
            yield from (Event(item, "cuda:0", value=v) for v in values)
            yield Event(item, "cuda:0", done=True, error=error)


def problems(tmp_path: Path, *names: str) -> Path:
    root = tmp_path / "problems"
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"# {name}\n")
    return root


def test_remote_batch_writes_outputs_and_store_at_the_driver_and_resumes(tmp_path):
    root = problems(tmp_path, "a.py", "fam/b.py", "fam/bad.py", "lost.py")
    out = tmp_path / "out"
    options = BatchOptions(device="cuda", budget_s=5)
    with Store(tmp_path / "q.db") as store:
        summary = optimize_dir(root, out, options, store=store, executor=InProcessRemote(lose=("lost",)),
                               progress=False, optimize=fake_optimize)
        assert store.tuning("b", "cuda:0") is not None  # the job's write, made by the driver
    assert (summary.total, summary.skipped, summary.optimized) == (4, 0, 3)
    assert summary.statuses == {"optimized": 2, "crashed": 1} and list(summary.bad_problems) == ["fam/bad"]
    assert (out / "fam/b/model_new.py").read_text() == "# fam/b.py\n"
    assert (out / "fam/b/optimize.log").read_text() == "done\n"
    done = json.loads((out / "fam/b/result.json").read_text())
    assert done["status"] == "optimized" and done["speedup"] == 2.0 and done["out_dir"] == str(out / "fam/b")
    lost = json.loads((out / "lost/result.json").read_text())
    assert lost["status"] == "crashed" and "died 3 times" in lost["reason"]
    assert not (out / "fam/bad/result.json").exists()

    (root / "a.py").write_text("# a, changed\n")
    again = optimize_dir(root, out, options, store=None, executor=InProcessRemote(), progress=False,
                         optimize=fake_optimize)
    assert (again.skipped, again.optimized) == (2, 1)  # a changed; bad never finished; b and lost are done
    assert (out / "a/model_new.py").read_text() == "# a, changed\n"
    other = optimize_dir(root, out, BatchOptions(device="cuda", budget_s=9), store=None, executor=InProcessRemote(),
                         progress=False, optimize=fake_optimize)
    assert other.skipped == 0  # other options: every problem again


def test_bad_directories_are_bad_input(tmp_path):
    with pytest.raises(BadInput, match="does not exist"):
        optimize_dir(tmp_path / "nope", tmp_path / "out", BatchOptions(), store=None, progress=False)
    with pytest.raises(BadInput, match="no problem files"):
        optimize_dir(tmp_path, tmp_path / "out", BatchOptions(), store=None, progress=False)


@pytest.mark.parametrize("args, message", [
    (["{p}", "--executor", "ray", "--workers", "2"], "apply to --executor local"),
    (["{p}/a.py", "--executor", "ray"], "apply to a directory"),
    (["{p}/../empty", "--device", "cpu"], "no problem files"),
    (["{p}", "--precision", "fp8", "--device", "cpu"], "--precision"),
])
def test_cli_bad_input_exits_2(tmp_path, monkeypatch, args, message):
    from typer.testing import CliRunner

    from qimeng.cli import app

    monkeypatch.setenv("QIMENG_STORE", str(tmp_path / "q.db"))
    root = problems(tmp_path, "a.py")
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(app, ["optimize", *(a.format(p=root) for a in args), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and message in " ".join(result.output.split())
    assert not (tmp_path / "o").exists()


def test_cli_ray_without_ray_exits_2_with_the_install_command(tmp_path, monkeypatch):
    import sys

    from typer.testing import CliRunner

    from qimeng.cli import app

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as where it is not installed
    root = problems(tmp_path, "a.py")
    result = CliRunner().invoke(app, ["optimize", str(root), "--out", str(tmp_path / "o"), "--executor", "ray"])
    assert result.exit_code == 2 and "pip install 'qimeng[ray]'" in " ".join(result.output.split())


def test_batch_on_a_local_ray_cluster(tmp_path):
    """The real Ray executor (two CPUs): the job pickles without the driver's store, the problems' bytes
    reach the tasks, and their outputs and store writes come back."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'qimeng[ray]')")
    import sys

    from qimeng.core.ray_executor import RayExecutor

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # fake_optimize runs in Ray's workers
    try:
        executor = RayExecutor("cpu", "local", retries=0, num_cpus=2)
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"Ray cannot start here: {exc}")
    root = problems(tmp_path, "a.py", "fam/b.py")
    try:
        with Store(tmp_path / "q.db") as store:
            summary = optimize_dir(root, tmp_path / "out", BatchOptions(device="cpu"), store=store,
                                   executor=executor, progress=False, optimize=fake_optimize)
            assert store.tuning("b", "cpu") is not None and store.tuning("a", "cpu") is not None
    finally:
        ray.shutdown()
    assert summary.statuses == {"optimized": 2}
    assert (tmp_path / "out/fam/b/model_new.py").read_text() == "# fam/b.py\n"
    assert (tmp_path / "out/a/report.md").read_text() == "# a.py on cpu\n"


@pytest.mark.slow
def test_local_batch_on_two_cpu_slots_end_to_end(tmp_path):
    """The real engine on two tiny problems at once (their captures must not collide); the harness then
    checks a written model_new.py on its own."""
    from qimeng.kernels.harness.evaluate import evaluate
    from qimeng.kernels.result import EvalOptions

    root = tmp_path / "problems"
    root.mkdir()
    for name in ("relu_add.py", "row_softmax.py"):
        shutil.copy(DATA / name, root / name)
    out = tmp_path / "out"
    with Store(tmp_path / "q.db") as store:
        summary = optimize_dir(root, out, BatchOptions(device="cpu", budget_s=60), store=store, workers=2,
                               progress=False)
        assert (summary.optimized, summary.errors, summary.bad_problems) == (2, {}, {})
        stepped = {row[0] for row in store._conn.execute("SELECT problem_hash FROM steps")}
        assert len(stepped) == 2  # both problems' trajectories are in the store
    for name in ("relu_add", "row_softmax"):
        assert json.loads((out / name / "result.json").read_text())["status"] == "optimized"
    check = evaluate(root / "row_softmax.py", out / "row_softmax" / "model_new.py",
                     EvalOptions(device="cpu", small=True, correctness_trials=2, timing_trials=0, baselines=("eager",)))
    assert check.status is Status.OK, check.reason
    assert "@triton.jit" in (out / "row_softmax" / "model_new.py").read_text()
    again = optimize_dir(root, out, BatchOptions(device="cpu", budget_s=60), store=None, workers=2, progress=False)
    assert (again.skipped, again.optimized) == (2, 0)
