"""The judge: reads generated images for prompt accuracy and binding; no model was trained against it.

The attribute classifier (``classifier.py``) is the perceptual loss of every autoencoder, so the
decoders learnt to please it: scoring their images with it would be circular (a student marking
the exam it wrote). The judge is a second network that nothing was optimised against:

- **another architecture**: strided 3x3 convolutions after a 5x5 stem, ReLU, wider layers and
  dropout (the classifier: pairs of 3x3 convolutions, SiLU, average pooling), and another seed;
- **trained on the defects generated images have** (``add_defects``): blur, colour casts and
  channel mixing, faint noise, and stray specks too small to be objects. The classifier saw only
  light blur and +-6/255 shifts.

Its answers are checked against a third reader that involves no learning at all, the rule-based
``detector.py`` (blobs, mean colour, taper and fill): ``judge_vs_detector`` reports how often the
two read the same objects, on real test images and on generated ones.

        x (b 3 32 32) -> stem 5x5 (b 32 32 32) -> stride 2 (b 64 16 16) -> stride 2 (b 128 8 8)
          -> pool to 4x4 -> flatten -> linear + ReLU + dropout (b 192)
          -> one linear head per attribute (shape1, colour1, size1, pos1, shape2, ...)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data import ATTRIBUTE_VALUES, COLOURS
from .classifier import AttributeHeads, fit_attributes
from .detector import detect, score_caption
from .prompts import classify_images, describe, judge_caption, score_binding, seen_objects

# ---------------------------------------------------------------------------- the network


@dataclass
class JudgeConfig:
    """A CNN unlike the attribute classifier (see the module docstring)."""

    widths: tuple[int, int, int] = (32, 64, 128)  # stem, then two stride-2 stages (32 -> 16 -> 8 px at 32 px)
    hidden: int = 192  # width of the pooled embedding
    groups: int = 8  # GroupNorm groups (no batch statistics: the same in training and evaluation)
    pool_size: int = 4  # keep a 4x4 grid: position and canonical order live in *where* features are
    dropout: float = 0.1  # on the embedding, while training


def _conv(c_in: int, c_out: int, k: int, stride: int, groups: int) -> nn.Sequential:
    """conv k x k (stride) - GroupNorm - ReLU: b c_in h w -> b c_out h/stride w/stride."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2), nn.GroupNorm(groups, c_out), nn.ReLU()
    )


class Judge(AttributeHeads):
    """Names every attribute (``data.ATTRIBUTE_VALUES``) of a shapes image in [-1, 1], like the
    attribute classifier (the same heads, ``forward`` and ``predict``), so it plugs into
    ``prompts.prompt_accuracy`` in its place."""

    def __init__(self, config: JudgeConfig | None = None):
        super().__init__()
        self.config = config = config or JudgeConfig()
        c1, c2, c3 = config.widths
        g = config.groups
        self.net = nn.Sequential(
            _conv(3, c1, 5, 1, g),  # b c1 h w
            _conv(c1, c2, 3, 2, g),  # b c2 h/2 w/2
            _conv(c2, c2, 3, 1, g),
            _conv(c2, c3, 3, 2, g),  # b c3 h/4 w/4
            _conv(c3, c3, 3, 1, g),
        )
        self.embedding = nn.Sequential(
            nn.Linear(c3 * config.pool_size**2, config.hidden), nn.ReLU(), nn.Dropout(config.dropout)
        )
        self.heads = nn.ModuleDict(
            {name: nn.Linear(config.hidden, len(values)) for name, values in ATTRIBUTE_VALUES.items()}
        )

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """x in [-1, 1], b 3 h w -> pooled features (b, hidden)."""
        h = F.adaptive_avg_pool2d(self.net(x), self.config.pool_size)  # b c3 4 4
        return self.embedding(h.flatten(1))


# ---------------------------------------------------------------------------- the defects of generated images

PALETTE = torch.tensor(list(COLOURS.values()), dtype=torch.float32) / 127.5 - 1  # 6 3, in [-1, 1]


def _uniform(generator: torch.Generator, *shape, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(*shape, generator=generator)


def blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Gaussian blur of each image (b 3 h w) with its own sigma (b,) in pixels; sigma 0 = unchanged."""
    offsets = torch.arange(-3, 4, dtype=x.dtype)  # a 7-tap kernel covers sigma <= 1.5
    k = torch.exp(-(offsets**2) / (2 * sigma.clamp_min(1e-3)[:, None] ** 2))  # b 7
    k = k / k.sum(1, keepdim=True)
    b, c, h, w = x.shape
    out = x.reshape(1, b * c, h, w)  # one group per (image, channel), each with its image's kernel
    kx = k.repeat_interleave(c, 0)[:, None, None, :]  # (b c) 1 1 7
    out = F.conv2d(F.pad(out, (3, 3, 0, 0), mode="replicate"), kx, groups=b * c)
    out = F.conv2d(F.pad(out, (0, 0, 3, 3), mode="replicate"), kx.transpose(2, 3), groups=b * c)
    return out.reshape(b, c, h, w)


def add_specks(x: torch.Tensor, generator: torch.Generator, max_specks: int = 3) -> torch.Tensor:
    """Stray specks: up to ``max_specks`` patches of 1-4 pixels in a palette colour, blended in at
    30-90%. They stay under the detector's smallest object (6 pixels at 32 px): not objects, and
    the labels do not change. Sampled images show such specks where the decoder misfires."""
    x = x.clone()
    b, _, h, w = x.shape
    for i in range(b):
        for _ in range(int(torch.randint(max_specks + 1, (1,), generator=generator))):
            sh, sw = (int(v) for v in torch.randint(1, 3, (2,), generator=generator))  # 1x1 .. 2x2
            y0 = int(torch.randint(1, h - sh, (1,), generator=generator))
            x0 = int(torch.randint(1, w - sw, (1,), generator=generator))
            colour = PALETTE[int(torch.randint(len(PALETTE), (1,), generator=generator))]
            a = float(_uniform(generator, 1, low=0.3, high=0.9))
            patch = x[i, :, y0 : y0 + sh, x0 : x0 + sw]
            x[i, :, y0 : y0 + sh, x0 : x0 + sw] = (1 - a) * patch + a * colour[:, None, None]
    return x


def add_defects(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The judge's training augmentation (x in [-1, 1], b 3 h w): what decoded samples get wrong.

    - blur, sigma 0-1.2 px (soft edges, the decoder's rounded corners);
    - colour: a brightness/contrast change, a per-channel cast of up to +-20/255 and a random 3x3
      channel mix near the identity, so each palette colour shifts its own way (hues drift);
    - stray specks (``add_specks``) on half the images;
    - Gaussian noise of std 0-0.04 (faint grain left by a short sampler).
    The colour changes stay well inside the gaps between palette colours (80+ of 255 in at least
    one channel), so no image gets a different label.
    """
    b = x.shape[0]
    x = blur(x, _uniform(generator, b, low=0.0, high=1.2) * (torch.rand(b, generator=generator) < 0.7))
    contrast = _uniform(generator, b, 1, 1, 1, low=0.85, high=1.1)
    cast = _uniform(generator, b, 3, 1, 1, low=-0.16, high=0.16)
    mix = torch.eye(3) + 0.06 * torch.randn(b, 3, 3, generator=generator)  # b 3 3
    x = torch.einsum("bij,bjhw->bihw", mix, x) * contrast + cast
    specks = torch.rand(b, generator=generator) < 0.5
    if specks.any():
        x[specks] = add_specks(x[specks], generator)
    x = x + _uniform(generator, b, 1, 1, 1, low=0.0, high=0.04) * torch.randn(x.shape, generator=generator)
    return x.clamp(-1.0, 1.0)


def train_judge(
    images_uint8: torch.Tensor,
    labels: dict[str, torch.Tensor],
    steps: int = 800,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 1,
    progress: bool = True,
    config: JudgeConfig | None = None,
    device: torch.device | str | None = None,
) -> Judge:
    """Train a ``Judge`` on shapes images (uint8, b 3 h w) and ``data.attribute_labels``, every
    batch through ``add_defects``; returns it in eval mode. Seed 1 by default: the attribute
    classifier is seed 0, so even their initial weights and batches differ."""
    torch.manual_seed(seed)  # the initial weights
    model = Judge(config)
    return fit_attributes(model, images_uint8, labels, steps, batch_size, lr, seed, progress, device, add_defects)


# ---------------------------------------------------------------------------- the judge vs the rule-based detector


def judge_vs_detector(judge: nn.Module, images: torch.Tensor, captions: list[str]) -> dict:
    """How often the judge and the rule-based detector read an image the same way.

    images: b 3 h w in [0, 1] or uint8 (real or generated), ``captions[i]`` the caption of image i.
    Reads every image once with each, then ``compare_readings``."""
    if len(captions) != images.shape[0]:
        raise ValueError(f"got {len(captions)} captions for {images.shape[0]} images: pass one caption per image")
    return compare_readings(captions, classify_images(images, judge), [detect(x) for x in images])


def compare_readings(captions: list[str], seen: list[dict], found: list[list]) -> dict:
    """Compare the judge's reading (``seen``, attribute dicts) with the detector's (``found``, lists of
    ``DetectedObject``) of the same images, per image:

    - ``objects``: both see the same objects, i.e. the same sorted list of (colour, shape) pairs
      (so the same number of objects, colours and shapes, bound the same way);
    - ``verdict``: both give the same flags for the caption (``single`` and ``single_full``, or
      ``presence`` / ``binding`` / ``swapped``, as ``detector.score_caption`` defines them).

    Returns both rates, ``n`` and ``disagree``: for each image where the objects differ, its
    index, the caption and what each reader saw, so a person can look and say who was right.
    """
    same_objects = same_verdict = 0
    disagree = []
    for i, (caption, attrs, objects) in enumerate(zip(captions, seen, found)):
        by_judge = judge_flags(caption, attrs)
        by_detector = score_caption(caption, objects)
        objects_ok = sorted(seen_objects(attrs)) == sorted((o.colour, o.shape) for o in objects)
        same_objects += objects_ok
        same_verdict += by_judge == {k: by_detector[k] for k in by_judge}
        if not objects_ok:
            detector_says = " + ".join(f"{o.colour} {o.shape}" for o in objects) or "nothing"
            disagree.append({"index": i, "caption": caption, "judge": describe(attrs), "detector": detector_says})
    n = len(captions)
    return {"objects": same_objects / n, "verdict": same_verdict / n, "n": n, "disagree": disagree}


def judge_flags(caption: str, attrs: dict) -> dict[str, bool]:
    """The judge's reading, scored with the detector's names: ``single`` and ``single_full`` for
    one-object captions, ``presence`` / ``binding`` / ``swapped`` (order and layout free) for two."""
    flags = judge_caption(caption, attrs)
    if "single" in flags:
        return flags
    scored = score_binding(caption, attrs)
    return {k: scored[k] for k in ("presence", "binding", "swapped")}


# ---------------------------------------------------------------------------- is it a scene of the dataset at all?


@dataclass
class SceneRule:
    """What a sample must show to count as a valid scene of the shapes dataset. The background limits
    are set from 2000 real test images with a margin: their border's median colour has every channel
    >= 0.90, channels within 0.08 of each other (light grey, faint tints), and a mean absolute
    deviation around it <= 0.023 (flat)."""

    min_background: float = 0.80  # every channel of the border's median colour at least this light
    max_tint: float = 0.12  # max - min over the channels of that colour: grey-ish, not a saturated colour
    max_roughness: float = 0.04  # mean |border pixel - median|: a flat background, not noise
    objects: tuple[int, int] = (1, 2)  # the dataset's scenes hold one or two objects


def scene_check(images: torch.Tensor, judge: nn.Module, rule: SceneRule = SceneRule()) -> dict:
    """Does each image (b 3 h w in [0, 1] or uint8) look like a scene of the dataset? Valid when
    (1) its background is light, grey and flat (``SceneRule``), (2) the rule-based detector finds one
    or two objects, and (3) the judge reads the same objects, i.e. the same (colour, shape) pairs.
    Two readers that share no training agree only on clear objects, so smears and blobs fail (3).

    Returns ``valid`` (the share), ``n``, the share failing each test, and ``reasons`` per image
    ("" when valid), so a person can look at the failures."""
    x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    border = torch.cat([x[:, :, 0], x[:, :, -1], x[:, :, :, 0], x[:, :, :, -1]], dim=2)  # b 3 4w
    median = border.median(dim=2).values  # b 3
    light = median.min(dim=1).values >= rule.min_background
    grey = (median.max(dim=1).values - median.min(dim=1).values) <= rule.max_tint
    flat = (border - median[:, :, None]).abs().mean(dim=(1, 2)) <= rule.max_roughness
    seen = classify_images(x, judge)
    reasons = []
    for i, attrs in enumerate(seen):
        found = detect(x[i])
        why = [name for name, ok in (("dark", light[i]), ("tinted", grey[i]), ("noisy", flat[i])) if not ok]
        if not rule.objects[0] <= len(found) <= rule.objects[1]:
            why.append(f"{len(found)} objects")
        elif sorted(seen_objects(attrs)) != sorted((o.colour, o.shape) for o in found):
            why.append("readers disagree")
        reasons.append(", ".join(why))
    n = len(reasons)
    share = lambda word: sum(word in r for r in reasons) / n  # noqa: E731
    return {
        "valid": sum(r == "" for r in reasons) / n,
        "n": n,
        "failing": {w: share(w) for w in ("dark", "tinted", "noisy", "objects", "readers disagree")},
        "reasons": reasons,
    }
