"""The recipes of the shipped checkpoints: which config and which training budget each one gets.

``build.py`` trains them in dependency order, ``store.py`` saves and loads them. The experiments
reuse these recipes, so a comparison always starts from the shipped model's settings.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..autoencoder import AutoencoderConfig
from ..config import Profile
from ..ldm import LDMConfig, SRConfig, sr_unet_config
from ..losses import AutoencoderLossConfig
from ..text import TextEncoderConfig
from ..train import TrainConfig
from ..unet import UNetConfig

AE_FACTORS = (1, 2, 4, 8, 16)
AE_REGS = ("kl", "vq")
CLASSIFIER = "attribute-classifier"  # the perceptual loss's features (and the Frechet distance's)
JUDGE = "judge"  # reads generated images; no model was trained against it
LDM_MAIN = "shapes-kl-f4"
PIXEL = "shapes-pixel"
PIXEL_STEPS = {"quick": 6_000, "full": 50_000}  # optimiser steps of the pixel model per profile
# Its learning rate decays over the first 4000 steps (quick), then holds at the floor: 4000 steps drew valid
# scenes in 78.5% of 200 samples, short of lesson 08's 80%, and 2000 more at the floor continued that run.
PIXEL_DECAY_STEPS = {"quick": 4_000, "full": None}
SR_LDM = "sr-ldm-f4"  # lesson 09: x4 super-resolution in the latents of ae-kl-f4
SR_PIXEL = "sr-pixel"  # and in pixel space (SR3-like)
SUPERRES = (SR_LDM, SR_PIXEL)


def ae_name(reg: str, f: int) -> str:
    return f"ae-{reg}-f{f}"


# ---------------------------------------------------------------- recipes


def ae_recipe(
    reg: str, f: int, profile: Profile, seed: int = 0
) -> tuple[AutoencoderConfig, AutoencoderLossConfig, TrainConfig]:
    """The autoencoders of lesson 02: base 32 channels, c = 4 latent channels, K = 256 codes,
    all trained for the same number of steps; the PatchGAN joins for the last 30%."""
    # Self-attention in the middle block only where the latent is small (f >= 4): at f = 1 it
    # would attend over all 32 x 32 = 1024 positions and cost more than the rest of the model.
    config = AutoencoderConfig(f=f, reg=reg, base_channels=32, latent_channels=4, attn_mid=f >= 4)
    train_config = TrainConfig(
        steps=profile.ae_steps,
        batch_size=profile.batch_size,
        lr=1e-3,
        warmup=50,
        lr_min_ratio=0.05,
        seed=seed,
        log_every=25,
        save_every=100,
    )
    loss_config = AutoencoderLossConfig(kl_weight=1e-6, disc_start=int(0.7 * train_config.steps))
    return config, loss_config, train_config


def ldm_recipe(
    ae_config: AutoencoderConfig | None, profile: Profile, seed: int = 0, model_channels: int = 64
) -> tuple[LDMConfig, TrainConfig]:
    """The text-to-image LDM: a 6.6M-parameter UNet on the f = 4 latents, tau_theta of 2 layers."""
    c = ae_config.latent_channels if ae_config is not None else 3
    unet = UNetConfig(
        in_channels=c,
        out_channels=c,
        model_channels=model_channels,
        channel_mult=(1, 2, 2),
        attention_levels=(1, 2),
        num_heads=4,
        context_dim=64,
    )
    # tau_theta's position embeddings start at std 1.0, as large as its token embeddings (N(0, 1)).
    # At the library default 0.02 they stay ~30x smaller through training, so "red" reads nearly the
    # same wherever it stands and the two objects of "X and Y" get the same colour cue: binding 41%.
    # At 1.0 each token knows its place in the caption and binding reached 97% [93.6, 98.6] at 3000
    # steps (issue 14's lever curves, data/experiments/binding_levers.json).
    text = TextEncoderConfig(dim=64, n_layers=2, pos_init_std=1.0)
    config = LDMConfig(autoencoder=ae_config, unet=unet, text=text, image_size=profile.image_size)
    train_config = TrainConfig(
        steps=profile.ldm_steps,
        batch_size=profile.batch_size,
        lr=1e-3,
        warmup=100,
        lr_min_ratio=0.1,
        ema_decay=0.995,
        seed=seed,
        log_every=25,
        save_every=250,
    )
    return config, train_config


def pixel_recipe(profile: Profile, seed: int = 0) -> tuple[LDMConfig, TrainConfig]:
    """The unconditional pixel-space model of lesson 08: no autoencoder (f = 1), a 32-channel
    UNet with attention only at 8 x 8 and in the middle, trained on the empty caption alone.

    Its schedule is the cosine one (Nichol & Dhariwal 2021), not Stable Diffusion's 0.00085 .. 0.012,
    for two reasons that matter in pixel space:
    - the end: at t = T the cosine schedule leaves sqrt(alpha_bar_T) = 5e-5 of the image in x_T
      (with v-prediction, as in ``sr_recipe``, because eps-prediction breaks down there).
      A sqrt-linear schedule leaves 2.7% (beta 1e-4 .. 0.02) or 6.8% (SD's range), enough over
      32 x 32 x 3 pixels to tell the white background apart; the model learns to rely on it, and
      sampling, which starts from pure noise, then drew dark, coloured backgrounds (mean pixel
      0.56 against the data's 0.87, with the 1e-4 .. 0.02 range);
    - the start: the last reverse step's noise sqrt(beta_1) sets how finely the discretised decoder
      can place a pixel: cosine's beta_1 = 4e-5 gives ~0.8 grey levels (SD's range ~3.7), so the
      bound measures the model rather than the schedule's coarse first step.
    """
    unet = UNetConfig(
        in_channels=3,
        out_channels=3,
        model_channels=32,
        channel_mult=(1, 2, 2),
        attention_levels=(2,),
        num_heads=4,
        context_dim=32,
    )
    config = LDMConfig(
        autoencoder=None,
        unet=unet,
        text=TextEncoderConfig(dim=32, n_layers=1),
        image_size=profile.image_size,
        schedule="cosine",
        parameterization="v",  # eps_hat near t = T would be amplified 20000x (see sr_recipe)
        cond_drop=0.0,
    )
    # Half the profile's batch: at 32 x 32 pixels a step costs 4x one on 8 x 8 latents, and more,
    # smaller steps learned faster than fewer, larger ones in a budget of minutes.
    train_config = TrainConfig(
        steps=profile.cap_steps(PIXEL_STEPS[profile.name]),
        decay_steps=PIXEL_DECAY_STEPS[profile.name],
        batch_size=profile.batch_size // 2,
        lr=1e-3,
        warmup=100,
        lr_min_ratio=0.1,
        ema_decay=0.995,
        seed=seed,
        log_every=25,
        save_every=250,
    )
    return config, train_config


def sr_recipe(
    ae_config: AutoencoderConfig | None, profile: Profile, seed: int = 0, steps: int = 1_000, batch_size: int = 64
) -> tuple[SRConfig, TrainConfig]:
    """The x4 super-resolution models of lesson 09: one small UNet (0.82M parameters, no
    cross-attention, y concatenated), on the f = 4 latents (``ae_config``) or on pixels (None).
    Both get the same optimiser, schedule and EMA; the budget (steps, batch) comes from the
    experiment so that the two models always train equally long."""
    c = ae_config.latent_channels if ae_config is not None else 3
    # Each space gets the schedule that suits it. Latents (scaled to unit variance) use the LDM's
    # sqrt-linear 0.00085 .. 0.012. Pixels do not: at its t = T, alpha_bar = 0.0047, so x_T still holds
    # sqrt(0.0047) = 6.8% of the image, enough over 32 x 32 x 3 pixels to tell a white background
    # from a dark one. The model learns to read it, then sampling starts from pure noise, which says
    # "dark": samples came out 0.24 darker on average with coloured noise (PSNR 11.6 dB, bicubic 23.2).
    # The cosine schedule leaves sqrt(alpha_bar_T) = 5e-5 (Nichol & Dhariwal 2021). With so little
    # signal left, predicting eps no longer works near t = T: x0_hat = (x_t - sqrt(1 - a) eps_hat) / sqrt(a)
    # multiplies the error of eps_hat by up to 1 / sqrt(a) = 20000, and sampling from pure noise drew
    # coloured noise again (PSNR 9.8 dB), while the same model started from x_900 of the true image
    # reached 25.3 dB. So pixels also predict v = sqrt(a) eps - sqrt(1 - a) x_0 (Salimans & Ho 2022),
    # which near t = T is -x_0 itself: the pairing Lin et al. (2024) recommend for such schedules.
    pixels = ae_config is None
    config = SRConfig(
        autoencoder=ae_config,
        unet=sr_unet_config(c, model_channels=32),
        image_size=profile.image_size,
        factor=4,
        schedule="cosine" if pixels else "linear",
        parameterization="v" if pixels else "eps",
    )
    train_config = TrainConfig(
        steps=steps,
        batch_size=batch_size,
        lr=1e-3,
        warmup=50,
        lr_min_ratio=0.1,
        ema_decay=0.995,
        seed=seed,
        log_every=25,
        save_every=250,
    )
    return config, train_config


@dataclass
class SRBudget:
    """How much each SR model trains (the same compute) and how it is judged (the same for both)."""

    steps: int = 1_200  # optimiser steps of the pixel model (quick: 12.7 min on one thread here)
    # LDM-SR's steps: equal compute, not equal steps. One latent step (8 x 8 x 4) cost 66 ms here against
    # 635 ms for a pixel step (32 x 32 x 3) with the same UNet, so 10x the steps take about the same time.
    ldm_steps: int = 12_000
    batch_size: int = 32
    n_test: int = 500  # held-out test images for the table
    sample_steps: int = 50  # DDIM steps S when upscaling
    eval_batch: int = 100  # images per sampling call (and per timing)


def sr_budget(profile: Profile) -> SRBudget:
    """The budget of lesson 09's two SR models (and of the shipped sr-ldm-f4 and sr-pixel), capped in
    miniature (``Profile.miniature``)."""
    if profile.name == "full":
        budget = SRBudget(  # on a GPU the latent step's saving is smaller and was not measured: 5x is a guess
            steps=20_000,
            ldm_steps=100_000,
            batch_size=profile.batch_size,
            n_test=min(2_000, profile.n_eval),
            sample_steps=100,
        )
    else:
        budget = SRBudget()
    if not profile.is_miniature:
        return budget
    return replace(
        budget,
        steps=profile.cap_steps(budget.steps),
        ldm_steps=profile.cap_steps(budget.ldm_steps),
        batch_size=min(budget.batch_size, profile.batch_size),
        n_test=profile.cap_samples(budget.n_test),
        sample_steps=profile.cap_steps(budget.sample_steps),
        eval_batch=profile.cap_samples(budget.eval_batch),
    )


PROGRESS_EVAL_N = 100  # captions per headline set at each point of the accuracy-along-training curve
PROGRESS_POINTS = 6  # points of that curve, evenly spaced over the training steps

PROGRESS_CAPTIONS = [
    "a red circle", "a blue square", "a green triangle", "a small yellow circle on the left",
    "a large purple square at the top", "an orange triangle in the middle",
    "a red circle above a blue square", "a green triangle and a yellow circle",
]
