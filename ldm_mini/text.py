"""Captions y and the text encoder tau_theta.

The paper conditions its UNet on tau_theta(y): a transformer that turns the caption's
tokens into one context vector per token, which the UNet reads through cross-attention
(Sec. 3.3). For text-to-image LDMs the paper trains tau_theta jointly with the UNet;
we do the same, with a tiny transformer over a closed vocabulary.

- ``Tokenizer``: words -> integer ids, padded to a fixed length. Every caption starts with
  a ``<start>`` token, so even the empty caption "" (used for classifier-free guidance) has
  one real token for attention to look at.
- ``TextEncoder``: tau_theta, token + position embeddings and a pre-LayerNorm transformer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import repeat
from torch import nn

from .data import COLOURS, POSITION_PHRASE, RELATION_PHRASE, SHAPES, SIZES

PAD, START = "<pad>", "<start>"


def grammar_words() -> list[str]:
    """Every word the caption grammar of ``data/captions.py`` can produce, in a stable order."""
    words = ["a", "an", "and", *SIZES, *COLOURS, *SHAPES]
    for phrase in (*POSITION_PHRASE.values(), *RELATION_PHRASE.values()):
        words += phrase.split()
    return list(dict.fromkeys(words))  # de-duplicate, keep order


class Tokenizer:
    """A closed-vocabulary word tokenizer: id 0 is padding, id 1 starts every caption."""

    def __init__(self, words: list[str] | None = None, context_len: int = 16):
        self.vocab = [PAD, START] + (words if words is not None else grammar_words())
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.context_len = context_len  # L: captions are padded (or refused) to this length

    @property
    def pad_id(self) -> int:
        return 0

    def __len__(self) -> int:
        return len(self.vocab)

    def words(self, caption: str) -> list[str]:
        return caption.lower().replace(",", " ").split()

    def encode_one(self, caption: str) -> list[int]:
        words = self.words(caption)
        unknown = [w for w in words if w not in self.index]
        if unknown:
            known = ", ".join(self.vocab[2:])
            raise ValueError(
                f"unknown word(s) {unknown} in caption {caption!r}. The model only knows these words: {known}"
            )
        ids = [self.index[START]] + [self.index[w] for w in words]
        if len(ids) > self.context_len:
            raise ValueError(f"caption {caption!r} has {len(words)} words; at most {self.context_len - 1} fit")
        return ids + [self.pad_id] * (self.context_len - len(ids))

    def __call__(self, captions: list[str] | str) -> torch.Tensor:
        """Captions -> token ids, LongTensor (b, L). "" is the empty caption."""
        if isinstance(captions, str):
            captions = [captions]
        if len(captions) == 0:
            raise ValueError("no captions given: pass a list with at least one caption, e.g. ['a red circle']")
        return torch.tensor([self.encode_one(c) for c in captions], dtype=torch.long)

    def mask(self, tokens: torch.Tensor) -> torch.Tensor:
        """True where a token is real, False on padding: (b, L) bool."""
        return tokens != self.pad_id

    def decode(self, tokens: torch.Tensor) -> list[str]:
        return [" ".join(self.vocab[i] for i in row.tolist() if i > 1) for row in tokens]


@dataclass
class TextEncoderConfig:
    vocab_size: int = len(grammar_words()) + 2  # the grammar's words + <pad> + <start>
    context_len: int = 16  # L, tokens per caption (padded)
    dim: int = 64  # width of each context vector; the UNet's context_dim
    n_layers: int = 2  # transformer layers
    n_heads: int = 4
    pooled: bool = False  # True: squeeze the caption into ONE vector (lesson 10's ablation)
    # std of the position embeddings at init. Without positions a transformer is a bag of words:
    # "a red circle and a blue square" and "a red square and a blue circle" hold the same words, so
    # tau_theta gives both the same set of vectors and no UNet can tell them apart. At 0.02 they start
    # ~50x smaller than the token embeddings (std 1) and stay small through a short run; the shipped
    # text-to-image recipe (zoo.ldm_recipe) uses 1.0, which took binding from 41% to 97% (lesson 05).
    pos_init_std: float = 0.02


class TextEncoder(nn.Module):
    """tau_theta: caption tokens (b, L) -> context (b, L, dim), one vector per token.

    With ``pooled=True`` the output is a single vector per caption (b, 1, dim): the mean
    over the real tokens. That throws away which word sits where: the mechanism the seed review
    offers for attribute leakage in Stable Diffusion ("a red car and a white sheep"), whose CLIP
    text encoder was trained through its pooled token only.
    """

    def __init__(self, config: TextEncoderConfig | None = None):
        super().__init__()
        self.config = config = config or TextEncoderConfig()
        self.token_emb = nn.Embedding(config.vocab_size, config.dim)
        self.pos_emb = nn.Parameter(torch.randn(config.context_len, config.dim) * config.pos_init_std)
        layer = nn.TransformerEncoderLayer(
            config.dim,
            config.n_heads,
            4 * config.dim,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        # enable_nested_tensor=False: the nested fast path does not apply to pre-LN layers and warns.
        self.transformer = nn.TransformerEncoder(layer, config.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.dim)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (context, context_mask): (b, L, dim) and (b, L) bool, True on real tokens."""
        if mask is None:
            mask = tokens != 0
        h = self.token_emb(tokens) + self.pos_emb[: tokens.shape[1]]  # b l d
        h = self.norm(self.transformer(h, src_key_padding_mask=~mask))
        if self.config.pooled:
            weights = mask.unsqueeze(-1).to(h.dtype)  # b l 1
            h = (h * weights).sum(1, keepdim=True) / weights.sum(1, keepdim=True)  # b 1 d
            mask = repeat(torch.ones((), dtype=torch.bool, device=h.device), " -> b 1", b=h.shape[0])
        return h, mask
