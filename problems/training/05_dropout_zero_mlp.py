"""MLP block with Dropout(p=0.0) (the identity, in either mode): x + drop(fc2(drop(gelu(fc1(x)))))."""

import torch
import torch.nn as nn
import torch.nn.functional as F

tokens = 8192
hidden = 2048
ffn = 8192
SMALL = {"tokens": 16, "hidden": 32, "ffn": 64}


class Model(nn.Module):
    def __init__(self, hidden: int, ffn: int):
        super().__init__()
        self.fc1 = nn.Linear(hidden, ffn)
        self.fc2 = nn.Linear(ffn, hidden)
        self.drop = nn.Dropout(0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(self.fc2(self.drop(F.gelu(self.fc1(x)))))


def get_inputs():
    return [torch.randn(tokens, hidden)]


def get_init_inputs():
    return [hidden, ffn]
