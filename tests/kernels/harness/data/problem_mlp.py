"""A small MLP: a few milliseconds per call on the CPU, with matmuls that use every core (OpenMP), so
whatever else runs beside one side's timed calls shows in the timing (test_kept_reference_timing.py)."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, width: int = 384):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                                    nn.Linear(width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def get_inputs():
    return [torch.randn(256, 384)]


def get_init_inputs():
    return [384]
