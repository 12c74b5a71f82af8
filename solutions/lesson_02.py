"""Reference solutions of lesson 02's exercises (try them first)."""

import math

import torch


def solution_1():
    # one element: 0.5 (mean^2 + var - 1 - ln var) nats; 4 x 8 x 8 elements; nats -> bits; / (3 H W)
    per_element = 0.5 * (0.5**2 + 0.25 - 1 - math.log(0.25))
    return per_element * 4 * 8 * 8 / math.log(2) / (3 * 32 * 32)


def solution_2():
    from torch import nn

    from ldm_mini.losses import NLayerDiscriminator

    for n_layers in (2, 1, 0):  # the receptive-field walk of section 3, on fewer layers
        disc = NLayerDiscriminator(n_layers=n_layers)
        size = 1
        for conv in reversed([m for m in disc.main if isinstance(m, nn.Conv2d)]):
            size = (size - 1) * conv.stride[0] + conv.kernel_size[0]
        if size <= 16:
            return disc(torch.zeros(1, 3, 32, 32))[0, 0].numel()


def solution_3():
    return "resize"  # then run the check: it measures both
