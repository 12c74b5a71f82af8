"""Attention guidance at sampling time: steer z_t so the cross-attention maps follow the caption.

A remedy for attribute binding (lesson 10), beyond the paper: a few gradient steps on z_t during
the first (noisiest) DDIM steps that push the cross-attention maps toward the caption's
structure, in the spirit of Attend-and-Excite (Chefer et al. 2023) and of the binding loss of
SynGen (Rassin et al. 2023). Two losses:

- ``"excite"``: Attend-and-Excite's loss: every attribute word must get a strong attention
  peak somewhere, L = max_w (1 - max_p A_w[p]);
- ``"bind"``: each colour word's map must overlap its own shape word's map and not the other
  object's words: L = sum_k [o(c_k, s_j) + o(c_k, c_j) - o(c_k, s_k)], j = the other object,
  with o(u, v) = sum_p min(u[p], v[p]) the overlap of two maps normalised over pixels p.

The DDIM loop is ``sampling.ddim_sample``'s: guidance enters through its ``guide`` hook, and the
attention maps come from ``unet.CrossAttention.attention_probs``.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
from einops import rearrange

from .data import caption_objects
from .ldm import LatentDiffusion
from .unet import CrossAttention


def object_token_indices(tokenizer, caption: str) -> list[tuple[int, int]]:
    """For each object of a two-object caption, the positions (colour, shape) of its two words in
    the token sequence (position 0 is ``<start>``): "a red circle and a blue square" ->
    [(2, 3), (6, 7)]. Colours and shapes of the two objects always differ in our captions."""
    words = tokenizer.words(caption)
    return [(1 + words.index(colour), 1 + words.index(shape)) for colour, shape in caption_objects(caption)]


@contextmanager
def capture_attention(unet, resolution: int = 4):
    """Within this block, every forward pass of ``unet`` appends to the yielded list the
    cross-attention maps (b, p, L) of its layers that work at ``resolution`` x ``resolution``
    (p = resolution^2 pixels), computed with gradients so a loss on them can steer z_t."""
    found: list[torch.Tensor] = []

    def hook(module, args, kwargs, output):
        x = args[0]
        context = args[1] if len(args) > 1 else kwargs.get("context")
        mask = args[2] if len(args) > 2 else kwargs.get("mask")
        if x.shape[1] == resolution * resolution:
            found.append(module.attention_probs(x, context, mask).mean(1))  # mean over heads: b p L

    layers = [m for m in unet.modules() if isinstance(m, CrossAttention) and m.is_cross]
    handles = [m.register_forward_hook(hook, with_kwargs=True) for m in layers]
    try:
        yield found
    finally:
        for h in handles:
            h.remove()


def _pixel_distributions(maps: torch.Tensor) -> torch.Tensor:
    """(b, p, L) attention -> each token's map normalised to sum 1 over the p pixels: WHERE a word
    is read, whatever its total weight."""
    return maps / maps.sum(1, keepdim=True).clamp_min(1e-8)


def overlap(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """sum_p min(u[p], v[p]) of maps normalised over pixels: 1 when identical, 0 when disjoint."""
    return torch.minimum(u, v).sum(-1)


def bind_loss(maps: torch.Tensor, pairs: list[list[tuple[int, int]]]) -> torch.Tensor:
    """SynGen-style binding loss, one value per image: maps (b, p, L); pairs[i] = the (colour,
    shape) token positions of image i's two objects (``object_token_indices``).

    L = sum_k [o(c_k, s_j) + o(c_k, c_j) - o(c_k, s_k)], j = the other object: each colour word
    read where its own shape word is read, and away from the other object's words."""
    dist = rearrange(_pixel_distributions(maps), "b p l -> b l p")
    losses = []
    for i, ((c1, s1), (c2, s2)) in enumerate(pairs):
        d = dist[i]
        loss = 0.0
        for (c, s), (c_other, s_other) in (((c1, s1), (c2, s2)), ((c2, s2), (c1, s1))):
            loss = loss + overlap(d[c], d[s_other]) + overlap(d[c], d[c_other]) - overlap(d[c], d[s])
        losses.append(loss)
    return torch.stack(losses)


def excite_loss(maps: torch.Tensor, pairs: list[list[tuple[int, int]]]) -> torch.Tensor:
    """Attend-and-Excite's loss, one value per image: drop ``<start>``, renormalise each pixel's
    weights over the real words, and ask every attribute word for a strong peak:
    L = max_w (1 - max_p A_w[p]) over the colour and shape words w."""
    words = maps[:, :, 1:] / maps[:, :, 1:].sum(-1, keepdim=True).clamp_min(1e-8)  # b p L-1
    losses = []
    for i, objects in enumerate(pairs):
        idx = torch.tensor([w - 1 for pair in objects for w in pair])
        peaks = words[i][:, idx].max(0).values  # the strongest pixel of each attribute word
        losses.append((1 - peaks).max())
    return torch.stack(losses)


LOSSES = {"bind": bind_loss, "excite": excite_loss}


@dataclass
class AttentionGuidance:
    """Sampling-time attention guidance: before each of the first ``guided_steps`` DDIM steps,
    ``iterations`` gradient steps z_t <- z_t - scale * g / rms(g) with g = dL/dz_t, L one of
    ``LOSSES`` on the cross-attention maps at ``resolution`` x ``resolution``. The gradient is
    rescaled to unit root-mean-square so ``scale`` is a step in units of z_T's standard deviation
    (Attend-and-Excite uses a raw step size instead; our losses are on another scale)."""

    loss: str = "bind"  # "bind" or "excite"
    scale: float = 0.1
    guided_steps: int = 10  # of the S DDIM steps, the first (noisiest) ones, where the layout forms
    iterations: int = 1
    resolution: int = 4  # our UNet attends at 4x4 and 2x2; 4x4 is the finest

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {tuple(LOSSES)}, got {self.loss!r}")
        if self.scale < 0 or self.guided_steps < 0 or self.iterations < 1:
            raise ValueError("need scale >= 0, guided_steps >= 0 and iterations >= 1")


def guidance_step(
    unet,
    z_t: torch.Tensor,
    t: torch.Tensor,
    context: torch.Tensor,
    mask: torch.Tensor,
    pairs,
    config: AttentionGuidance,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One gradient step on z_t (b c h w) against the attention loss. Returns (new z_t, loss (b,))
    with the loss measured before the step."""
    z = z_t.detach().requires_grad_(True)
    with torch.enable_grad(), capture_attention(unet, config.resolution) as found:
        unet(z, t, context, context_mask=mask)
        if not found:
            raise ValueError(
                f"the UNet has no cross-attention at {config.resolution}x{config.resolution}; pick a resolution "
                    f"it attends at"
            )
        loss = LOSSES[config.loss](torch.stack(found).mean(0), pairs)  # mean over the layers
        (grad,) = torch.autograd.grad(loss.sum(), z)
    rms = grad.flatten(1).pow(2).mean(1).sqrt().clamp_min(1e-12)[:, None, None, None]
    return (z - config.scale * grad / rms).detach(), loss.detach()


@torch.no_grad()
def guided_sample_latents(
    ldm: LatentDiffusion,
    captions: list[str],
    config: AttentionGuidance | None = None,
    steps: int = 50,
    guidance: float = 3.0,
    seed: int = 0,
    trace: list | None = None,
) -> torch.Tensor:
    """DDIM (eta = 0) with classifier-free guidance, exactly as ``ldm.sample_latents`` (same seeded
    z_T), plus attention guidance on z_t in the first steps. ``config=None`` or ``scale=0`` gives
    the unguided sampler's result. ``trace`` (a list) receives the mean loss at each guided step."""
    if ldm.config.text.pooled and config is not None and config.scale > 0:
        raise ValueError(
            "attention guidance needs per-token context: a pooled text encoder gives the UNet one token, "
                "nothing to separate"
        )
    guide = None
    if config is not None and config.scale > 0:
        pairs = [object_token_indices(ldm.tokenizer, c) for c in captions]
        context, mask = ldm.context(ldm.tokens(captions))

        def guide(i: int, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
            for _ in range(config.iterations if i < config.guided_steps else 0):
                z, loss = guidance_step(ldm.unet, z, t, context, mask, pairs, config)
                if trace is not None:
                    trace.append(loss.mean().item())
            return z

    return ldm.sample_latents(captions, steps=steps, guidance=guidance, eta=0.0, seed=seed, guide=guide)


def generate(
    ldm: LatentDiffusion,
    captions: list[str],
    config: AttentionGuidance | None = None,
    steps: int = 50,
    guidance: float = 3.0,
    seed: int = 0,
    batch_size: int = 100,
) -> torch.Tensor:
    """Images (b 3 H W in [0, 1]) for the captions, with optional attention guidance; batches of
    ``batch_size`` captions get seeds seed, seed + batch_size, ... (as ``eval.models.headline_metrics``)."""
    ldm.eval()
    out = []
    for i in range(0, len(captions), batch_size):
        z0 = guided_sample_latents(ldm, captions[i : i + batch_size], config, steps, guidance, seed + i)
        out.append(ldm.decode_to_images(z0))
    return torch.cat(out)
