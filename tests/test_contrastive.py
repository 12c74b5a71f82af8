"""The CLIP-like text encoder (contrastive.py): InfoNCE, the pooled token, pretraining, freezing it
inside an LDM, and the token probes."""

import math

import pytest
import torch
from tiny import tiny_text, tiny_unet
from torch import nn
from torch.nn import functional as F

from ldm_mini.autoencoder import AutoencoderConfig
from ldm_mini.contrastive import (
    ContrastiveConfig,
    _probe_examples,
    info_nce,
    last_token_index,
    pooled_text,
    pretrain_contrastive,
    token_probe,
    with_frozen_text_encoder,
)
from ldm_mini.data import COLOURS, SHAPES, ShapesConfig, build_shapes, images_uint8
from ldm_mini.ldm import LatentDiffusion, LDMConfig
from ldm_mini.text import TextEncoder, TextEncoderConfig, Tokenizer
from ldm_mini.train import TrainConfig, train_diffusion

TINY_AE = AutoencoderConfig(f=2, reg="kl", base_channels=8, latent_channels=2, attn_mid=False)


def _tiny_contrastive(**kw) -> ContrastiveConfig:
    args = dict(text=tiny_text(), image_channels=(8, 16), embed_dim=8, steps=80, batch_size=16, lr=1e-2, warmup=2)
    return ContrastiveConfig(**{**args, "log_every": 1, **kw})


@pytest.fixture(scope="module")
def pairs():
    ds = build_shapes(64, "train", seed=0, config=ShapesConfig(image_size=16))
    return images_uint8(ds), list(ds["caption"])


# ---------------------------------------------------------------- InfoNCE


def test_info_nce_on_a_hand_computed_two_by_two_case():
    # cosine similarities [[1, 0.6], [0, 0.8]] (u_1 = (1, 0), u_2 = (0, 1); v_1 = (1, 0), v_2 = (0.6, 0.8)), s = 2
    u = torch.tensor([[3.0, 0.0], [0.0, 0.5]])  # lengths do not matter: cosine similarity
    v = torch.tensor([[2.0, 0.0], [0.6, 0.8]])
    s = 2.0
    images = [-math.log(math.exp(2) / (math.exp(2) + math.exp(1.2))), -math.log(math.exp(1.6) / (1 + math.exp(1.6)))]
    texts = [-math.log(math.exp(2) / (math.exp(2) + 1)), -math.log(math.exp(1.6) / (math.exp(1.2) + math.exp(1.6)))]
    expected = (sum(images) / 2 + sum(texts) / 2) / 2
    assert info_nce(u, v, s).item() == pytest.approx(expected, abs=1e-6)
    assert info_nce(v, u, s).item() == pytest.approx(expected, abs=1e-6)  # symmetric in images and captions


def test_info_nce_is_symmetric_and_prefers_aligned_pairs():
    g = torch.Generator().manual_seed(0)
    u, v = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    torch.testing.assert_close(info_nce(u, v, 10.0), info_nce(v, u, 10.0))
    aligned = info_nce(u, u + 0.1 * v, 10.0)  # caption i points where image i does
    shuffled = info_nce(u, (u + 0.1 * v).roll(1, dims=0), 10.0)  # caption i belongs to image i - 1
    assert aligned.item() < 0.1 < math.log(8) < shuffled.item()


def test_info_nce_refuses_unpaired_batches():
    with pytest.raises(ValueError, match="pair i in row i"):
        info_nce(torch.randn(4, 3), torch.randn(5, 3), 1.0)


# ---------------------------------------------------------------- the pooled token


def test_pooled_token_is_the_output_at_the_last_real_token():
    torch.manual_seed(0)
    encoder, proj = TextEncoder(tiny_text()).eval(), nn.Linear(8, 8, bias=False)
    tokenizer = Tokenizer()
    tokens = tokenizer(["a red circle", "a blue square and a red circle"])
    mask = tokenizer.mask(tokens)
    assert last_token_index(mask).tolist() == [3, 7]  # <start> a red circle; <start> + 7 words
    pooled = pooled_text(encoder, proj, tokens)
    context, _ = encoder(tokens)
    torch.testing.assert_close(pooled, proj(context[[0, 1], [3, 7]]))
    # what sits after the last real token changes nothing: other padding ids, or less padding
    junk = torch.where(mask, tokens, torch.full_like(tokens, 5))
    torch.testing.assert_close(pooled_text(encoder, proj, junk, mask), pooled, atol=1e-5, rtol=0)
    torch.testing.assert_close(pooled_text(encoder, proj, tokens[:, :8]), pooled, atol=1e-5, rtol=0)
    # ...but the last word does
    other = pooled_text(encoder, proj, tokenizer(["a red square", "a blue square and a red square"]))
    assert (other - pooled).abs().min() > 1e-3


# ---------------------------------------------------------------- pretraining


def test_pretraining_is_seeded_lowers_the_loss_and_freezes_tau_theta(pairs):
    images, captions = pairs
    text_a, image_a, history_a = pretrain_contrastive(images, captions, _tiny_contrastive())
    text_b, _, history_b = pretrain_contrastive(images, captions, _tiny_contrastive())
    text_c, _, _ = pretrain_contrastive(images, captions, _tiny_contrastive(seed=1))
    assert [h["loss"] for h in history_a] == [h["loss"] for h in history_b]
    for (name, p), q, r in zip(text_a.state_dict().items(), text_b.state_dict().values(), text_c.parameters()):
        assert torch.equal(p, q), name
    assert not all(torch.equal(p, r) for p, r in zip(text_a.parameters(), text_c.parameters()))
    first, last = history_a[0]["loss"], sum(h["loss"] for h in history_a[-5:]) / 5
    assert last < first - 0.5, f"the loss went from {first:.3f} to {last:.3f}"
    # log(16): the loss of not telling the 16 pairs of a batch apart
    assert last < math.log(16) - 0.2, f"after 80 steps the loss is {last:.3f}, log(16) = {math.log(16):.3f}"
    assert not text_a.training and not image_a.training
    assert not any(p.requires_grad for p in text_a.parameters())


def test_pretraining_refuses_a_pooled_encoder_and_unpaired_data(pairs):
    with pytest.raises(ValueError, match="pooled=False"):
        _tiny_contrastive(text=TextEncoderConfig(dim=8, n_layers=1, n_heads=2, pooled=True))
    images, captions = pairs
    with pytest.raises(ValueError, match="pair up"):
        pretrain_contrastive(images, captions[:-1], _tiny_contrastive())


# ---------------------------------------------------------------- frozen inside the LDM


def _tiny_ldm() -> LatentDiffusion:
    torch.manual_seed(0)
    return LatentDiffusion(LDMConfig(autoencoder=TINY_AE, unet=tiny_unet(), text=tiny_text(), image_size=16))


def _train_briefly(ldm: LatentDiffusion) -> LatentDiffusion:
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(8, 2, 8, 8, generator=g)
    tokens = ldm.tokens(["a red circle", "a blue square and a red circle"] * 4)
    cfg = TrainConfig(steps=3, batch_size=4, lr=1e-2, warmup=1, progress=False)
    return train_diffusion(ldm, latents, tokens, cfg)[0]


def _pretrained_text() -> TextEncoder:
    torch.manual_seed(1)
    return TextEncoder(tiny_text()).eval().requires_grad_(False)


def test_a_frozen_text_encoder_is_not_trained_but_the_unet_is():
    pretrained = _pretrained_text()
    ldm = with_frozen_text_encoder(_tiny_ldm(), pretrained)
    assert ldm.config.freeze_text and list(ldm.trainable()) == ["unet"]
    unet_before = {k: v.clone() for k, v in ldm.unet.state_dict().items()}
    ldm = _train_briefly(ldm)
    for name, p in ldm.text_encoder.state_dict().items():
        assert torch.equal(p, pretrained.state_dict()[name]), name
    assert any(not torch.equal(v, unet_before[k]) for k, v in ldm.unet.state_dict().items())
    # the control: the same run without freezing does change tau_theta
    joint = _tiny_ldm()
    text_before = {k: v.clone() for k, v in joint.text_encoder.state_dict().items()}
    joint = _train_briefly(joint)
    assert any(not torch.equal(v, text_before[k]) for k, v in joint.text_encoder.state_dict().items())


def test_a_frozen_text_ldm_saves_and_loads_frozen(tmp_path):
    from ldm_mini.zoo import load_diffusion, save_diffusion

    ldm = with_frozen_text_encoder(_tiny_ldm(), _pretrained_text())
    path = save_diffusion(ldm, tmp_path / "clip-like.safetensors")
    loaded = load_diffusion(path, ldm.autoencoder)
    assert loaded.config == ldm.config and loaded.config.freeze_text
    assert list(loaded.trainable()) == ["unet"] and not any(p.requires_grad for p in loaded.text_encoder.parameters())
    for name, p in ldm.text_encoder.state_dict().items():  # saved in fp16
        torch.testing.assert_close(loaded.text_encoder.state_dict()[name], p.half().float(), rtol=0, atol=0)
    loaded.train()
    assert loaded.unet.training and not loaded.text_encoder.training


def test_a_text_encoder_of_another_width_is_refused_with_the_fix():
    fix = r"TextEncoderConfig\(dim=8\) or build the UNet with UNetConfig\(context_dim=16\)"
    with pytest.raises(ValueError, match=r"width 16 .* context_dim=8: .*" + fix):
        with_frozen_text_encoder(_tiny_ldm(), TextEncoder(tiny_text(dim=16)))


# ---------------------------------------------------------------- the token probes


class OneHotWords(nn.Module):
    """A hand-made tau_theta: each token's output is the one-hot of its own word id (and, with
    ``previous=True``, also of the word before it), so we know what each output knows."""

    def __init__(self, vocab_size: int, previous: bool = False):
        super().__init__()
        self.vocab_size, self.previous = vocab_size, previous

    def forward(self, tokens):
        h = F.one_hot(tokens, self.vocab_size).float()  # b l v
        if self.previous:
            h = torch.cat([h, F.pad(h, (0, 0, 1, 0))[:, :-1]], dim=-1)  # b l 2v: own word, word before
        return h, tokens != 0


@pytest.fixture(scope="module")
def probe_captions():
    """Single objects, every "X and Y" of two colours, and some relations (object named second first)."""
    single = [f"a {c} {s}" for c in COLOURS for s in SHAPES]
    pairs = [(c1, s1, c2, s2) for c1 in COLOURS for s1 in SHAPES for c2 in COLOURS for s2 in SHAPES if c1 != c2]
    joined = [f"a {c1} {s1} and a {c2} {s2}" for c1, s1, c2, s2 in pairs]
    related = [f"a {c1} {s1} to the right of a {c2} {s2}" for c1, s1, c2, s2 in pairs[::3]]
    return single + joined + related


def test_a_token_that_knows_only_its_word_knows_colours_but_not_bindings(probe_captions):
    tokenizer = Tokenizer()
    result = token_probe(OneHotWords(len(tokenizer)), tokenizer, probe_captions)
    assert result["colour_word"]["accuracy"] == 1.0
    binding = result["shape_binding"]
    assert binding["accuracy"] <= binding["majority"] + 0.05 and binding["accuracy"] < 0.3
    assert binding["chance"] == pytest.approx(1 / 6) and binding["n_test"] > 100


def test_a_token_that_also_sees_the_word_before_knows_its_binding(probe_captions):
    tokenizer = Tokenizer()
    result = token_probe(OneHotWords(len(tokenizer), previous=True), tokenizer, probe_captions)
    assert result["colour_word"]["accuracy"] == 1.0 and result["shape_binding"]["accuracy"] == 1.0
    assert token_probe(OneHotWords(len(tokenizer), previous=True), tokenizer, probe_captions) == result  # seeded


def test_probe_examples_follow_the_caption_grammar():
    tokenizer = Tokenizer()
    # "<start> a blue square to the right of a red circle": colours at 2 and 9, shapes at 3 and 10
    own, bound = _probe_examples(tokenizer, ["a blue square to the right of a red circle", "a green triangle"])
    blue, red, green = (list(COLOURS).index(c) for c in ("blue", "red", "green"))
    assert own == [(0, 2, blue), (0, 9, red), (1, 2, green)]
    assert bound == [(0, 3, blue), (0, 10, red)]  # one-object captions have no binding to probe
