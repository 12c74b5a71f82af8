import pytest
import torch

from ldm_mini.data import build_shapes
from ldm_mini.text import TextEncoder, TextEncoderConfig, Tokenizer


def test_every_dataset_caption_tokenizes_and_decodes():
    tok = Tokenizer()
    captions = build_shapes(300, "train", seed=0)["caption"]
    ids = tok(captions)
    assert ids.shape == (300, tok.context_len)
    assert tok.decode(ids) == captions


def test_start_token_and_padding():
    tok = Tokenizer()
    ids = tok(["a red circle", ""])
    assert ids[:, 0].tolist() == [1, 1]
    assert tok.mask(ids).sum(1).tolist() == [4, 1]  # <start> a red circle / <start>
    assert ids[1, 1:].eq(tok.pad_id).all()


def test_unknown_words_are_named_and_vocabulary_listed():
    tok = Tokenizer()
    with pytest.raises(ValueError) as err:
        tok(["a red car and a white sheep"])
    msg = str(err.value)
    assert "car" in msg and "white" in msg and "sheep" in msg
    assert "circle" in msg and "triangle" in msg  # lists the known words
    assert "'red'" not in msg.split("only knows")[0]  # known words are not flagged


def test_empty_list_and_too_long_caption_are_refused():
    tok = Tokenizer(context_len=4)
    with pytest.raises(ValueError, match="no captions"):
        tok([])
    with pytest.raises(ValueError, match="at most 3"):
        tok(["a small red circle"])


def test_text_encoder_shapes_and_padding_independence():
    torch.manual_seed(0)
    tok = Tokenizer()
    enc = TextEncoder(TextEncoderConfig(vocab_size=len(tok))).eval()
    ids = tok(["a red circle", "a blue square above a red circle"])
    ctx, mask = enc(ids)
    assert ctx.shape == (2, tok.context_len, 64) and mask.shape == (2, tok.context_len)
    # Changing what sits in padded positions must not change the real tokens' vectors.
    other = ids.clone()
    other[0, 5:] = 3
    ctx2, _ = enc(other, mask=tok.mask(ids))
    assert torch.allclose(ctx[0, :4], ctx2[0, :4], atol=1e-5)


def test_pooled_encoder_gives_one_vector():
    tok = Tokenizer()
    enc = TextEncoder(TextEncoderConfig(vocab_size=len(tok), pooled=True))
    ctx, mask = enc(tok(["a red circle", ""]))
    assert ctx.shape == (2, 1, 64) and mask.all()


def test_position_embedding_init_scale_is_a_config_field():
    """pos_init_std sets the std of tau_theta's position embeddings at init (default 0.02)."""
    torch.manual_seed(0)
    small = TextEncoder(TextEncoderConfig(dim=64, context_len=16)).pos_emb
    large = TextEncoder(TextEncoderConfig(dim=64, context_len=16, pos_init_std=1.0)).pos_emb
    assert 0.015 < small.std().item() < 0.025
    assert 0.9 < large.std().item() < 1.1
