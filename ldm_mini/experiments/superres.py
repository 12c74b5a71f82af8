"""Lesson 09's experiment: x4 super-resolution, LDM-SR vs a pixel-space diffusion upsampler vs bicubic.

The paper's Table 5 compares its LDM-SR (f = 4, the low-resolution image concatenated to z_t)
with SR3 (Saharia et al.), a pixel-space diffusion upsampler, on ImageNet 64 -> 256. The claim:
LDM-SR reaches a better FID than SR3 with far fewer parameters and far less compute, while
pixel-fidelity scores (PSNR, SSIM) favour methods that stay close to the average answer.

Mini version, on the 32x32 shapes (8x8 -> 32x32):
- ``bicubic``: F.interpolate, no learning;
- ``pixel SR``: diffusion on the 32x32x3 pixels, bicubic(y) concatenated (6 input channels);
- ``LDM SR``: diffusion on the 8x8x4 latents of the shipped ae-kl-f4, y concatenated as is
  (7 input channels), decoded by D;
- ``autoencoder round trip`` D(E(x)): not an upsampler, the ceiling of LDM-SR's fidelity (it
  can never be closer to x than D can get).

Both diffusion models have the same UNet (0.82M parameters) and the same training budget (steps,
batch, learning rate, EMA). On held-out test images we measure PSNR, SSIM, the Frechet distance
in the attribute classifier's features (the FID stand-in), and CPU seconds per image with DDIM
(the decoder included for the LDM). ``run`` with ``checkpoint_dir`` also ships both models.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from . import RESULTS_DIR, save_results
from ..checkpoints import CHECKPOINT_DIR
from ..config import Profile, pick_device, seed_everything
from ..data import images_uint8, load_shapes
from ..metrics import frechet_distance, psnr, ssim
from ..superres import SuperResDiffusion, bicubic_upsample, downsample, sr_training_data, train_superres

NAME = "superres"
SR_LDM = "sr-ldm-f4"
SR_PIXEL = "sr-pixel"

# The paper's Table 5 (ImageNet-Val 64 -> 256, x4), the rows we mirror. FID: Inception features;
# LDM-4's FID 2.8 uses validation-split statistics (4.8 with train-split ones, SR3's protocol).
PAPER_TABLE5 = {
    "SR3 (pixel-space diffusion)": {"fid": 5.2, "psnr": 26.4, "ssim": 0.762, "params": "625M"},
    "LDM-4 (100 DDIM steps)": {"fid": 2.8, "fid_train_stats": 4.8, "psnr": 24.4, "ssim": 0.69, "params": "169M"},
}


@dataclass
class SRBudget:
    """How much each SR model trains and how it is judged (the same for both models)."""

    steps: int = 1_200  # optimiser steps for each diffusion model (quick: ~3 min for the pixel model here)
    batch_size: int = 32
    n_test: int = 500  # held-out test images for the table
    sample_steps: int = 50  # DDIM steps S when upscaling
    eval_batch: int = 100  # images per sampling call (and per timing)


def budget(profile: Profile) -> SRBudget:
    if profile.name == "full":
        return SRBudget(steps=20_000, batch_size=profile.batch_size, n_test=min(2_000, profile.n_eval), sample_steps=100)
    return SRBudget()


def upscalers(models: dict[str, SuperResDiffusion], sample_steps: int, seed: int = 0) -> dict:
    """name -> fn(y in [0, 1] (b 3 8 8)) -> x~ in [0, 1] (b 3 32 32)."""
    out = {"bicubic": lambda lr: bicubic_upsample(lr, value_range=(0.0, 1.0))}
    for name, model in models.items():
        out[name] = lambda lr, m=model: m.upscale(lr, steps=sample_steps, seed=seed)
    return out


def evaluate(methods: dict, hr: torch.Tensor, classifier, batch: int = 100) -> dict:
    """Upscale ``downsample(hr)`` (hr in [0, 1], n 3 H W) with each method; PSNR, SSIM, FD and
    CPU seconds per image. Returns {name: metrics}, and the outputs under "_images"."""
    lr = downsample(hr * 2 - 1, value_range=(-1.0, 1.0))
    lr = (lr + 1) / 2  # y in [0, 1]
    rows, images = {}, {}
    for name, fn in methods.items():
        start = time.perf_counter()
        sr = torch.cat([fn(lr[i : i + batch]) for i in range(0, len(lr), batch)])
        seconds = time.perf_counter() - start
        rows[name] = {"psnr": psnr(hr, sr), "ssim": ssim(hr, sr), "fd": frechet_distance(hr, sr, classifier), "seconds_per_image": seconds / len(hr)}
        images[name] = sr
    rows["_images"] = images
    return rows


def comparison_png(hr: torch.Tensor, images: dict, path: Path, n: int = 6, scale: int = 3) -> Path:
    """Rows of test images: y (shown enlarged by pixel repetition) | each method | x (HR)."""
    import numpy as np
    from einops import rearrange
    from PIL import Image

    lr = downsample(hr[:n] * 2 - 1) / 2 + 0.5
    cols = [torch.nn.functional.interpolate(lr, scale_factor=4, mode="nearest")] + [images[k][:n] for k in images] + [hr[:n]]
    grid = torch.stack(cols, dim=1)  # n cols 3 H W
    grid = torch.nn.functional.pad(grid, (1, 1, 1, 1), value=1.0)  # white frames
    grid = rearrange(grid, "n k c h w -> (n h) (k w) c")
    pixels = (grid.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    image = Image.fromarray(pixels).resize((pixels.shape[1] * scale, pixels.shape[0] * scale), Image.NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, optimize=True)
    return path


def train_pair(profile: Profile, seed: int = 0, work_dir: Path | None = None, sr_budget: SRBudget | None = None, source_dir: Path = CHECKPOINT_DIR) -> tuple[dict, dict]:
    """Train the LDM-SR and the pixel SR with one budget (ae-kl-f4 read from ``source_dir``).
    Returns (models, training records)."""
    from ..pretrained import ae_name, load_pretrained, sr_recipe  # imported here: pretrained imports this module lazily

    b = sr_budget or budget(profile)
    ae = load_pretrained(ae_name("kl", 4), source_dir)
    train = images_uint8(load_shapes(profile.n_train, "train", seed=seed))
    models, records = {}, {}
    for name, ae_config in (("LDM SR", ae.config), ("pixel SR", None)):
        config, cfg = sr_recipe(ae_config, profile, seed, steps=b.steps, batch_size=b.batch_size)
        seed_everything(seed)
        model = SuperResDiffusion(config).to(pick_device())
        if model.autoencoder is not None:
            model.autoencoder.load_state_dict(ae.state_dict())
        start = time.perf_counter()
        targets, lr = sr_training_data(model, train)  # LDM: the latent cache E(x), once
        prepare = time.perf_counter() - start
        out = work_dir / (SR_LDM if ae_config is not None else SR_PIXEL) if work_dir else None
        model, history = train_superres(model, targets, lr, cfg, out_dir=out, resume=out is not None)
        seconds = history[-1]["seconds"]
        models[name] = model
        records[name] = {
            "params": model.num_params(), "steps": cfg.steps, "batch_size": cfg.batch_size, "lr": cfg.lr,
            "train_seconds": seconds, "seconds_per_step": seconds / cfg.steps, "prepare_seconds": prepare,
            "final_loss": sum(h["loss"] for h in history[-4:]) / len(history[-4:]),
            "history": [{"step": h["step"], "seconds": h["seconds"], "loss": h["loss"]} for h in history[:: max(1, len(history) // 40)]],
            "config": config, "train": cfg,
        }
    return models, records


def run(profile: Profile, out_dir: Path = RESULTS_DIR, seed: int = 0, checkpoint_dir: Path | None = None, work_dir: Path | None = None, sr_budget: SRBudget | None = None, source_dir: Path = CHECKPOINT_DIR) -> dict:
    """Train both SR models, judge them and bicubic on held-out test images, save the table.

    With ``checkpoint_dir`` the two models are also written there (fp16) with manifest entries
    (that is what ``python -m ldm_mini pretrained --only sr-ldm-f4 sr-pixel`` does).
    ``sr_budget`` overrides the profile's budget (tests use a tiny one); the autoencoder and the
    attribute classifier are read from ``source_dir``."""
    import dataclasses

    from ..pretrained import CLASSIFIER, load_pretrained

    start = time.perf_counter()
    b = sr_budget or budget(profile)
    models, records = train_pair(profile, seed, work_dir, b, source_dir)
    classifier = load_pretrained(CLASSIFIER, source_dir)
    hr = images_uint8(load_shapes(profile.n_eval, "test", seed=seed))[: b.n_test].float() / 255
    rows = evaluate(upscalers(models, b.sample_steps, seed), hr, classifier, b.eval_batch)
    images = rows.pop("_images")

    # references: the autoencoder alone (LDM-SR's ceiling) and real-vs-real (the FD floor)
    ldm = models["LDM SR"]
    recon = torch.cat([ldm.decode(ldm.encode(hr[i : i + 100].to(ldm.device) * 2 - 1)).cpu() for i in range(0, len(hr), 100)]) / 2 + 0.5
    ceiling = {"psnr": psnr(hr, recon.clamp(0, 1)), "ssim": ssim(hr, recon.clamp(0, 1)), "fd": frechet_distance(hr, recon.clamp(0, 1), classifier)}
    val = images_uint8(load_shapes(profile.n_eval, "val", seed=seed))[: b.n_test]
    fd_floor = frechet_distance(hr, val, classifier)

    table = []
    for name, row in rows.items():
        rec = records.get(name, {})
        table.append({"method": name, **row, "params": rec.get("params", 0), "train_seconds": rec.get("train_seconds", 0.0)})
    png = comparison_png(hr, images, Path(out_dir) / f"{NAME}.png")
    results = {
        "profile": profile.name,
        "seed": seed,
        "budget": dataclasses.asdict(b),
        "table": table,
        "autoencoder_round_trip": ceiling,
        "fd_floor": fd_floor,
        "training": {k: {kk: vv for kk, vv in v.items() if kk not in ("config", "train")} for k, v in records.items()},
        "speedup": {
            "train_step": records["pixel SR"]["seconds_per_step"] / records["LDM SR"]["seconds_per_step"],
            "sampling": rows["pixel SR"]["seconds_per_image"] / rows["LDM SR"]["seconds_per_image"],
        },
        "paper_table5": PAPER_TABLE5,
        "figure": png.name,
        "figure_columns": ["y (8x8, enlarged)", *images, "x (32x32)"],
    }
    if checkpoint_dir is not None:
        from ..pretrained import ship_superres

        for name, key in (("LDM SR", SR_LDM), ("pixel SR", SR_PIXEL)):
            row = next(r for r in table if r["method"] == name)
            ship_superres(models[name], key, records[name], {k: row[k] for k in ("psnr", "ssim", "fd", "seconds_per_image")}, Path(checkpoint_dir), seed)
    save_results(NAME, results, out_dir, time.perf_counter() - start)
    return results
