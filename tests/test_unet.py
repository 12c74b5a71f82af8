"""The UNet eps_theta with cross-attention (ldm_mini.unet)."""

import math

import pytest
import torch

from ldm_mini.unet import CrossAttention, UNet, UNetConfig, timestep_embedding

SMALL = dict(model_channels=16, context_dim=8, num_heads=2)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest on one thread; on a busy 2-core machine two threads can be 100x slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def small_unet(**kw) -> UNet:
    torch.manual_seed(0)
    return UNet(UNetConfig(**{**SMALL, **kw}))


def perturb(unet: UNet, std: float = 0.2) -> UNet:
    """Give the zero-initialised layers random weights, as if the model had trained a little."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in unet.parameters():
            if p.abs().max() == 0:
                p.normal_(0, std)
    return unet


def inputs(b=2, c=4, h=8, n=5, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(b, c, h, h, generator=g),
        torch.randint(0, 1000, (b,), generator=g),
        torch.randn(b, n, d, generator=g),
    )


def test_timestep_embedding_is_cos_first():
    emb = timestep_embedding(torch.tensor([0, 5]), 8)
    assert emb.shape == (2, 8)
    assert emb[0].tolist() == [1, 1, 1, 1, 0, 0, 0, 0]          # cos(0) = 1 first, then sin(0) = 0
    freqs = [10000 ** (-k / 4) for k in range(4)]
    expected = [math.cos(5 * f) for f in freqs] + [math.sin(5 * f) for f in freqs]
    assert torch.allclose(emb[1], torch.tensor(expected), atol=1e-6)
    assert timestep_embedding(torch.tensor([3]), 7).shape == (1, 7)   # odd dims are zero-padded


def test_fresh_unet_outputs_exactly_zero():
    unet = small_unet()
    x, t, ctx = inputs()
    out = unet(x, t, ctx)
    assert out.shape == x.shape and out.abs().max().item() == 0.0


def test_default_config_sizes():
    # the prototype's figures (docs/CONVENTIONS.md, "Reference figures"): ~1.7M params at 32 channels, ~6.9M at 64
    assert 1.5e6 < UNet(UNetConfig(model_channels=32)).num_params() < 1.9e6
    assert 6.0e6 < UNet(UNetConfig(model_channels=64)).num_params() < 7.5e6


def test_gradients_reach_every_parameter():
    unet = small_unet()
    x, t, ctx = inputs()
    target = torch.randn_like(x)
    # at init only the final conv gets a gradient: everything else sits behind its zero weights
    torch.nn.functional.mse_loss(unet(x, t, ctx), target).backward()
    assert unet.out[-1].weight.grad.abs().sum() > 0
    assert unet.conv_in.weight.grad.abs().sum() == 0
    # a few optimiser steps open the zero-initialised gates and every parameter learns
    opt = torch.optim.Adam(unet.parameters(), lr=1e-3)
    for _ in range(3):
        opt.step()
        opt.zero_grad()
        torch.nn.functional.mse_loss(unet(x, t, ctx), target).backward()
    silent = [n for n, p in unet.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert silent == []


@pytest.mark.parametrize("size, mult", [(32, (1, 2)), (16, (1, 2, 2)), (8, (1, 2, 2)), (4, (1, 2, 2)), (2, (1, 2))])
def test_latent_sizes(size, mult):
    unet = perturb(small_unet(channel_mult=mult, attention_levels=(1,)))
    x, t, ctx = inputs(h=size)
    out = unet(x, t, ctx)
    assert out.shape == x.shape and torch.isfinite(out).all() and out.abs().max() > 0


def test_bad_latent_size_and_config_raise():
    with pytest.raises(ValueError, match="cannot be halved"):
        small_unet(channel_mult=(1, 2, 2))(*inputs(h=2))
    with pytest.raises(ValueError, match="attention_levels"):
        UNetConfig(channel_mult=(1, 2), attention_levels=(2,))
    with pytest.raises(ValueError, match="num_heads"):
        UNetConfig(model_channels=16, num_heads=7)


def test_input_validation():
    unet = small_unet()
    x, t, ctx = inputs()
    with pytest.raises(ValueError, match="use_context=True"):
        unet(x, t)
    with pytest.raises(ValueError, match="context must be"):
        unet(x, t, ctx[..., :4])
    with pytest.raises(ValueError, match="x must be"):
        unet(x[:, :3], t, ctx)
    assert unet(x, 7, ctx).shape == x.shape                      # an int timestep is broadcast


def test_unconditional_unet_has_no_cross_attention():
    unet = perturb(small_unet(use_context=False))
    x, t, _ = inputs()
    assert unet(x, t).shape == x.shape
    assert not any(isinstance(m, CrossAttention) and m.is_cross for m in unet.modules())
    with pytest.raises(ValueError, match="use_context=False"):
        unet(x, t, torch.zeros(2, 3, 8))


def test_concat_conditioning():
    unet = perturb(small_unet(concat_channels=3, use_context=False))
    x, t, _ = inputs()
    low_res = torch.randn(2, 3, 8, 8)
    out = unet(x, t, concat=low_res)
    assert out.shape == x.shape
    assert not torch.allclose(out, unet(x, t, concat=torch.zeros_like(low_res)))   # the image matters
    with pytest.raises(ValueError, match="concat must be"):
        unet(x, t)
    with pytest.raises(ValueError, match="concat must be"):
        unet(x, t, concat=torch.randn(2, 3, 16, 16))


def test_context_changes_output_and_padding_is_ignored():
    unet = perturb(small_unet()).eval()
    x, t, ctx = inputs(n=6)
    mask = torch.tensor([[True] * 3 + [False] * 3, [True] * 5 + [False]])
    other = ctx.clone()
    other[0, 3:] = torch.randn(3, 8)                              # change only padded tokens
    other[1, 5:] = 100.0
    a, b = unet(x, t, ctx, context_mask=mask), unet(x, t, other, context_mask=mask)
    assert torch.allclose(a, b, atol=1e-5)
    # without the mask the padded tokens do leak in, and real tokens always matter
    assert not torch.allclose(unet(x, t, ctx), unet(x, t, other), atol=1e-3)
    changed = ctx.clone()
    changed[0, 0] += 1.0
    assert not torch.allclose(a[0], unet(x, t, changed, context_mask=mask)[0], atol=1e-4)


def test_all_padding_caption_gives_zero_cross_attention():
    attn = CrossAttention(8, context_dim=4, heads=2)
    x, ctx = torch.randn(2, 5, 8), torch.randn(2, 3, 4)
    mask = torch.tensor([[False, False, False], [True, False, False]])
    out = attn(x, ctx, mask)
    assert torch.isfinite(out).all()
    assert out[0].abs().max() == 0 and out[1].abs().max() > 0


def test_record_attention_maps():
    unet = perturb(small_unet()).eval()
    x, t, ctx = inputs(n=5)
    mask = torch.tensor([[True, True, True, False, False], [True] * 5])
    plain = unet(x, t, ctx, context_mask=mask)
    with unet.record_attention():
        recorded = unet(x, t, ctx, context_mask=mask)
    assert torch.allclose(plain, recorded, atol=1e-5)             # explicit softmax == fused SDPA
    maps = unet.attention_maps()
    # 8x8 latents, (1, 2, 2), attention at levels 1 and 2: going down one block at 4x4 and one at 2x2,
    # the middle at 2x2, going up two blocks per level (2x2, 2x2, 4x4, 4x4)
    assert len(maps) == 7
    sizes = sorted(m.shape[2] for m in maps.values())
    assert sizes == [2, 2, 2, 2, 4, 4, 4]
    for m in maps.values():
        assert m.shape[:2] == (2, 2) and m.shape[-1] == 5 and m.shape[2] == m.shape[3]
        assert torch.allclose(m.sum(-1), torch.ones(m.shape[:-1]), atol=1e-5)   # a distribution over tokens
        assert m[0, ..., 3:].abs().max() == 0                                   # padding gets no attention
    # recording is off outside the block
    assert not any(m.record for m in unet.modules() if isinstance(m, CrossAttention))
