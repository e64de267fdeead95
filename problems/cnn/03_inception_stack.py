"""Inception-style stack: three modules of four parallel branches (1x1; 1x1-3x3; 1x1-3x3-3x3; 3x3 max pool-1x1), each conv with BN and ReLU, concatenated on channels."""

import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 32
channels = 192
image_size = 28
SMALL = {"batch_size": 2, "channels": 8, "image_size": 8}


def conv_bn(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class Inception(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        q = cin // 4
        self.b1 = conv_bn(cin, q, 1)
        self.b3 = nn.Sequential(conv_bn(cin, q // 2, 1), conv_bn(q // 2, q, 3))
        self.b5 = nn.Sequential(conv_bn(cin, q // 2, 1), conv_bn(q // 2, q, 3), conv_bn(q, q, 3))
        self.pool = conv_bn(cin, q, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.max_pool2d(x, 3, stride=1, padding=1)
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.pool(pooled)], dim=1)


class Model(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.blocks = nn.Sequential(*(Inception(channels) for _ in range(3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


def get_inputs():
    return [torch.randn(batch_size, channels, image_size, image_size)]


def get_init_inputs():
    return [channels]
