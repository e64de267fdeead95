"""MobileNet-style separable block, eval: depthwise 3x3 (stride 2, multiplier 2)-BN-ReLU6, pointwise 1x1-BN-ReLU.

The input is channels-last; the batch-norm statistics are those of a trained network (random, fixed by the seed).
"""

import torch
import torch.nn as nn

batch_size = 64
channels = 128
image_size = 112
out_channels = 256
SMALL = {"batch_size": 2, "channels": 4, "image_size": 15, "out_channels": 8}


class Model(nn.Module):
    def __init__(self, channels: int, out_channels: int):
        super().__init__()
        hidden = 2 * channels
        self.depthwise = nn.Conv2d(channels, hidden, 3, stride=2, padding=1, groups=channels, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.pointwise = nn.Conv2d(hidden, out_channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        with torch.no_grad():  # statistics of a trained network, not the identity
            for bn in (self.bn1, self.bn2):
                bn.running_mean.normal_(0.0, 0.1)
                bn.running_var.uniform_(0.5, 1.5)
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.normal_(0.0, 0.1)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.clamp(self.bn1(self.depthwise(x)), 0.0, 6.0)
        return torch.relu(self.bn2(self.pointwise(y)))


def get_inputs():
    return [torch.randn(batch_size, channels, image_size, image_size).to(memory_format=torch.channels_last)]


def get_init_inputs():
    return [channels, out_channels]
