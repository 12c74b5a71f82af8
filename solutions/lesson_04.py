"""Reference solutions of lesson 04's exercises (ldm_mini/lessons/exercises/lesson_04.py)."""

import dataclasses

import torch

import ldm_mini
from ldm_mini.unet import UNet


def solution_1():
    # Eq. 3's maps in CrossAttention: Q = W_Q phi (c -> c), K = W_K tau (d_tau -> c), V = W_V tau (d_tau -> c),
    # no biases; then to_out (c -> c) with a bias. At 4 x 4 the width is c = 64 * 2 = 128; d_tau = 64.
    c, d_tau = 128, 64
    return c * c + 2 * d_tau * c + (c * c + c)


def solution_2():
    config = ldm_mini.load_pretrained("shapes-kl-f4").unet.config
    shipped = UNet(config)
    wider = UNet(dataclasses.replace(config, attention_levels=(0, 1, 2)))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    return count(wider) - count(shipped)


def solution_3():
    # Prediction: only the final conv. Every gradient upstream of it passes through its all-zero weights.
    # The test: one backward pass through a fresh UNet.
    config = ldm_mini.load_pretrained("shapes-kl-f4").unet.config
    torch.manual_seed(0)
    fresh = UNet(config)
    eps_theta = fresh(torch.randn(4, 4, 8, 8), torch.tensor([0, 250, 500, 999]), torch.randn(4, 16, config.context_dim))
    ((eps_theta - torch.randn(4, 4, 8, 8)) ** 2).mean().backward()
    with_grad = [n for n, p in fresh.named_parameters() if p.grad.abs().max() > 0]
    assert with_grad == ["out.2.weight", "out.2.bias"], with_grad
    return "final conv"
