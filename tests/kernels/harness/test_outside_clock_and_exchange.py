"""The trusted side's pure parts: the harness's clock around timed rounds, and outputs handed over in
shared memory."""

from __future__ import annotations

import os
import random

import pytest
import torch

from qimeng.kernels.harness import outside_clock
from qimeng.kernels.harness.exchange import Reader, Writer
from qimeng.kernels.harness.outside_clock import Rounds


def _rounds(call_ms: float, overhead_ms: float, n: int = 60, jitter_ms: float = 0.02, seed: int = 0) -> Rounds:
    """Rounds whose worker really spends ``call_ms`` in each call and ``overhead_ms`` around it."""
    rng = random.Random(seed)
    claimed = [call_ms * (1 + rng.uniform(-0.05, 0.05)) for _ in range(n)]
    return Rounds(claimed, [c + overhead_ms + rng.uniform(0, jitter_ms) for c in claimed])


def test_honest_timings_pass_the_outside_clock() -> None:
    judge, worker = _rounds(2.0, 0.5, seed=1), _rounds(1.0, 0.5, seed=2)
    assert outside_clock.check(judge, worker) is None
    assert not outside_clock.unverified(judge, worker)


def test_a_worker_that_claims_less_than_it_took_is_caught() -> None:
    judge = _rounds(2.0, 0.5, seed=1)
    real = _rounds(1.0, 0.5, seed=2)
    lying = Rounds([c / 3 for c in real.claimed_ms], real.wall_ms)  # a patched timer: a 3x speed-up it lacks
    reason = outside_clock.check(judge, lying)
    assert reason is not None and "by the harness's clock" in reason


def test_a_worker_that_claims_more_than_its_rounds_took_is_caught() -> None:
    judge = _rounds(2.0, 0.5)
    inflated = Rounds([50.0] * 60, [1.5] * 60)
    assert "claims 3000.000 ms of timed calls" in outside_clock.check(judge, inflated)


def test_a_steady_overhead_difference_is_not_taken_for_hidden_work() -> None:
    """As measured on the H200: honest 0.15 ms Triton calls whose worker spends 0.3 ms more per round
    than the judge. Not rejected; below the clock's resolution, so only flagged unverified."""
    judge, worker = _rounds(0.3, 3.0, seed=5), _rounds(0.15, 3.3, seed=6)
    assert outside_clock.check(judge, worker) is None and outside_clock.unverified(judge, worker)


def test_a_call_below_the_clocks_resolution_is_unverified() -> None:
    judge, worker = _rounds(0.01, 1.0, jitter_ms=2.0, seed=3), _rounds(0.01, 1.0, jitter_ms=2.0, seed=4)
    assert outside_clock.check(judge, worker) is None and outside_clock.unverified(judge, worker)


def _stretched(rounds: Rounds, waits_ms: list[float], hidden_ms: float = 0.0) -> Rounds:
    """``rounds`` on a loaded host: each round longer by its main thread's wait for a core (recorded),
    plus ``hidden_ms`` of work no clock of the worker's claims."""
    return Rounds(rounds.claimed_ms, [w + q + hidden_ms for w, q in zip(rounds.wall_ms, waits_ms)], waits_ms)


def test_rounds_stretched_by_waiting_for_a_core_are_not_rejected_but_unverified() -> None:
    """As on the 2-core CI machine at load 8: the candidate's rounds waited 20-30 ms more for a core than
    the judge's. The raw walls would refute an honest claim; the waits explain it."""
    rng = random.Random(7)
    judge = _stretched(_rounds(2.0, 0.5, seed=1), [rng.uniform(0, 1) for _ in range(60)])
    worker = _stretched(_rounds(1.0, 0.5, seed=2), [rng.uniform(20, 30) for _ in range(60)])
    assert outside_clock.check(Rounds(judge.claimed_ms, judge.wall_ms), Rounds(worker.claimed_ms, worker.wall_ms))
    assert outside_clock.check(judge, worker) is None and outside_clock.unverified(judge, worker)


def test_hidden_work_is_rejected_whatever_the_waits() -> None:
    rng = random.Random(8)
    judge = _stretched(_rounds(2.0, 0.5, seed=1), [rng.uniform(0, 1) for _ in range(60)])
    worker = _stretched(_rounds(1.0, 0.5, seed=2), [rng.uniform(20, 30) for _ in range(60)], hidden_ms=2.0)
    reason = outside_clock.check(judge, worker)
    assert reason is not None and "more than the judge's identical rounds" in reason


@pytest.mark.parametrize("value", [
    torch.randn(3, 4), torch.randn(5, dtype=torch.complex64), torch.tensor([True, False, True]),
    torch.arange(6, dtype=torch.int64).reshape(2, 3).t(),  # not contiguous: written row-major
    torch.linspace(0, 1, 7).to(torch.float8_e4m3fn), torch.zeros(0, 3),
])
def test_outputs_travel_through_shared_memory_unchanged(tmp_path, value: torch.Tensor) -> None:
    [meta] = Writer(tmp_path).write(value, "out")
    read = Reader(tmp_path).read(meta)
    assert read.dtype == value.dtype and tuple(read.shape) == tuple(value.shape)
    assert torch.equal(read.contiguous().view(torch.uint8), value.contiguous().view(torch.uint8))  # same bytes


def test_values_and_tuples_travel_as_leaves(tmp_path) -> None:
    described = Writer(tmp_path).write((torch.ones(2), 3.5, "x"), "out")
    reader = Reader(tmp_path)
    assert [m["tensor"] for m in described] == [True, False, False]
    assert reader.read(described[1]).matches(3.5) and not reader.read(described[1]).matches(3)
    assert reader.read(described[2]).matches("x")


def test_the_judge_reads_no_link_and_no_file_of_the_wrong_size(tmp_path) -> None:
    [meta] = Writer(tmp_path).write(torch.ones(4), "out")
    reader = Reader(tmp_path)
    assert "holds 16 bytes, not 32" in reader.read({**meta, "shape": [8]})
    secret = tmp_path / "elsewhere.bin"
    secret.write_bytes(torch.ones(4).numpy().tobytes())
    os.replace(tmp_path / meta["file"], tmp_path / "moved.bin")
    os.symlink(secret, tmp_path / meta["file"])  # e.g. at a file the judge could otherwise read
    assert "cannot be opened" in reader.read(meta)
    assert "outside the exchange directory" in reader.read({**meta, "file": "../x.bin"})
    assert "described its output wrongly" in reader.read({**meta, "dtype": "os.system"})


def test_a_few_rounds_are_never_rejected_for_noise_but_flagged_unverified() -> None:
    judge, worker = _rounds(2.0, 0.5, n=5, seed=1), _rounds(1.0, 0.5, n=5, seed=2)
    lying = Rounds([c / 3 for c in worker.claimed_ms], worker.wall_ms)
    assert outside_clock.check(judge, lying) is None and outside_clock.unverified(judge, lying)


def test_on_cuda_the_rounds_verify_a_half_millisecond_call_that_the_cpu_allowance_leaves_unverified() -> None:
    """A 0.45 ms call with 20 ms of round overhead: the refuting allowance (0.5 ms) exceeds the claim; the
    CUDA verifying allowance (0.15 ms) does not. A worker hiding 0.3 ms of work per round is verified on
    neither (hidden above 0.1 x 0.45 + 0.15 ms) yet not rejected (below the refuting bound)."""
    judge, worker = _rounds(0.9, 20.0, seed=7), _rounds(0.45, 20.0, seed=8)
    assert outside_clock.unverified(judge, worker, "cpu") and not outside_clock.unverified(judge, worker, "cuda:0")
    hiding = Rounds(worker.claimed_ms, [w + 0.3 for w in worker.wall_ms])
    assert outside_clock.check(judge, hiding) is None and outside_clock.unverified(judge, hiding, "cuda")
