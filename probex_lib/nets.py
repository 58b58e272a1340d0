"""ResNet9 (the CIFAR "Myrtle" ResNet) with a width multiplier.

Widths (w, 2w, 4w, 8w); w = 64 is the original, w = 8 (105k parameters) trains at about
700 32x32 images/s on one CPU thread with channels_last. Training many small models at once
through grouped convolutions was measured slower per model than one model per process
(bench in the foundation note), so the kit trains one model per worker process.
"""
from __future__ import annotations

import torch
from torch import nn


class ConvBN(nn.Module):
    """3x3 convolution (no bias), batch norm, ReLU."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x)))


class Stage(nn.Module):
    """ConvBN, 2x2 max-pool, and optionally a residual block of two ConvBN."""

    def __init__(self, c_in: int, c_out: int, residual: bool):
        super().__init__()
        self.conv = ConvBN(c_in, c_out)
        self.pool = nn.MaxPool2d(2)
        self.residual = residual
        if residual:
            self.res1 = ConvBN(c_out, c_out)
            self.res2 = ConvBN(c_out, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.conv(x))
        return x + self.res2(self.res1(x)) if self.residual else x


class ResNet9(nn.Module):
    """ResNet9 for 32x32 RGB. Input (batch, 3, 32, 32) float; output (batch, n_classes) logits."""

    def __init__(self, width: int = 8, n_classes: int = 10):
        super().__init__()
        self.width, self.n_classes = width, n_classes
        self.prep = ConvBN(3, width)
        self.layer1 = Stage(width, 2 * width, True)
        self.layer2 = Stage(2 * width, 4 * width, False)
        self.layer3 = Stage(4 * width, 8 * width, True)
        self.head = nn.Linear(8 * width, n_classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.prep(x))))
        return self.head(torch.amax(x, dim=(2, 3))) * 0.125


def count_parameters(state: dict[str, torch.Tensor]) -> int:
    """Trainable parameter count of a state dict (batch-norm running statistics excluded)."""
    skip = ("running_mean", "running_var", "num_batches_tracked")
    return int(sum(t.numel() for k, t in state.items() if not k.endswith(skip)))
