"""Unit tests of the harness's pure parts: comparisons, tamper detection, timing statistics, roofline."""

from __future__ import annotations

import time

import pytest
import torch

from qimeng.kernels.harness import checks, roofline
from qimeng.kernels.harness.guard import Guard
from qimeng.kernels.harness.timing import Timings, quantile, time_interleaved


def test_compare_accepts_values_within_tolerance_and_reports_the_first_mismatch() -> None:
    ref = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    assert checks.compare(ref + 1e-6, ref, 1e-4, 1e-4) is None
    bad = ref.clone()
    bad[1, 2] = 100.0
    reason = checks.compare(bad, ref, 1e-4, 1e-4)
    assert "1 of 12 elements mismatch, first at index [1, 2]: candidate 100.0, reference 6.0" in reason


@pytest.mark.parametrize("candidate, words", [
    (torch.zeros(3, 4, dtype=torch.float64), "dtype torch.float64"),
    (torch.zeros(4, 3), "shape (4, 3)"),
    ((torch.zeros(3, 4), torch.zeros(1)), "returned 2 outputs, the reference 1"),
    ([1.0], "returned a float, not a tensor"),
])
def test_compare_checks_structure_shape_and_dtype_first(candidate, words: str) -> None:
    assert words in checks.compare(candidate, torch.zeros(3, 4), 1e-4, 1e-4)


def test_compare_requires_the_same_nan_and_inf_pattern() -> None:
    ref = torch.tensor([1.0, float("nan"), float("inf")])
    assert checks.compare(ref.clone(), ref, 1e-4, 1e-4) is None
    assert "NaN pattern" in checks.compare(torch.tensor([1.0, 0.0, float("inf")]), ref, 1e-4, 1e-4)
    assert "Inf pattern" in checks.compare(torch.tensor([1.0, float("nan"), -float("inf")]), ref, 1e-4, 1e-4)


def test_tolerances_by_dtype_unless_given() -> None:
    assert checks.tolerances(torch.zeros(2), None, None) == (1e-4, 1e-4)
    assert checks.tolerances(torch.zeros(2, dtype=torch.bfloat16), None, None) == (1e-2, 1e-2)
    assert checks.tolerances(torch.zeros(2, dtype=torch.float16), 0.5, None) == (0.5, 1e-2)


def test_input_mutation_aliasing_and_degenerate_references() -> None:
    x = torch.ones(4)
    assert checks.inputs_changed([x.clone()], [x]) is None
    assert "modified its input 0" in checks.inputs_changed([x.clone()], [x.mul_(2)])
    assert checks.aliases_input(x[1:], [x]) and not checks.aliases_input(x.clone(), [x])
    same = [checks.fingerprint(torch.ones(3)), checks.fingerprint(torch.ones(3))]
    assert "same output" in checks.degenerate_fingerprints(same)
    constant = [checks.fingerprint(torch.full((3,), 2.0)), checks.fingerprint(torch.full((3,), 5.0))]
    assert "constant" in checks.degenerate_fingerprints(constant)
    assert checks.degenerate_fingerprints([checks.fingerprint(torch.randn(3)), checks.fingerprint(torch.randn(3))]) is None


def test_guard_names_patched_objects_and_changed_settings() -> None:
    guard = Guard()
    assert guard.violations() == []
    real_add, real_counter, threads = torch.Tensor.add, time.perf_counter_ns, torch.get_num_threads()
    try:
        torch.Tensor.add = lambda *args: 0  # shadows TensorBase.add on the subclass
        time.perf_counter_ns = lambda: 0
        torch.set_num_threads(max(1, threads - 1) if threads > 1 else 2)
        found = guard.violations()
    finally:
        del torch.Tensor.add
        time.perf_counter_ns = real_counter
        torch.set_num_threads(threads)
    assert "torch.Tensor.add (added)" in found and "time.perf_counter_ns" in found
    assert "torch.get_num_threads" in found
    assert torch.Tensor.add is real_add and guard.violations() == []


def test_guard_accepts_torchs_own_dynamo_wrapper_but_not_a_substitute() -> None:
    guard = Guard()
    real = torch.manual_seed
    try:
        torch.manual_seed = torch._disable_dynamo(real)
        assert guard.violations() == []
        torch.manual_seed = torch._disable_dynamo(lambda seed: None)
        assert guard.violations() == ["torch.manual_seed"]
    finally:
        torch.manual_seed = real


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_complex_outputs_are_compared_by_real_and_imaginary_parts(dtype) -> None:
    ref = torch.randn(4, 5, dtype=dtype, generator=torch.Generator().manual_seed(0))
    assert checks.compare(ref + 1e-6, ref, 1e-4, 1e-4) is None
    wrong_imaginary = ref.clone()
    wrong_imaginary[2, 3] += 0.5j  # the real part is untouched: `.to(float64)` alone would not see it
    assert "first at index [2, 3]" in checks.compare(wrong_imaginary, ref, 1e-4, 1e-4)
    assert checks.tolerances(ref, None, None) == (1e-4, 1e-4)
    nan_imaginary = ref.clone()
    nan_imaginary[0, 0] = complex(ref[0, 0].real.item(), float("nan"))
    assert "NaN pattern" in checks.compare(nan_imaginary, ref, 1e-4, 1e-4)


@pytest.mark.parametrize("dtype", [torch.int8, torch.int32, torch.int64, torch.uint8, torch.bool])
def test_integer_and_boolean_outputs_are_compared_exactly_whatever_the_tolerances(dtype) -> None:
    ref = torch.tensor([0, 1, 1, 0, 1], dtype=dtype)
    assert checks.compare(ref.clone(), ref, 1e9, 1e9) is None
    off = ref.clone()
    off[3] = 1
    assert "1 of 5 elements mismatch, first at index [3]" in checks.compare(off, ref, 1e9, 1e9)


@pytest.mark.parametrize("dtype, atol, rtol", [
    (torch.float16, 1e-2, 1e-2), (torch.bfloat16, 1e-2, 1e-2),
    (torch.float8_e4m3fn, 1e-1, 1.25e-1), (torch.float8_e5m2, 1e-1, 2.5e-1),
])
def test_low_precision_floats_use_their_tolerance_table(dtype, atol, rtol) -> None:
    ref = torch.linspace(1.0, 4.0, 8).to(dtype)
    assert checks.tolerances(ref, None, None) == (atol, rtol)
    one_step = (ref.to(torch.float32) * (1 + rtol / 2)).to(dtype)  # within rtol: passes
    assert checks.compare(one_step, ref, atol, rtol) is None
    far = ref.clone()
    far[5] = (far[5].to(torch.float32) * 2).to(dtype)
    assert "first at index [5]" in checks.compare(far, ref, atol, rtol)


def test_timer_cross_check_rejects_trials_longer_than_the_loop() -> None:
    assert Timings({"a": [1.0, 1.0]}, loop_wall_ms=2.5, last={}, late={"a": 0}).cross_check() is None
    assert "timer cross-check failed" in Timings({"a": [50.0, 50.0]}, loop_wall_ms=10.0, last={}, late={"a": 0}).cross_check()


def test_interleaved_timing_on_the_cpu_orders_fast_before_slow() -> None:
    calls: list[str] = []
    fns = {"fast": lambda: calls.append("fast"), "slow": lambda: (calls.append("slow"), time.sleep(0.002))}
    timings = time_interleaved(fns, trials=6, warmup=1, device="cpu")
    assert timings.median("slow") > 1.5 > timings.median("fast")
    assert calls[2:6] == ["fast", "slow", "slow", "fast"]  # the order rotates each round
    assert timings.cross_check() is None and len(timings.trials_ms["fast"]) == 6


def test_quantile_interpolates_like_numpy() -> None:
    assert quantile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    assert quantile([1.0, 2.0, 3.0, 4.0, 5.0], 0.25) == 2.0


def test_roofline_is_the_slower_of_memory_and_compute() -> None:
    h100 = roofline.ceilings_for("NVIDIA H100 80GB HBM3")
    assert h100 is not None and roofline.ceilings_for("cpu: some CPU") is None
    assert roofline.roofline_ms(3_000_000_000, 0, torch.float32, h100) == pytest.approx(1.0)
    assert roofline.roofline_ms(0, 716_000_000_000, torch.bfloat16, h100) == pytest.approx(1.0)
    # fp32 at the TF32 peak even with TF32 off: 3xTF32 GEMMs (~120 TFLOP/s) and cuDNN's default TF32 convolutions
    # pass the 52 TFLOP/s FMA peak honestly
    assert not torch.backends.cuda.matmul.allow_tf32  # PyTorch's default
    assert roofline.roofline_ms(0, 379_000_000_000, torch.float32, h100) == pytest.approx(1.0)
    x = torch.zeros(10, 10)
    assert roofline.tensor_bytes([x, x[0]], x.t()) == 400  # shared storage counted once
    assert roofline.count_flops(lambda: torch.mm(x, x)) == 2 * 10 * 10 * 10


def test_guard_sees_aten_overrides_and_changed_problem_constants() -> None:
    import types

    problem = types.ModuleType("problem")
    problem.N = 64
    guard = Guard(strict_namespaces=[("problem", problem)])
    problem.N = 1  # smaller inputs for everyone
    lib = torch.library.Library("aten", "IMPL")
    lib.impl("isclose", lambda a, b, rtol=1e-5, atol=1e-8, equal_nan=False: torch.ones_like(a, dtype=torch.bool), "CPU")
    try:
        found = guard.violations()
    finally:
        lib._destroy()
    assert "problem.N" in found and "torch.library kernels for aten ops" in found


def _blocked_cumsum(x: torch.Tensor, block: int = 1000) -> torch.Tensor:
    """A cumsum in fp32 blocks, then block offsets (as GPU scans sum)."""
    rows, n = x.shape
    inner = torch.cumsum(x.reshape(rows, n // block, block), 2)
    offsets = torch.cumsum(inner[:, :, -1], 1) - inner[:, :, -1]
    return (inner + offsets[:, :, None]).reshape(rows, n)


def _long_sums() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x, a blocked fp32 cumsum of it (the reference: its own error exceeds the fp32 tolerance where
    the sum crosses zero) and the float64 truth."""
    x = torch.randn(4, 20_000, generator=torch.Generator().manual_seed(0)) * 100
    return x, _blocked_cumsum(x), torch.cumsum(x.double(), 1)


def test_a_reordered_sum_fails_the_fp32_tolerance_but_is_as_accurate_as_the_reference() -> None:
    x, ref, truth = _long_sums()
    candidate = torch.cumsum(x, 1)
    assert checks.VALUES_DIFFER in checks.compare(candidate, ref, 1e-4, 1e-4)
    assert checks.within_reference_error(candidate, ref, truth, 1e-4, 1e-4) is None


def test_lower_precision_or_a_wrong_element_is_less_accurate_than_the_reference() -> None:
    x, ref, truth = _long_sums()
    in_bf16 = torch.cumsum(x.bfloat16(), 1).float()
    assert "also against the float64 reference" in checks.within_reference_error(in_bf16, ref, truth, 1e-4, 1e-4)
    off_by_one_element = torch.cumsum(x, 1)
    off_by_one_element[2, 12345] += 0.5
    reason = checks.within_reference_error(off_by_one_element, ref, truth, 1e-4, 1e-4)
    assert "first at index [2, 12345]" in reason


def test_within_reference_error_still_requires_the_reference_structure_and_nan_pattern() -> None:
    x, ref, truth = _long_sums()
    with_nan = torch.cumsum(x, 1)
    with_nan[0, 0] = float("nan")
    assert "NaN pattern" in checks.within_reference_error(with_nan, ref, truth, 1e-4, 1e-4)
    assert "shape" in checks.within_reference_error(ref[:, :10], ref, truth, 1e-4, 1e-4)
