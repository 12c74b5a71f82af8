"""``make pretrained``: rebuild every file in ``data/checkpoints/`` from scratch, in dependency order.

1. ``attribute-classifier``: names shape, colour, size and position of each object: the
   perceptual-loss network of the autoencoders (and the features of the Frechet distance);
   ``judge``: a second network, which no model is trained against, reads the generated images.
2. ``ae-{kl,vq}-f{1,2,4,8,16}``: the first-stage autoencoders (lesson 02's table).
3. ``shapes-kl-f4``: the text-to-image latent diffusion model (lessons 04-06).
4. ``shapes-pixel``: an unconditional pixel-space diffusion model (lesson 08, where the bits go).
5. ``sr-ldm-f4`` and ``sr-pixel``: the x4 super-resolution models of lesson 09 (concatenation
   conditioning in latent and in pixel space), trained with one budget and measured on held-out
   test images; lesson 09's experiment trains the same pair with the same function.

Each file is fp16 safetensors; ``manifest.json`` records config, seed, steps, training time,
torch version, measured metrics and the sha256 that ``load_pretrained`` checks.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from pathlib import Path

import torch

from .. import checkpoints as ck
from ..autoencoder import Autoencoder
from ..config import Profile, get_profile, pick_device, seed_everything
from ..data import attribute_labels, images_uint8, load_shapes, save_png_grid, to_image_range, to_model_range
from ..eval.bound import evaluate_bound, unconditional_eps
from ..eval.classifier import AttributeClassifier, classifier_accuracy, train_attribute_classifier
from ..eval.detector import detect
from ..eval.judge import add_defects, compare_readings, train_judge
from ..eval.models import evaluate_autoencoder, evaluate_upscalers, headline_metrics, upscalers
from ..eval.prompts import classify_images, seen_objects
from ..ldm import LatentDiffusion, LDMConfig, SuperResDiffusion
from ..train import TrainConfig, encode_images, sr_training_data, train_autoencoder, train_diffusion
from .recipes import (
    AE_REGS,
    CLASSIFIER,
    JUDGE,
    LDM_MAIN,
    PIXEL,
    PROGRESS_CAPTIONS,
    PROGRESS_EVAL_N,
    PROGRESS_POINTS,
    SR_LDM,
    SR_PIXEL,
    SUPERRES,
    SRBudget,
    ae_name,
    ae_recipe,
    ldm_recipe,
    pixel_recipe,
    sr_budget,
    sr_recipe,
)
from .store import load_pretrained, save_diffusion


def _manifest_entry(
    path: Path, kind: str, config, train_config: TrainConfig | None, seconds: float, metrics: dict, **extra
) -> dict:
    return {
        "file": path.name,
        "sha256": ck.sha256(path),
        "kind": kind,
        "config": dataclasses.asdict(config),
        "train": dataclasses.asdict(train_config) if train_config is not None else None,
        "train_seconds": round(seconds, 1),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "metrics": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items()},
        "command": "python -m ldm_mini pretrained",
        **extra,
    }


def build_classifier(profile: Profile, directory: Path = ck.CHECKPOINT_DIR, seed: int = 0) -> AttributeClassifier:
    train = load_shapes(profile.n_train, "train", seed=seed)
    val = load_shapes(profile.n_eval, "val", seed=seed)
    start = time.perf_counter()
    model = train_attribute_classifier(
        images_uint8(train), attribute_labels(train), steps=profile.classifier_steps, seed=seed
    )
    seconds = time.perf_counter() - start
    accuracy = classifier_accuracy(model, images_uint8(val), attribute_labels(val))
    path = ck.save_model(model, directory / f"{CLASSIFIER}.safetensors", half=True)
    ck.write_manifest_entry(
        CLASSIFIER,
        _manifest_entry(
            path,
            "classifier",
            model.config,
            None,
            seconds,
            {f"val_acc_{k}": v for k, v in accuracy.items()},
            steps=profile.classifier_steps,
            seed=seed,
        ),
        directory,
    )
    return model


def build_judge(profile: Profile, directory: Path = ck.CHECKPOINT_DIR, seed: int = 1) -> torch.nn.Module:
    """Train the judge (``eval/judge.py``) and record in the manifest its accuracy on clean val images
    and on val images with defects, and its agreement with the rule-based detector on real test images."""
    train = load_shapes(profile.n_train, "train", seed=0)
    val = load_shapes(profile.n_eval, "val", seed=0)
    test = load_shapes(profile.n_eval, "test", seed=0)
    start = time.perf_counter()
    model = train_judge(images_uint8(train), attribute_labels(train), steps=profile.judge_steps, seed=seed)
    seconds = time.perf_counter() - start
    clean = classifier_accuracy(model, images_uint8(val), attribute_labels(val))
    defected = to_image_range(add_defects(to_model_range(images_uint8(val)), torch.Generator().manual_seed(99)))
    with_defects = classifier_accuracy(model, (defected * 255).round().to(torch.uint8), attribute_labels(val))
    judge_seen = classify_images(images_uint8(test), model)  # each test image read once by each reader
    found = [detect(x) for x in images_uint8(test)]
    real = compare_readings(test["caption"], judge_seen, found)
    truth = [_true_objects(row) for row in test.remove_columns("image").to_list()]
    judge_right = sum(sorted(seen_objects(a)) == t for a, t in zip(judge_seen, truth))
    detector_right = sum(sorted((o.colour, o.shape) for o in objs) == t for objs, t in zip(found, truth))
    path = ck.save_model(model, directory / f"{JUDGE}.safetensors", half=True)
    metrics = {f"val_acc_{k}": v for k, v in clean.items()}
    metrics |= {f"val_defects_acc_{k}": v for k, v in with_defects.items()}
    metrics |= {"real_agree_objects": real["objects"], "real_agree_verdict": real["verdict"], "real_n": real["n"]}
    metrics |= {
        "real_judge_objects_right": judge_right / len(test),
        "real_detector_objects_right": detector_right / len(test),
    }
    extra = {"steps": profile.judge_steps, "seed": seed, "real_disagree": real["disagree"][:20]}
    ck.write_manifest_entry(
        JUDGE, _manifest_entry(path, "judge", model.config, None, seconds, metrics, **extra), directory
    )
    return model


def _true_objects(row: dict) -> list[tuple[str, str]]:
    """The (colour, shape) pairs a dataset row holds, sorted."""
    pairs = [(row["colour1"], row["shape1"])]
    return sorted(pairs + ([(row["colour2"], row["shape2"])] if row["n_objects"] == 2 else []))


def measure_headline(profile: Profile, directory: Path = ck.CHECKPOINT_DIR, seed: int = 0) -> dict:
    """The shipped text-to-image model's headline figures (``eval.models.headline_metrics``, read by the
    judge), stored under "headline" in its manifest entry, and a grid of its two-object samples."""
    ldm, judge = load_pretrained(LDM_MAIN, directory), load_pretrained(JUDGE, directory)
    start = time.perf_counter()
    record, images = headline_metrics(ldm, judge, n=profile.n_samples_eval, steps=50, guidance=3.0, seed=seed)
    record["seconds"] = round(time.perf_counter() - start, 1)
    two = images["two"][:48]  # b 3 h w -> rows of 12 (one row if fewer)
    rows = two.reshape(-1, 12, *two.shape[1:]) if len(two) % 12 == 0 else two[None]
    record["two_grid"] = save_png_grid(rows, directory / f"{LDM_MAIN}-two.png", frame=1).name
    disagree = [d["index"] for d in record["agreement"]["disagree"]][:12]
    if disagree:  # where the judge and the detector read a sample differently: for a person to look at
        every = torch.cat(list(images.values()))  # in the order of the agreement's indices
        record["disagree_grid"] = save_png_grid(every[disagree][None], directory / f"{LDM_MAIN}-disagree.png").name
    manifest = ck.read_manifest(directory)  # "metrics": the judge's figures, "headline": how they were measured
    entry = {**manifest[LDM_MAIN], "metrics": record["figures"], "headline": record}
    ck.write_manifest_entry(LDM_MAIN, entry, directory)
    return record


def fit_autoencoder(
    reg: str,
    f: int,
    profile: Profile,
    classifier: AttributeClassifier,
    seed: int = 0,
    steps: int | None = None,
    out_dir: Path | None = None,
    resume: bool = False,
    device: torch.device | str = "cpu",
    judge: torch.nn.Module | None = None,
) -> tuple[Autoencoder, dict]:
    """Train the autoencoder ``ae-{reg}-f{f}`` by its recipe (``steps`` overrides the profile's
    count; the PatchGAN still joins for the last 30%), measure its latent scale on 1000 training
    images and its quality on the val split. Returns (autoencoder, record for the manifest).

    The ``classifier`` is the perceptual loss's network; the rFID is read in the ``judge``'s features
    (default: the shipped judge), which the autoencoder was not trained against."""
    config, loss_config, train_config = ae_recipe(reg, f, profile, seed)
    if steps:
        train_config.steps = steps
        loss_config.disc_start = int(0.7 * steps)
    train = images_uint8(load_shapes(profile.n_train, "train", seed=seed))
    val = images_uint8(load_shapes(profile.n_eval, "val", seed=seed))
    start = time.perf_counter()
    classifier = classifier.to(device)  # the perceptual loss runs it on every batch
    ae, history = train_autoencoder(
        config, train, train_config, loss_config, feature_net=classifier, out_dir=out_dir, resume=resume, device=device
    )
    seconds = history[-1]["seconds"] if history else time.perf_counter() - start
    ae.measure_scale_factor(to_model_range(train[:1000]).to(device))
    metrics = evaluate_autoencoder(ae, val, judge if judge is not None else load_pretrained(JUDGE))
    metrics["scale_factor"] = ae.scale_factor.item()
    return ae, {
        "config": config,
        "loss": loss_config,
        "train": train_config,
        "history": history,
        "seconds": seconds,
        "metrics": metrics,
    }


def build_autoencoder(
    reg: str,
    f: int,
    profile: Profile,
    classifier: AttributeClassifier,
    directory: Path = ck.CHECKPOINT_DIR,
    seed: int = 0,
    work_dir: Path | None = None,
    device: torch.device | str = "cpu",
    judge: torch.nn.Module | None = None,
) -> Autoencoder:
    name = ae_name(reg, f)
    ae, record = fit_autoencoder(
        reg,
        f,
        profile,
        classifier,
        seed,
        out_dir=work_dir / name if work_dir else None,
        resume=work_dir is not None,
        device=device,
        judge=judge,
    )
    path = ck.save_model(ae, directory / f"{name}.safetensors", half=True)
    history = record["history"]
    ck.write_manifest_entry(
        name,
        _manifest_entry(
            path,
            "autoencoder",
            record["config"],
            record["train"],
            record["seconds"],
            record["metrics"],
            seed=seed,
            loss=dataclasses.asdict(record["loss"]),
            history=history[:: max(1, len(history) // 40)],
        ),
        directory,
    )
    return ae


def remeasure_autoencoders(
    profile: Profile, directory: Path = ck.CHECKPOINT_DIR, only: list[str] | None = None, seed: int = 0
) -> dict[str, dict]:
    """Measure the shipped autoencoders again, without training: PSNR, SSIM, rFID (judge's features),
    bits/dim on the val split, as ``fit_autoencoder`` does; the rest of each manifest entry (the
    training record, the latent scale) is kept. For a change of how they are measured, not of what
    they are. Returns {name: metrics}."""
    val = images_uint8(load_shapes(profile.n_eval, "val", seed=seed))
    judge, manifest, out = load_pretrained(JUDGE, directory), ck.read_manifest(directory), {}
    for name, entry in manifest.items():
        if entry["kind"] != "autoencoder" or (only is not None and name not in only):
            continue
        metrics = evaluate_autoencoder(load_pretrained(name, directory), val, judge)
        entry["metrics"] = {**entry["metrics"], **metrics}
        ck.write_manifest_entry(name, entry, directory)
        out[name] = metrics
    return out


def fresh_ldm(config: LDMConfig, ae: Autoencoder, seed: int = 0) -> LatentDiffusion:
    """A freshly initialised text-to-image LDM (seeded: the same eps_theta and tau_theta for the same
    config and seed) on the frozen autoencoder ``ae``."""
    seed_everything(seed)
    ldm = LatentDiffusion(config)
    ldm.autoencoder.load_state_dict(ae.state_dict())
    return ldm


def prepare_ldm_training(
    config: LDMConfig, ae: Autoencoder, profile: Profile, seed: int = 0
) -> tuple[LatentDiffusion, torch.Tensor, torch.Tensor]:
    """A fresh text-to-image LDM on the frozen autoencoder ``ae``, with what it trains on: the
    latent cache E(x) * scale of the training split (n c h w) and its caption tokens (n L)."""
    ldm = fresh_ldm(config, ae, seed)
    train = load_shapes(profile.n_train, "train", seed=seed)
    return ldm, encode_images(ldm.autoencoder, images_uint8(train)), ldm.tokenizer(train["caption"])


def build_ldm(
    profile: Profile, directory: Path = ck.CHECKPOINT_DIR, seed: int = 0, work_dir: Path | None = None
) -> LatentDiffusion:
    ae_path, _ = ck.verified_path(ae_name("kl", 4), directory)
    ae = ck.load_model(Autoencoder, ae_path)
    config, train_config = ldm_recipe(ae.config, profile, seed)
    ldm, latents, tokens = prepare_ldm_training(config, ae, profile, seed)
    snapshots: dict[int, torch.Tensor] = {}
    every = max(1, train_config.steps // 6)

    def snapshot(step: int) -> None:  # samples for fixed captions as training goes on (lesson 05)
        if step == 1 or step % every == 0:
            snapshots[step] = (
                (ldm.generate(PROGRESS_CAPTIONS, steps=20, guidance=3.0, seed=0) * 255).round().to(torch.uint8)
            )
            ldm.train()

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = work_dir / LDM_MAIN if work_dir else Path(tmp)  # stop-and-resume needs the training state
        ldm, history, curve = _train_with_curve(
            ldm, latents, tokens, train_config, run_dir, snapshot, profile, directory
        )
    seconds = history[-1]["seconds"] if history else time.perf_counter() - start
    metrics: dict = {}  # filled by measure_headline, read by the judge (build_all runs it next)
    path = save_diffusion(ldm, directory / f"{LDM_MAIN}.safetensors")
    progress = save_png_grid(
        torch.stack([snapshots[k] for k in sorted(snapshots)]), directory / f"{LDM_MAIN}-progress.png"
    )  # r b 3 h w
    ck.write_manifest_entry(
        LDM_MAIN,
        _manifest_entry(
            path,
            "ldm",
            config,
            train_config,
            seconds,
            metrics,
            seed=seed,
            autoencoder=ae_name("kl", 4),
            history=history[:: max(1, len(history) // 40)],
            curve=curve,
            progress={
                "file": progress.name,
                "steps": sorted(snapshots),
                "captions": PROGRESS_CAPTIONS,
                "sampler": "DDIM-20, guidance 3, seed 0, training weights (not EMA)",
            },
        ),
        directory,
    )
    return ldm


def progress_points(steps: int, k: int = PROGRESS_POINTS) -> list[int]:
    """k steps evenly spaced over a run of ``steps`` (fewer for a tiny run), ending at ``steps``."""
    return sorted({max(1, round(steps * i / k)) for i in range(1, k + 1)})


def train_with_curve(
    ldm, latents, tokens, train_config: TrainConfig, run_dir: Path, measure, points: list[int], on_step=None
):
    """Train to each step of ``points`` in turn and measure the EMA weights there: a curve along training.

    ``measure(ldm, step) -> dict`` gives the row of one point. The run stops and resumes from
    ``run_dir`` at each point (``train_diffusion``'s stop-and-resume: the same weights as one
    uninterrupted run), and the curve, one row {"step": ..., **measure(...)} per point, is kept in
    run_dir/curve.json, so a killed or repeated call trains on from the last saved state and measures
    no point twice. Returns (model with the EMA weights of the last point, history, curve)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    saved = run_dir / "curve.json"
    curve = json.loads(saved.read_text()) if saved.exists() else []
    history: list[dict] = []
    for stop in points:
        ldm, history = train_diffusion(
            ldm, latents, tokens, train_config, out_dir=run_dir, resume=True, stop_after=stop, on_step=on_step
        )  # now holds the EMA weights at `stop`; the next call resumes from the training weights
        if any(row["step"] == stop for row in curve) or any(h["step"] > stop for h in history):
            continue  # measured before, or this run resumed past it
        at = history[-1] if history and history[-1]["step"] == stop else {}  # the training log at this point
        curve.append({"step": stop, "train_seconds": at.get("seconds"), "loss": at.get("loss"), **measure(ldm, stop)})
        saved.write_text(json.dumps(curve))
    return ldm, history, curve


def _train_with_curve(ldm, latents, tokens, train_config, run_dir: Path, on_step, profile, directory):
    """The shipped model's curve: ``train_with_curve`` at ``progress_points``, each point measured with
    ``headline_metrics`` (fewer captions per set). Returns (model, history, curve)."""
    judge = load_pretrained(JUDGE, directory)
    n = min(PROGRESS_EVAL_N, profile.n_samples_eval)

    def measure(model, step: int) -> dict:
        record, _ = headline_metrics(model, judge, n=n, steps=50, guidance=3.0, seed=0)
        return {"n_per_set": n, "sampler": "DDIM-50, guidance 3, EMA", **record["figures"]}

    points = progress_points(train_config.steps)
    return train_with_curve(ldm, latents, tokens, train_config, run_dir, measure, points, on_step)


def build_pixel(
    profile: Profile, directory: Path = ck.CHECKPOINT_DIR, seed: int = 0, work_dir: Path | None = None
) -> LatentDiffusion:
    """Train ``shapes-pixel`` on the images alone (every caption empty: an unconditional model,
    as in the paper's Fig. 2) and record its bound in bits/dim on 64 validation images."""
    config, train_config = pixel_recipe(profile, seed)
    seed_everything(seed)
    ldm = LatentDiffusion(config)
    train = load_shapes(profile.n_train, "train", seed=seed)
    x0 = to_model_range(images_uint8(train))  # pixel space: z_0 is the image itself, n 3 H W in [-1, 1]
    tokens = ldm.tokenizer([""]).expand(len(x0), -1).contiguous()
    start = time.perf_counter()
    ldm, history = train_diffusion(
        ldm, x0, tokens, train_config, out_dir=work_dir / PIXEL if work_dir else None, resume=work_dir is not None
    )
    seconds = history[-1]["seconds"] if history else time.perf_counter() - start
    val = to_model_range(images_uint8(load_shapes(64, "val", seed=seed)))
    bound = evaluate_bound(unconditional_eps(ldm), val, ldm.schedule, steps=100, seed=seed)
    metrics = {
        "final_loss": history[-1]["loss"],
        "bits_per_dim_bound_val64_S100": bound["total_bits"],
        "params": sum(p.numel() for p in ldm.parameters()),
    }
    path = save_diffusion(ldm, directory / f"{PIXEL}.safetensors")
    ck.write_manifest_entry(
        PIXEL,
        _manifest_entry(
            path,
            "ldm",
            config,
            train_config,
            seconds,
            metrics,
            seed=seed,
            autoencoder=None,
            captions="all empty (unconditional)",
            history=history[:: max(1, len(history) // 40)],
        ),
        directory,
    )
    return ldm


def train_superres_pair(
    profile: Profile,
    seed: int = 0,
    work_dir: Path | None = None,
    budget: SRBudget | None = None,
    source_dir: Path = ck.CHECKPOINT_DIR,
) -> tuple[dict, dict]:
    """Train the LDM-SR and the pixel SR of lesson 09 with one compute budget (ae-kl-f4 read from
    ``source_dir``). Returns ({"LDM SR": model, "pixel SR": model}, their training records)."""
    budget = budget or sr_budget(profile)
    ae = load_pretrained(ae_name("kl", 4), source_dir)
    train = images_uint8(load_shapes(profile.n_train, "train", seed=seed))
    models, records = {}, {}
    for name, ae_config in (("LDM SR", ae.config), ("pixel SR", None)):
        steps = budget.ldm_steps if ae_config is not None else budget.steps  # equal compute (SRBudget)
        config, train_config = sr_recipe(ae_config, profile, seed, steps=steps, batch_size=budget.batch_size)
        seed_everything(seed)
        model = SuperResDiffusion(config).to(pick_device())
        if model.autoencoder is not None:
            model.autoencoder.load_state_dict(ae.state_dict())
        start = time.perf_counter()
        targets, y_low = sr_training_data(model, train)  # LDM: the latent cache E(x), once
        prepare = time.perf_counter() - start
        out = work_dir / (SR_LDM if ae_config is not None else SR_PIXEL) if work_dir else None
        model, history = train_diffusion(model, targets, y_low, train_config, out_dir=out, resume=out is not None)
        seconds = history[-1]["seconds"]
        models[name] = model
        records[name] = {
            "params": model.num_params(),
            "steps": train_config.steps,
            "batch_size": train_config.batch_size,
            "lr": train_config.lr,
            "train_seconds": seconds,
            "seconds_per_step": seconds / train_config.steps,
            "prepare_seconds": prepare,
            "final_loss": sum(h["loss"] for h in history[-4:]) / len(history[-4:]),
            "history": [
                {"step": h["step"], "seconds": h["seconds"], "loss": h["loss"]}
                for h in history[:: max(1, len(history) // 40)]
            ],
            "config": config,
            "train": train_config,
        }
    return models, records


def ship_superres(
    model: SuperResDiffusion, name: str, record: dict, metrics: dict, directory: Path = ck.CHECKPOINT_DIR, seed: int = 0
) -> Path:
    """Write one SR model to ``directory`` with its manifest entry."""
    path = save_diffusion(model, directory / f"{name}.safetensors")
    extra = {"autoencoder": ae_name("kl", 4)} if model.autoencoder is not None else {}
    metrics = {**metrics, "params": record["params"], "seconds_per_step": record["seconds_per_step"]}
    entry = _manifest_entry(
        path,
        "superres",
        model.config,
        record["train"],
        record["train_seconds"],
        metrics,
        seed=seed,
        history=record["history"],
        command=f"python -m ldm_mini pretrained --only {' '.join(SUPERRES)}",
        **extra,
    )
    ck.write_manifest_entry(name, entry, directory)
    return path


def build_superres(
    profile: Profile,
    directory: Path = ck.CHECKPOINT_DIR,
    seed: int = 0,
    work_dir: Path | None = None,
    budget: SRBudget | None = None,
    source_dir: Path | None = None,
) -> dict:
    """Train both SR models with one budget, measure them on held-out test images (PSNR, SSIM, FD and
    the IS analogue read by the judge, CPU time per image) and ship them. Returns the models."""
    budget = budget or sr_budget(profile)
    source_dir = source_dir or directory
    models, records = train_superres_pair(profile, seed, work_dir, budget, source_dir)
    judge = load_pretrained(JUDGE, source_dir)  # FD in the judge's features: D was trained against the classifier
    hr = images_uint8(load_shapes(profile.n_eval, "test", seed=seed))[: budget.n_test].float() / 255
    rows = evaluate_upscalers(
        {k: v for k, v in upscalers(models, budget.sample_steps, seed).items() if k in models},
        hr,
        judge,
        budget.eval_batch,
    )
    for name, key in (("LDM SR", SR_LDM), ("pixel SR", SR_PIXEL)):
        ship_superres(
            models[name],
            key,
            records[name],
            {k: rows[name][k] for k in ("psnr", "ssim", "fd", "seconds_per_image")},
            directory,
            seed,
        )
    return models


def build_all(
    profile: Profile | str = "quick",
    only: list[str] | None = None,
    directory: Path = ck.CHECKPOINT_DIR,
    work_dir: Path | None = Path("runs/pretrained"),
) -> None:
    """Rebuild the shipped checkpoints (all, or the names in ``only``) in dependency order.

    ``work_dir`` keeps each run's training state, so an interrupted build resumes."""
    profile = get_profile(profile) if isinstance(profile, str) else profile
    directory.mkdir(parents=True, exist_ok=True)
    wanted = lambda name: only is None or name in only  # noqa: E731
    if wanted(CLASSIFIER):
        build_classifier(profile, directory)
    if wanted(JUDGE):
        build_judge(profile, directory)
    classifier = load_pretrained(CLASSIFIER, directory)  # the autoencoders' perceptual loss
    judge = load_pretrained(JUDGE, directory)  # their rFID: features they were not trained against
    for f in (4, 1, 2, 8, 16):  # f = 4 first: the LDM needs it
        for reg in AE_REGS:
            if wanted(ae_name(reg, f)):
                build_autoencoder(reg, f, profile, classifier, directory, work_dir=work_dir, judge=judge)
    if wanted(LDM_MAIN):
        build_ldm(profile, directory, work_dir=work_dir)
    if wanted(LDM_MAIN) or wanted(JUDGE):  # the headline figures: this model read by this judge
        measure_headline(profile, directory)
    if wanted(PIXEL):
        build_pixel(profile, directory, work_dir=work_dir)
    if any(wanted(name) for name in SUPERRES):  # one run makes both (they share the budget and the table)
        build_superres(profile, directory, work_dir=work_dir)


# ---------------------------------------------------------------- loading
