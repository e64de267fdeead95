"""Seeding the generators a problem's inputs draw from (inputs.seed_all) as torch.manual_seed does."""

from __future__ import annotations

import pytest
import torch

from qimeng.kernels.harness.inputs import on_device, seed_all


def _draws(device: str) -> list[torch.Tensor]:
    return [torch.randn(7, device=device), torch.rand(3, device=device), torch.randint(0, 100, (4,), device=device),
            torch.nn.functional.dropout(torch.ones(16, device=device), 0.5)]


@pytest.mark.parametrize("seed", [0, 7, 2**62 + 5])
def test_seed_all_draws_what_manual_seed_draws(seed: int) -> None:
    torch.manual_seed(seed)
    expected = _draws("cpu")
    torch.manual_seed(seed + 1)  # elsewhere first
    seed_all(seed)
    assert all(torch.equal(a, b) for a, b in zip(_draws("cpu"), expected))


def test_inputs_made_for_a_seed_are_those_of_manual_seed() -> None:
    torch.manual_seed(11)
    expected = torch.randn(4, 5)
    assert torch.equal(on_device(lambda: torch.randn(4, 5), 11, "cpu"), expected)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_seed_all_draws_what_manual_seed_draws_on_cuda() -> None:
    torch.ones(1, device="cuda")  # CUDA initialised, as in the judge and the candidate's worker
    torch.manual_seed(5)
    expected = _draws("cuda") + _draws("cpu")
    torch.manual_seed(6)
    seed_all(5)
    assert all(torch.equal(a, b) for a, b in zip(_draws("cuda") + _draws("cpu"), expected))
