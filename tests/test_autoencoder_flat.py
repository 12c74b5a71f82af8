"""FlatLatentAutoencoder: the 1D-latent twin of Autoencoder used in lesson 02."""

import pytest
import torch

from ldm_mini.autoencoder import Autoencoder, AutoencoderConfig
from ldm_mini.experiments.flat_latent import FlatLatentAutoencoder


def config(f=4, **kw):
    return AutoencoderConfig(f=f, reg="kl", base_channels=8, **kw)


@pytest.mark.parametrize("f", [2, 4, 8])
def test_same_number_of_latent_numbers_as_the_2d_latent(f):
    torch.manual_seed(0)
    flat, grid = FlatLatentAutoencoder(config(f), image_size=32), Autoencoder(config(f))
    c, h, w = grid.latent_shape(32, 32)
    assert flat.latent_dim == c * h * w == 4 * (32 // f) ** 2
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    z = flat.encode_latent(x)
    assert z.shape == (2, c * h * w)
    x_rec, aux = flat(x)
    assert x_rec.shape == x.shape
    torch.testing.assert_close(aux["z"], z)
    assert aux["reg_loss"].item() == 0.0
    torch.testing.assert_close(flat.decode(z), x_rec)


def test_trunks_are_those_of_the_2d_autoencoder():
    flat, grid = FlatLatentAutoencoder(config(4)), Autoencoder(config(4))
    shapes = lambda m: {k: tuple(v.shape) for k, v in m.state_dict().items()}  # noqa: E731
    grid_enc = {k: s for k, s in shapes(grid.encoder).items() if not k.startswith("conv_out.")}
    grid_dec = {k: s for k, s in shapes(grid.decoder).items() if not k.startswith("conv_in.")}
    assert shapes(flat.encoder) == grid_enc
    assert shapes(flat.decoder) == grid_dec
    # trunk: 8 * 2 = 16 channels at 8x8; the Linear layers map 16*8*8 = 1024 <-> 256 numbers
    assert flat.trunk_shape == (16, 8, 8)
    assert flat.to_latent.weight.shape == (256, 1024) and flat.from_latent.weight.shape == (1024, 256)
    n_flat = sum(p.numel() for p in flat.parameters())
    n_trunks = sum(p.numel() for p in flat.encoder.parameters()) + sum(p.numel() for p in flat.decoder.parameters())
    assert n_flat - n_trunks == 2 * 1024 * 256 + 256 + 1024


def test_bad_inputs_are_named():
    flat = FlatLatentAutoencoder(config(4), image_size=32)
    with pytest.raises(ValueError, match=r"\(b, 3, 32, 32\).*image_size"):
        flat.encode_latent(torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match=r"\(b, 256\)"):
        flat.decode(torch.zeros(1, 4, 8, 8))
    with pytest.raises(ValueError, match="not divisible by f=4"):
        FlatLatentAutoencoder(config(4), image_size=30)


def test_it_learns_to_reconstruct_a_fixed_batch():
    torch.manual_seed(0)
    flat = FlatLatentAutoencoder(config(4), image_size=16)
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    opt = torch.optim.Adam(flat.parameters(), lr=2e-3)
    losses = []
    for _ in range(40):
        loss = (flat(x)[0] - x).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]
