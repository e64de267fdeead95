"""Hinge loss mean(max(0, margin - y * score)) with labels y in {-1, +1} (written by hand)."""

import torch
import torch.nn as nn

batch_size = 32768
dim = 8192
SMALL = {"batch_size": 64, "dim": 256}


class Model(nn.Module):
    def __init__(self, margin: float):
        super().__init__()
        self.margin = margin

    def forward(self, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return torch.clamp(self.margin - labels * scores, min=0.0).mean()


def get_inputs():
    labels = torch.randint(0, 2, (batch_size, dim)).float() * 2.0 - 1.0
    return [torch.randn(batch_size, dim), labels]


def get_init_inputs():
    return [1.0]
