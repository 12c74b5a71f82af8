"""Property tests: the shape contracts of E, D and eps_theta hold over many configurations."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ldm_mini.autoencoder import Autoencoder, AutoencoderConfig
from ldm_mini.unet import UNet, UNetConfig

SETTINGS = settings(max_examples=12, deadline=None)


@SETTINGS
@given(
    f=st.sampled_from([1, 2, 4, 8, 16]),
    reg=st.sampled_from(["kl", "vq"]),
    multiple=st.integers(1, 2),
    batch=st.integers(1, 3),
    c=st.integers(1, 4),
)
def test_autoencoder_shapes(f, reg, multiple, batch, c):
    H = 16 * multiple
    config = AutoencoderConfig(f=f, reg=reg, base_channels=8, latent_channels=c, attn_mid=False, vq_codebook_size=16)
    ae = Autoencoder(config).eval()
    x = torch.rand(batch, 3, H, H) * 2 - 1
    with torch.no_grad():
        z = ae.encode_latent(x)
        assert z.shape == (batch, c, H // f, H // f) == (batch, *ae.latent_shape(H, H))
        assert ae.decode(z).shape == x.shape
        x_rec, aux = ae(x)
        assert x_rec.shape == x.shape and aux["reg_loss"].ndim == 0


@SETTINGS
@given(f=st.sampled_from([2, 4, 8, 16]), data=st.data())
def test_autoencoder_refuses_sizes_not_divisible_by_f(f, data):
    ae = Autoencoder(AutoencoderConfig(f=f, base_channels=8, attn_mid=False))
    H = 32 + data.draw(st.integers(1, f - 1))
    with pytest.raises(ValueError, match=f"not divisible by f={f}"):
        ae.encode(torch.zeros(1, 3, H, 32))


@SETTINGS
@given(
    size=st.sampled_from([4, 8, 16]),
    levels=st.integers(1, 3),
    channels=st.integers(1, 4),
    batch=st.integers(1, 3),
    tokens=st.integers(1, 6),
    concat=st.integers(0, 2),
)
def test_unet_output_matches_input(size, levels, channels, batch, tokens, concat):
    mult = (1, 2, 2)[:levels]
    config = UNetConfig(
        in_channels=channels, out_channels=channels, model_channels=8, channel_mult=mult,
        attention_levels=tuple(range(1, levels)), num_heads=2, context_dim=8, concat_channels=concat,
    )
    unet = UNet(config).train()  # train mode: GroupNorm must cope with a 1x1 middle too
    x = torch.randn(batch, channels, size, size)
    t = torch.randint(0, 1000, (batch,))
    ctx = torch.randn(batch, tokens, 8)
    extra = torch.randn(batch, concat, size, size) if concat else None
    with torch.no_grad():
        out = unet(x, t, ctx, concat=extra)
    assert out.shape == x.shape
    assert torch.count_nonzero(out) == 0  # zero-initialised output layer: a fresh UNet predicts 0
