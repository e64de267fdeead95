"""Bounded memory: chunked comparison (values.py), inputs on the device (inputs.py), peak memory
(memory.py), footprints (footprint.py) and what an evaluation records."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from qimeng.kernels.harness import checks, memory, values
from qimeng.kernels.harness.footprint import estimate_bytes, from_measured, problem_footprint, problem_sizes
from qimeng.kernels.harness.inputs import moved, on_device
from qimeng.kernels.harness.problem import load_problem

DATA = Path(__file__).parent / "data"


@pytest.fixture()
def small_chunks(monkeypatch):
    monkeypatch.setattr(values, "CHUNK_ELEMENTS", 7)


def test_pieces_cover_a_shape_in_row_major_order_within_the_budget() -> None:
    shape = (3, 4, 5)
    flat = torch.arange(60).reshape(shape)
    seen = [flat[index].reshape(-1) for index in values.pieces(shape, 7)]
    assert torch.equal(torch.cat(seen), torch.arange(60))  # every element once, in order
    assert max(p.numel() for p in seen) <= 7


def test_chunked_comparison_finds_the_first_mismatch_across_chunks(small_chunks) -> None:
    ref = torch.randn(6, 5)
    bad = ref.clone()
    bad[4, 1] += 1.0
    bad[2, 3] += 0.5  # the first in row-major order
    reason = checks.compare(bad, ref, 1e-4, 1e-4)
    expected_max = float((bad.double() - ref.double()).abs().max())  # oracle: whole-tensor float64
    assert "2 of 30 elements mismatch, first at index [2, 3]" in reason
    assert f"max abs diff {expected_max:.3g}" in reason
    assert checks.compare(ref + 1e-6, ref, 1e-4, 1e-4) is None


def test_chunked_comparison_of_non_contiguous_outputs_and_nan_priority(small_chunks) -> None:
    ref = torch.randn(5, 6)
    cand = ref.clone()
    cand[1, 4] = float("nan")
    cand[0, 0] += 3.0  # a value mismatch earlier in the tensor: the NaN pattern is reported first
    reason = checks.compare(cand.t(), ref.t(), 1e-4, 1e-4)
    assert "NaN pattern differs" in reason and "first at index [4, 1]" in reason
    assert checks.compare(ref.t().clone(), ref.t(), 1e-4, 1e-4) is None


def test_near_the_tolerance_the_exact_float64_test_decides(small_chunks) -> None:
    ref = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    atol, rtol = 1e-4, 1e-4
    inside = ref + (atol + rtol * ref.abs()) * (1 - 1e-9)  # beyond the cheap test's margin, still within
    outside = ref + (atol + rtol * ref.abs()) * (1 + 1e-6)
    assert checks.compare(inside, ref, atol, rtol) is None
    assert "4 of 4 elements mismatch" in checks.compare(outside, ref, atol, rtol)


def test_float64_second_look_in_chunks_matches_the_whole_tensor_rule(small_chunks) -> None:
    truth = torch.linspace(-3, 3, 40, dtype=torch.float64).reshape(8, 5)
    ref = (truth + 1e-3 * torch.sin(truth * 7)).float()  # the fp32 reference's own error: up to 1e-3
    good = (truth - 1e-3 * torch.cos(truth * 5)).float()  # as far from the truth as the reference
    worse = good.clone()
    worse[6, 2] += 0.05
    assert checks.within_reference_error(good, ref, truth, 1e-4, 1e-4) is None
    reason = checks.within_reference_error(worse, ref, truth, 1e-4, 1e-4)
    assert "1 of 40 elements mismatch, first at index [6, 2]" in reason


def test_comparison_memory_is_bounded_by_chunks_not_the_output() -> None:
    """Two 128 MiB fp32 outputs compared: the extra peak is a few chunks, not float64 copies (which
    would be 1 GiB and more)."""
    ref = torch.randn(32 * 2**20)
    cand = ref + 1e-6
    memory.start("cpu")
    before = memory.peak_rss_bytes()
    assert checks.compare(cand, ref, 1e-4, 1e-4) is None
    extra = memory.peak_rss_bytes() - before
    assert extra < 128 * 2**20, f"comparison took {extra / 2**20:.0f} MiB more"


def test_fingerprint_keeps_what_the_degenerate_check_needs(small_chunks) -> None:
    """The judge keeps a fingerprint per trial (computed chunk by chunk), not the outputs themselves."""
    a, b = torch.randn(100, 100), torch.randn(100, 100)
    assert checks.degenerate_fingerprints([checks.fingerprint(a), checks.fingerprint(b)]) is None
    same = [checks.fingerprint(a), checks.fingerprint(a.clone())]
    assert "same output" in checks.degenerate_fingerprints(same)
    constant = [checks.fingerprint(torch.full((50, 50), 2.0)), checks.fingerprint(torch.full((50, 50), 3.0))]
    assert "constant" in checks.degenerate_fingerprints(constant)
    x = torch.randn(10**3)
    assert checks.fingerprint(x)[:2] == pytest.approx((x.double().sum().item(), x.double().square().sum().item()))
    scalars = [checks.fingerprint(torch.tensor(1.5)), checks.fingerprint(torch.tensor(2.5))]
    assert checks.degenerate_fingerprints(scalars) is None  # one element is no "constant tensor"


def test_inputs_are_made_under_the_device_context_with_a_host_fallback() -> None:
    made = on_device(lambda: [torch.randn(4, 4), torch.ones(2, device="cpu")], 0, "meta")
    assert made[0].device.type == "meta" and made[1].device.type == "cpu"
    assert all(t.device.type == "meta" for t in moved(made, "meta"))
    needs_values = on_device(lambda: [torch.full((3,), float(torch.randn(1).item()))], 0, "meta")
    assert needs_values[0].device.type == "cpu"  # .item() cannot run on meta: made on the host instead
    assert torch.equal(on_device(lambda: torch.randn(5), 7, "cpu"), torch.manual_seed(7) and torch.randn(5))


def test_inputs_of_a_seed_do_not_depend_on_what_ran_before() -> None:
    """The judge and the candidate's worker each make the inputs of a seed in their own process: the
    values may depend only on the seed (and device), never on what drew random numbers before."""
    problem = load_problem(DATA / "problem_dropout.py")
    first = problem.inputs(12345, "cpu")
    torch.randn(1000)  # another trial, a dropout mask, a candidate's own draws
    again = problem.inputs(12345, "cpu")
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(problem.inputs(12346, "cpu")[0], first[0])


def test_build_leaves_training_mode_unless_eval_is_asked() -> None:
    problem = load_problem(DATA / "problem_batchnorm_train.py")
    assert problem.build(problem.model_cls, 0, "cpu", "train").training
    assert not problem.build(problem.model_cls, 0, "cpu", "eval").training
    a, b = (problem.build(problem.model_cls, 3, "cpu", "train") for _ in range(2))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


PEAK_RESET = """
import torch
from qimeng.kernels.harness import memory
memory.start("cpu")
block = torch.ones(64 * 2**20 // 4)
high = memory.peak_rss_bytes()
del block
memory.start("cpu")
print(high - memory.peak_rss_bytes(), memory.peak_device_bytes("cpu"))
"""


def test_peak_rss_is_reset_per_evaluation() -> None:
    # in a fresh process, as a worker is (a test process's earlier tests and threads can hold freed memory)
    proc = subprocess.run([sys.executable, "-c", PEAK_RESET], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])})
    assert proc.returncode == 0, proc.stderr[-2000:]
    dropped, device = proc.stdout.split()
    assert int(dropped) > 32 * 2**20 and device == "None"


def test_problem_sizes_from_the_meta_device_and_the_estimate(tmp_path: Path) -> None:
    path = tmp_path / "linear.py"
    path.write_text("import torch\nclass Model(torch.nn.Module):\n    def __init__(self):\n"
                    "        super().__init__()\n        self.fc = torch.nn.Linear(64, 32)\n"
                    "    def forward(self, x):\n        return self.fc(x)\n"
                    "def get_inputs():\n    return [torch.randn(8, 64)]\n")
    # sizes by hand: input 8x64, weight 64x32 + bias 32, output 8x32, fp32
    assert problem_footprint(path, small=False) == estimate_bytes(8 * 64 * 4, (64 * 32 + 32) * 4, 8 * 32 * 4)
    big = problem_sizes(DATA / "gelu_512mib.py", small=False)  # full size, no memory: meta tensors
    assert big["inputs"] == big["outputs"] == 512 * 2**20


def test_a_measured_peak_in_the_store_replaces_the_estimate(tmp_path: Path) -> None:
    from qimeng.kernels.store import Store
    from qimeng.core.verdict import Status
    from qimeng.kernels.harness.problem import problem_hash
    from qimeng.kernels.result import EvalResult

    problem = DATA / "problem_dropout.py"
    with Store(tmp_path / "q.db") as store:
        store.record_eval("r", "p", "c", EvalResult(status=Status.OK, problem_hash=problem_hash(problem),
                                                    peak_device_bytes=3 * 2**30))
        assert problem_footprint(problem, small=False, store=store) == from_measured(3 * 2**30)


def test_a_whole_evaluation_holds_a_few_copies_of_a_64_mib_problem() -> None:
    """Inputs and outputs of 64 MiB: each process's peak (the candidate's worker, the judge) stays within
    torch's own footprint plus about six copies (input sets, outputs, the shared-memory exchange,
    chunks); whole-tensor float64 comparisons and four input sets, as before, needed over a GiB more."""
    from qimeng.core.verdict import Status
    from qimeng.kernels.harness.evaluate import evaluate
    from qimeng.kernels.result import EvalOptions

    result = evaluate(DATA / "problem_affine_64mib.py", DATA / "affine_reordered.py",
                      EvalOptions(timeout_s=120.0, correctness_trials=2, timing_trials=3, warmup=1))
    assert result.status is Status.OK, result.reason
    for side, peak in (("candidate's worker", result.peak_rss_bytes), ("judge", result.judge_peak_rss_bytes)):
        assert peak < 600 * 2**20 + 6 * 64 * 2**20, f"{side}: {peak / 2**20:.0f} MiB"


def test_gpu_capacity_asks_nvidia_smi_for_the_physical_gpu(tmp_path: Path, monkeypatch) -> None:
    from qimeng.core.admission import gpu_capacity_bytes

    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho \"$1\" > " + str(tmp_path / "asked") + "\necho '81559, 1559'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert gpu_capacity_bytes(1, 0.5) == int((81559 - 1559) * 2**20 * 0.5)
    assert (tmp_path / "asked").read_text().strip() == "--id=5"
