"""Lesson 07, choosing f: the paper's Figures 6 and 7 at mini scale, at two image sizes.

The paper trains class-conditional LDMs with downsampling factors f in {1, 2, 4, 8, 16, 32}
and finds: small f (1, 2) learns slowly, large f (16, 32) stops improving early because the
autoencoder already threw the detail away, and f = 4 .. 8 give the best quality for the compute
(Fig. 6: FID against training steps; Fig. 7: quality against sampling throughput).

Here: text-to-image LDMs on the shapes, f in {2, 4, 8, 16}, with the shipped recipe's UNet
(``zoo.ldm_recipe``: 6.6M parameters, tau_theta of 2 layers), at 32 px (the shipped autoencoders
ae-kl-f{f}) and at 64 px (the same grammar drawn twice as large; the 32 px autoencoders fine-tuned
at 64 px for ``ae_finetune_steps``). At 32 px, f = 4 gives an 8 x 8 latent; at 64 px it takes
f = 8 to get there. If the best f follows the latent size rather than f itself, the best f
doubles with the image. (The paper's f = 4 .. 8 are at 256 px: 64 x 64 .. 32 x 32 latents.)

Each model trains until it has done both budgets (the two views of one run):
- equal steps (Fig. 6): ``steps`` optimiser steps;
- equal CPU time (Fig. 7's question, compute): ``seconds`` of training time.
The learning rate is the same function of the step for every f (warm-up, cosine decay over
``steps``, then held), so the models are compared at the same point of the same schedule.
Measured along training (``eval_every``) and at both budgets, all read by the judge
(``eval/judge.py``, which no model here was trained against), on 32 px images (64 px ones are
averaged 2 x 2 first): single-object accuracy and prompt accuracy with Wilson 95% intervals,
and the Frechet distance (FD) in the judge's features to as many held-out images, with a 95%
bootstrap interval. f = 1 (pixel space) is timed, not trained: at 32 px one step costs about
five times f = 2's, so it does not fit the budget (lesson 08 trains a pixel model).
Resumable: every model keeps its training state and its measured points in ``work_dir``.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from ..autoencoder import Autoencoder
from ..checkpoints import atomic_write_text, load_model, save_model
from ..config import Profile, seed_everything
from ..data import images_uint8, load_shapes, save_images, to_model_range
from ..eval.measures import embed_images, frechet_distance_from_features, wilson_interval
from ..eval.models import N_BOOTSTRAP, bootstrap_interval
from ..eval.prompts import classify_images, judge_caption
from ..ldm import LatentDiffusion
from ..train import encode_images, train_autoencoder, train_diffusion
from ..zoo import CLASSIFIER, JUDGE, ae_name, load_pretrained
from ..zoo.recipes import ae_recipe, ldm_recipe
from . import RESULTS_DIR, save_results

NAME = "f_sweep"
WORK_DIR = Path(__file__).resolve().parents[2] / "runs" / "experiments" / NAME
SAMPLE_CAPTIONS = [  # the captions of the sample grids the lesson's f selector shows
    "a red circle", "a blue square", "a green triangle", "a small yellow circle on the left",
    "a large purple square at the top", "a red circle above a blue square",
    "a green triangle and a yellow circle", "an orange square to the right of a blue triangle",
]
JUDGE_SIZE = 32  # the judge reads 32 x 32 images


@dataclass
class FSweepConfig:
    image_size: int = 32  # H = W of the shapes images
    factors: tuple[int, ...] = (2, 4, 8, 16)  # trained; f = 1 is only timed (see ``time_pixel_space``)
    steps: int = 1_000  # equal-steps budget (Fig. 6): every f is compared after these optimiser steps
    seconds: float = 300.0  # equal-time budget: ... and after this much training time (each f does both)
    batch_size: int = 64
    lr: float = 1e-3  # peak; warm-up, cosine decay to lr / 10 over ``steps``, then held
    warmup: int = 100
    eval_every: int = 250  # steps between points of the training curves
    n_curve: int = 200  # captions sampled per point along the curve
    n_final: int = 1_000  # captions sampled at the two budget points (FD needs many: 128 features)
    eval_ddim_steps: int = 20  # DDIM steps S for the quality measurements
    ddim_steps: tuple[int, ...] = (10, 20, 50)  # S for throughput vs quality (Fig. 7)
    n_throughput: int = 100  # captions sampled per S
    grid_ddim_steps: int = 50  # S of the sample grid the lesson shows
    n_bootstrap: int = N_BOOTSTRAP  # resamples behind each FD's 95% interval (200)
    guidance: float = 3.0  # classifier-free guidance scale s
    ae_finetune_steps: int = 0  # > 0: fine-tune the 32 px autoencoders at image_size for this many steps
    ae_batch_size: int = 16  # 16 images of 64 px hold as many pixels as 64 of 32 px
    n_train: int = 20_000  # training images (and their captions)
    seed: int = 0


def sweep_configs(profile: Profile) -> list[FSweepConfig]:
    """The two sweeps, at 32 and at 64 px. Quick: the whole run took 99 min on 2 CPU cores; full is for
    a GPU (f = 1 trained too). In miniature (``Profile.miniature``) every count is capped."""
    if profile.name == "full":
        base = FSweepConfig(
            factors=(1, 2, 4, 8, 16), steps=20_000, seconds=1_800.0, batch_size=128, eval_every=2_500,
            n_curve=1_000, n_final=5_000, n_throughput=500, n_train=profile.n_train,
        )
        sweeps = [base, replace(base, image_size=64, ae_finetune_steps=5_000, ae_batch_size=32)]
    else:
        base = FSweepConfig(n_train=profile.n_train)
        sweeps = [base, replace(base, image_size=64, factors=(4, 8, 16), ae_finetune_steps=200)]
    if not profile.is_miniature:
        return sweeps
    cap = profile.cap_steps
    # each path a GPU run takes, once: at 32 px the smallest f (pixel space in the full profile) and the
    # largest (a two-level UNet on a 2 x 2 latent); at 64 px the largest, on an autoencoder fine-tuned
    # there (and, f = 1 being left out, the 64 px pixel model built and timed by time_pixel_space)
    factors = [(s.factors[0], s.factors[-1]) if k == 0 else s.factors[-1:] for k, s in enumerate(sweeps)]
    return [
        replace(
            s, factors=fs, steps=cap(s.steps), seconds=0.0, batch_size=min(s.batch_size, profile.batch_size),
            warmup=1, eval_every=1, n_curve=profile.cap_samples(s.n_curve), n_final=profile.cap_samples(s.n_final),
            eval_ddim_steps=cap(s.eval_ddim_steps), ddim_steps=(cap(min(s.ddim_steps)),),
            n_throughput=profile.cap_samples(s.n_throughput), grid_ddim_steps=cap(s.grid_ddim_steps),
            ae_finetune_steps=min(s.ae_finetune_steps, cap(10)),
            ae_batch_size=min(s.ae_batch_size, profile.batch_size), n_train=profile.n_train, n_bootstrap=10,
        )
        for s, fs in zip(sweeps, factors)
    ]


# ---------------------------------------------------------------- the models


def autoencoder_for(f: int, sweep: FSweepConfig, train_images: torch.Tensor, work_dir: Path) -> Autoencoder:
    """The frozen E, D at factor f for this image size: the shipped ae-kl-f{f} (trained at 32 px), or
    at another size that autoencoder fine-tuned there (its recipe, ``ae_finetune_steps`` steps; kept
    in ``work_dir``). At 64 px the 32 px autoencoders alone reconstruct badly for f >= 4 (PSNR
    26.0 / 18.9 / 13.4 dB at f = 4 / 8 / 16): the objects are twice as many pixels across."""
    ae = load_pretrained(ae_name("kl", f))
    if sweep.ae_finetune_steps == 0:
        return ae
    path = work_dir / f"ae-kl-f{f}-{sweep.image_size}px.safetensors"
    if path.exists():
        return load_model(Autoencoder, path).eval()
    config, loss_config, train_config = ae_recipe("kl", f, Profile())
    train_config = replace(
        train_config, steps=sweep.ae_finetune_steps, batch_size=sweep.ae_batch_size, warmup=1, lr=2e-4, progress=False
    )
    loss_config = replace(loss_config, disc_start=sweep.ae_finetune_steps)  # no new discriminator: L1 + perceptual
    tuned, _ = train_autoencoder(
        ae.config, train_images, train_config, loss_config, load_pretrained(CLASSIFIER), init=ae.state_dict()
    )
    with torch.no_grad():
        tuned.measure_scale_factor(to_model_range(train_images[:1000]))
    save_model(tuned, path)
    return tuned.eval()


def build_model(f: int, ae: Autoencoder | None, sweep: FSweepConfig) -> LatentDiffusion:
    """A fresh text-to-image LDM at factor f with the shipped recipe's UNet and tau_theta, its
    frozen autoencoder (None: pixel space, f = 1). Where the latent is 2 x 2 (f = 16 at 32 px) it
    cannot be halved twice, so the UNet gets two levels instead of three."""
    profile = replace(Profile(), image_size=sweep.image_size)
    config, _ = ldm_recipe(None if ae is None else ae.config, profile, seed=sweep.seed)
    if sweep.image_size // f < 4:
        config = replace(config, unet=replace(config.unet, channel_mult=(1, 2), attention_levels=(1,)))
    seed_everything(sweep.seed)
    ldm = LatentDiffusion(config)
    if ae is not None:
        ldm.autoencoder.load_state_dict(ae.state_dict())
    return ldm


# ---------------------------------------------------------------- what the judge reads


def judge_size(images: torch.Tensor) -> torch.Tensor:
    """Images (b 3 H W, [0, 1] or uint8) -> b 3 32 32 floats in [0, 1] for the judge: averaged over
    (H / 32) x (H / 32) blocks, the way the shapes are drawn (supersampled, then box-filtered)."""
    x = images.float() / 255 if images.dtype == torch.uint8 else images
    return x if x.shape[-1] == JUDGE_SIZE else F.adaptive_avg_pool2d(x, JUDGE_SIZE)


def judge_accuracies(images: torch.Tensor, captions: list[str], judge) -> dict:
    """The judge's reading of one image per caption (b 3 32 32 in [0, 1]): ``single`` (one-object
    captions: exactly one object, colour and shape right) and ``accuracy`` (every caption; two-object
    ones need both objects right and bound), each with its Wilson interval ``*_ci``."""
    flags = [judge_caption(c, a) for c, a in zip(captions, classify_images(images, judge))]
    single = [fl["single"] for fl in flags if "single" in fl]
    right = [fl.get("single", fl.get("two_binding")) for fl in flags]
    return {
        "single": sum(single) / len(single),
        "single_ci": list(wilson_interval(sum(single), len(single))),
        "accuracy": sum(right) / len(right),
        "accuracy_ci": list(wilson_interval(sum(right), len(right))),
    }


@torch.no_grad()
def reconstruct(ae: Autoencoder, images: torch.Tensor, batch: int = 100) -> torch.Tensor:
    """D(E(x)) of uint8 images (b 3 H W), in [0, 1]: what every sample of an LDM at this f passes through."""
    x = to_model_range(images)
    recon = torch.cat([ae.decode(ae.encode_latent(x[i : i + batch])) for i in range(0, len(x), batch)])
    return (recon.clamp(-1, 1) + 1) / 2


def read_samples(
    images: torch.Tensor, captions: list[str], real_features: torch.Tensor, judge, n_bootstrap: int = N_BOOTSTRAP
) -> dict:
    """The judge's figures for one image per caption: single-object accuracy (one-object captions:
    exactly one object, colour and shape right), prompt accuracy (every caption: also two-object
    ones with both objects right and bound), each with a Wilson interval; the FD in the judge's
    features to ``real_features`` (as many held-out images; caption i's image beside real image i),
    with a bootstrap interval over those pairs (``n_bootstrap`` resamples)."""
    small = judge_size(images)
    fake = embed_images(small, judge)
    real = real_features[: len(fake)]
    fd = frechet_distance_from_features(real, fake)
    return {
        "n": len(captions),
        **judge_accuracies(small, captions, judge),
        "fd": fd,
        "fd_ci": bootstrap_interval(
            lambda i: frechet_distance_from_features(real[i], fake[i]), len(fake), fd, n_resamples=n_bootstrap
        ),
    }


@torch.no_grad()
def sample(ldm: LatentDiffusion, captions: list[str], steps: int, guidance: float, seed: int, batch: int = 100):
    """One image per caption (DDIM-``steps``, guidance ``guidance``; image i with seed ``seed + i``
    per batch start): (images b 3 H W in [0, 1], seconds taken, decoder included)."""
    start = time.perf_counter()
    images = torch.cat(
        [
            ldm.generate(captions[i : i + batch], steps=steps, guidance=guidance, seed=seed + i)
            for i in range(0, len(captions), batch)
        ]
    )
    return images, time.perf_counter() - start


# ---------------------------------------------------------------- one model: train, measuring on the way


def _progress(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def train_one(f: int, sweep: FSweepConfig, data: dict, judge, work_dir: Path) -> dict:
    """Train the LDM at factor f until it has done ``steps`` steps and ``seconds`` of training,
    stopping at each point of the curve to sample with its EMA weights and read the samples.

    The equal-time point is planned after the first ``eval_every`` steps, from their speed.
    Training runs in segments between points (``train_diffusion``'s ``stop_after``), with the full
    training state saved at each; the points measured so far live in ``progress.json``, so a
    killed run resumes at its last point."""
    out = work_dir / f"{sweep.image_size}px-f{f}"
    out.mkdir(parents=True, exist_ok=True)
    progress_path = out / "progress.json"
    record = _progress(progress_path)
    settings = json.loads(json.dumps(asdict(sweep)))  # as the JSON file holds them (tuples as lists)
    defaults = json.loads(json.dumps(asdict(FSweepConfig())))  # a setting added since the run: its default
    if {**defaults, **record.get("config", settings)} != settings:
        raise ValueError(
            f"{out} holds a run with other settings ({record['config']}); pass another work_dir, or delete "
            f"{out} to train this model again"
        )
    record["config"] = settings
    if record.get("done"):
        return record
    ae = None if f == 1 else autoencoder_for(f, sweep, data["train_images"], work_dir)  # f = 1: pixel space
    ldm = build_model(f, ae, sweep)
    start = time.perf_counter()
    # z_0: the latent cache scale * E(x), or at f = 1 the images themselves in [-1, 1] (kept as uint8 until then)
    latents = data["train_images"] if ae is None else encode_images(ae, data["train_images"])
    record.setdefault("encode_seconds", time.perf_counter() - start)
    tokens = ldm.tokenizer(data["train_captions"])
    record.setdefault("points", [])
    log_every = min(25, sweep.eval_every)  # every point is a multiple of it: the history has the time there
    first = sweep.eval_every
    config = ldm_recipe(None, replace(Profile(), image_size=sweep.image_size), seed=sweep.seed)[1]  # its TrainConfig

    def train_until(stop: int) -> float:
        """Train on to step ``stop`` (from the saved state, if any); the training seconds so far."""
        nonlocal ldm
        train_config = replace(
            config, steps=max(record.get("plan", {}).get("total", stop), stop), decay_steps=sweep.steps,
            batch_size=sweep.batch_size, lr=sweep.lr, warmup=sweep.warmup, lr_min_ratio=0.1, log_every=log_every,
            save_every=10**9, progress=False,  # saved at the end of each segment only
        )
        ldm, history = train_diffusion(ldm, latents, tokens, train_config, out_dir=out, resume=True, stop_after=stop)
        return next(h["seconds"] for h in history if h["step"] == stop)

    def measure(stop: int, seconds: float, n: int) -> dict:
        images, _ = sample(ldm, data["captions"][:n], sweep.eval_ddim_steps, sweep.guidance, sweep.seed)
        read = read_samples(images, data["captions"][:n], data["real_features"], judge, sweep.n_bootstrap)
        point = {"step": stop, "seconds": seconds, **read}
        print(f"  {sweep.image_size}px f={f} step {stop} ({seconds:.0f} s): single {point['single']:.3f}, "
              f"FD {point['fd']:.2f} (n={n})", flush=True)
        return point

    if "plan" not in record:  # the first segment measures the speed, which sets the equal-time point
        seconds = train_until(first)
        equal_time = max(log_every, log_every * round(sweep.seconds / (seconds / first) / log_every))
        total = max(sweep.steps, equal_time)
        curve = set(range(sweep.eval_every, total + 1, sweep.eval_every))
        stops = sorted(curve | {sweep.steps, equal_time})
        record["plan"] = {"equal_time_step": equal_time, "total": total, "stops": stops}
        budgets = (sweep.steps, equal_time)
        record["points"] = [measure(first, seconds, sweep.n_final if first in budgets else sweep.n_curve)]
        atomic_write_text(progress_path, json.dumps(record, indent=1))
    plan = record["plan"]
    for stop in plan["stops"]:
        if any(p["step"] == stop for p in record["points"]):
            continue
        seconds = train_until(stop)
        n = sweep.n_final if stop in (sweep.steps, plan["equal_time_step"]) else sweep.n_curve
        record["points"].append(measure(stop, seconds, n))
        atomic_write_text(progress_path, json.dumps(record, indent=1))
    train_until(plan["total"])  # the EMA weights at the end (a no-op load if this process trained them)

    ldm.eval()
    record |= final_views(f, ldm, sweep, data, judge, out)
    record["done"] = True
    atomic_write_text(progress_path, json.dumps(record, indent=1))
    return record


def final_views(f: int, ldm: LatentDiffusion, sweep: FSweepConfig, data: dict, judge, out: Path) -> dict:
    """After training: throughput against quality (Fig. 7) for each S, and the sample grid."""
    throughput = []
    captions = data["captions"][: sweep.n_throughput]
    for S in sweep.ddim_steps:
        images, seconds = sample(ldm, captions, S, sweep.guidance, sweep.seed)
        read = read_samples(images, captions, data["real_features"], judge, sweep.n_bootstrap)
        kept = {k: read[k] for k in ("single", "single_ci", "accuracy", "accuracy_ci")}  # no FD: too few images
        throughput.append({"ddim_steps": S, "images_per_s": len(captions) / seconds, **kept})
    grid, _ = sample(ldm, SAMPLE_CAPTIONS, sweep.grid_ddim_steps, sweep.guidance, sweep.seed)
    grid_name = f"{NAME}_samples_{sweep.image_size}px_f{f}.png"
    save_images(grid, str(out / grid_name), ncols=len(SAMPLE_CAPTIONS), scale=2 if sweep.image_size == 32 else 1)
    return {
        "throughput": throughput,
        "params": ldm.unet.num_params(),
        "latent_shape": list(ldm.latent_shape),
        "samples": grid_name,
    }


# ---------------------------------------------------------------- yardsticks: real images and the autoencoders


@torch.no_grad()
def yardsticks(sweep: FSweepConfig, data: dict, judge, work_dir: Path) -> dict:
    """What a perfect model would score at this size and n, and what each autoencoder allows:
    - ``real``: held-out val images read like samples (their own captions), FD against the test
      images: the floor of FD at ``n_final`` images;
    - ``ceiling`` per f: the reconstructions D(E(x)) of the test images, read the same way."""
    n = sweep.n_final
    val = load_shapes(n, "val", seed=sweep.seed, image_size=sweep.image_size)
    real = read_samples(images_uint8(val), val["caption"], data["real_features"], judge, sweep.n_bootstrap)
    out = {"real": real, "ceiling": {}}
    test = data["test_images"][:n]
    for f in sweep.factors:
        if f == 1:
            continue
        recon = reconstruct(autoencoder_for(f, sweep, data["train_images"], work_dir), test)
        mse = (recon - test.float() / 255).pow(2).mean().item()
        read = read_samples(recon, data["captions"][:n], data["real_features"], judge, sweep.n_bootstrap)
        out["ceiling"][str(f)] = {"psnr": 10 * math.log10(1 / mse), **read}
    return out


def time_pixel_space(sweep: FSweepConfig, data: dict, steps: int = 5) -> dict:
    """f = 1 costed but not trained: seconds per optimiser step and images/s of DDIM-S (S = eval_ddim_steps)."""
    ldm = build_model(1, None, sweep)
    x = to_model_range(data["train_images"][: sweep.batch_size])
    tokens = ldm.tokenizer(data["train_captions"][: sweep.batch_size])
    optimizer = torch.optim.AdamW(ldm.trainable().parameters(), lr=sweep.lr)
    timings = []
    for _ in range(steps + 1):  # the first step warms up
        start = time.perf_counter()
        loss = ldm.loss(x, tokens)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        timings.append(time.perf_counter() - start)
    n = min(20, sweep.n_throughput)
    _, seconds = sample(ldm, data["captions"][:n], sweep.eval_ddim_steps, sweep.guidance, sweep.seed)
    return {"seconds_per_step": sum(timings[1:]) / steps, "images_per_s": n / seconds, "params": ldm.unet.num_params()}


def run_size(sweep: FSweepConfig, judge, work_dir: Path) -> dict:
    """One sweep (one image size): every f trained and measured, the yardsticks, f = 1 timed."""
    train = load_shapes(sweep.n_train, "train", seed=sweep.seed, image_size=sweep.image_size)
    test = load_shapes(max(sweep.n_final, sweep.n_curve), "test", seed=sweep.seed, image_size=sweep.image_size)
    data = {"train_images": images_uint8(train), "train_captions": train["caption"], "captions": test["caption"],
            "test_images": images_uint8(test)}
    data["real_features"] = embed_images(judge_size(data["test_images"]), judge)
    models = {str(f): train_one(f, sweep, data, judge, work_dir) for f in sweep.factors}
    pixel = time_pixel_space(sweep, data, steps=min(5, sweep.steps)) if 1 not in sweep.factors else None
    return {"config": asdict(sweep), "models": models, "pixel_timing": pixel,
            **yardsticks(sweep, data, judge, work_dir)}


def run(profile: Profile, out_dir: Path = RESULTS_DIR, work_dir: Path = WORK_DIR) -> dict:
    """Both sweeps; writes data/experiments/f_sweep.json and the sample grids f_sweep_samples_{H}px_f{f}.png."""
    start = time.perf_counter()
    judge = load_pretrained(JUDGE)  # the reader of every figure: nothing here was trained against it
    # a miniature run (a smoke test) starts afresh in a folder of its own, never resuming a real run
    work_dir = Path(work_dir) / profile.name
    if profile.is_miniature:
        work_dir = Path(tempfile.mkdtemp(prefix="f_sweep-miniature-"))
    sizes = {}
    for sweep in sweep_configs(profile):
        sizes[str(sweep.image_size)] = run_size(sweep, judge, work_dir)
        for f, model in sizes[str(sweep.image_size)]["models"].items():
            grid = work_dir / f"{sweep.image_size}px-f{f}" / model["samples"]
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            (Path(out_dir) / model["samples"]).write_bytes(grid.read_bytes())
    results = {"profile": profile.name, "sample_captions": SAMPLE_CAPTIONS, "sizes": sizes,
               "reader": "the judge (eval/judge.py) on 32 px images (64 px ones averaged 2 x 2): accuracies with "
               "Wilson 95% intervals, FD in its features with 95% bootstrap intervals over the image pairs"}
    save_results(NAME, results, out_dir, seconds=time.perf_counter() - start)
    return results


# ---------------------------------------------------------------- reading the results (lesson 07)


def budget_point(results: dict, f: int, budget: str) -> dict:
    """The measurement of the model at factor f of one size's ``results`` at one of the two budgets:
    ``"steps"`` (after ``steps`` optimiser steps, Fig. 6) or ``"time"`` (after ``seconds`` of training)."""
    if budget not in ("steps", "time"):
        raise ValueError(f"budget must be 'steps' or 'time', got {budget!r}")
    model = results["models"][str(f)]
    step = model["plan"]["equal_time_step"] if budget == "time" else results["config"]["steps"]
    return next(p for p in model["points"] if p["step"] == step)


def overlap(a: list[float], b: list[float]) -> bool:
    """Do two 95% intervals [low, high] overlap? Lesson 07's rule for "inside the noise": a
    difference counts only when the intervals are apart (a strict rule: it misses some real gaps)."""
    return a[0] <= b[1] and b[0] <= a[1]


def best_and_ties(points: dict[int, dict], key: str) -> tuple[int, list[int]]:
    """The best f by ``key`` ("single" or "accuracy": highest; "fd": lowest) among {f: point}, and
    every f whose interval overlaps the best one's (the best included): the f inside its noise."""
    better = min if key == "fd" else max
    best = better(points, key=lambda f: points[f][key])
    ties = [f for f in points if overlap(points[f][f"{key}_ci"], points[best][f"{key}_ci"])]
    return best, sorted(ties)


def samples_view(record: dict, size: int, f: int, results_dir: Path = RESULTS_DIR) -> dict:
    """What lesson 07's selector shows for the model at ``size`` px and factor f: its sample grid
    (H W 3 uint8) and a title with its accuracy and FD at the equal-steps budget, and its
    autoencoder's PSNR (the ceiling)."""
    import numpy as np
    from PIL import Image

    sizes = record["results"]["sizes"]
    if str(size) not in sizes:
        raise ValueError(f"{size} px is not in these results; measured: {', '.join(sizes)} px")
    models = sizes[str(size)]["models"]
    if str(f) not in models:
        raise ValueError(f"f={f} is not in these results at {size} px; measured: {', '.join(models)}")
    model = models[str(f)]
    grid = np.asarray(Image.open(Path(results_dir) / model["samples"]).convert("RGB"))
    at = budget_point(sizes[str(size)], f, "steps")
    title = (
        f"{size} px, f = {f} (latent {model['latent_shape'][1]} x {model['latent_shape'][2]}): single "
        f"{at['single']:.0%}, FD {at['fd']:.1f} after {at['step']} steps"
    )
    if str(f) in sizes[str(size)]["ceiling"]:  # f = 1 (pixel space) has no autoencoder
        title += f"; autoencoder {sizes[str(size)]['ceiling'][str(f)]['psnr']:.1f} dB"
    return {"grid": grid, "title": title, "single": at["single"], "fd": at["fd"]}


# ---------------------------------------------------------------- the evidence yardsticks (lesson 07)


@torch.no_grad()
def fd_floor(n: int = 1_000, image_size: int = 32, judge=None, seed: int = 0) -> dict:
    """How far apart two sets of *real* images are in FD (the judge's features), at ``n`` images
    per set: the first ``n`` held-out test images (the sweep's reference) against ``n`` val images.
    A model that drew perfect images would land about here, not at 0; with fewer images the
    covariances of the 128 features are estimated worse and the floor rises (about as 1 / n)."""
    judge = judge if judge is not None else load_pretrained(JUDGE)
    real = embed_images(judge_size(images_uint8(load_shapes(n, "test", seed=seed, image_size=image_size))), judge)
    other = embed_images(judge_size(images_uint8(load_shapes(n, "val", seed=seed, image_size=image_size))), judge)
    fd = frechet_distance_from_features(real, other)
    interval = bootstrap_interval(lambda i: frechet_distance_from_features(real[i], other[i]), n, fd)
    return {"n": n, "fd": fd, "fd_ci": interval}


@torch.no_grad()
def reconstruction_score(f: int, n: int = 200, judge=None, seed: int = 0) -> float:
    """The single-object accuracy, read by the judge, of ae-kl-f{f}'s reconstructions D(E(x)) of the
    one-object scenes among the first ``n`` 32 px test images: the ceiling that the autoencoder puts
    on any LDM at this f (the LDM's samples pass through the same D)."""
    judge = judge if judge is not None else load_pretrained(JUDGE)
    test = load_shapes(n, "test", seed=seed)
    recon = reconstruct(load_pretrained(ae_name("kl", f)), images_uint8(test))
    return judge_accuracies(recon, test["caption"], judge)["single"]
