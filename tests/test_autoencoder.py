import math

import pytest
import torch

from ldm_mini.autoencoder import (
    Autoencoder,
    AutoencoderConfig,
    DiagonalGaussian,
    VectorQuantizer,
    codebook_stats,
)
from ldm_mini.layers import norm_groups


def tiny(f=4, reg="kl", **kw):
    return AutoencoderConfig(f=f, reg=reg, base_channels=8, **kw)


# ---------------------------------------------------------------------------- config and shapes


@pytest.mark.parametrize("reg", ["kl", "vq"])
@pytest.mark.parametrize("f", [1, 2, 4, 8, 16])
def test_shapes_every_f(f, reg):
    torch.manual_seed(0)
    ae = Autoencoder(tiny(f, reg))
    x = torch.randn(2, 3, 32, 32)
    z = ae.encode_latent(x)
    assert z.shape == (2, 4, 32 // f, 32 // f)
    assert ae.latent_shape(32, 32) == (4, 32 // f, 32 // f)
    assert ae.decode(z).shape == x.shape
    x_rec, aux = ae(x)
    assert x_rec.shape == x.shape
    assert aux["reg_loss"].ndim == 0 and torch.isfinite(aux["reg_loss"])
    if reg == "kl":
        assert ae.encode(x).mean.shape == z.shape
        assert aux["kl"].shape == (2,)
    else:
        assert aux["indices"].shape == (2, 32 // f, 32 // f)


def test_channel_mult_derived_and_capped():
    assert AutoencoderConfig(f=1).channel_mult == (1,)
    assert AutoencoderConfig(f=4).channel_mult == (1, 2, 2)
    assert AutoencoderConfig(f=16).channel_mult == (1, 2, 2, 2, 2)
    with pytest.raises(ValueError, match="log2"):
        AutoencoderConfig(f=4, channel_mult=(1, 2))


def test_unknown_f_and_reg():
    with pytest.raises(ValueError, match=r"f=3 .*\(1, 2, 4, 8, 16\)"):
        AutoencoderConfig(f=3)
    with pytest.raises(ValueError, match="'ae'.*'kl', 'vq'"):
        AutoencoderConfig(reg="ae")


def test_bad_image_size_and_channels():
    ae = Autoencoder(tiny(4))
    with pytest.raises(ValueError, match=r"30x30 is not divisible by f=4.*multiple of 4 \(e.g. 32x32\)"):
        ae.encode(torch.randn(1, 3, 30, 30))
    with pytest.raises(ValueError, match="expected 3 image channels, got 1"):
        ae(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match="batch dimension"):
        ae.encode(torch.randn(3, 32, 32))
    with pytest.raises(ValueError, match="latents shaped"):
        ae.decode(torch.randn(1, 3, 8, 8))


def test_norm_groups_divide_channels():
    assert norm_groups(128) == 32
    assert norm_groups(32) == 8  # >= 4 channels per group
    assert norm_groups(8) == 2
    assert norm_groups(3) == 1
    for c in (4, 6, 12, 24, 40, 96):
        assert c % norm_groups(c) == 0


# ---------------------------------------------------------------------------- KL-reg


def test_kl_matches_hand_computation():
    mean = torch.tensor([[[[0.5, -1.0]]], [[[0.0, 0.0]]]])  # b=2, c=1, h=1, w=2
    logvar = torch.tensor([[[[0.0, math.log(2.0)]]], [[[0.0, 0.0]]]])
    post = DiagonalGaussian(torch.cat([mean, logvar], dim=1))
    # 0.5 * [(0.25 + 1 - 1 - 0) + (1 + 2 - 1 - ln 2)]
    expected0 = 0.5 * (0.25 + 2.0 - math.log(2.0))
    assert torch.allclose(post.kl(), torch.tensor([expected0, 0.0]), atol=1e-6)
    assert torch.equal(post.mode(), mean)


def test_logvar_clamped():
    params = torch.cat([torch.zeros(1, 1, 1, 2), torch.tensor([[[[-100.0, 100.0]]]])], dim=1)
    post = DiagonalGaussian(params)
    assert post.logvar.flatten().tolist() == [-30.0, 20.0]
    assert torch.allclose(post.std, torch.exp(torch.tensor([-15.0, 10.0])).view(1, 1, 1, 2))


def test_posterior_sample_uses_generator():
    params = torch.cat([torch.full((1, 2, 3, 3), 1.0), torch.full((1, 2, 3, 3), math.log(4.0))], dim=1)
    post = DiagonalGaussian(params)
    a = post.sample(torch.Generator().manual_seed(1))
    b = post.sample(torch.Generator().manual_seed(1))
    eps = torch.randn(1, 2, 3, 3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert torch.allclose(a, 1.0 + 2.0 * eps)


def test_kl_forward_reg_loss_is_nats_per_dim():
    torch.manual_seed(0)
    ae = Autoencoder(tiny(4))
    x = torch.randn(2, 3, 16, 16)
    _, aux = ae(x)
    assert torch.allclose(aux["reg_loss"], aux["kl"].mean() / (3 * 16 * 16))


# ---------------------------------------------------------------------------- VQ-reg


def known_quantizer():
    vq = VectorQuantizer(num_codes=3, dim=2, beta=0.25, dead_code_restart=False)
    with torch.no_grad():
        vq.codebook.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0], [-2.0, 0.0]]))
    return vq


def test_vq_nearest_code_and_loss_by_hand():
    vq = known_quantizer()
    # two latent vectors at positions (0,0) and (0,1): (0.2, -0.1) -> code 0, (0.9, 1.3) -> code 1
    z = torch.tensor([[0.2, 0.9], [-0.1, 1.3]]).view(1, 2, 1, 2)  # b c h w
    z_q, info = vq(z)
    assert info["indices"].tolist() == [[[0, 1]]]
    assert torch.allclose(z_q, torch.tensor([[0.0, 1.0], [0.0, 1.0]]).view(1, 2, 1, 2))
    sq = (0.2**2 + 0.1**2 + 0.1**2 + 0.3**2) / 4  # mean squared distance over the 4 elements
    assert info["loss"].item() == pytest.approx((1 + 0.25) * sq, rel=1e-5)


def test_vq_loss_gradients_split_by_beta():
    vq = known_quantizer()
    z = torch.tensor([[0.2], [-0.1]]).view(1, 2, 1, 1).requires_grad_(True)
    _, info = vq(z)
    info["loss"].backward()
    # d/dz beta * mean((z - e)^2) = beta * 2 (z - e) / n; codebook term: 2 (e - z) / n, n = 2
    assert torch.allclose(z.grad.flatten(), 0.25 * (z.detach().flatten() - 0.0))
    assert torch.allclose(vq.codebook.weight.grad[0], -(z.detach().flatten()))
    assert torch.all(vq.codebook.weight.grad[1:] == 0)


def test_vq_straight_through_identity_jacobian():
    vq = known_quantizer()
    z = torch.randn(2, 2, 3, 3, requires_grad=True)
    z_q, _ = vq(z)
    w = torch.randn_like(z_q)
    (z_q * w).sum().backward()
    assert torch.equal(z.grad, w)  # dz_q/dz = I


def test_perplexity_of_uniform_usage():
    counts = torch.tensor([5, 5, 0, 5, 5, 0, 0, 0])
    usage, perplexity = codebook_stats(counts)
    assert usage.item() == pytest.approx(0.5)
    assert perplexity.item() == pytest.approx(4.0, rel=1e-6)
    usage, perplexity = codebook_stats(torch.tensor([10, 0, 0]))
    assert perplexity.item() == pytest.approx(1.0)


def test_dead_code_restart_moves_unused_code():
    torch.manual_seed(0)
    vq = VectorQuantizer(num_codes=4, dim=2, restart_after=2)
    with torch.no_grad():
        vq.codebook.weight.copy_(torch.tensor([[0.0, 0.0], [0.1, 0.0], [50.0, 50.0], [-50.0, 50.0]]))
    z = torch.randn(1, 2, 4, 4) * 0.1  # only codes 0 and 1 are ever nearest
    vq.train()
    vq(z)
    assert torch.equal(vq.codebook.weight[2], torch.tensor([50.0, 50.0]))  # unused once: kept
    _, info = vq(z)
    z_rows = z.permute(0, 2, 3, 1).reshape(-1, 2)
    for k in (2, 3):  # unused twice: re-initialised to one of the batch's encoder outputs
        assert (vq.codebook.weight[k] - z_rows).abs().sum(1).min() == 0
    assert torch.equal(vq.codebook.weight[:2], torch.tensor([[0.0, 0.0], [0.1, 0.0]]))  # used codes untouched
    assert info["usage"].item() == pytest.approx(0.5)
    vq.eval()
    vq.unused_steps.fill_(100)
    before = vq.codebook.weight.clone()
    vq(torch.full((1, 2, 2, 2), 0.05))
    assert torch.equal(vq.codebook.weight, before)  # no restarts at evaluation


def test_vq_restart_then_backward_works():
    torch.manual_seed(0)
    ae = Autoencoder(tiny(4, "vq", vq_codebook_size=16, vq_restart_after=1))
    x = torch.randn(2, 3, 16, 16)
    x_rec, aux = ae(x)
    ((x_rec - x).abs().mean() + aux["reg_loss"]).backward()  # in-place restart must not break autograd
    assert ae.quantizer.codebook.weight.grad is not None


def test_vq_decode_quantises_first():
    torch.manual_seed(0)
    ae = Autoencoder(tiny(4, "vq", vq_codebook_size=8)).eval()
    z = ae.encode_latent(torch.randn(1, 3, 16, 16))
    z_q, _ = ae.quantize(z)
    assert torch.allclose(ae.decode(z), ae.decode(z_q), atol=1e-5)
    ae.train()
    ae.quantizer.unused_steps.fill_(100)
    before = ae.quantizer.codebook.weight.clone()
    ae.decode(z)
    assert torch.equal(ae.quantizer.codebook.weight, before)  # decoding never restarts codes
    ae.eval()
    unquantised = ae.decoder(ae.post_quant_conv(z))
    assert not torch.allclose(ae.decode(z), unquantised, atol=1e-3)
    with pytest.raises(ValueError, match="VQ-reg"):
        Autoencoder(tiny(4, "kl")).quantize(z)


# ---------------------------------------------------------------------------- latent scale and misc


def test_measure_scale_factor_is_inverse_std():
    torch.manual_seed(0)
    ae = Autoencoder(tiny(4))
    batches = [torch.randn(3, 3, 16, 16), torch.randn(2, 3, 16, 16)]
    z = torch.cat([ae.encode_latent(b) for b in batches]).detach()
    s = ae.measure_scale_factor(batches)
    assert s == pytest.approx(1.0 / z.std().item(), rel=1e-4)
    assert ae.scale_factor.item() == pytest.approx(s, rel=1e-6)
    assert "scale_factor" in ae.state_dict()
    assert ae.measure_scale_factor(torch.cat(batches), batch_size=2) == pytest.approx(s, rel=1e-6)


def test_last_layer_is_decoder_output_weight():
    ae = Autoencoder(tiny(4))
    assert ae.last_layer() is ae.decoder.conv_out.weight
    assert ae.last_layer().shape[0] == 3
