"""Classifier head: nn.Linear to 1000 classes, then softmax over the classes (a row fits one 1024-wide tile)."""

import torch
import torch.nn as nn

tokens = 8192
in_features = 4096
classes = 1000
SMALL = {"tokens": 64, "in_features": 128, "classes": 100}


class Model(nn.Module):
    def __init__(self, in_features: int, classes: int):
        super().__init__()
        self.head = nn.Linear(in_features, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.head(x), dim=-1)


def get_inputs():
    return [torch.randn(tokens, in_features)]


def get_init_inputs():
    return [in_features, classes]
