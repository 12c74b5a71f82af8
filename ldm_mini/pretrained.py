"""The shipped mini checkpoints: how each one is made, measured and loaded.

``make pretrained`` (``python -m ldm_mini pretrained``) rebuilds every file in
``data/checkpoints/`` from scratch with the recipes below, in dependency order:

1. ``attribute-classifier``: names shape, colour, size and position of each object. It is the
   perceptual-loss network of the autoencoders and the judge of every generated image.
2. ``ae-{kl,vq}-f{1,2,4,8,16}``: the first-stage autoencoders (lesson 02's table).
3. ``shapes-kl-f4``: the text-to-image latent diffusion model (lessons 04-06).
4. ``shapes-pixel``: an unconditional pixel-space diffusion model (lesson 08, where the bits go).
5. ``sr-ldm-f4`` and ``sr-pixel``: the x4 super-resolution models of lesson 09 (concatenation
   conditioning in latent and in pixel space), trained and measured by the ``superres``
   experiment, so the shipped files are the models of its table.

Each file is fp16 safetensors; ``manifest.json`` records config, seed, steps, training time,
torch version, measured metrics and the sha256 that ``load_pretrained`` checks.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from . import checkpoints as ck
from .autoencoder import Autoencoder, AutoencoderConfig
from .config import Profile, get_profile, seed_everything
from .data import attribute_labels, images_uint8, load_shapes, to_image_range, to_model_range
from .ldm import LatentDiffusion, LDMConfig
from .losses import AutoencoderLossConfig
from .metrics import AttributeClassifier, classifier_accuracy, frechet_distance, prompt_accuracy, psnr, ssim, train_attribute_classifier
from .rate import bits_per_dim_kl, bits_per_dim_vq, bits_per_dim_vq_entropy
from .superres import SRConfig, SuperResDiffusion, sr_unet_config
from .text import TextEncoderConfig
from .train import TrainConfig, encode_images, train_autoencoder, train_ldm
from .unet import UNetConfig

AE_FACTORS = (1, 2, 4, 8, 16)
AE_REGS = ("kl", "vq")
CLASSIFIER = "attribute-classifier"
LDM_MAIN = "shapes-kl-f4"
PIXEL = "shapes-pixel"
PIXEL_STEPS = {"quick": 1_500, "full": 50_000}  # optimiser steps of the pixel model per profile
SUPERRES = ("sr-ldm-f4", "sr-pixel")  # lesson 09


def ae_name(reg: str, f: int) -> str:
    return f"ae-{reg}-f{f}"


# ---------------------------------------------------------------- recipes


def ae_recipe(reg: str, f: int, profile: Profile, seed: int = 0) -> tuple[AutoencoderConfig, AutoencoderLossConfig, TrainConfig]:
    """The autoencoders of lesson 02: base 32 channels, c = 4 latent channels, K = 256 codes,
    all trained for the same number of steps; the PatchGAN joins for the last 30%."""
    # Self-attention in the middle block only where the latent is small (f >= 4): at f = 1 it
    # would attend over all 32 x 32 = 1024 positions and cost more than the rest of the model.
    config = AutoencoderConfig(f=f, reg=reg, base_channels=32, latent_channels=4, attn_mid=f >= 4)
    cfg = TrainConfig(steps=profile.ae_steps, batch_size=profile.batch_size, lr=1e-3, warmup=50, lr_min_ratio=0.05, seed=seed, log_every=25, save_every=100)
    loss_config = AutoencoderLossConfig(kl_weight=1e-6, disc_start=int(0.7 * cfg.steps))
    return config, loss_config, cfg


def ldm_recipe(ae_config: AutoencoderConfig | None, profile: Profile, seed: int = 0, model_channels: int = 64) -> tuple[LDMConfig, TrainConfig]:
    """The text-to-image LDM: a 6.6M-parameter UNet on the f = 4 latents, tau_theta of 2 layers."""
    c = ae_config.latent_channels if ae_config is not None else 3
    unet = UNetConfig(in_channels=c, out_channels=c, model_channels=model_channels, channel_mult=(1, 2, 2), attention_levels=(1, 2), num_heads=4, context_dim=64)
    config = LDMConfig(autoencoder=ae_config, unet=unet, text=TextEncoderConfig(dim=64, n_layers=2), image_size=profile.image_size)
    cfg = TrainConfig(steps=profile.ldm_steps, batch_size=profile.batch_size, lr=1e-3, warmup=100, lr_min_ratio=0.1, ema_decay=0.995, seed=seed, log_every=25, save_every=250)
    return config, cfg


def pixel_recipe(profile: Profile, seed: int = 0) -> tuple[LDMConfig, TrainConfig]:
    """The unconditional pixel-space model of lesson 08: no autoencoder (f = 1), a 32-channel
    UNet with attention only at 8 x 8 and in the middle, trained on the empty caption alone.

    Its schedule is Ho et al.'s beta range 1e-4 .. 0.02 (in the project's sqrt-linear form), not
    Stable Diffusion's 0.00085 .. 0.012: the last reverse step's noise sqrt(beta_1) sets how finely
    the discretised decoder can place a pixel, and 1e-4 gives ~1.3 grey levels instead of ~3.7,
    so the bound measures the model rather than the schedule's coarse first step.
    """
    unet = UNetConfig(in_channels=3, out_channels=3, model_channels=32, channel_mult=(1, 2, 2), attention_levels=(2,), num_heads=4, context_dim=32)
    config = LDMConfig(autoencoder=None, unet=unet, text=TextEncoderConfig(dim=32, n_layers=1), image_size=profile.image_size, beta_start=1e-4, beta_end=0.02, cond_drop=0.0)
    # Half the profile's batch: at 32 x 32 pixels a step costs 4x one on 8 x 8 latents, and more,
    # smaller steps learned faster than fewer, larger ones in a budget of minutes.
    cfg = TrainConfig(steps=PIXEL_STEPS[profile.name], batch_size=profile.batch_size // 2, lr=1e-3, warmup=100, lr_min_ratio=0.1, ema_decay=0.995, seed=seed, log_every=25, save_every=250)
    return config, cfg


def sr_recipe(ae_config: AutoencoderConfig | None, profile: Profile, seed: int = 0, steps: int = 1_000, batch_size: int = 64) -> tuple[SRConfig, TrainConfig]:
    """The x4 super-resolution models of lesson 09: one small UNet (0.82M parameters, no
    cross-attention, y concatenated), on the f = 4 latents (``ae_config``) or on pixels (None).
    Both get the same optimiser, schedule and EMA; the budget (steps, batch) comes from the
    experiment so that the two models always train equally long."""
    c = ae_config.latent_channels if ae_config is not None else 3
    config = SRConfig(autoencoder=ae_config, unet=sr_unet_config(c, model_channels=32), image_size=profile.image_size, factor=4)
    cfg = TrainConfig(steps=steps, batch_size=batch_size, lr=1e-3, warmup=50, lr_min_ratio=0.1, ema_decay=0.995, seed=seed, log_every=25, save_every=250)
    return config, cfg


# ---------------------------------------------------------------- measuring


@torch.no_grad()
def evaluate_autoencoder(ae: Autoencoder, images: torch.Tensor, classifier: AttributeClassifier | None = None, batch_size: int = 250) -> dict:
    """Reconstruction quality and rate of ``ae`` on uint8 images (b 3 H W).

    Returns PSNR and SSIM (on [0, 1] images), the rFID stand-in (Frechet distance of
    reconstructions to originals in the classifier's features), bits/dim, and for VQ-reg the
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
    result = {"psnr": psnr(original, rec), "ssim": ssim(original, rec), "params": sum(p.numel() for p in ae.parameters())}
    if classifier is not None:
        result["rfid"] = frechet_distance(original, rec, classifier)
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
    """Captions of held-out test images: the prompts every LDM is judged on."""
    return load_shapes(n, "test", seed=seed)["caption"]


def evaluate_ldm(ldm: LatentDiffusion, classifier: AttributeClassifier, n: int = 200, steps: int = 50, guidance: float = 3.0, seed: int = 0, batch_size: int = 100) -> dict:
    """Prompt accuracy of DDIM samples for ``n`` test captions (see metrics.prompt_accuracy)."""
    captions = evaluation_captions(n, seed)
    images = torch.cat([ldm.generate(captions[i : i + batch_size], steps=steps, guidance=guidance, seed=seed + i) for i in range(0, n, batch_size)])
    result = prompt_accuracy(captions, images, classifier)
    result.pop("per_caption")
    return result


# ---------------------------------------------------------------- building


def _manifest_entry(path: Path, kind: str, config, cfg: TrainConfig | None, seconds: float, metrics: dict, **extra) -> dict:
    return {
        "file": path.name,
        "sha256": ck.sha256(path),
        "kind": kind,
        "config": dataclasses.asdict(config),
        "train": dataclasses.asdict(cfg) if cfg is not None else None,
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
    model = train_attribute_classifier(images_uint8(train), attribute_labels(train), steps=profile.classifier_steps, seed=seed)
    seconds = time.perf_counter() - start
    accuracy = classifier_accuracy(model, images_uint8(val), attribute_labels(val))
    path = ck.save_model(model, directory / f"{CLASSIFIER}.safetensors", half=True)
    ck.write_manifest_entry(CLASSIFIER, _manifest_entry(path, "classifier", model.config, None, seconds, {f"val_acc_{k}": v for k, v in accuracy.items()}, steps=profile.classifier_steps, seed=seed), directory)
    return model


def build_autoencoder(reg: str, f: int, profile: Profile, classifier: AttributeClassifier, directory: Path = ck.CHECKPOINT_DIR, seed: int = 0, work_dir: Path | None = None, device: torch.device | str = "cpu") -> Autoencoder:
    name = ae_name(reg, f)
    config, loss_config, cfg = ae_recipe(reg, f, profile, seed)
    train = images_uint8(load_shapes(profile.n_train, "train", seed=seed))
    val = images_uint8(load_shapes(profile.n_eval, "val", seed=seed))
    start = time.perf_counter()
    classifier = classifier.to(device)  # the perceptual loss runs it on every batch
    ae, history = train_autoencoder(config, train, cfg, loss_config, feature_net=classifier, out_dir=work_dir / name if work_dir else None, resume=work_dir is not None, device=device)
    seconds = history[-1]["seconds"] if history else time.perf_counter() - start
    ae.measure_scale_factor(to_model_range(train[:1000]).to(device))
    metrics = evaluate_autoencoder(ae, val, classifier)
    metrics["scale_factor"] = ae.scale_factor.item()
    path = ck.save_model(ae, directory / f"{name}.safetensors", half=True)
    ck.write_manifest_entry(name, _manifest_entry(path, "autoencoder", config, cfg, seconds, metrics, seed=seed, loss=dataclasses.asdict(loss_config), history=history[:: max(1, len(history) // 40)]), directory)
    return ae


def prepare_ldm_training(config: LDMConfig, ae: Autoencoder, profile: Profile, seed: int = 0) -> tuple[LatentDiffusion, torch.Tensor, torch.Tensor]:
    """A fresh text-to-image LDM on the frozen autoencoder ``ae``, with what it trains on: the
    latent cache E(x) * scale of the training split (n c h w) and its caption tokens (n L)."""
    seed_everything(seed)
    ldm = LatentDiffusion(config)
    ldm.autoencoder.load_state_dict(ae.state_dict())
    train = load_shapes(profile.n_train, "train", seed=seed)
    return ldm, encode_images(ldm.autoencoder, images_uint8(train)), ldm.tokenizer(train["caption"])


def build_ldm(profile: Profile, directory: Path = ck.CHECKPOINT_DIR, seed: int = 0, work_dir: Path | None = None) -> LatentDiffusion:
    ae_path, _ = ck.verified_path(ae_name("kl", 4), directory)
    ae = ck.load_model(Autoencoder, ae_path)
    config, cfg = ldm_recipe(ae.config, profile, seed)
    ldm, latents, tokens = prepare_ldm_training(config, ae, profile, seed)
    snapshots: dict[int, torch.Tensor] = {}
    every = max(1, cfg.steps // 6)

    def snapshot(step: int) -> None:  # samples for fixed captions as training goes on (lesson 05)
        if step == 1 or step % every == 0:
            snapshots[step] = (ldm.generate(PROGRESS_CAPTIONS, steps=20, guidance=3.0, seed=0) * 255).round().to(torch.uint8)
            ldm.train()

    start = time.perf_counter()
    ldm, history = train_ldm(ldm, latents, tokens, cfg, out_dir=work_dir / LDM_MAIN if work_dir else None, resume=work_dir is not None, on_step=snapshot)
    seconds = history[-1]["seconds"] if history else time.perf_counter() - start
    classifier = load_pretrained(CLASSIFIER, directory)
    metrics = evaluate_ldm(ldm, classifier, n=profile.n_samples_eval, steps=50, guidance=3.0, seed=seed)
    path = save_ldm(ldm, directory / f"{LDM_MAIN}.safetensors")
    progress = save_progress_grid(snapshots, directory / f"{LDM_MAIN}-progress.png")
    ck.write_manifest_entry(LDM_MAIN, _manifest_entry(path, "ldm", config, cfg, seconds, metrics, seed=seed, autoencoder=ae_name("kl", 4), history=history[:: max(1, len(history) // 40)], progress={"file": progress.name, "steps": sorted(snapshots), "captions": PROGRESS_CAPTIONS, "sampler": "DDIM-20, guidance 3, seed 0, training weights (not EMA)"}), directory)
    return ldm


def build_pixel(profile: Profile, directory: Path = ck.CHECKPOINT_DIR, seed: int = 0, work_dir: Path | None = None) -> LatentDiffusion:
    """Train ``shapes-pixel`` on the images alone (every caption empty: an unconditional model,
    as in the paper's Fig. 2) and record its bound in bits/dim on 64 validation images."""
    from .experiments.bits import evaluate_bound, unconditional_eps

    config, cfg = pixel_recipe(profile, seed)
    seed_everything(seed)
    ldm = LatentDiffusion(config)
    train = load_shapes(profile.n_train, "train", seed=seed)
    x0 = to_model_range(images_uint8(train))  # pixel space: z_0 is the image itself, n 3 H W in [-1, 1]
    tokens = ldm.tokenizer([""]).expand(len(x0), -1).contiguous()
    start = time.perf_counter()
    ldm, history = train_ldm(ldm, x0, tokens, cfg, out_dir=work_dir / PIXEL if work_dir else None, resume=work_dir is not None)
    seconds = history[-1]["seconds"] if history else time.perf_counter() - start
    val = to_model_range(images_uint8(load_shapes(64, "val", seed=seed)))
    bound = evaluate_bound(unconditional_eps(ldm), val, ldm.schedule, steps=100, seed=seed)
    metrics = {"final_loss": history[-1]["loss"], "bits_per_dim_bound_val64_S100": bound["total_bits"], "params": sum(p.numel() for p in ldm.parameters())}
    path = save_ldm(ldm, directory / f"{PIXEL}.safetensors")
    ck.write_manifest_entry(PIXEL, _manifest_entry(path, "ldm", config, cfg, seconds, metrics, seed=seed, autoencoder=None, captions="all empty (unconditional)", history=history[:: max(1, len(history) // 40)]), directory)
    return ldm


PROGRESS_CAPTIONS = [
    "a red circle", "a blue square", "a green triangle", "a small yellow circle on the left",
    "a large purple square at the top", "an orange triangle in the middle",
    "a red circle above a blue square", "a green triangle and a yellow circle",
]


def save_progress_grid(snapshots: dict[int, torch.Tensor], path: Path) -> Path:
    """One row of samples per training step (uint8 b 3 h w each), saved as a small PNG."""
    import numpy as np
    from einops import rearrange
    from PIL import Image

    rows = torch.stack([snapshots[k] for k in sorted(snapshots)])  # r b 3 h w
    grid = rearrange(rows, "r b c h w -> (r h) (b w) c").numpy().astype(np.uint8)
    tmp = path.with_name(path.name + ".tmp.png")
    Image.fromarray(grid).save(tmp)
    tmp.replace(path)
    return path


def save_ldm(ldm: LatentDiffusion, path: Path) -> Path:
    """Save eps_theta and tau_theta only: the autoencoder has its own file and is reused."""
    tensors = {k: v.half() if v.is_floating_point() else v for k, v in ldm.state_dict().items() if not k.startswith("autoencoder.")}
    return ck.atomic_save(tensors, path, {"class": "LatentDiffusion", "config": ck.config_to_json(ldm.config)})


def save_superres(model: SuperResDiffusion, path: Path) -> Path:
    """Save eps_theta only (fp16): the autoencoder is the shipped ae-kl-f4, loaded beside it."""
    tensors = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items() if not k.startswith("autoencoder.")}
    return ck.atomic_save(tensors, path, {"class": "SuperResDiffusion", "config": ck.config_to_json(model.config)})


def ship_superres(model: SuperResDiffusion, name: str, record: dict, metrics: dict, directory: Path = ck.CHECKPOINT_DIR, seed: int = 0) -> Path:
    """Write one SR model of the superres experiment to ``directory`` with its manifest entry."""
    path = save_superres(model, directory / f"{name}.safetensors")
    extra = {"autoencoder": ae_name("kl", 4)} if model.autoencoder is not None else {}
    metrics = {**metrics, "params": record["params"], "seconds_per_step": record["seconds_per_step"]}
    entry = _manifest_entry(path, "superres", model.config, record["train"], record["train_seconds"], metrics, seed=seed, history=record["history"], command=f"python -m ldm_mini pretrained --only {' '.join(SUPERRES)}", **extra)
    ck.write_manifest_entry(name, entry, directory)
    return path


def build_superres(profile: Profile, directory: Path = ck.CHECKPOINT_DIR, seed: int = 0, work_dir: Path | None = None) -> None:
    """Both SR models come from one run of the superres experiment (same budget, one table)."""
    from .experiments import superres

    superres.run(profile, seed=seed, checkpoint_dir=directory, work_dir=work_dir, source_dir=directory)


def build_all(profile: Profile | str = "quick", only: list[str] | None = None, directory: Path = ck.CHECKPOINT_DIR, work_dir: Path | None = Path("runs/pretrained")) -> None:
    """Rebuild the shipped checkpoints (all, or the names in ``only``) in dependency order.

    ``work_dir`` keeps each run's training state, so an interrupted build resumes."""
    profile = get_profile(profile) if isinstance(profile, str) else profile
    directory.mkdir(parents=True, exist_ok=True)
    wanted = lambda name: only is None or name in only  # noqa: E731
    if wanted(CLASSIFIER):
        build_classifier(profile, directory)
    classifier = load_pretrained(CLASSIFIER, directory)
    for f in (4, 1, 2, 8, 16):  # f = 4 first: the LDM needs it
        for reg in AE_REGS:
            if wanted(ae_name(reg, f)):
                build_autoencoder(reg, f, profile, classifier, directory, work_dir=work_dir)
    if wanted(LDM_MAIN):
        build_ldm(profile, directory, work_dir=work_dir)
    if wanted(PIXEL):
        build_pixel(profile, directory, work_dir=work_dir)
    if any(wanted(name) for name in SUPERRES):  # one run makes both (they share the budget and the table)
        build_superres(profile, directory, work_dir=work_dir)


# ---------------------------------------------------------------- loading


def load_pretrained(name: str, directory: Path = ck.CHECKPOINT_DIR, device: torch.device | str = "cpu"):
    """A shipped checkpoint, after checking its sha256: an AttributeClassifier, an Autoencoder,
    a LatentDiffusion or a SuperResDiffusion (with its autoencoder), in eval mode, in float32."""
    path, entry = ck.verified_path(name, directory)
    kind = entry["kind"]
    if kind == "classifier":
        model = ck.load_model(AttributeClassifier, path)
    elif kind == "autoencoder":
        model = ck.load_model(Autoencoder, path)
    elif kind == "ldm":
        model = _load_ldm(path, entry, directory)
    elif kind == "superres":
        model = load_superres(path, load_pretrained(entry["autoencoder"], directory) if "autoencoder" in entry else None)
    else:
        raise ck.CheckpointError(f"manifest entry {name!r} has an unknown kind {kind!r}")
    return model.to(device).eval()


def _load_ldm(path: Path, entry: dict, directory: Path) -> LatentDiffusion:
    meta = ck.read_metadata(path)
    config = ck.config_from_json(LDMConfig, meta["config"])
    ae = load_pretrained(entry["autoencoder"], directory) if config.autoencoder is not None else None
    return load_ldm(path, ae)


def load_ldm(path: str | Path, autoencoder: Autoencoder | None = None) -> LatentDiffusion:
    """Rebuild a LatentDiffusion from a file written by ``save_ldm``, with its autoencoder
    (None for a pixel-space model). Refuses an autoencoder of another config."""
    return _load_diffusion(path, LatentDiffusion, LDMConfig, autoencoder)


def load_superres(path: str | Path, autoencoder: Autoencoder | None = None) -> SuperResDiffusion:
    """Rebuild a SuperResDiffusion from a file written by ``save_superres``, with its
    autoencoder (None for the pixel-space model). Refuses an autoencoder of another config."""
    return _load_diffusion(path, SuperResDiffusion, SRConfig, autoencoder)


def _load_diffusion(path: str | Path, cls, config_cls, autoencoder: Autoencoder | None):
    """A diffusion model of class ``cls`` from its file (eps_theta and friends, without the
    autoencoder, which has its own file and is passed in)."""
    meta = ck.read_metadata(path)
    if meta.get("class") != cls.__name__:
        raise ck.CheckpointError(f"{path} holds a {meta.get('class', 'unknown model')}, not a {cls.__name__}")
    config = ck.config_from_json(config_cls, meta["config"])
    model = cls(config)
    state = ck.load_tensors(path)
    if config.autoencoder is not None:
        if autoencoder is None or autoencoder.config != config.autoencoder:
            raise ck.CheckpointError(f"{path} was trained on the latents of an autoencoder with config {config.autoencoder}; pass that autoencoder")
        state.update({f"autoencoder.{k}": v for k, v in autoencoder.state_dict().items()})
    reference = model.state_dict()
    model.load_state_dict({k: v.to(reference[k].dtype) for k, v in state.items()})
    return model.eval()
