"""Linear + dropout(p=0.5): random in training mode, the identity in eval mode."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(32, 16)
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc(x))


def get_inputs():
    return [torch.randn(64, 32)]


def get_init_inputs():
    return []
