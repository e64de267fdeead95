"""Verification bursts (burst.py) and their clock (outside_clock.Bursts), and the side-stream threshold
(timing.late): pure parts, against hand-computed values."""

from __future__ import annotations

import random

import pytest
import torch

from qimeng.kernels.harness import burst, outside_clock, timing
from qimeng.kernels.harness.outside_clock import Bursts


def test_a_trial_is_late_only_for_material_left_over_work() -> None:
    assert not timing.late(call_ms=0.02, gap_ms=0.09)  # two host wake-ups: 0.1 ms allowed
    assert timing.late(call_ms=0.02, gap_ms=0.13)  # the side-stream cheat's 0.13 ms of left work
    assert not timing.late(call_ms=1.0, gap_ms=0.34)  # 0.1 + 0.25 * 1.0
    assert timing.late(call_ms=1.0, gap_ms=0.36)


def test_the_plan_is_the_same_for_a_seed_and_stays_inside_each_input() -> None:
    inputs = [torch.zeros(10), torch.zeros(3, 5000), torch.arange(6), torch.zeros(1)]
    steps = burst.plan(inputs, 50, seed=7)
    assert steps == burst.plan(inputs, 50, seed=7) and steps != burst.plan(inputs, 50, seed=8)
    for step in steps:
        assert [p.tensor for p in step] == [0, 1]  # integers and 1-element tensors are left alone
        small, large = step
        assert small.n == 5 and large.n == 4096
        assert 0 <= small.dst <= 5 and 0 <= small.src <= 5 and 0 <= large.dst <= 15000 - 4096


def test_each_call_gets_other_inputs_and_its_own_slot() -> None:
    x = torch.randn(64, dtype=torch.float64)
    run = burst.Burst("cpu")
    times = run.run(lambda xs: xs[0] * 3.0, [x.clone()], 6, seed=11, reseed=False, flush=None)
    assert len(times) == 6 and all(t >= 0 for t in times)
    replayed = [burst.inputs_at([x.clone()], 6, 11, k)[0] for k in range(6)]
    for k in range(6):  # the oracle: the inputs of call k made again, times three
        assert torch.equal(run.outputs(k)[0], replayed[k] * 3.0)
    assert not torch.equal(run.outputs(0)[0], run.outputs(1)[0])
    moved = [sorted(set(range(64)) - set(torch.nonzero(replayed[k] == replayed[k - 1]).flatten().tolist()))
             for k in range(1, 6)]
    assert all(len(m) <= 32 for m in moved)  # at most half of the input is overwritten per call


def test_a_call_whose_outputs_change_layout_is_refused() -> None:
    shapes = iter([4, 4, 5])
    run = burst.Burst("cpu")
    with pytest.raises(burst.BurstMismatch, match="call 3 returned output of shape"):
        run.run(lambda xs: torch.zeros(next(shapes)), [torch.zeros(8)], 3, seed=1, reseed=False, flush=None)


def _hash_oracle(x: torch.Tensor, seed: int) -> int:
    """The digest by hand: the output's bytes as little-endian words, times the seeded odd multipliers,
    summed with Python's integers modulo 2**64, as a signed 64-bit value."""
    raw = x.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
    size = 4 if len(raw) % 4 == 0 else 2 if len(raw) % 2 == 0 else 1
    words = [int.from_bytes(raw[i:i + size], "little", signed=size > 1) for i in range(0, len(raw), size)]
    weights = burst._weights(len(words), seed, "cpu").tolist()
    total = sum(w * weights[i % len(weights)] for i, w in enumerate(words)) % 2**64
    return total - 2**64 if total >= 2**63 else total


@pytest.mark.parametrize("x", [torch.randn(7, 5), torch.randn(3).to(torch.float16), torch.tensor([True, False, True]),
                               torch.arange(6, dtype=torch.int64) - 3, torch.randn(2, 3, dtype=torch.complex64)],
                         ids=["fp32", "fp16_odd", "bool", "int64", "complex64"])
def test_the_digest_hashes_every_output_bit(x: torch.Tensor) -> None:
    assert burst.digest(x, 3) == _hash_oracle(x, 3)
    assert burst.digest_matches(x, 3, burst.digest(x, 3))
    assert burst.digest(x, 3) != burst.digest(x, 4)
    flipped = x.clone().reshape(-1).view(torch.uint8)
    flipped[-1] ^= 1  # one bit of the last element
    assert not burst.digest_matches(flipped.view(x.dtype).reshape(x.shape), 3, burst.digest(x, 3))
    assert not burst.digest_matches(x, 3, float(burst.digest(x, 3))) and not burst.digest_matches(x, 3, True)


def test_the_digest_repeats_its_multipliers_over_long_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(burst, "DIGEST_WEIGHTS", 4)
    x = torch.randn(3, 11)
    assert burst.slot_digests(x, 2) == [_hash_oracle(row, 2) for row in x]


def test_the_digest_of_a_linear_output_cannot_be_had_from_its_inputs() -> None:
    # a weighted sum of the values would have digest(2 x) == 2 digest(x): a commitment made without the output
    x = torch.randn(1000)
    assert burst.digest(2 * x, 5) != 2 * burst.digest(x, 5)
    assert burst.digest(x + x, 5) == burst.digest(2 * x, 5)  # the same bits, the same digest


def test_the_digest_sees_complex_parts_and_non_finite_values() -> None:
    z = torch.tensor([1 + 2j, 3 - 1j], dtype=torch.complex64)
    assert burst.digest(z, 1) != burst.digest(z.conj().resolve_conj(), 1)
    nan = torch.tensor([float("nan"), 1.0])
    assert burst.digest(nan, 1) == burst.digest(nan, 1)
    assert burst.digest(nan, 1) != burst.digest(torch.tensor([float("nan"), 2.0]), 1)


def _bursts(call_ms: float, claimed_ms: float, calls: int, jitter_ms: float = 0.05, seed: int = 0) -> Bursts:
    """Bursts of a candidate whose call really takes ``call_ms``, against a 0.2 ms reference, with
    ``calls`` calls and 5 ms of the same work around each command on both sides."""
    rng = random.Random(seed)
    judge_wall = [5.0 + 0.2 * calls + rng.uniform(0, jitter_ms) for _ in range(4)]
    worker_wall = [5.0 + call_ms * calls + rng.uniform(0, jitter_ms) for _ in range(4)]
    return Bursts(calls, judge_wall, worker_wall, [0.2] * 4)


def _check(bursts: Bursts, claimed_ms: float) -> tuple[str | None, bool]:
    return outside_clock.check_bursts(bursts, bursts, claimed_ms)  # nothing to discount


def test_bursts_verify_an_honest_short_call() -> None:
    calls = outside_clock.burst_calls(0.01, 0.2, output_bytes=4096, device="cuda")
    assert calls == 2001  # 20 ms of 10 us calls
    reason, verified = _check(_bursts(0.01, 0.01, calls), 0.01)
    assert reason is None and verified


def test_bursts_refute_a_timer_that_claims_a_fifth() -> None:
    calls = outside_clock.burst_calls(0.002, 0.2, output_bytes=4096, device="cuda")
    reason, verified = _check(_bursts(0.01, 0.002, calls), 0.002)
    assert reason is not None and "calls back to back it takes 0.01" in reason and not verified


def test_a_claim_somewhat_below_the_bursts_is_unverified_not_rejected() -> None:
    reason, verified = _check(_bursts(0.015, 0.01, 2001), 0.01)  # 1.5x: noise or a lie
    assert reason is None and not verified


def test_a_loaded_host_is_discounted_for_rejection_but_never_verifies() -> None:
    """The candidate's burst stretched threefold by other processes: its main thread waited 2/3 of the
    time for a core. Discounted, the claim is not refuted; the raw walls do not verify it."""
    raw = _bursts(0.03, 0.01, 2001)
    waited = [(w - 5.0) * 2 / 3 for w in raw.worker_wall_ms]
    discounted = Bursts(raw.calls, raw.judge_wall_ms, [w - q for w, q in zip(raw.worker_wall_ms, waited)], raw.judge_call_ms)
    reason, verified = outside_clock.check_bursts(raw, discounted, 0.01)
    assert reason is None and not verified
    assert outside_clock.check_bursts(raw, raw, 0.01)[0] is not None  # not discounted: refuted


def test_noisy_bursts_leave_a_short_call_unverified() -> None:
    reason, verified = _check(_bursts(0.01, 0.01, 2001, jitter_ms=40.0, seed=2), 0.01)
    assert reason is None and not verified


def test_the_number_of_calls_is_bounded_by_the_outputs_memory_and_a_plausible_speedup() -> None:
    assert outside_clock.burst_calls(0.01, 0.2, output_bytes=2**30, device="cuda") == 2  # 2 GiB of slots
    assert outside_clock.burst_calls(0.01, 0.2, output_bytes=2**30, device="cpu") == 1
    assert outside_clock.burst_calls(1e-6, 0.2, output_bytes=4, device="cuda") == 2001  # counted as 20x: 0.01 ms
    assert outside_clock.burst_calls(1e-6, 1e-5, output_bytes=4, device="cuda") == 4096
    assert outside_clock.burst_calls(50.0, 0.2, output_bytes=4, device="cpu") == 1
    assert outside_clock.burst_calls(0.01, 0.2, output_bytes=4, device="cpu") == 1001  # 10 ms on the CPU


def test_bursts_too_short_to_verify_are_not_run() -> None:
    assert outside_clock.bursts_could_verify(2001, 0.01)  # 0.5 ms / 2001 calls <= 2.5 us
    assert not outside_clock.bursts_could_verify(2, 0.9)  # a 1 GiB output: 0.25 ms > 0.225 ms


def test_a_footprint_counts_both_sides_burst_slots() -> None:
    from qimeng.kernels.harness.footprint import burst_slot_bytes

    assert burst_slot_bytes(1024) == 4096 * 1024  # 4096 calls of a 1 KiB output
    assert burst_slot_bytes(2**30) == 2 * 2**30  # two calls fill the 2 GiB
    assert burst_slot_bytes(3 * 2**30) == 3 * 2**30  # one call, whatever its size
