"""The view functions behind the panels of lessons 03 (forward noising) and 06 (sampling)."""

import math

import pytest
import torch
from tiny import tiny_text, tiny_unet

from ldm_mini.diffusion import NoiseSchedule
from ldm_mini.lessons.widgets import noising_view, sampling_view


@pytest.fixture(scope="module")
def sd():
    return NoiseSchedule.linear(T=1000, beta_start=0.00085, beta_end=0.012)


def _image_and_latent():
    g = torch.Generator().manual_seed(3)
    x0 = torch.rand(3, 16, 16, generator=g) * 2 - 1  # an "image" in [-1, 1]
    z0 = torch.randn(4, 4, 4, generator=g)  # its "latent"
    return x0, z0


# ---------------------------------------------------------------------------- lesson 03: noising_view
def test_noising_view_follows_the_closed_form_with_fixed_noise(sd):
    x0, z0 = _image_and_latent()
    seen = []

    def decode(z):  # records what it is given; "decodes" by upsampling the first 3 channels
        seen.append(z.clone())
        return torch.nn.functional.interpolate(z[:, :3], scale_factor=4).clamp(-1, 1)

    v = noising_view(x0, z0, 499, sd, decode, seed=7)
    g = torch.Generator().manual_seed(7)
    eps_x, eps_z = torch.randn(x0.shape, generator=g), torch.randn(z0.shape, generator=g)
    a = sd.alphas_cumprod[499].item()
    assert torch.allclose(v["x_t"], math.sqrt(a) * x0 + math.sqrt(1 - a) * eps_x, atol=1e-6)
    assert torch.allclose(v["z_t"], math.sqrt(a) * z0 + math.sqrt(1 - a) * eps_z, atol=1e-6)
    assert len(seen) == 1 and seen[0].shape == (1, 4, 4, 4) and torch.equal(seen[0][0], v["z_t"])
    assert v["x_t_image"].shape == (3, 16, 16) and v["z_t_decoded"].shape == (3, 16, 16)
    assert 0 <= v["x_t_image"].min() and v["x_t_image"].max() <= 1
    assert torch.allclose(v["x_t_image"], ((v["x_t"] + 1) / 2).clamp(0, 1))
    assert v["alpha_bar"] == pytest.approx(a) and v["snr"] == pytest.approx(a / (1 - a))
    assert v["log_snr"] == pytest.approx(math.log(a / (1 - a)))


def test_noising_view_pinned_ends_and_same_noise_for_every_t(sd):
    x0, z0 = _image_and_latent()
    first = noising_view(x0, z0, 0, sd, lambda z: z[:, :3], seed=0)
    last = noising_view(x0, z0, 999, sd, lambda z: z[:, :3], seed=0)
    assert first["alpha_bar"] == pytest.approx(0.99915, abs=1e-9)
    assert first["snr"] == pytest.approx(0.99915 / 0.00085, rel=1e-6)   # 1175.5: almost clean
    assert math.sqrt(last["alpha_bar"]) == pytest.approx(0.068265, abs=1e-6)
    assert last["log_snr"] == pytest.approx(math.log(0.068265**2 / (1 - 0.068265**2)), abs=1e-3)
    # moving t re-weights the same noise: eps recovered from both ends is identical
    eps = [(v["z_t"] - math.sqrt(v["alpha_bar"]) * z0) / math.sqrt(1 - v["alpha_bar"]) for v in (first, last)]
    assert torch.allclose(eps[0], eps[1], atol=1e-3)
    # another seed, another noise
    other = noising_view(x0, z0, 999, sd, lambda z: z[:, :3], seed=1)
    assert not torch.allclose(other["z_t"], last["z_t"])


def test_noising_view_rejects_bad_input(sd):
    x0, z0 = _image_and_latent()
    with pytest.raises(ValueError, match=r"t=1000 is outside the schedule: pick t in \[0, 999\]"):
        noising_view(x0, z0, 1000, sd, lambda z: z[:, :3])
    with pytest.raises(ValueError, match="one image"):
        noising_view(x0[None], z0, 10, sd, lambda z: z[:, :3])


# ---------------------------------------------------------------------------- lesson 06: sampling_view
def _tiny_ldm(perturb: bool = True):
    """A tiny untrained LDM (as tests/test_train.py); `perturb` gives its zero-initialised layers
    random weights, so the UNet's output, and thus guidance, is not exactly 0."""
    from ldm_mini.autoencoder import AutoencoderConfig
    from ldm_mini.ldm import LatentDiffusion, LDMConfig

    config = LDMConfig(
        autoencoder=AutoencoderConfig(f=2, reg="kl", base_channels=8, latent_channels=2, attn_mid=False),
        unet=tiny_unet(),
        text=tiny_text(),
        image_size=16,
    )
    torch.manual_seed(0)
    ldm = LatentDiffusion(config).eval()
    if perturb:
        torch.manual_seed(1)
        with torch.no_grad():
            for p in ldm.unet.parameters():
                if p.abs().max() == 0:
                    p.normal_(0, 0.2)
    return ldm


@pytest.fixture(scope="module")
def ldm():
    return _tiny_ldm()


CAPTIONS = ["a red circle", "a blue square above a green triangle"]


def test_sampling_view_images_and_unet_calls(ldm):
    v = sampling_view(ldm, CAPTIONS, steps=3, eta=0.0, guidance=3.0, seed=0)
    assert v["images"].shape == (2, 3, 16, 16)
    assert 0 <= v["images"].min() and v["images"].max() <= 1
    assert v["seconds"] > 0
    assert v["unet_evals"] == 6            # guided: [uncond; cond] in one batch, per step
    assert sampling_view(ldm, CAPTIONS, steps=3, guidance=1.0)["unet_evals"] == 3   # conditional only
    assert sampling_view(ldm, CAPTIONS, steps=4, guidance=0.0)["unet_evals"] == 4   # unconditional only
    # the hook is removed afterwards
    assert not ldm.unet._forward_hooks


def test_sampling_view_matches_generate_and_is_deterministic_at_eta_0(ldm):
    a = sampling_view(ldm, CAPTIONS, steps=4, eta=0.0, guidance=3.0, seed=5)["images"]
    b = sampling_view(ldm, CAPTIONS, steps=4, eta=0.0, guidance=3.0, seed=5)["images"]
    assert torch.equal(a, b)
    assert torch.equal(a, ldm.generate(CAPTIONS, steps=4, guidance=3.0, eta=0.0, seed=5))
    # each control changes the picture
    assert not torch.equal(a, sampling_view(ldm, CAPTIONS, steps=4, eta=0.0, guidance=3.0, seed=6)["images"])
    assert not torch.equal(a, sampling_view(ldm, CAPTIONS, steps=4, eta=0.0, guidance=0.0, seed=5)["images"])
    assert not torch.equal(a, sampling_view(ldm, CAPTIONS, steps=4, eta=1.0, guidance=3.0, seed=5)["images"])
    assert not torch.equal(a, sampling_view(ldm, CAPTIONS, steps=2, eta=0.0, guidance=3.0, seed=5)["images"])


def test_sampling_view_accepts_one_caption_and_rejects_bad_controls(ldm):
    assert sampling_view(ldm, "a red circle", steps=2)["images"].shape == (1, 3, 16, 16)
    with pytest.raises(ValueError, match="eta"):
        sampling_view(ldm, CAPTIONS, steps=2, eta=1.5)
    with pytest.raises(ValueError, match="guidance"):
        sampling_view(ldm, CAPTIONS, steps=2, guidance=-1.0)
    with pytest.raises(ValueError, match="steps"):
        sampling_view(ldm, CAPTIONS, steps=0)
    assert not ldm.unet._forward_hooks    # removed even when generate raised
