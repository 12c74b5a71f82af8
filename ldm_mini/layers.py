"""Building blocks shared by the autoencoder (E, D) and the UNet (eps_theta).

- ``Downsample`` / ``Upsample``: halve or double h and w, the same layers in both networks;
- ``zero_module``: a layer that starts as "add nothing" (the last layer of a residual branch);
- the GroupNorm rule of each network (see ``norm_groups``);
- ``eval_mode``: run a module in eval mode for a block, then restore its mode.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch.nn.functional as F
from torch import nn


def norm_groups(channels: int, max_groups: int = 32, min_per_group: int = 4) -> int:
    """The largest GroupNorm group count <= ``max_groups`` that divides ``channels`` and keeps at
    least ``min_per_group`` channels in each group.

    The reference uses 32 groups on >= 128 channels, i.e. >= 4 channels per group. Our models
    are narrower, so we keep >= 4 channels per group (fewer groups) rather than fall back to a
    per-channel (instance) norm, which discards each channel's mean and scale.
    """
    best = 1
    for g in range(1, min(max_groups, channels) + 1):
        if channels % g == 0 and channels // g >= min(min_per_group, channels):
            best = g
    return best


def autoencoder_norm(channels: int) -> nn.GroupNorm:
    """The autoencoder's GroupNorm: ``norm_groups`` (>= 4 channels a group), eps 1e-6 as the reference."""
    return nn.GroupNorm(norm_groups(channels), channels, eps=1e-6)


def unet_norm(channels: int) -> nn.GroupNorm:
    """The UNet's GroupNorm: gcd(32, channels // 2) groups, so each group keeps at least 2 channels
    and a 1x1 middle (f = 16 latents of 2x2) still has more than one value per group.

    Not the autoencoder's rule, on purpose: the group count is not stored in a checkpoint, so
    unifying the two rules would load the shipped models silently and change every output
    (e.g. 96 channels: 16 groups here, 24 with ``norm_groups``). docs/CONVENTIONS.md, "GroupNorm"."""
    return nn.GroupNorm(math.gcd(32, max(1, channels // 2)), channels)


def zero_module(module: nn.Module) -> nn.Module:
    """Zero a layer's parameters, so the residual branch it ends starts as 'add nothing'."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class Downsample(nn.Module):
    """Halve h and w with a stride-2 3x3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x):  # b c h w -> b c h/2 w/2
        return self.conv(x)


class Upsample(nn.Module):
    """Double h and w: nearest-neighbour upsampling, then a 3x3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):  # b c h w -> b c 2h 2w
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


@contextmanager
def eval_mode(module: nn.Module):
    """Within this block ``module`` is in eval mode (no dropout, frozen norms); afterwards it is
    back in the mode it had, even if the block raised."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)
