"""Verification bursts (burst.py) and their clock (outside_clock.Bursts), and the side-stream threshold
(timing.late): pure parts, against hand-computed values."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from qimeng.kernels.harness import burst, outside_clock, timing
from qimeng.kernels.harness.outside_clock import Bursts


def test_a_trial_is_late_only_for_material_left_over_work() -> None:
    assert not timing.late(call_ms=0.02, gap_ms=0.09)  # two host wake-ups: 0.1 ms allowed
    assert timing.late(call_ms=0.02, gap_ms=0.13)  # the side-stream cheat's 0.13 ms of left work
    assert not timing.late(call_ms=1.0, gap_ms=0.34)  # 0.1 + 0.25 * 1.0
    assert timing.late(call_ms=1.0, gap_ms=0.36)


def _seeded(seed: int) -> list:
    """A problem's fresh inputs for ``seed``: 256 rows of 64 floats from a generator of that seed."""
    return [torch.randn(256, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))]


def test_each_call_gets_the_fresh_inputs_of_its_own_seed_and_its_own_slot() -> None:
    run = burst.Burst("cpu")
    times = run.run(lambda xs: xs[0] * 3.0, _seeded, 6, seed=11, reseed=False, flush=None)
    assert len(times) == 6 and all(t >= 0 for t in times)
    for k in range(6):  # the oracle: the inputs of seed 11 + k made by hand, times three
        made = torch.randn(256, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(11 + k))
        assert torch.equal(run.outputs(k)[0], made * 3.0)


def test_a_random_call_draws_from_its_own_seed_as_a_trial_does() -> None:
    run = burst.Burst("cpu")
    run.run(lambda xs: torch.rand(3), _seeded, 4, seed=5, reseed=True, flush=None)
    for k in range(4):
        torch.manual_seed(5 + k)
        assert torch.equal(run.outputs(k)[0], torch.rand(3))


def test_no_two_calls_of_a_burst_share_an_input_element() -> None:
    from qimeng.kernels.harness.problem import load_problem

    problem = load_problem(Path(__file__).parent / "cheats" / "problem_scale_relu.py")
    seen: list[list[torch.Tensor]] = []
    burst.Burst("cpu").run(lambda xs: seen.append([x.clone() for x in xs]) or xs[0], lambda s: problem.inputs(s, "cpu"),
                           12, seed=3, reseed=False, flush=None)
    for j in range(12):
        for k in range(j):
            for a, b in zip(seen[j], seen[k]):
                assert (a == b).double().mean() < 0.001, (j, k)  # equal only by chance


class _PatchesRows:
    """A cheat of the kind a burst must defeat (``cheats/burst_incremental.py``): it keeps its last input
    and output of ``x @ w`` and, when at most half of the input's rows changed, recomputes only those."""

    def __init__(self, w: torch.Tensor) -> None:
        self.w, self.last, self.patched = w, None, 0

    def __call__(self, xs: list) -> torch.Tensor:
        x = xs[0]
        if self.last is not None:
            changed = (x != self.last[0]).any(dim=1)
            if int(changed.sum()) <= x.shape[0] // 2:
                self.patched += 1
                out = self.last[1].clone()
                out[changed] = x[changed] @ self.w
                self.last = (x.clone(), out)
                return out
        self.last = (x.clone(), x @ self.w)
        return self.last[1]


def test_no_call_of_a_burst_can_be_patched_from_the_last_one() -> None:
    w = torch.randn(64, 32, dtype=torch.float64)
    cheat = _PatchesRows(w)
    run = burst.Burst("cpu")
    run.run(cheat, _seeded, 20, seed=9, reseed=False, flush=None)
    assert cheat.patched == 0
    for k in range(20):
        assert torch.allclose(run.outputs(k)[0], _seeded(9 + k)[0] @ w)


def test_a_call_whose_outputs_change_layout_is_refused() -> None:
    shapes = iter([4, 4, 5])
    run = burst.Burst("cpu")
    with pytest.raises(burst.BurstMismatch, match="call 3 returned output of shape"):
        run.run(lambda xs: torch.zeros(next(shapes)), _seeded, 3, seed=1, reseed=False, flush=None)


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
    return outside_clock.check_bursts(bursts, claimed_ms)  # no waits known: nothing to discount


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
    loaded = Bursts(raw.calls, raw.judge_wall_ms, raw.worker_wall_ms, raw.judge_call_ms, [0.0] * 4, waited)
    assert loaded.discounted().worker_wall_ms == pytest.approx([5.0 + (w - 5.0) / 3 for w in raw.worker_wall_ms])
    reason, verified = outside_clock.check_bursts(loaded, 0.01)
    assert reason is None and not verified
    assert _check(raw, 0.01)[0] is not None  # not discounted: refuted


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
