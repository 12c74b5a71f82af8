"""Lesson 07, choosing f: the paper's Figures 6 and 7 at mini scale.

The paper trains class-conditional LDMs with downsampling factors f in {1, 2, 4, 8, 16, 32}
for the same number of steps and finds: f = 1 (pixel space) learns slowly and samples slowly,
large f (16, 32) stops improving early because the autoencoder already threw the detail away,
and f = 4 .. 8 give the best quality for the compute (Fig. 6: FID against training steps;
Fig. 7: sample throughput against FID for different numbers of DDIM steps).

Here: the same UNet (same width, same blocks) on the 32 x 32 shapes for f in {1, 2, 4, 8, 16},
where f = 1 is pixel-space diffusion (no autoencoder) and f > 1 uses the shipped KL
autoencoder ae-kl-f{f}. The only difference the latent makes to the UNet is its input size
h = 32 / f: a 2 x 2 latent (f = 16) cannot be halved twice, so the number of levels is capped
(``unet_config``: f = 16 gets two levels instead of three). Every model gets the same budget:
``steps`` optimiser steps at batch 64.

Measured for each f:
- quality against training steps: the Frechet distance (FD) of samples to held-out images in
  the attribute classifier's features, and prompt accuracy (``prompt_score``), every
  ``eval_every`` steps;
- throughput against quality: images per second of DDIM sampling with guidance (decoder
  included) for S in ``ddim_steps``, with the FD and accuracy reached at each S;
- training time per step and in total.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from ..config import Profile, seed_everything
from ..data import images_uint8, load_shapes, save_images, to_model_range
from ..eval.measures import frechet_distance
from ..eval.prompts import prompt_accuracy
from ..ldm import LatentDiffusion, LDMConfig
from ..text import TextEncoderConfig
from ..train import TrainConfig, encode_images, train_diffusion
from ..unet import UNetConfig
from ..zoo import CLASSIFIER, ae_name, load_pretrained
from . import RESULTS_DIR, save_results

NAME = "f_sweep"
SAMPLE_CAPTIONS = [  # the captions of the sample grids the lesson's f selector shows
    "a red circle", "a blue square", "a green triangle", "a small yellow circle on the left",
    "a large purple square at the top", "a red circle above a blue square",
    "a green triangle and a yellow circle", "an orange square to the right of a blue triangle",
]


@dataclass
class FSweepConfig:
    factors: tuple[int, ...] = (1, 2, 4, 8, 16)  # f = 1 is pixel space, the rest use ae-kl-f{f}
    model_channels: int = 32  # the UNet's width at its first level, the same for every f
    steps: int = 600  # the one training budget: optimiser steps at batch_size, for every f
    batch_size: int = 64
    lr: float = 1e-3
    eval_every: int = 150  # steps between quality measurements during training
    n_eval: int = 100  # held-out captions sampled per measurement
    eval_ddim_steps: int = 20  # DDIM steps S for the measurements during training
    ddim_steps: tuple[int, ...] = (10, 20, 50, 100, 200)  # S for throughput vs quality (Fig. 7)
    n_throughput: int = 50  # captions sampled per S
    guidance: float = 3.0  # classifier-free guidance scale s
    seed: int = 0


def sweep_config(profile: Profile) -> FSweepConfig:
    """The quick profile fits the whole sweep in ~20 min on 2 CPU cores; full is for a GPU.
    In miniature (``Profile.miniature``) every count is capped."""
    if profile.name == "full":
        sweep = FSweepConfig(
            model_channels=64, steps=20_000, batch_size=128, eval_every=2_500, n_eval=1_000, n_throughput=500
        )
    else:
        sweep = FSweepConfig()
    if not profile.is_miniature:
        return sweep
    return replace(
        sweep,
        steps=profile.cap_steps(sweep.steps),
        batch_size=min(sweep.batch_size, profile.batch_size),
        eval_every=max(1, profile.cap_steps(sweep.steps) // 2),  # a point along training, and the last
        n_eval=profile.cap_samples(sweep.n_eval),
        eval_ddim_steps=profile.cap_steps(sweep.eval_ddim_steps),
        ddim_steps=(profile.cap_steps(min(sweep.ddim_steps)), 50),  # lesson 07 quotes the images/s of DDIM-50
        n_throughput=profile.cap_samples(sweep.n_throughput),
    )


def unet_config(f: int, image_size: int, latent_channels: int, model_channels: int) -> UNetConfig:
    """The same UNet for every f: up to 3 levels (widths x1, x2, x2), attention on levels 1, 2
    and in the middle; fewer levels only where the latent is too small to be halved again
    (f = 16: the 2 x 2 latent is halved once, so its UNet has two levels and fewer parameters)."""
    h = image_size // f
    levels = min(3, int(math.log2(h)) + 1)  # halve at most down to 1 x 1: 2 x 2 -> 1 x 1 at f = 16
    mult = (1, 2, 2)[:levels]
    return UNetConfig(
        in_channels=latent_channels, out_channels=latent_channels, model_channels=model_channels,
        channel_mult=mult, attention_levels=tuple(lvl for lvl in (1, 2) if lvl < levels), num_heads=4, context_dim=64,
    )


def build_model(f: int, sweep: FSweepConfig, image_size: int = 32) -> LatentDiffusion:
    """A fresh text-to-image model at factor f: with the shipped autoencoder ae-kl-f{f} (frozen),
    or in pixel space for f = 1."""
    ae = None if f == 1 else load_pretrained(ae_name("kl", f))
    c = 3 if ae is None else ae.config.latent_channels
    config = LDMConfig(
        autoencoder=None if ae is None else ae.config,
        unet=unet_config(f, image_size, c, sweep.model_channels),
        text=TextEncoderConfig(dim=64, n_layers=2),
        image_size=image_size,
    )
    seed_everything(sweep.seed)
    ldm = LatentDiffusion(config)
    if ae is not None:
        ldm.autoencoder.load_state_dict(ae.state_dict())
    return ldm


def prompt_score(accuracy: dict) -> float:
    """One accuracy over all captions: a one-object caption counts when its object is right
    (``single``), a two-object caption when both objects are right and bound (``two_binding``)."""
    n1, n2 = accuracy["n_single"], accuracy["n_two"]
    right = (accuracy["single"] * n1 if n1 else 0.0) + (accuracy["two_binding"] * n2 if n2 else 0.0)
    return right / max(1, n1 + n2)


@torch.no_grad()
def measure_quality(
    ldm: LatentDiffusion,
    captions: list[str],
    real: torch.Tensor,
    classifier,
    steps: int,
    guidance: float,
    seed: int,
    batch_size: int = 100,
) -> dict:
    """Sample one image per caption (DDIM-``steps``, guidance), timed, and judge them:
    FD to the ``real`` images (uint8) in the classifier's features, prompt accuracy, images/s."""
    start = time.perf_counter()
    images = torch.cat(
        [
            ldm.generate(captions[i : i + batch_size], steps=steps, guidance=guidance, seed=seed + i)
            for i in range(0, len(captions), batch_size)
        ]
    )
    seconds = time.perf_counter() - start
    accuracy = prompt_accuracy(captions, images, classifier)
    return {
        "fd": frechet_distance(real, images, classifier),
        "accuracy": prompt_score(accuracy),
        "single": accuracy["single"],
        "images_per_s": len(captions) / seconds,
        "images": images,
    }


def train_one(f: int, sweep: FSweepConfig, profile: Profile, classifier, train, test) -> dict:
    """Train the model at factor f for ``sweep.steps`` steps, measuring quality on the way."""
    ldm = build_model(f, sweep, profile.image_size)
    start = time.perf_counter()
    latents = (
        encode_images(ldm.autoencoder, images_uint8(train))
        if ldm.autoencoder is not None
        else to_model_range(images_uint8(train))
    )
    encode_seconds = time.perf_counter() - start
    tokens = ldm.tokenizer(train["caption"])
    captions, real = test["caption"][: sweep.n_eval], images_uint8(test)[: sweep.n_eval]
    curve: list[dict] = []
    eval_seconds = 0.0

    # The points during training judge the current weights; the last one, after training,
    # the EMA weights that train_diffusion returns (with ema_decay 0.99 they trail by ~100 steps).
    def on_step(step: int) -> None:  # quality against training steps (Fig. 6)
        nonlocal eval_seconds
        if step % sweep.eval_every == 0 and step < sweep.steps:
            t0 = time.perf_counter()
            q = measure_quality(ldm, captions, real, classifier, sweep.eval_ddim_steps, sweep.guidance, sweep.seed)
            curve.append({"step": step, "fd": q["fd"], "accuracy": q["accuracy"]})
            eval_seconds += time.perf_counter() - t0
            ldm.train()

    train_config = TrainConfig(
        steps=sweep.steps,
        batch_size=sweep.batch_size,
        lr=sweep.lr,
        warmup=min(100, sweep.steps // 10),
        lr_min_ratio=0.1,
        ema_decay=0.99,
        seed=sweep.seed,
        progress=False,
    )
    start = time.perf_counter()
    ldm, _ = train_diffusion(ldm, latents, tokens, train_config, on_step=on_step)
    train_seconds = time.perf_counter() - start - eval_seconds
    final = measure_quality(ldm, captions, real, classifier, sweep.eval_ddim_steps, sweep.guidance, sweep.seed)
    curve.append({"step": sweep.steps, "fd": final["fd"], "accuracy": final["accuracy"]})
    return {
        "ldm": ldm,
        "curve": curve,
        "train_seconds": train_seconds,
        "encode_seconds": encode_seconds,
        "seconds_per_step": train_seconds / sweep.steps,
    }


def throughput_vs_quality(ldm: LatentDiffusion, sweep: FSweepConfig, classifier, test) -> list[dict]:
    """Fig. 7: for each number of DDIM steps S, images/s (decoder included) and the quality reached."""
    captions, real = test["caption"][: sweep.n_throughput], images_uint8(test)[: sweep.n_throughput]
    rows = []
    for S in sweep.ddim_steps:
        q = measure_quality(ldm, captions, real, classifier, S, sweep.guidance, sweep.seed)
        rows.append({"ddim_steps": S, "images_per_s": q["images_per_s"], "fd": q["fd"], "accuracy": q["accuracy"]})
    return rows


def run(profile: Profile, out_dir: Path = RESULTS_DIR, sweep: FSweepConfig | None = None, **overrides) -> dict:
    """The whole sweep; writes data/experiments/f_sweep.json and f_sweep_samples_f{f}.png."""
    sweep = replace(sweep or sweep_config(profile), **overrides)
    start = time.perf_counter()
    classifier = load_pretrained(CLASSIFIER)
    train = load_shapes(profile.n_train, "train", seed=sweep.seed)
    test = load_shapes(profile.n_eval, "test", seed=sweep.seed)
    models = {}
    for f in sweep.factors:
        trained = train_one(f, sweep, profile, classifier, train, test)
        ldm = trained.pop("ldm")
        trained["throughput"] = throughput_vs_quality(ldm, sweep, classifier, test)
        trained["params"] = ldm.unet.num_params()
        trained["latent_shape"] = list(ldm.latent_shape)
        grid = ldm.generate(  # b 3 H W in [0, 1]
            SAMPLE_CAPTIONS, steps=profile.cap_steps(50), guidance=sweep.guidance, seed=sweep.seed
        )
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        save_images(grid, str(Path(out_dir) / f"{NAME}_samples_f{f}.png"), ncols=len(SAMPLE_CAPTIONS), scale=2)
        trained["samples"] = f"{NAME}_samples_f{f}.png"
        models[str(f)] = trained
        print(
            f"f={f}: {trained['seconds_per_step']:.3f} s/step, final FD {trained['curve'][-1]['fd']:.1f}, "
                f"accuracy {trained['curve'][-1]['accuracy']:.2f}",
            flush=True,
        )
    results = {"config": asdict(sweep), "profile": profile.name, "sample_captions": SAMPLE_CAPTIONS, "models": models}
    save_results(NAME, results, out_dir, seconds=time.perf_counter() - start)
    return results


# ---------------------------------------------------------------- reading the results (lesson 07)


def samples_view(record: dict, f: int, manifest: dict | None = None, results_dir: Path = RESULTS_DIR) -> dict:
    """What lesson 07's f selector shows for factor f: the sample grid (H W 3 uint8) and a title
    with the model's final FD and prompt accuracy, and its autoencoder's PSNR (the ceiling)."""
    import numpy as np
    from PIL import Image

    models = record["results"]["models"]
    if str(f) not in models:
        raise ValueError(f"f={f} is not in these results; measured: {', '.join(models)}")
    model = models[str(f)]
    grid = np.asarray(Image.open(Path(results_dir) / model["samples"]).convert("RGB"))
    final = model["curve"][-1]
    title = f"f = {f}: FD {final['fd']:.1f}, prompt accuracy {final['accuracy']:.2f} after {final['step']} steps"
    if manifest is not None and f > 1:
        title += f"; autoencoder alone: {manifest[f'ae-kl-f{f}']['metrics']['psnr']:.1f} dB"
    return {"grid": grid, "title": title, "fd": final["fd"], "accuracy": final["accuracy"]}


# ---------------------------------------------------------------- the evidence yardsticks (lesson 07)


@torch.no_grad()
def fd_floor(n: int = 100, draws: int = 8, classifier=None, seed: int = 0) -> dict:
    """How far apart two sets of *real* images are in FD, at ``n`` images per set.

    The reference is the first ``n`` held-out test images (the sweep's reference set); each draw
    compares it with the next ``n`` test images. A model that drew perfect images (for other
    captions) would land around ``mean``; ``sd`` is how much an FD of n images moves when the
    images are redrawn: the yardstick for "is this FD difference real?". Small n gives a high
    floor (the covariances of 128 features are estimated from n images).
    """
    from ..eval.measures import embed_images, frechet_distance_from_features

    classifier = classifier if classifier is not None else load_pretrained(CLASSIFIER)
    features = embed_images(images_uint8(load_shapes(n * (draws + 1), "test", seed=seed)), classifier)
    values = [frechet_distance_from_features(features[:n], features[n * k : n * (k + 1)]) for k in range(1, draws + 1)]
    mean = sum(values) / draws
    sd = (sum((v - mean) ** 2 for v in values) / (draws - 1)) ** 0.5
    return {"n": n, "values": values, "mean": mean, "sd": sd}


@torch.no_grad()
def reconstruction_score(f: int, n: int = 100, classifier=None, seed: int = 0) -> float:
    """The prompt score (``prompt_score``) of the autoencoder ae-kl-f{f}'s reconstructions D(E(x))
    of the first ``n`` test images, judged against their own captions: the ceiling that the
    autoencoder puts on any LDM at this f (the LDM's samples pass through the same D)."""
    from ..data import to_image_range

    classifier = classifier if classifier is not None else load_pretrained(CLASSIFIER)
    test = load_shapes(n, "test", seed=seed)
    ae = load_pretrained(ae_name("kl", f))
    ae.eval()
    x = to_model_range(images_uint8(test))
    reconstructions = to_image_range(ae.decode(ae.encode_latent(x)))
    return prompt_score(prompt_accuracy(test["caption"], reconstructions, classifier))
