"""Semantics: training mode by default (batch norm's batch statistics and running-stat updates, dropout
under one generator seed), ``--mode eval``, the recorded backend flags, and ``--protocol kernelbench``."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from qimeng.cli import app
from qimeng.core.verdict import BadInput, Status
from qimeng.kernels.harness import kernelbench, timing
from qimeng.kernels.harness.evaluate import evaluate_many
from qimeng.kernels.harness.stats import mean
from qimeng.kernels.result import EvalOptions, protocol_options

DATA = Path(__file__).parent / "data"
QUICK = dict(timeout_s=60.0, timing_trials=3, warmup=1, correctness_trials=2)


def test_training_mode_batch_norm_needs_batch_statistics_and_running_stat_updates() -> None:
    same, running, no_update = evaluate_many(
        DATA / "problem_batchnorm_train.py",
        [DATA / "bn_same.py", DATA / "bn_running_stats.py", DATA / "bn_no_update.py"], EvalOptions(**QUICK))
    assert same.status is Status.OK, same.reason
    assert same.mode == "train" and same.protocol == "qimeng"
    assert running.status is Status.INCORRECT and "values differ" in running.reason
    assert no_update.status is Status.INCORRECT and "buffer `bn.running_mean`" in no_update.reason


def test_eval_mode_when_asked_accepts_running_statistics() -> None:
    [running] = evaluate_many(DATA / "problem_batchnorm_train.py", [DATA / "bn_running_stats.py"],
                              EvalOptions(mode="eval", **QUICK))
    assert running.status is Status.OK and running.mode == "eval", running.reason


def test_dropout_is_compared_under_one_generator_seed_and_flagged() -> None:
    same, own = evaluate_many(DATA / "problem_dropout.py", [DATA / "dropout_same.py", DATA / "dropout_own_mask.py"],
                              EvalOptions(**QUICK))
    assert same.status is Status.OK and "random_reference" in same.flags, same.reason
    assert own.status is Status.INCORRECT and "random_reference" in own.flags
    [in_eval] = evaluate_many(DATA / "problem_dropout.py", [DATA / "dropout_own_mask.py"],
                              EvalOptions(mode="eval", **QUICK))
    assert in_eval.status is Status.OK and "random_reference" not in in_eval.flags


def test_result_records_flags_and_memory() -> None:
    [result] = evaluate_many(DATA / "problem_dropout.py", [DATA / "dropout_same.py"], EvalOptions(**QUICK))
    assert result.backend_flags == {"cuda.matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32,
                                    "cudnn.allow_tf32": torch.backends.cudnn.allow_tf32,
                                    "cudnn.benchmark": torch.backends.cudnn.benchmark,
                                    "cudnn.deterministic": torch.backends.cudnn.deterministic,
                                    "float32_matmul_precision": torch.get_float32_matmul_precision()}
    assert result.peak_device_bytes is None and 50 * 2**20 < result.peak_rss_bytes < 4 * 2**30


def test_kernelbench_protocol_options() -> None:
    options = protocol_options("kernelbench", device="cpu", correctness_trials=None, timing_trials=None, mode=None)
    assert (options.correctness_trials, options.timing_trials, options.warmup) == (5, 100, 3)
    assert options.timing_budget_s is None and options.mode == "train" and options.protocol == "kernelbench"
    assert protocol_options("kernelbench", timing_trials=7).timing_trials == 7
    with pytest.raises(BadInput, match="training mode"):
        protocol_options("kernelbench", mode="eval")
    with pytest.raises(BadInput, match="unknown protocol"):
        protocol_options("tritonbench")
    with pytest.raises(BadInput, match="unknown mode"):
        protocol_options("qimeng", mode="inference")


def test_kernelbench_clock_times_one_call_with_autograd_as_asked() -> None:
    grad_seen: list[bool] = []

    def fn() -> str:
        grad_seen.append(torch.is_grad_enabled())
        time.sleep(0.013)
        return "out"

    ms, out = kernelbench.time_call(fn, "cpu", grad=False)
    assert ms >= 13.0 and out == "out"  # a sleep lasts at least its time
    assert mean([1.0, 1.0, 1.0, 13.0]) == 4.0  # the mean, as KernelBench reports (the median is 1)
    kernelbench.time_call(fn, "cpu", grad=True)
    assert grad_seen == [False, True]


def test_kernelbench_protocol_end_to_end_and_its_cli_refuses_eval_mode() -> None:
    options = protocol_options("kernelbench", correctness_trials=2, timing_trials=4, timeout_s=60.0)
    [result] = evaluate_many(DATA / "problem_batchnorm_train.py", [DATA / "bn_same.py"], options)
    assert result.status is Status.OK and result.protocol == "kernelbench" and result.timing_trials == 4
    assert result.ref_ms > 0 and result.candidate_ms > 0
    refused = CliRunner().invoke(app, ["eval", str(DATA / "problem_dropout.py"), str(DATA / "dropout_same.py"),
                                       "--protocol", "kernelbench", "--mode", "eval", "--no-store"])
    assert refused.exit_code == 2 and "training mode" in refused.output


def test_a_time_budget_ends_slow_timing_after_the_minimum_rounds() -> None:
    calls = []
    fns = {"a": lambda: (calls.append("a"), time.sleep(0.02)), "b": lambda: (calls.append("b"), time.sleep(0.02))}
    measured = timing.time_interleaved(fns, trials=100, warmup=10, device="cpu", budget_s=0.1)
    assert len(measured.trials_ms["a"]) == timing.MIN_BUDGET_TRIALS
    assert len(calls) < 2 * (10 + 10)  # the warm-up stopped early too
    unbounded = timing.time_interleaved(fns, trials=8, warmup=0, device="cpu")
    assert len(unbounded.trials_ms["a"]) == 8


def test_the_referee_ends_the_timed_rounds_on_the_budget_and_checks_the_last() -> None:
    """30 ms calls, a 0.3 s budget: the referee stops after at least MIN_BUDGET_ROUNDS rounds, far
    before the 100 asked (each round costs 30 ms or more, so the budget ends it by about the tenth)."""
    from qimeng.kernels.harness.referee import MIN_BUDGET_ROUNDS

    options = EvalOptions(timeout_s=60.0, correctness_trials=1, warmup=2, timing_trials=100, timing_budget_s=0.3,
                          small=True)
    [result] = evaluate_many(DATA.parent / "cheats" / "problem_scale_relu.py", [DATA / "relu_slow.py"], options)
    assert result.status is Status.OK, result.reason
    assert MIN_BUDGET_ROUNDS <= result.timing_trials <= 12
    assert result.candidate_ms >= 30.0  # each claimed call includes its sleep
