"""A CLIP-like text encoder: tau_theta pretrained contrastively on its pooled token, then frozen.

Stable Diffusion does not train its text encoder: it borrows CLIP's (Radford et al. 2021) and keeps
it fixed. CLIP learned from (image, caption) pairs with one signal only: the caption's *pooled*
token (the output at the end of the caption, projected) must point the same way as its image's
embedding, and away from the other images of the batch. Nothing asks CLIP's other token outputs to
mean anything on their own, yet Stable Diffusion's cross-attention reads all of them. The seed
review offers this as the reason "a red car and a white sheep" comes out with a red sheep: if the
output at "sheep" does not know that its sheep is white, the UNet cannot bind the colour to it.

This module builds that third kind of tau_theta, to compare with the two ``text.py`` offers
(per-token trained jointly with the UNet, and one pooled vector):

- ``ImageEncoder``: a few strided convolutions, a mean over pixels, a linear map to the joint space;
- ``pooled_text``: the output at the caption's last real token, projected (CLIP's pooled token);
- ``info_nce``: CLIP's symmetric cross-entropy over the b x b similarity matrix (``clip_logits``);
- ``pretrain_contrastive``: trains both encoders on the training pairs, returns tau_theta frozen;
- ``with_frozen_text_encoder``: puts it into a ``LatentDiffusion`` whose training leaves it alone;
- ``token_probe``: linear probes of what each token output knows (its own word; its binding).

Our tau_theta attends both ways (CLIP's is causal: each token sees only the words before it), so
here the last token is the only output the loss reads, and the other outputs get gradients only
through what the last token reads from them in the layers below the last.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .data import COLOURS, SHAPES, parse_caption, to_model_range
from .ldm import LatentDiffusion
from .text import TextEncoder, TextEncoderConfig, Tokenizer
from .train import TrainConfig, run_training


@dataclass
class ContrastiveConfig:
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)  # tau_theta, per-token (pooled=False)
    image_channels: tuple[int, ...] = (32, 64, 128)  # one 3x3 stride-2 conv each: 32 -> 16 -> 8 -> 4 pixels
    embed_dim: int = 64  # width of the joint space where images and captions are compared
    logit_scale_init: float = math.log(1 / 0.07)  # CLIP's learnable temperature: exp(.) = 1 / 0.07 at start
    logit_scale_max: float = 100.0  # CLIP clamps exp(logit_scale) at 100 so training stays stable
    steps: int = 1_000  # optimiser steps
    batch_size: int = 128  # pairs per step: each image has batch_size - 1 negatives
    lr: float = 1e-3  # peak learning rate (AdamW), after warm-up, cosine decay (train.lr_at)
    warmup: int = 50  # linear warm-up steps
    seed: int = 0  # initial weights and batches
    log_every: int = 25  # steps between history entries

    def __post_init__(self):
        if self.text.pooled:
            raise ValueError(
                "the contrastive text encoder must keep one output per token, so the UNet can read them all: "
                "use TextEncoderConfig(pooled=False); the pooled token is taken by pooled_text"
            )


# ---------------------------------------------------------------- the two encoders


class ImageEncoder(nn.Module):
    """x in [-1, 1] (b 3 H W) -> one embedding per image (b embed_dim)."""

    def __init__(self, config: ContrastiveConfig):
        super().__init__()
        layers, c_in = [], 3
        for c_out in config.image_channels:  # each halves H and W
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.GELU()]
            c_in = c_out
        self.convs = nn.Sequential(*layers)
        self.proj = nn.Linear(c_in, config.embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.convs(x)  # b c h w
        return self.proj(h.mean(dim=(2, 3)))  # mean over pixels: b c -> b embed_dim


def last_token_index(mask: torch.Tensor) -> torch.Tensor:
    """The position of each caption's last real token (b,), from its mask (b, L), True on real tokens.

    The largest position whose mask is True; every caption has at least its <start> token."""
    positions = torch.arange(mask.shape[1], device=mask.device)  # l
    return (mask.long() * positions).argmax(dim=1)  # b


def pooled_text(
    text_encoder: TextEncoder, proj: nn.Linear, tokens: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """CLIP's pooled caption embedding: tau_theta's output at the last real token, projected (b embed_dim).

    CLIP reads the output at its end-of-text token; our captions have no end token, so the last word
    plays that part. Padding cannot change it: the mask keeps padding out of attention."""
    if mask is None:
        mask = tokens != 0
    context, _ = text_encoder(tokens, mask)  # b l d
    last = context[torch.arange(len(tokens), device=tokens.device), last_token_index(mask)]  # b d
    return proj(last)


def clip_logits(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor | float) -> torch.Tensor:
    """l_ij = s <u_i, v_j>: the scaled cosine similarity of image i and caption j (b b)."""
    if image_emb.shape != text_emb.shape or image_emb.ndim != 2:
        raise ValueError(
            f"image_emb and text_emb must both be (b, d) with pair i in row i, got {tuple(image_emb.shape)} and "
            f"{tuple(text_emb.shape)}"
        )
    u, v = F.normalize(image_emb, dim=-1), F.normalize(text_emb, dim=-1)
    return logit_scale * u @ v.T  # b b: row i = image i against every caption


def info_nce(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor | float) -> torch.Tensor:
    """CLIP's loss: symmetric cross-entropy over the b x b cosine similarities of b pairs.

    With u_i = image_emb[i] / ||image_emb[i]||, v_j = text_emb[j] / ||text_emb[j]|| and s = logit_scale
    (the inverse temperature, exp of CLIP's learnable parameter), the logits are l_ij = s <u_i, v_j>, and

        L = 1/2 [ -1/b sum_i log softmax_j(l_ij)[j = i]      (each image picks its caption)
                  -1/b sum_j log softmax_i(l_ij)[i = j] ]    (each caption picks its image)

    Pair i is the positive; the other b - 1 entries of its row and column are the negatives.
    """
    logits = clip_logits(image_emb, text_emb, logit_scale)
    target = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


# ---------------------------------------------------------------- pretraining


class ContrastiveModel(nn.Module):
    """Both encoders, the text projection to the joint space and the learnable temperature."""

    def __init__(self, config: ContrastiveConfig):
        super().__init__()
        self.config = config
        self.text_encoder = TextEncoder(config.text)
        self.text_proj = nn.Linear(config.text.dim, config.embed_dim, bias=False)  # CLIP's text projection
        self.image_encoder = ImageEncoder(config)
        self.logit_scale = nn.Parameter(torch.tensor(config.logit_scale_init))  # log of s

    def loss(self, x: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(InfoNCE on a batch of images x (b 3 H W) and their tokens (b L), logits b b)."""
        image_emb = self.image_encoder(x)  # b e
        text_emb = pooled_text(self.text_encoder, self.text_proj, tokens)  # b e: only the pooled token
        scale = self.logit_scale.exp()
        return info_nce(image_emb, text_emb, scale), clip_logits(image_emb, text_emb, scale).detach()


def pretrain_contrastive(
    images_uint8: torch.Tensor, captions: list[str], config: ContrastiveConfig | None = None, progress: bool = False
) -> tuple[TextEncoder, ImageEncoder, list[dict]]:
    """Train tau_theta and an image encoder with InfoNCE on (image, caption) pairs (n 3 H W uint8, n captions).

    Each step draws ``batch_size`` distinct pairs; the loss reads only the pooled text token. Captions
    repeat in a closed grammar, so a batch can hold the same caption twice: CLIP counts its twin as a
    negative, and so do we. Seeded (weights and batches): the same call gives the same weights on one
    machine. Returns (tau_theta in eval mode with ``requires_grad`` off, the image encoder in eval
    mode, the history: step, seconds, loss, logit scale s and ``accuracy``, the share of images whose
    highest-scoring caption in the batch is their own caption's text)."""
    config = config or ContrastiveConfig()
    if len(images_uint8) != len(captions):
        raise ValueError(f"images ({len(images_uint8)}) and captions ({len(captions)}) must pair up one to one")
    tokenizer = Tokenizer(context_len=config.text.context_len)
    if len(tokenizer) != config.text.vocab_size:
        raise ValueError(
            f"the text config has vocab_size {config.text.vocab_size} but the caption grammar has {len(tokenizer)} "
            f"tokens: use TextEncoderConfig(vocab_size={len(tokenizer)})"
        )
    tokens = tokenizer(captions)  # n L
    torch.manual_seed(config.seed)
    model = ContrastiveModel(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0)
    batch = min(config.batch_size, len(tokens))
    train_config = TrainConfig(
        steps=config.steps,
        batch_size=batch,
        lr=config.lr,
        warmup=config.warmup,
        seed=config.seed,
        log_every=config.log_every,
        progress=progress,
    )

    def step_fn(step: int, generator: torch.Generator) -> dict:
        index = torch.randperm(len(tokens), generator=generator)[:batch]  # without replacement
        loss, logits = model.loss(to_model_range(images_uint8[index]), tokens[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():  # as CLIP: s never above logit_scale_max
            model.logit_scale.clamp_(max=math.log(config.logit_scale_max))
        picked = tokens[index][logits.argmax(dim=1)]  # b L: the caption each image scores highest
        accuracy = (picked == tokens[index]).all(dim=1).float().mean()
        return {"loss": loss.item(), "logit_scale": model.logit_scale.exp().item(), "accuracy": accuracy.item()}

    model.train()
    history = run_training(
        step_fn,
        train_config,
        modules={"model": model},
        optimizers={"opt": optimizer},
        description="contrastive",
    )
    return model.text_encoder.eval().requires_grad_(False), model.image_encoder.eval(), history


# ---------------------------------------------------------------- into the LDM


def with_frozen_text_encoder(ldm: LatentDiffusion, text_encoder: TextEncoder) -> LatentDiffusion:
    """Put a pretrained tau_theta into ``ldm`` (a copy of it), frozen: ``train_diffusion`` then trains
    eps_theta only, as Stable Diffusion trains its UNet under CLIP's fixed text encoder.

    The UNet's cross-attention reads tau_theta's per-token outputs (b L d) as keys and values, so d
    must be the UNet's ``context_dim``; and the token ids must mean the same words. The config
    records ``freeze_text=True``, so a saved and reloaded model stays frozen."""
    got, want = text_encoder.config, ldm.config
    if got.dim != want.unet.context_dim:
        raise ValueError(
            f"the text encoder's outputs have width {got.dim} but the UNet's cross-attention reads context vectors "
            f"of context_dim={want.unet.context_dim}: pretrain it with TextEncoderConfig(dim="
            f"{want.unet.context_dim}) or build the UNet with UNetConfig(context_dim={got.dim})"
        )
    if got.pooled:
        raise ValueError("the text encoder is pooled (one vector); the UNet should read one output per token")
    if (got.vocab_size, got.context_len) != (want.text.vocab_size, want.text.context_len):
        raise ValueError(
            f"the text encoder knows {got.vocab_size} tokens and {got.context_len} positions, the LDM's tokenizer "
            f"{want.text.vocab_size} and {want.text.context_len}: build both with the same TextEncoderConfig "
            f"vocab_size and context_len"
        )
    ldm.config = dataclasses.replace(want, text=got, freeze_text=True)
    ldm.text_encoder = copy.deepcopy(text_encoder).to(ldm.device).requires_grad_(False).eval()
    return ldm


# ---------------------------------------------------------------- what the token outputs know


def _word_positions(tokenizer: Tokenizer, caption: str) -> list[str]:
    """The word at each token position: '<start>', then the caption's words (padding after)."""
    return ["<start>"] + tokenizer.words(caption)


def _probe_examples(tokenizer: Tokenizer, captions: list[str]) -> tuple[list, list]:
    """(caption index, position, label) for probe (a), a colour word -> its colour, and probe (b),
    a shape word of a two-object caption -> the colour bound to that shape."""
    colour_names, own, bound = list(COLOURS), [], []
    for i, caption in enumerate(captions):
        words = _word_positions(tokenizer, caption)
        parsed = parse_caption(caption)
        objects = {(parsed[f"colour{k}"], parsed[f"shape{k}"]) for k in (1, 2)}
        for p, word in enumerate(words):
            if word in COLOURS:
                own.append((i, p, colour_names.index(word)))
            if word in SHAPES and parsed["n_objects"] == 2:
                colour = words[p - 1]  # the grammar puts an object's colour right before its shape
                if (colour, word) not in objects:
                    raise ValueError(f"caption {caption!r}: {colour!r} before {word!r} is not one of its objects")
                bound.append((i, p, colour_names.index(colour)))
    return own, bound


def _linear_probe(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    n_classes: int,
    steps: int,
    lr: float,
    weight_decay: float,
) -> float:
    """Multinomial logistic regression on standardised features, full batch Adam; test accuracy."""
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6  # from the train split only
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    probe = nn.Linear(x_train.shape[1], n_classes)
    nn.init.zeros_(probe.weight)  # a zero start needs no seed: the probe is a function of the data alone
    nn.init.zeros_(probe.bias)
    optimizer = torch.optim.Adam(probe.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(steps):
        loss = F.cross_entropy(probe(x_train), y_train)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return (probe(x_test).argmax(1) == y_test).float().mean().item()


@torch.no_grad()
def token_probe(
    text_encoder: nn.Module,
    tokenizer: Tokenizer,
    captions: list[str],
    test_share: float = 0.5,
    steps: int = 300,
    lr: float = 0.05,
    weight_decay: float = 1e-4,
    seed: int = 0,
) -> dict:
    """How much tau_theta's per-token outputs know, by two linear probes (logistic regression):

    (a) ``colour_word``: from the output at a colour word, predict that colour: does the token know its
        own word?
    (b) ``shape_binding``: from the output at a SHAPE word of a two-object caption ("a red circle and
        a blue square": at "square"), predict the colour bound to that shape (blue): does the token
        know its binding? This is what cross-attention needs to put blue on the square.

    ``text_encoder(tokens) -> (context b L d, mask)``. The distinct captions are split at random
    (seeded) into train and held-out test captions, so a probe is scored on captions it never saw.
    Returns for each probe its test ``accuracy``, ``chance`` (1 / number of colours), ``majority``
    (the best constant guess on the test split) and the number of train and test examples."""
    captions = list(dict.fromkeys(captions))  # distinct captions: the same caption twice is one example
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(captions), generator=generator).tolist()
    n_test = round(len(captions) * test_share)
    is_test = torch.zeros(len(captions), dtype=torch.bool)
    is_test[order[:n_test]] = True
    tokens = tokenizer(captions)
    context, _ = text_encoder(tokens)  # b l d
    own, bound = _probe_examples(tokenizer, captions)
    results = {"n_captions": len(captions)}
    for name, examples in (("colour_word", own), ("shape_binding", bound)):
        if not examples:
            raise ValueError(f"no examples for probe {name!r}: pass captions with colour words and two objects")
        i, p, y = (torch.tensor(column) for column in zip(*examples))
        x = context[i, p].float()  # n d: the output at each example's word
        test = is_test[i]
        if test.all() or not test.any():
            raise ValueError(f"probe {name!r} needs examples on both sides of the split: pass more captions")
        with torch.enable_grad():
            accuracy = _linear_probe(x[~test], y[~test], x[test], y[test], len(COLOURS), steps, lr, weight_decay)
        results[name] = {
            "accuracy": accuracy,
            "chance": 1 / len(COLOURS),
            "majority": torch.bincount(y[test], minlength=len(COLOURS)).max().item() / test.sum().item(),
            "n_train": int((~test).sum()),
            "n_test": int(test.sum()),
        }
    return results
