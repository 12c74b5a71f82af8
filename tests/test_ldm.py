"""LatentDiffusion: shapes, determinism, and clear errors for bad input."""

import pytest
import torch
from tiny import tiny_text, tiny_unet

from ldm_mini.autoencoder import AutoencoderConfig
from ldm_mini.ldm import LatentDiffusion, LDMConfig
from ldm_mini.unet import UNetConfig

AE = AutoencoderConfig(f=2, reg="kl", base_channels=8, latent_channels=2, attn_mid=False)
UNET = tiny_unet()
TEXT = tiny_text()


def _ldm(**kw):
    torch.manual_seed(0)
    return LatentDiffusion(LDMConfig(autoencoder=AE, unet=UNET, text=TEXT, image_size=16, **kw)).eval()


def test_generate_is_deterministic_with_eta_zero_and_seeded():
    ldm = _ldm()
    with torch.no_grad():  # a trained-looking UNet: perturb the zero-initialised output layer
        ldm.unet.out[-1].weight.normal_(0, 0.1)
    a = ldm.generate(["a red circle", "a blue square"], steps=4, seed=3)
    b = ldm.generate(["a red circle", "a blue square"], steps=4, seed=3)
    c = ldm.generate(["a red circle", "a blue square"], steps=4, seed=4)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (2, 3, 16, 16) and a.min() >= 0 and a.max() <= 1


def test_encode_decode_apply_the_latent_scale():
    ldm = _ldm()
    ldm.autoencoder.scale_factor.fill_(2.0)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    z = ldm.encode(x)
    assert torch.allclose(z, 2.0 * ldm.autoencoder.encode_latent(x))
    assert torch.allclose(ldm.decode(z), ldm.autoencoder.decode(z / 2.0).clamp(-1, 1))


def test_caption_dropout_rate():
    ldm = _ldm(cond_drop=1.0)
    z0 = torch.randn(4, 2, 8, 8)
    tokens = ldm.tokens(["a red circle"] * 4)
    seen = []
    original = ldm.text_encoder.forward
    ldm.text_encoder.forward = lambda t, mask=None: (seen.append(t.clone()), original(t, mask))[1]
    ldm.loss(z0, tokens, torch.Generator().manual_seed(0))
    empty = ldm.tokens([""])
    assert torch.equal(seen[0], empty.expand(4, -1))  # every caption replaced by ""


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"captions": []}, "no captions"),
        ({"guidance": -1.0}, "guidance"),
        ({"eta": 1.5}, "eta"),
        ({"steps": 0}, "steps"),
        ({"steps": 1001}, "T=1000"),
        ({"sampler": "euler"}, "sampler"),
        ({"captions": ["a red car"]}, "car"),
    ],
)
def test_bad_sampling_input_gets_a_clear_error(kwargs, message):
    args = {"captions": ["a red circle"], "steps": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        _ldm().generate(**args)


def test_config_mismatch_between_unet_and_latent_is_refused():
    with pytest.raises(ValueError, match="in_channels=2"):
        LDMConfig(autoencoder=AE, unet=UNetConfig(in_channels=4, out_channels=4, context_dim=8), text=TEXT)
    with pytest.raises(ValueError, match="context_dim"):
        LDMConfig(autoencoder=AE, unet=UNetConfig(in_channels=2, out_channels=2, context_dim=16), text=TEXT)


def test_pixel_space_model_has_no_autoencoder():
    unet = UNetConfig(
        in_channels=3,
        out_channels=3,
        model_channels=8,
        channel_mult=(1, 2),
        attention_levels=(1,),
        num_heads=2,
        context_dim=8,
    )
    ldm = LatentDiffusion(LDMConfig(autoencoder=None, unet=unet, text=TEXT, image_size=16))
    assert ldm.config.f == 1 and ldm.latent_shape == (3, 16, 16)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    assert torch.equal(ldm.encode(x), x)
