"""DenseNet-BC-style CNN of about 200 layers: 3 dense blocks of 33 bottleneck layers (BN-ReLU-1x1 conv-BN-ReLU-3x3 conv, each output concatenated to its input), transitions (BN-ReLU-1x1 conv-avg pool), classifier."""

import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 64
image_size = 32
growth = 12
layers_per_block = 33
classes = 100
SMALL = {"batch_size": 2, "image_size": 8, "growth": 4, "layers_per_block": 4, "classes": 10}


class DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, 4 * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(F.relu(self.bn1(x)))
        y = self.conv2(F.relu(self.bn2(y)))
        return torch.cat([x, y], dim=1)


class Transition(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(cin)
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2)


class Model(nn.Module):
    def __init__(self, growth: int, layers_per_block: int, classes: int):
        super().__init__()
        channels = 2 * growth
        layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, padding=1, bias=False)]
        for block in range(3):
            for _ in range(layers_per_block):
                layers.append(DenseLayer(channels, growth))
                channels += growth
            if block < 2:
                layers.append(Transition(channels, channels // 2))
                channels //= 2
        self.features = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(channels)
        self.fc = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn(self.features(x)))
        return self.fc(y.mean(dim=(2, 3)))


def get_inputs():
    return [torch.randn(batch_size, 3, image_size, image_size)]


def get_init_inputs():
    return [growth, layers_per_block, classes]
