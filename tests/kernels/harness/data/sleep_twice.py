"""The reference's result after twice its sleep: at least 4 ms a call, half the reference's speed."""

import time

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(0.004)
        return x
