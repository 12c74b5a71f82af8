"""Measuring trained models: an autoencoder's reconstructions and rate, an LDM's prompt accuracy,
and upscalers' fidelity, realism and speed (lesson 09)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from torch import nn
from torchmetrics.functional.image import structural_similarity_index_measure

from ..autoencoder import Autoencoder
from ..data import load_shapes, to_image_range, to_model_range
from ..ldm import LatentDiffusion, SuperResDiffusion, bicubic_upsample, downsample
from ..rate import bits_per_dim_kl, bits_per_dim_vq, bits_per_dim_vq_entropy
from .detector import detect, score_caption
from .judge import compare_readings, judge_flags
from .measures import (
    embed_images,
    frechet_distance,
    frechet_distance_from_features,
    inception_score_analogue,
    psnr,
    psnr_per_image,
    ssim,
    wilson_interval,
)
from .prompts import classify_images, seen_objects


@torch.no_grad()
def evaluate_autoencoder(
    ae: Autoencoder, images: torch.Tensor, reader: nn.Module | None = None, batch_size: int = 250
) -> dict:
    """Reconstruction quality and rate of ``ae`` on uint8 images (b 3 H W).

    Returns PSNR and SSIM (on [0, 1] images), with a ``reader`` the rFID stand-in (Frechet distance
    of reconstructions to originals in its features: pass the judge, which no autoencoder was trained
    against; the attribute classifier was their perceptual loss), bits/dim, and for VQ-reg the
    codebook usage and perplexity over all the images.
    """
    ae.eval()
    H, W = images.shape[-2:]
    recs, kls, indices = [], [], []
    device = next(ae.parameters()).device
    for i in range(0, len(images), batch_size):
        x = to_model_range(images[i : i + batch_size]).to(device)
        x_rec, aux = ae(x, sample_posterior=False)
        recs.append(to_image_range(x_rec).cpu())
        if ae.config.reg == "kl":
            kls.append(aux["kl"].cpu())
        else:
            indices.append(aux["indices"].cpu())  # b h w
    rec, original = torch.cat(recs), images.float() / 255
    result = {
        "psnr": psnr(original, rec),
        "ssim": ssim(original, rec),
        "params": sum(p.numel() for p in ae.parameters()),
    }
    if reader is not None:
        result["rfid"] = frechet_distance(original, rec, reader)
    c, h, w = ae.latent_shape(H, W)
    if ae.config.reg == "kl":
        result["bits_per_dim"] = bits_per_dim_kl(torch.cat(kls).mean().item(), H, W)
    else:
        codes = torch.cat(indices)  # n h w
        K = ae.config.vq_codebook_size
        result["bits_per_dim"] = bits_per_dim_vq(h, w, K, H, W)
        result["bits_per_dim_entropy"] = bits_per_dim_vq_entropy(codes, K, H, W)
        counts = torch.bincount(codes.flatten(), minlength=K).double()
        p = counts / counts.sum()
        result["codebook_usage"] = (counts > 0).double().mean().item()
        result["perplexity"] = torch.exp(-(p[p > 0] * p[p > 0].log()).sum()).item()
    return result


def evaluation_captions(n: int, seed: int = 0) -> list[str]:
    """The first n captions of held-out test images (mixed kinds; the headline figures use headline_captions)."""
    return load_shapes(n, "test", seed=seed)["caption"]


# ---------------------------------------------------------------------------- the headline figures

# One caption set per headline metric, from the held-out test split (kinds of data.CAPTION_KINDS):
HEADLINE_SETS = {
    "single": "colour_shape",  # "a red circle": exactly one object, shape and colour right
    "single_full": "size_colour_shape_pos",  # "a small red circle on the left": also size and position
    "two": "two_and",  # "a red circle and a blue square": presence, binding, swapped
}
HEADLINE_METRICS = {"single": "single", "single_full": "single_full", "two": ("presence", "binding", "swapped")}


def headline_captions(
    n: int = 200, seed: int = 0, split: str = "test", sets: tuple[str, ...] | None = None
) -> dict[str, list[str]]:
    """The first ``n`` captions of ``split`` of each kind in ``HEADLINE_SETS`` (or only the named
    ``sets``): {set name: captions}. The held-out test split unless a caller tunes on "val"."""
    names = list(HEADLINE_SETS) if sets is None else list(sets)
    unknown = [name for name in names if name not in HEADLINE_SETS]
    if unknown:
        raise ValueError(f"unknown caption sets {unknown}: choose from {list(HEADLINE_SETS)}")
    pool = load_shapes(max(1_000, 12 * n), split, seed=seed)  # the rarest kind is ~11% of the captions
    out = {
        name: [c for c, k in zip(pool["caption"], pool["caption_kind"]) if k == HEADLINE_SETS[name]][:n]
        for name in names
    }
    short = {name: len(c) for name, c in out.items() if len(c) < n}
    if short:
        raise ValueError(
            f"only {short} {split} captions of these kinds among {len(pool)} images; ask for fewer than {n}"
        )
    return out


def headline_figures(flags: dict[str, list[dict]]) -> dict:
    """{set name: one dict of flags per image} -> each headline metric with its 95% Wilson interval:
    ``single`` and ``single_full`` on their own sets; ``presence``, ``binding`` and ``swapped`` on
    the two-object set (only for the sets ``flags`` holds). Fractions, e.g.
    {"binding": 0.5, "binding_ci": [0.43, 0.57], ...}."""
    out: dict = {}
    for name, metrics in HEADLINE_METRICS.items():
        if name not in flags:  # a caller that measured only some sets (headline_metrics(sets=...))
            continue
        for metric in (metrics,) if isinstance(metrics, str) else metrics:
            k, n = sum(row[metric] for row in flags[name]), len(flags[name])
            out[metric] = k / n
            out[f"{metric}_ci"] = list(wilson_interval(k, n))
    return out


@torch.no_grad()
def headline_metrics(
    ldm: LatentDiffusion,
    judge,
    n: int = 200,
    steps: int = 50,
    guidance: float = 3.0,
    seed: int = 0,
    batch_size: int = 100,
    sets: tuple[str, ...] | None = None,
    split: str = "test",
    sample: Callable[[list[str], int], torch.Tensor] | None = None,
) -> tuple[dict, dict[str, torch.Tensor]]:
    """The text-to-image model's headline figures, the ones the lessons and the README quote.

    ``n`` captions per set of ``HEADLINE_SETS`` (or only the named ``sets``; of ``split``), DDIM with
    ``steps`` and ``guidance``, image i of a set drawn with seed ``seed + 10_000 * k + i``, k the set's
    place in ``HEADLINE_SETS`` (so a set gets the same noises whichever other sets are measured).
    ``sample(captions, seed) -> images in [0, 1]`` replaces ``ldm.generate`` (e.g. a guided sampler);
    the images are read the same way. Read by the ``judge`` (``figures``) and by the rule-based
    detector (``detector``), with their agreement on these images (``agreement``).
    Returns (record for the manifest, {set name: images b 3 h w in [0, 1]}).
    """
    if sample is None:

        def sample(caps: list[str], s: int) -> torch.Tensor:
            return ldm.generate(caps, steps=steps, guidance=guidance, seed=s)

    captions = headline_captions(n, seed, split, sets)
    images = {}
    for name, caps in captions.items():
        k = list(HEADLINE_SETS).index(name)
        images[name] = torch.cat(
            [sample(caps[i : i + batch_size], seed + 10_000 * k + i) for i in range(0, n, batch_size)]
        )
    seen = {name: classify_images(images[name], judge) for name in captions}  # each image read once by each reader
    found = {name: [detect(x) for x in images[name]] for name in captions}
    by_judge = {name: [judge_flags(c, a) for c, a in zip(captions[name], seen[name])] for name in captions}
    by_detector = {name: [score_caption(c, o) for c, o in zip(captions[name], found[name])] for name in captions}
    every = lambda per_set: [x for name in captions for x in per_set[name]]  # noqa: E731  (all sets, in order)
    agreement = compare_readings(every(captions), every(seen), every(found))
    record = {
        "figures": headline_figures(by_judge),
        "detector": headline_figures(by_detector),
        "agreement": {**{k: agreement[k] for k in ("objects", "verdict", "n")}, "disagree": agreement["disagree"]},
        "sampler": f"DDIM-{steps}, eta 0, guidance {guidance:g}, EMA weights as shipped (fp16)",
        "sets": {name: {"kind": HEADLINE_SETS[name], "n": n, "first": captions[name][0]} for name in captions},
        # the judge's verdict on each two-object image: "bound" (right), "swapped", or "other" (a part missing)
        "two_verdicts": [
            "bound" if f["binding"] else "swapped" if f["swapped"] else "other" for f in by_judge.get("two", [])
        ],
        "seed": seed,
    }
    return record, images


def upscalers(models: dict[str, SuperResDiffusion], sample_steps: int, seed: int = 0) -> dict:
    """name -> fn(y in [0, 1] (b 3 8 8)) -> x~ in [0, 1] (b 3 32 32)."""
    out = {"bicubic": lambda y_low: bicubic_upsample(y_low, value_range=(0.0, 1.0))}
    for name, model in models.items():
        out[name] = lambda y_low, m=model: m.upscale(y_low, steps=sample_steps, seed=seed)
    return out


N_BOOTSTRAP = 200  # resamples behind each bootstrap interval (lesson 09's table, lesson 07's FDs)


def bootstrap_interval(
    stat: Callable[[torch.Tensor], float],
    n: int,
    point: float,
    seed: int = 0,
    level: float = 0.95,
    n_resamples: int = N_BOOTSTRAP,
) -> list:
    """Bootstrap interval of a statistic of n test images: ``stat(idx)`` on ``n_resamples`` resamples idx of
    range(n) with replacement (the same resamples for every method: the generator is seeded), the
    percentile interval shifted by the bootstrap's bias (mean of the resamples - ``point``).
    The shift matters for FD: a resample repeats images, so its covariances are noisier and its FD
    higher, and the plain percentile interval could lie above the figure it belongs to. Returns [low, high]."""
    g = torch.Generator().manual_seed(seed)
    values = torch.tensor([stat(torch.randint(0, n, (n,), generator=g)) for _ in range(n_resamples)])
    bias = values.mean().item() - point
    tail = (1 - level) / 2
    return [values.quantile(tail).item() - bias, values.quantile(1 - tail).item() - bias]


def kept_objects(labels: list[dict], seen: list[dict], size: str) -> tuple[int, int]:
    """Of the objects of ``size`` ("large" or "small") in the true scenes (dataset rows ``labels``), how
    many the reader also finds in the upscaled image: the same colour on the same shape. (k, n)."""
    kept = total = 0
    for truth, attrs in zip(labels, seen):
        found = set(seen_objects(attrs))
        for k in ("1", "2"):
            if truth[f"shape{k}"] != "none" and truth[f"size{k}"] == size:
                total += 1
                kept += (truth[f"colour{k}"], truth[f"shape{k}"]) in found
    return kept, total


def upscaled_row(hr: torch.Tensor, sr: torch.Tensor, reader, labels: list[dict] | None = None) -> dict:
    """PSNR and SSIM (per image, mean and bootstrap interval), FD in ``reader``'s features (bootstrap
    interval, the images resampled in pairs), the Inception Score analogue, and with ``labels`` the
    share of large and of small objects kept (Wilson intervals). hr, sr in [0, 1], n 3 H W."""
    n = len(hr)
    p = psnr_per_image(hr, sr)  # n
    s = structural_similarity_index_measure(hr, sr, data_range=1.0, reduction="none")  # n
    real, fake = embed_images(hr, reader), embed_images(sr, reader)  # n d, in the reader's features
    score = inception_score_analogue(sr, reader)
    fd = frechet_distance_from_features(real, fake)
    row = {
        "psnr": p.mean().item(),
        "psnr_ci": bootstrap_interval(lambda i: p[i].mean().item(), n, p.mean().item()),
        "ssim": s.mean().item(),
        "ssim_ci": bootstrap_interval(lambda i: s[i].mean().item(), n, s.mean().item()),
        "fd": fd,
        "fd_ci": bootstrap_interval(lambda i: frechet_distance_from_features(real[i], fake[i]), n, fd),
        "is": score["mean"],
        "is_std": score["std"],
    }
    if labels is not None:
        seen = classify_images(sr, reader)
        for size in ("large", "small"):
            k, total = kept_objects(labels, seen, size)
            share, interval = (k / total, list(wilson_interval(k, total))) if total else (math.nan, [math.nan] * 2)
            row |= {f"kept_{size}": share, f"kept_{size}_ci": interval, f"n_{size}": total}
    return row


def evaluate_upscalers(
    methods: dict, hr: torch.Tensor, reader, batch: int = 100, labels: list[dict] | None = None
) -> dict:
    """Upscale ``downsample(hr)`` (hr in [0, 1], n 3 H W) with each method, measure it (``upscaled_row``)
    in the features and readings of ``reader`` (the judge: nothing was trained against it; the
    autoencoder behind LDM-SR was trained against the attribute classifier, which would favour it),
    plus CPU seconds per image. Returns {name: metrics}, and the outputs under "_images"."""
    y_low = downsample(hr * 2 - 1, value_range=(-1.0, 1.0))
    y_low = to_image_range(y_low)  # y in [0, 1]
    rows, images = {}, {}
    for name, fn in methods.items():
        start = time.perf_counter()
        sr = torch.cat([fn(y_low[i : i + batch]) for i in range(0, len(y_low), batch)])
        seconds = time.perf_counter() - start
        rows[name] = {**upscaled_row(hr, sr, reader, labels), "seconds_per_image": seconds / len(hr)}
        images[name] = sr
    rows["_images"] = images
    return rows
