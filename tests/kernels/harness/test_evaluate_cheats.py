"""Planted cheating and faulty candidates: each must get its status on the CPU.

The candidates go through two ``evaluate_many`` calls (workers are shared until a candidate kills or
taints one), computed once per test session even under pytest-xdist (a lock file and a JSON cache).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from pathlib import Path

import pytest

from qimeng.core.isolation import probe
from qimeng.core.verdict import Status
from qimeng.kernels.harness.evaluate import evaluate_many
from qimeng.kernels.result import EvalOptions, EvalResult

CHEATS = Path(__file__).parent / "cheats"
PROBLEM = CHEATS / "problem_scale_relu.py"
ROWS_PROBLEM = CHEATS / "problem_rows_matmul.py"  # x @ w: the incremental cheat's target
SECRET = "sk-planted-secret-0123456789"

EXPECTED: dict[str, Status] = {
    "honest": Status.OK,
    "slow": Status.OK,
    "secrets_print": Status.OK,  # runs, but sees no secret
    "zeros": Status.INCORRECT,
    "cached": Status.INCORRECT,
    "cached_by_pointer": Status.INCORRECT,  # caches by buffer address: caught in trials or the timed loop
    "mutate_inputs": Status.INCORRECT,
    "uninitialised": Status.INCORRECT,
    "wrong_shape": Status.INCORRECT,
    "nan": Status.INCORRECT,
    "secrets_derived": Status.INCORRECT,
    "syntax_error": Status.COMPILE_ERROR,
    "missing_modelnew": Status.COMPILE_ERROR,
    "raises": Status.RUNTIME_ERROR,
    "patched_timer": Status.REJECTED,
    "patched_timer_late": Status.REJECTED,
    "patch_reference": Status.REJECTED,
    "deferred_thread": Status.REJECTED,
    "hang": Status.TIMEOUT,
    "segfault": Status.CRASHED,
    "os_exit": Status.CRASHED,
    # forgers that attack the verdict itself (the candidate controls its whole process)
    "forge_gc": Status.REJECTED,  # an `ok` result written on the channel found through gc
    "forge_ctypes": Status.REJECTED,  # fake instant timed rounds written through libc's write()
    "report_early": Status.REJECTED,  # claims an instant call, computes before answering: the outside clock
    "skip_unchecked": Status.INCORRECT,  # skips the work on the rounds it guesses unchecked
    "read_the_judge": Status.OK,  # tries the judge's and the harness's memory and descriptors, then computes
}
# Cheats whose outcome races with the harness, and the outcomes each may get: timers that lie on calls
# shorter than the rounds' clock resolves, caught by the verification bursts (or, on a loaded machine, by
# the rounds' clock already), and a forger whose fake answer may be read before or after its outputs exist.
RACING_CHEATS: dict[str, tuple[tuple[Status, str], ...]] = {
    # a fake answer in every pipe of /proc/self/fd at every call, pointing at the outputs file: taken before
    # the worker wrote the file (missing or stale: incorrect, at whichever call the race falls), or after
    # (then the honest answer is a line nobody asked for, or it answers a later command of another kind)
    "forge_proc_fd": ((Status.INCORRECT, ""),
                      (Status.REJECTED, "the candidate's worker wrote on its channel before it was asked"),
                      (Status.REJECTED, "was due")),
    # claims a fifth of each call: the bursts' clock refutes it, or at least does not verify it
    "timer_short": ((Status.REJECTED, "by the harness's clock"), (Status.OK, "")),
    # skips the burst, computes the calls asked for at export: not what it committed to
    "burst_late": ((Status.REJECTED, "not those the candidate's worker committed to"),
                   (Status.REJECTED, "by the harness's clock")),
    # skips most calls of each burst: a checked call is wrong
    "burst_skipper": ((Status.INCORRECT, "of a verification burst"), (Status.REJECTED, "by the harness's clock")),
}


# Two groups, so that two test processes can evaluate them at the same time. The second group holds
# candidates that each end their worker (so each needs a fresh one).
SECOND_GROUP = ("patched_timer_late", "patch_reference", "deferred_thread", "segfault", "os_exit", "forge_gc",
                "forge_ctypes", "report_early", "timer_short", "burst_late", "burst_skipper")  # last: leaves patches
# Candidates whose outcome depends on where the allocator puts things: checked in their own tests.
EITHER_WAY = ("steal_freed_output",)
GROUPS = {"first": [n for n in EXPECTED if n not in SECOND_GROUP] + list(EITHER_WAY) + ["forge_proc_fd"],
          "second": list(SECOND_GROUP)}


def _evaluate(names: list[str]) -> dict[str, EvalResult]:
    old = os.environ.get("FAKE_API_KEY")
    os.environ["FAKE_API_KEY"] = SECRET  # planted in the harness's environment; must not reach the worker
    try:
        results = evaluate_many(PROBLEM, [CHEATS / f"{n}.py" for n in names],
                                EvalOptions(small=True, timeout_s=5.0, timing_trials=30, warmup=3))
    finally:
        if old is None:
            del os.environ["FAKE_API_KEY"]
        else:
            os.environ["FAKE_API_KEY"] = old
    return dict(zip(names, results))


def _group_results(root: Path, group: str) -> dict[str, EvalResult]:
    """The results of one group, computed by the first test process that needs them."""
    cache = root / f"cheat_results_{group}.json"
    with open(root / f"cheat_results_{group}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if cache.exists():
            return {k: EvalResult.from_json(v) for k, v in json.loads(cache.read_text()).items()}
        found = _evaluate(GROUPS[group])
        cache.write_text(json.dumps({k: r.to_json() for k, r in found.items()}))
        return found


class _Results:
    def __init__(self, root: Path) -> None:
        self.root, self.loaded = root, {}

    def __getitem__(self, name: str) -> EvalResult:
        group = "second" if name in SECOND_GROUP else "first"
        if group not in self.loaded:
            self.loaded[group] = _group_results(self.root, group)
        return self.loaded[group][name]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> _Results:
    """Every planted candidate's result, shared by all test processes of this session."""
    root = tmp_path_factory.getbasetemp()
    return _Results(root if worker_id == "master" else root.parent)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_planted_candidate_gets_its_status(results: _Results, name: str) -> None:
    result = results[name]
    assert result.status is EXPECTED[name], f"{name}: {result.status.value}: {result.reason}"
    assert result.correct == (EXPECTED[name] is Status.OK)


@pytest.mark.parametrize("name, words", [
    ("forge_gc", "answered 'result' where 'outputs' was due"),
    ("forge_ctypes", "answered 'round' where 'warm' was due"),
    ("report_early", "by the harness's clock its rounds took"),
    ("skip_unchecked", "in timed round"),
    ("zeros", "values differ"),
    ("cached", "values differ"),
    ("mutate_inputs", "modified its input 0"),
    ("wrong_shape", "shape (31, 32), reference (32, 32)"),
    ("nan", "NaN pattern differs"),
    ("syntax_error", "syntax error at line"),
    ("missing_modelnew", "ModelNew"),
    ("raises", "RuntimeError: boom"),
    ("patched_timer", "time.perf_counter_ns"),
    ("patched_timer_late", "time.perf_counter_ns"),
    ("patch_reference", "Model.forward"),
    ("deferred_thread", "thread"),
    ("hang", "no result within 5 s"),
    ("segfault", "SIGSEGV"),
])
def test_reason_names_the_failed_check(results: _Results, name: str, words: str) -> None:
    assert words in results[name].reason


def test_mismatch_reason_gives_first_index_and_values(results: _Results) -> None:
    assert "first at index [3, 5]: candidate nan" in results["nan"].reason


def test_honest_candidate_is_timed(results: _Results) -> None:
    honest = results["honest"]
    assert honest.speedup is not None and honest.ref_ms > 0 and honest.candidate_ms > 0
    assert honest.speedup == pytest.approx(honest.ref_ms / honest.candidate_ms)
    assert honest.trials == 6 and honest.timing_trials == 30  # 5 trials + the re-check after timing
    assert honest.baselines_ms["eager"] == honest.ref_ms
    assert honest.ops_called == ["aten.add", "aten.clamp_min", "aten.mul"]
    # a call of a few microseconds is below what the harness's clock resolves on a loaded CPU
    assert set(honest.flags) <= {"timing_unverified"} and honest.atol == 1e-4 and honest.rtol == 1e-4


def test_correct_but_slow_candidate_has_speedup_below_one(results: _Results) -> None:
    assert results["slow"].speedup < 1


def test_failed_candidates_are_not_timed(results: _Results) -> None:
    for name, status in EXPECTED.items():
        if status is not Status.OK:
            assert results[name].speedup is None and results[name].candidate_ms is None, name


def test_empty_buffers_in_the_timed_loop_gain_nothing(results: _Results) -> None:
    # Before each timed round freed memory is poisoned, so this candidate either computes honestly (and
    # is no faster than the honest one) or returns garbage that a checked round catches.
    result = results["steal_freed_output"]
    if result.status is Status.OK:
        # A cheat that got away would return empty_like instead of computing: several times faster.
        # 1.5 leaves room for timing noise of tiny CPU shapes on a loaded 2-core machine.
        assert result.speedup < 1.5, result
    else:
        # caught by a timed round's check, a verification burst's or the re-check with new inputs after
        # timing, depending on which block the allocator hands out
        assert result.status is Status.INCORRECT
        assert any(where in result.reason for where in ("in timed round", "(after timing)", "verification burst")), \
            result.reason


@pytest.mark.parametrize("name", list(RACING_CHEATS))
def test_a_racing_cheat_gets_one_of_its_outcomes_never_a_clean_result(results: _Results, name: str) -> None:
    result = results[name]
    assert any(result.status is status and words in result.reason for status, words in RACING_CHEATS[name]), result
    assert not result.clean


def test_secret_never_reaches_the_candidate(results: _Results) -> None:
    log = results["secrets_print"].log
    assert "ENV:" in log and "PATH" in log  # the candidate did print its environment
    assert SECRET not in log and "FAKE_API_KEY" not in log


@pytest.mark.parametrize("name", ["forge_gc", "forge_proc_fd", "forge_ctypes", "report_early", "skip_unchecked",
                                  "burst_late", "burst_skipper"])
def test_a_forger_never_gets_ok_with_a_speedup_it_does_not_have(results: _Results, name: str) -> None:
    result = results[name]
    assert not result.correct or (result.speedup is not None and result.speedup < 1.5), result


def test_the_candidate_cannot_reach_into_the_judge_or_the_harness(results: _Results) -> None:
    log = results["read_the_judge"].log
    isolated = probe().mode == "bwrap"  # in its own PID namespace the judge is not even to be seen
    for target in ("harness", "judge"):
        for what in ("mem", "fd"):
            assert f"PROBE {target} {what}: denied" in log or (isolated and target == "judge"
                                                               and f"PROBE {target}" not in log), log
    assert "opened" not in log


@pytest.fixture(scope="module")
def incremental() -> EvalResult:
    """burst_incremental's result: it patches its last output in bursts wherever few input rows changed."""
    [result] = evaluate_many(ROWS_PROBLEM, [CHEATS / "burst_incremental.py"],
                             EvalOptions(timeout_s=30.0, timing_trials=30, warmup=3))
    return result


def test_a_burst_leaves_a_candidate_no_rows_of_its_last_output_to_reuse(incremental: EvalResult) -> None:
    # the cheat's own count, printed by each call outside the bursts (the last one after them)
    counts = re.findall(r"INCREMENTAL patched (\d+) of (\d+)", incremental.log)
    assert counts, incremental
    patched, calls = map(int, counts[-1])
    if calls == 0:  # no burst ran: the rounds' clock alone refuted the lie, or (the reference's rounds
        # slowed by a loaded host, so bursts sized from them could resolve nothing) the timing is unverified
        refuted = incremental.status is Status.REJECTED and "by the harness's clock" in incremental.reason
        unresolvable = "timing_unverified" in incremental.flags and "cannot resolve a claim" in incremental.reason
        assert refuted or unresolvable, incremental
    assert patched == 0, f"{patched} of {calls} burst calls patched from the call before"


def test_an_incremental_burst_cheat_never_gets_a_clean_forged_speedup(incremental: EvalResult) -> None:
    result = incremental
    assert result.status in (Status.OK, Status.REJECTED), result
    assert not result.clean or result.speedup < 1.5, result  # its true speed-up is 1: the reference's product
