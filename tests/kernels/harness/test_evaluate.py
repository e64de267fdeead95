"""evaluate / evaluate_many / `qimeng eval`: bad problems, degenerate references, Triton candidates,
the baseline cache, exit statuses. (Planted cheats: test_evaluate_cheats.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qimeng.cli import app
from qimeng.core.verdict import BadInput, Status
from qimeng.kernels.harness.baselines import device_name, torch_version
from qimeng.kernels.harness.evaluate import evaluate, evaluate_many
from qimeng.kernels.harness.problem import problem_hash
from qimeng.kernels.result import EvalOptions

CHEATS = Path(__file__).parent / "cheats"
PROBLEM = CHEATS / "problem_scale_relu.py"
QUICK = EvalOptions(small=True, timeout_s=30.0, timing_trials=10, warmup=2)


@pytest.mark.parametrize("problem, cause", [
    ("bad_syntax.py", "syntax error at line 3"),
    ("bad_no_model.py", "defines no `Model`"),
    ("bad_no_get_inputs.py", "defines no `get_inputs`"),
    ("bad_ctor_raises.py", "Model(*get_init_inputs()) raised ValueError: width 3 is not supported"),
    ("bad_inputs_not_tensors.py", "get_inputs()[0] is a ndarray, not a tensor"),
])
def test_malformed_problem_is_bad_input_naming_file_and_cause(problem: str, cause: str) -> None:
    with pytest.raises(BadInput) as info:
        evaluate(CHEATS / problem, CHEATS / "honest.py", QUICK)
    assert str(CHEATS / problem) in str(info.value) and cause in str(info.value)


def test_unreadable_candidate_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="cannot read the candidate"):
        evaluate(PROBLEM, tmp_path / "missing.py", QUICK)


class FakeStore:
    """The two Store methods the harness uses for baselines."""

    def __init__(self, cached: dict[str, float]) -> None:
        self.cached, self.put = cached, {}

    def baseline_ms(self, problem_hash, device, torch_version, mode):
        return self.cached.get(mode)

    def put_baseline(self, problem_hash, device, torch_version, mode, ms):
        self.put[mode] = (problem_hash, device, torch_version, ms)


def test_degenerate_reference_is_flagged_and_baselines_come_from_the_store() -> None:
    store = FakeStore({"compile": 0.5})  # cached: no torch.compile runs in the worker
    source = (CHEATS / "problem_constant.py").read_text().replace("class Model(", "class ModelNew(")
    options = EvalOptions(timeout_s=30.0, timing_trials=10, warmup=2, baselines=("eager", "compile"))
    result = evaluate(CHEATS / "problem_constant.py", source, options, store=store)  # source text
    assert result.status is Status.OK
    assert "degenerate_reference" in result.flags and "same output for every input seed" in result.reason
    assert result.baselines_ms["compile"] == 0.5 and result.baselines_ms["eager"] == result.ref_ms
    assert result.baselines_from == {"eager": "rounds", "compile": "store"}
    phash, device, torch_version, ms = store.put["eager"]
    assert phash == problem_hash(CHEATS / "problem_constant.py") and ms == result.ref_ms
    assert device.startswith("cpu") and torch_version.startswith("2.")
    assert "compile" not in store.put  # already cached


def test_a_reordered_sum_passes_against_float64_and_lower_precision_does_not() -> None:
    reordered, bf16 = evaluate_many(CHEATS / "problem_long_cumsum.py",
                                  [CHEATS / "reordered_cumsum.py", CHEATS / "bf16_cumsum.py"],
                                  EvalOptions(timeout_s=60.0, timing_trials=3, warmup=1, correctness_trials=2))
    assert reordered.status is Status.OK and "within_reference_error" in reordered.flags, reordered.reason
    assert bf16.status is Status.INCORRECT and "also against the float64 reference" in bf16.reason


def test_a_buffer_updated_more_accurately_than_the_reference_passes_against_float64() -> None:
    """Running statistics get the outputs' second look: a buffer summed in another order than the
    reference's (closer to the float64 twin's) is correct, flagged; one summed in bf16 is not."""
    reordered, bf16 = evaluate_many(CHEATS / "problem_cumsum_buffer.py",
                                  [CHEATS / "reordered_cumsum_buffer.py", CHEATS / "bf16_cumsum_buffer.py"],
                                  EvalOptions(timeout_s=60.0, timing_trials=3, warmup=1, correctness_trials=2))
    assert reordered.status is Status.OK and "within_reference_error" in reordered.flags, reordered.reason
    assert bf16.status is Status.INCORRECT and "buffer `running`" in bf16.reason, bf16.reason


def test_triton_candidate_under_the_interpreter_is_correct_but_not_meaningfully_timed(monkeypatch) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    results = evaluate_many(PROBLEM, [CHEATS / "triton_honest.py", CHEATS / "zeros.py"],
                            EvalOptions(small=True, timeout_s=60.0, timing_trials=3, warmup=1))
    triton_result, zeros_result = results
    assert triton_result.status is Status.OK, triton_result.reason
    assert not triton_result.timing_meaningful and "timing_not_meaningful" in triton_result.flags
    assert "aten.mul" not in triton_result.ops_called  # the arithmetic is in the kernel, not in ATen
    assert zeros_result.status is Status.INCORRECT


def test_a_budget_is_asked_before_each_candidate_but_the_first_after_the_start_up() -> None:
    """``stop`` is asked before the start-up and before every candidate but the first: the start-up's waits
    and baselines reach the caller only with the first result, and its cost is paid already."""
    answers = iter([False, True, True])
    asked = []

    def stop() -> bool:
        asked.append(1)
        return next(answers)

    results = evaluate_many(PROBLEM, [CHEATS / "honest.py", CHEATS / "honest.py", CHEATS / "zeros.py"], QUICK, stop=stop)
    assert [r.status for r in results] == [Status.OK] and len(asked) == 2
    assert evaluate_many(PROBLEM, [CHEATS / "honest.py"], QUICK, stop=lambda: True) == []


def _cli(*args: str, store: bool = False) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["eval", *args] + ([] if store else ["--no-store"]))
    return result.exit_code, result.output


def test_cli_json_ok_exits_zero_and_records_the_result(tmp_path: Path, monkeypatch) -> None:
    from qimeng.kernels.store import Store

    monkeypatch.setenv("QIMENG_STORE", str(tmp_path / "q.db"))
    result = CliRunner().invoke(app, ["eval", str(PROBLEM), str(CHEATS / "honest.py"), "--small", "--json",
                                      "--timing-trials", "10"])
    code, output = result.exit_code, result.stdout  # progress goes to stderr
    data = json.loads(output)
    assert code == 0, output
    for key in ("status", "correct", "reason", "ref_ms", "candidate_ms", "speedup", "compile_ms", "trials",
                "device", "flags"):
        assert key in data
    assert data["status"] == "ok" and data["correct"] is True and data["speedup"] > 0
    with Store(tmp_path / "q.db") as store:
        [record] = store.evaluations("eval")
        assert record.result.status is Status.OK and record.result.candidate_hash == data["candidate_hash"]
        eager = store.baseline_ms(data["problem_hash"], device_name("cpu"), torch_version(), "eager")
        assert eager == data["ref_ms"]  # the eager baseline is cached per problem, device and torch version


def test_cli_incorrect_exits_one_with_a_summary() -> None:
    code, output = _cli(str(PROBLEM), str(CHEATS / "zeros.py"), "--small", "--atol", "0.5", "--rtol", "0")
    assert code == 1
    assert "incorrect" in output and "atol=0.5" in output
    assert "train, qimeng" in output and "host RSS" in output


def test_cli_bad_problem_exits_two_naming_the_file() -> None:
    code, output = _cli(str(CHEATS / "bad_syntax.py"), str(CHEATS / "honest.py"))
    assert code == 2 and "bad_syntax.py" in output and "syntax error" in output


def test_cli_unknown_device_exits_two() -> None:
    code, output = _cli(str(PROBLEM), str(CHEATS / "honest.py"), "--device", "gpu")
    assert code == 2 and "unknown device 'gpu'" in output


def test_cli_unknown_baseline_exits_two() -> None:
    code, output = _cli(str(PROBLEM), str(CHEATS / "honest.py"), "--baselines", "fastest")
    assert code == 2 and "unknown baseline 'fastest'" in output


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda_available(), reason="needs a CUDA GPU")
def test_triton_candidate_on_cuda_is_ok_and_runs_its_own_kernel() -> None:
    result = evaluate(PROBLEM, CHEATS / "triton_honest.py", EvalOptions(device="cuda", timeout_s=120.0))
    assert result.status is Status.OK, result.reason
    assert result.timing_meaningful and result.speedup is not None
    assert result.own_kernel_share is not None and result.own_kernel_share > 0.5
    assert result.versions.get("gpu")


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda_available(), reason="needs a CUDA GPU")
def test_the_trusted_path_on_cuda_keeps_honest_speed_and_stops_forgers() -> None:
    names = ["triton_honest", "forge_gc", "report_early", "skip_unchecked", "honest"]
    results = evaluate_many(PROBLEM, [CHEATS / f"{n}.py" for n in names],
                            EvalOptions(device="cuda", timeout_s=120.0, timing_trials=50))
    by_name = dict(zip(names, results))
    for name in ("triton_honest", "honest"):
        assert by_name[name].status is Status.OK and by_name[name].speedup is not None, by_name[name].reason
        assert "timing_unlocked" not in by_name[name].flags
    for name in ("forge_gc", "report_early", "skip_unchecked"):
        assert by_name[name].status is not Status.OK, name
