"""Throughput, scaling efficiency and verdict agreement of bench runs, against hand-computed figures."""

from __future__ import annotations

from qimeng.core.verdict import Status
from qimeng.kernels.bench import scaling
from qimeng.kernels.result import EvalResult
from qimeng.kernels.store import Store


def make_run(store: Store, monkeypatch, run: str, start: float, finished: list[tuple[str, float, Status]]) -> None:
    """A run started at ``start`` whose pairs (problem p, candidate p) were stored at the given times."""
    import qimeng.kernels.store as store_module

    monkeypatch.setattr(store_module.time, "time", lambda: start)
    store.put_run(run, {})
    for problem, at, status in finished:
        monkeypatch.setattr(store_module.time, "time", lambda at=at: at)
        store.record_eval(run, problem, problem, EvalResult(status=status))


def test_throughput_efficiency_and_disagreements(tmp_path, monkeypatch, capsys):
    ok, bad = Status.OK, Status.INCORRECT
    with Store(tmp_path / "q.db") as store:
        make_run(store, monkeypatch, "one", 1000.0, [("a", 1100, ok), ("b", 1200, ok), ("c", 1300, bad),
                                                     ("d", 1400, ok)])
        make_run(store, monkeypatch, "two", 5000.0, [("a", 5100, ok), ("b", 5120, ok), ("c", 5200, ok),
                                                     ("d", 5250, ok)])
        one, two = scaling.measure(store, "one", 1), scaling.measure(store, "two", 2)
    monkeypatch.undo()
    assert (one.problems, one.wall_s, one.per_hour) == (4, 400.0, 36.0)  # 4 problems in 400 s
    assert (two.wall_s, two.per_hour) == (250.0, 57.6)  # 4 in 250 s
    assert abs(scaling.efficiency(two, one) - 0.8) < 1e-12  # 57.6 / (2 * 36)
    assert scaling.disagreements(two, one) == ["c :: c: incorrect -> ok"]

    db = str(tmp_path / "q.db")
    assert scaling.main([f"{db}:one:1", f"{db}:two:2"]) == 0
    out = capsys.readouterr().out
    assert "two | 2 | 4 | 4 | 250 | 57.6 | 0.80 | 1" in out and "c :: c: incorrect -> ok" in out
    assert scaling.main([f"{db}:three:1"]) == 2 and "not in the store" in capsys.readouterr().err
