"""Throughput and scaling efficiency of bench runs, and whether their verdicts agree with a base run.

    python -m qimeng.kernels.bench.scaling STORE:RUN:GPUS [STORE:RUN:GPUS ...]

The first run is the base (typically one GPU). For each run: its problems, its wall time (from the run's
start in the store, once its executor is up, to its last stored result), problems per hour, the scaling efficiency (its throughput
over GPUS times the base's throughput per GPU) and the pairs whose status differs from the base's (or
that one of them lacks). Give each configuration a fresh store (or ``--baselines eager``): a later run
that finds the torch.compile baselines cached does less work than the first.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from qimeng.kernels.store import Store


@dataclass
class RunScale:
    run: str
    gpus: int
    problems: int
    pairs: int
    wall_s: float
    statuses: dict[tuple[str, str], str] = field(repr=False, default_factory=dict)

    @property
    def per_hour(self) -> float:
        return self.problems * 3600.0 / self.wall_s if self.wall_s > 0 else float("nan")


def measure(store: Store, run: str, gpus: int) -> RunScale:
    """One run's size and wall time, read from the store. ValueError when the run is not there."""
    info = next((r for r in store.runs() if r.name == run), None)
    if info is None:
        raise ValueError(f"run {run!r} is not in the store")
    records = store.evaluations(run)
    end = max((r.created for r in records), default=info.created)
    return RunScale(run, gpus, len({r.problem for r in records}), len(records), end - info.created,
                    {(r.problem, r.candidate): r.result.status.value for r in records})


def efficiency(run: RunScale, base: RunScale) -> float:
    """Throughput of ``run`` over ``run.gpus`` times the base's throughput per GPU."""
    return run.per_hour / (run.gpus * base.per_hour / base.gpus)


def disagreements(run: RunScale, base: RunScale) -> list[str]:
    """Pairs whose status differs from the base's, or that only one of the two runs has."""
    pairs = sorted(set(run.statuses) | set(base.statuses))
    return [f"{p} :: {c}: {base.statuses.get((p, c), 'missing')} -> {run.statuses.get((p, c), 'missing')}"
            for p, c in pairs if run.statuses.get((p, c)) != base.statuses.get((p, c))]


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    runs: list[RunScale] = []
    try:
        for spec in argv:
            path, run, gpus = spec.rsplit(":", 2)
            if not Path(path).is_file():
                raise ValueError(f"{path}: no such store")
            with Store(Path(path)) as store:
                runs.append(measure(store, run, int(gpus)))
    except ValueError as exc:
        print(f"error: {exc} (expected STORE:RUN:GPUS)", file=sys.stderr)
        return 2
    base = runs[0]
    print("run | GPUs | problems | pairs | wall s | problems/h | efficiency | verdicts differing from the base")
    for scale in runs:
        differ = disagreements(scale, base)
        print(f"{scale.run} | {scale.gpus} | {scale.problems} | {scale.pairs} | {scale.wall_s:.0f} | "
              f"{scale.per_hour:.1f} | {efficiency(scale, base):.2f} | {len(differ)}")
        for line in differ:
            print(f"    {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
