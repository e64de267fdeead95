"""Dropout-free MLP: relu(linear2(relu(linear1(x)))) with biases."""

import torch
import torch.nn as nn

tokens = 4096
in_features = 2048
hidden = 8192
out_features = 2048
SMALL = {"tokens": 32, "in_features": 64, "hidden": 128, "out_features": 64}


class Model(nn.Module):
    def __init__(self, in_features: int, hidden: int, out_features: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, out_features), nn.ReLU()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def get_inputs():
    return [torch.randn(tokens, in_features)]


def get_init_inputs():
    return [in_features, hidden, out_features]
