"""Cross entropy of [batch, classes] logits with class-index targets (int64), mean reduction."""

import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 262144
num_classes = 1024
SMALL = {"batch_size": 64, "num_classes": 100}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, targets)


def get_inputs():
    return [4.0 * torch.randn(batch_size, num_classes), torch.randint(0, num_classes, (batch_size,))]


def get_init_inputs():
    return []
