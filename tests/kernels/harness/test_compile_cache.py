"""The judges' shared torch.compile cache and the compile ahead of the evaluations (harness/compile_cache.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from qimeng.core.verdict import Status
from qimeng.kernels.harness.compile_cache import BaselineWarmer, judge_cache, judge_environment
from qimeng.kernels.harness.evaluate import evaluate
from qimeng.kernels.result import EvalOptions
from qimeng.settings import Settings

PROBLEM = Path(__file__).parent / "cheats" / "problem_scale_relu.py"
COMPILED = EvalOptions(small=True, timeout_s=120.0, correctness_trials=1, timing_trials=5, warmup=1,
                       baselines=("eager", "compile"))

# prints where its own process keeps torch.compile's and Triton's caches, then computes honestly
ENV_PRINTER = ('import os\nprint("CACHES", os.environ.get("TORCHINDUCTOR_CACHE_DIR"), os.environ.get("TRITON_CACHE_DIR"), '
               'flush=True)\n' + (PROBLEM.parent / "honest.py").read_text())


def _settings(cache: Path | None) -> Settings:
    return dataclasses.replace(Settings.from_env(), compile_cache_dir=cache)


def test_a_judge_gets_the_shared_caches_and_none_when_they_are_off(tmp_path: Path) -> None:
    cache = judge_cache(_settings(tmp_path / "cc"))
    assert cache.env == {"TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "cc" / "inductor"),
                         "TRITON_CACHE_DIR": str(tmp_path / "cc" / "triton")}
    assert cache.writable == (tmp_path / "cc",) and (tmp_path / "cc" / "triton").is_dir()
    assert judge_cache(_settings(None)).env == {}
    (tmp_path / "file").write_text("")
    assert judge_cache(_settings(tmp_path / "file" / "cc")).env == {}  # cannot be made: private caches
    env, writable = judge_environment(_settings(None), "cpu")
    assert env == {} and writable == ()


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("QIMENG_WORK_DIR", str(tmp_path))
    monkeypatch.delenv("QIMENG_COMPILE_CACHE", raising=False)
    assert Settings.from_env().compile_cache_dir == tmp_path / "compile-cache"
    monkeypatch.setenv("QIMENG_COMPILE_CACHE", "none")
    assert Settings.from_env().compile_cache_dir is None
    monkeypatch.setenv("QIMENG_COMPILE_CACHE", str(tmp_path / "elsewhere"))
    assert Settings.from_env().compile_cache_dir == tmp_path / "elsewhere"


def test_nothing_is_compiled_ahead_without_a_baseline_or_a_cache(tmp_path: Path) -> None:
    eager_only = BaselineWarmer(PROBLEM, dataclasses.replace(COMPILED, baselines=("eager",)), _settings(tmp_path))
    assert not eager_only.compiling and "not compiled ahead" in eager_only.wait()
    off = BaselineWarmer(PROBLEM, COMPILED, _settings(None))
    assert not off.compiling and "QIMENG_COMPILE_CACHE=none" in off.wait()


def test_a_baseline_compiled_by_a_judge_is_read_back_by_the_next_and_no_worker_shares_the_cache(
        tmp_path: Path) -> None:
    cache = tmp_path / "cc"
    settings = _settings(cache)
    result = evaluate(PROBLEM, ENV_PRINTER, COMPILED, settings=settings)
    assert result.status is Status.OK and "compile" in result.baselines_ms, result
    assert any((cache / "inductor").rglob("*.py")), "the judge compiled into a cache of its own"
    printed = next(line for line in result.log.splitlines() if line.startswith("CACHES"))
    assert str(cache) not in printed, printed  # the candidate's worker keeps caches of its own
    again = BaselineWarmer(PROBLEM, COMPILED, settings).wait()
    assert "compiled ahead: compile in" in again and "read back from the cache" in again, again
