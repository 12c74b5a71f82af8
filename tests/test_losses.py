import math

import pytest
import torch
from torch import nn

from ldm_mini.autoencoder import Autoencoder, AutoencoderConfig
from ldm_mini.losses import (
    AutoencoderLoss,
    AutoencoderLossConfig,
    NLayerDiscriminator,
    PerceptualLoss,
    adaptive_weight,
    generator_adv_loss,
    hinge_d_loss,
    normalize_channels,
)


class TwoLayerFeatures(nn.Module):
    """A stand-in for the attribute classifier: features(x) -> list of feature maps."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.drop = nn.Dropout(0.5)

    def features(self, x):
        h1 = torch.relu(self.conv1(x))
        h2 = self.drop(self.conv2(h1))
        return [h1, h2]


# ---------------------------------------------------------------------------- perceptual


def test_perceptual_disabled_is_zero():
    loss = PerceptualLoss(None)
    x = torch.randn(3, 3, 8, 8)
    assert torch.equal(loss(x, x + 1), torch.zeros(3))


def test_perceptual_matches_hand_computation_and_is_frozen():
    torch.manual_seed(0)
    net = TwoLayerFeatures()
    loss = PerceptualLoss(net).train()  # the feature net must stay in eval (dropout off)
    assert not net.training
    assert all(not p.requires_grad for p in net.parameters())
    x, y = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    expected = torch.zeros(2)
    for fx, fy in zip(net.features(x), net.features(y)):
        nx = fx / (fx.norm(dim=1, keepdim=True) + 1e-10)  # ReLU features can be all zero
        ny = fy / (fy.norm(dim=1, keepdim=True) + 1e-10)
        expected += ((nx - ny) ** 2).sum(1).mean(dim=(1, 2))
    d = loss(x, y)
    assert torch.allclose(d, expected, atol=1e-5)
    assert torch.all(d > 0) and torch.all(d <= 4 * 2)  # unit vectors: at most 4 per layer
    assert torch.allclose(loss(x, x), torch.zeros(2))
    # gradients reach the input even though the feature net is frozen
    y.requires_grad_(True)
    loss(x, y).sum().backward()
    assert y.grad.abs().sum() > 0


def test_perceptual_accepts_callable_returning_tensor():
    net = nn.Conv2d(3, 2, 1)
    d = PerceptualLoss(net)(torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4))
    assert d.shape == (2,)


def test_normalize_channels_unit_length():
    f = torch.randn(2, 5, 3, 3)
    assert torch.allclose(normalize_channels(f).norm(dim=1), torch.ones(2, 3, 3), atol=1e-6)


# ---------------------------------------------------------------------------- adversarial


def test_patch_discriminator_shape_and_init():
    torch.manual_seed(0)
    d = NLayerDiscriminator(3, base_channels=16, n_layers=2)
    assert d(torch.randn(2, 3, 32, 32)).shape == (2, 1, 6, 6)
    assert NLayerDiscriminator(3, 16, n_layers=3)(torch.randn(1, 3, 64, 64)).shape == (1, 1, 6, 6)
    first = d.main[0].weight
    assert abs(first.std().item() - 0.02) < 0.004 and abs(first.mean().item()) < 0.005


def test_hinge_and_generator_losses():
    real = torch.tensor([2.0, 0.5, -1.0])  # relu(1 - r) = 0, 0.5, 2 -> mean 5/6
    fake = torch.tensor([-2.0, 0.0, 1.0])  # relu(1 + f) = 0, 1, 2  -> mean 1
    assert hinge_d_loss(real, fake).item() == pytest.approx(0.5 * (5 / 6 + 1))
    assert generator_adv_loss(fake).item() == pytest.approx(1 / 3)


def test_adaptive_weight_by_hand():
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    rec = (3.0 * w).sum()  # grad (3, 3): norm 3 sqrt 2
    g = (w**2).sum()  # grad (2, 4): norm sqrt 20
    lam = adaptive_weight(rec, g, w)
    assert lam.item() == pytest.approx(3 * math.sqrt(2) / (math.sqrt(20) + 1e-4), rel=1e-6)
    assert not lam.requires_grad
    assert adaptive_weight((1e9 * w).sum(), (0 * w).sum(), w).item() == 1e4  # clamped


def test_adaptive_weight_on_tiny_autoencoder():
    torch.manual_seed(0)
    ae = Autoencoder(AutoencoderConfig(f=4, base_channels=8))
    disc = NLayerDiscriminator(3, base_channels=8)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    x_rec, _ = ae(x)
    rec = (x - x_rec).abs().mean()
    lam = adaptive_weight(rec, generator_adv_loss(disc(x_rec)), ae.last_layer())
    assert torch.isfinite(lam) and 0 < lam.item() < 1e4


# ---------------------------------------------------------------------------- AutoencoderLoss


@pytest.mark.parametrize("reg", ["kl", "vq"])
def test_generator_loss_warmup_and_weights(reg):
    torch.manual_seed(0)
    ae = Autoencoder(AutoencoderConfig(f=4, reg=reg, base_channels=8, vq_codebook_size=16))
    cfg = AutoencoderLossConfig(disc_start=5, disc_channels=8, kl_weight=0.1, codebook_weight=2.0)
    lossf = AutoencoderLoss(cfg, feature_net=TwoLayerFeatures())
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    x_rec, aux = ae(x)

    loss, logs = lossf.generator_loss(x, x_rec, aux, step=0, last_layer=ae.last_layer())
    w = 0.1 if reg == "kl" else 2.0
    expected = logs["l1"] + logs["perceptual"] + w * logs["reg"]
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert logs["g_loss"] == 0.0 and logs["d_weight"] == 0.0  # discriminator still off
    assert logs["l1"] == pytest.approx((x - x_rec).abs().mean().item(), rel=1e-6)
    assert logs["perceptual"] > 0

    loss, logs = lossf.generator_loss(x, x_rec, aux, step=5, last_layer=ae.last_layer())
    assert logs["d_weight"] > 0
    expected += cfg.disc_weight * logs["d_weight"] * logs["g_loss"]
    assert loss.item() == pytest.approx(expected, rel=1e-4, abs=1e-6)
    loss.backward()
    assert ae.last_layer().grad is not None
    if reg == "vq":
        assert 0 < logs["usage"] <= 1 and logs["perplexity"] >= 1


def test_discriminator_loss_warmup():
    torch.manual_seed(0)
    lossf = AutoencoderLoss(AutoencoderLossConfig(disc_start=3, disc_channels=8))
    x, x_rec = torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16, requires_grad=True)
    d0, _ = lossf.discriminator_loss(x, x_rec, step=2)
    assert d0.item() == 0.0 and not lossf.disc_active(2)
    d1, logs = lossf.discriminator_loss(x, x_rec, step=3)
    assert d1.item() > 0 and lossf.disc_active(3)
    d1.backward()
    assert x_rec.grad is None  # the discriminator step does not train the autoencoder
    assert lossf.discriminator.main[0].weight.grad is not None
