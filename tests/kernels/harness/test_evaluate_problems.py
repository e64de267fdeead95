"""evaluate_problems: one candidate on one problem at several sizes, with the judge and the candidate's
worker pointed at each next problem in place. Process launches are counted (a counting ``Job``); the
verdicts are checked against sizes chosen by hand where the candidate is wrong or crashes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

import qimeng.kernels.harness.evaluate as evaluate_module
from qimeng.core.command_job import Job
from qimeng.core.verdict import BadInput, Status
from qimeng.kernels.harness.evaluate import _loads_in_place, evaluate_problems
from qimeng.kernels.result import EvalOptions

CHEATS = Path(__file__).parent / "cheats"
QUICK = EvalOptions(small=True, timeout_s=30.0, timing_trials=10, warmup=2)
UNTIMED = replace(QUICK, time_candidate=False)
SIZES = (16, 24, 40)

# relu(x * scale + y), except at one size: without the relu (wrong), or the process ends (a crash)
CANDIDATE = '''
import os
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x, y):
        if x.shape[0] == 24:
            {at_24}
        return (x * self.scale + y).clamp_min(0)
'''
WRONG_AT_24 = CANDIDATE.format(at_24="return x * self.scale + y")
CRASH_AT_24 = CANDIDATE.format(at_24="os._exit(3)")


def _problems(tmp_path: Path) -> list[Path]:
    """problem_scale_relu.py at each of SIZES (its SMALL size set to it)."""
    source = (CHEATS / "problem_scale_relu.py").read_text()
    paths = []
    for n in SIZES:
        path = tmp_path / f"scale_relu_{n}.py"
        path.write_text(source.replace('SMALL = {"N": 32}', f'SMALL = {{"N": {n}}}'))
        paths.append(path)
    return paths


@pytest.fixture
def launches(monkeypatch) -> list[str]:
    """The module of every sandboxed process the harness starts."""
    started: list[str] = []

    class Counted(Job):
        def __init__(self, module: str, *args, **kwargs) -> None:
            started.append(module)
            super().__init__(module, *args, **kwargs)

    monkeypatch.setattr(evaluate_module, "Job", Counted)
    return started


def test_one_judge_and_one_worker_serve_every_size(tmp_path, launches) -> None:
    results = evaluate_problems(_problems(tmp_path), WRONG_AT_24, [QUICK, UNTIMED, UNTIMED])
    assert [r.status for r in results] == [Status.OK, Status.INCORRECT, Status.OK], [r.reason for r in results]
    assert sorted(launches) == sorted([evaluate_module.JUDGE_MODULE, evaluate_module.WORKER_MODULE])
    assert results[0].candidate_ms is not None and results[2].candidate_ms is None  # only the first is timed
    assert len({r.problem_hash for r in results}) == 3


def test_a_crash_at_one_size_is_a_result_and_a_fresh_worker_takes_the_next(tmp_path, launches) -> None:
    results = evaluate_problems(_problems(tmp_path), CRASH_AT_24, [UNTIMED] * 3)
    assert [r.status for r in results] == [Status.OK, Status.CRASHED, Status.OK], [r.reason for r in results]
    assert launches.count(evaluate_module.WORKER_MODULE) == 2 and launches.count(evaluate_module.JUDGE_MODULE) == 1


def test_options_that_the_processes_read_start_them_afresh(tmp_path, launches) -> None:
    first, second = _problems(tmp_path)[:2]
    results = evaluate_problems([first, second], WRONG_AT_24, [UNTIMED, replace(UNTIMED, correctness_trials=2)])
    assert [r.status for r in results] == [Status.OK, Status.INCORRECT]
    assert len(launches) == 4


def test_a_problem_that_fails_to_load_in_place_is_bad_input(tmp_path, launches) -> None:
    with pytest.raises(BadInput) as info:
        evaluate_problems([_problems(tmp_path)[0], CHEATS / "bad_ctor_raises.py"], WRONG_AT_24, [UNTIMED] * 2)
    assert str(CHEATS / "bad_ctor_raises.py") in str(info.value) and "width 3 is not supported" in str(info.value)
    assert len(launches) == 2


def test_a_judge_loads_another_problem_in_place_on_the_cpu_only():
    assert _loads_in_place(UNTIMED)  # the CPU options of this file's checks
    assert not _loads_in_place(replace(UNTIMED, device="cuda:0"))
