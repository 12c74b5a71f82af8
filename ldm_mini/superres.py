"""Super-resolution x4 by concatenation conditioning (the paper's Sec. 4.4 and Table 5).

The task: from a low-resolution image y (b 3 H/4 W/4) recover the high-resolution x (b 3 H W).
The LDM-SR of the paper conditions eps_theta on y by *concatenation*, not cross-attention:

    z_t (b 4 h w) --cat--> (b 4+3 h w) --UNet--> eps (b 4 h w)
    y   (b 3 h w) --^

With f = 4 and a x4 task the latent z = E(x) has h = H/4: exactly the size of y. So y is
stacked on z_t as 3 more input channels, pixel for pixel, with no resizing at all. The same
class with ``autoencoder=None`` is the pixel-space baseline in the spirit of SR3 (Saharia et
al. 2021): there x_t is (b 3 H W), so y is first upsampled to H x W by bicubic interpolation
and concatenated to x_t (6 input channels).

Why concatenation here and cross-attention for text? The conditioning is an *image* that is
spatially aligned with the target: pixel (i, j) of y says what belongs at pixel (i, j) of z.
Stacking channels hands each UNet position its own evidence at zero cost. A caption has no
spatial layout, so there each position must *look up* the words it needs (attention).

Training (Eq. 2, with the conditioning fixed to y):

    L = E_{z_0, y, eps, t} || eps - eps_theta(cat[z_t, resize(y)], t) ||^2

Sampling: z_T ~ N(0, I) -> DDIM with the same y at every step -> z_0 -> x~ = D(z_0 / scale).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .autoencoder import AutoencoderConfig
from .diffusion import diffusion_loss
from .ldm import LatentSpaceModel
from .sampling import ddim_sample
from .unet import UNetConfig

FACTOR = 4  # the paper's x4 task (64 -> 256 on ImageNet; here 8 -> 32)


# ---------------------------------------------------------------- the degradation and the bicubic baseline


def _check_size(h: int, w: int, factor: int, what: str) -> None:
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    if h % factor or w % factor:
        raise ValueError(f"{what} size {h}x{w} is not divisible by the factor {factor}: crop or pad it to a multiple of {factor} first (e.g. {h - h % factor}x{w - w % factor})")


def downsample(hr: torch.Tensor, factor: int = FACTOR, value_range: tuple[float, float] = (-1.0, 1.0)) -> torch.Tensor:
    """The degradation y = downsample(x): bicubic with anti-aliasing, (b 3 H W) -> (b 3 H/f W/f).

    Anti-aliasing low-pass filters before subsampling (as PIL's resize does), so thin edges
    blur instead of aliasing. The result is clamped to ``value_range`` (bicubic overshoots).
    """
    if hr.ndim != 4:
        raise ValueError(f"hr must be a batch (b, c, H, W), got shape {tuple(hr.shape)}")
    _check_size(hr.shape[-2], hr.shape[-1], factor, "the high-resolution image")
    lr = F.interpolate(hr.float(), scale_factor=1 / factor, mode="bicubic", antialias=True, align_corners=False)
    return lr.clamp(*value_range)


def bicubic_upsample(lr: torch.Tensor, factor: int = FACTOR, value_range: tuple[float, float] = (-1.0, 1.0)) -> torch.Tensor:
    """The classic baseline: bicubic interpolation (b 3 h w) -> (b 3 f*h f*w), clamped to ``value_range``.

    (Anti-aliasing only matters when shrinking, so upsampling does without it.)"""
    if lr.ndim != 4:
        raise ValueError(f"lr must be a batch (b, c, h, w), got shape {tuple(lr.shape)}")
    up = F.interpolate(lr.float(), scale_factor=factor, mode="bicubic", align_corners=False)
    return up.clamp(*value_range)


# ---------------------------------------------------------------- the model


def sr_unet_config(latent_channels: int, model_channels: int = 32) -> UNetConfig:
    """The UNet both SR models share: no cross-attention, 3 concatenated channels for y.

    Small on purpose (0.82M parameters at 32 channels): both shipped SR models together must
    fit in 3.5 MB at fp16. channel_mult (1, 1, 2) keeps the width low at full resolution; the
    middle block still has one self-attention layer."""
    return UNetConfig(in_channels=latent_channels, out_channels=latent_channels, model_channels=model_channels, channel_mult=(1, 1, 2), attention_levels=(), num_heads=4, use_context=False, concat_channels=3)


@dataclass
class SRConfig:
    autoencoder: AutoencoderConfig | None = field(default_factory=AutoencoderConfig)  # f = 4 KL; None: pixel space (SR3-like)
    unet: UNetConfig = field(default_factory=lambda: sr_unet_config(4))  # eps_theta; in_channels = latent c, concat_channels = 3
    image_size: int = 32  # H = W of the high-resolution output
    factor: int = FACTOR  # upscaling factor: y is image_size / factor on a side
    schedule: str = "linear"  # "linear" (LDM's sqrt-linear) or "cosine"
    T: int = 1000
    beta_start: float = 0.00085
    beta_end: float = 0.012

    def __post_init__(self):
        c = self.autoencoder.latent_channels if self.autoencoder is not None else 3
        if self.unet.in_channels != c or self.unet.out_channels != c:
            raise ValueError(f"the UNet must take and return the latent's {c} channels; use sr_unet_config({c})")
        if self.unet.concat_channels != 3:
            raise ValueError(f"the UNet must take the 3 channels of the low-resolution image as concat_channels, got {self.unet.concat_channels}")
        if self.unet.use_context:
            raise ValueError("super-resolution is conditioned by concatenation only: build the UNet with use_context=False")
        _check_size(self.image_size, self.image_size, self.factor, "image_size")
        if self.autoencoder is not None:
            _check_size(self.image_size, self.image_size, self.autoencoder.f, "image_size")
        if self.schedule not in ("linear", "cosine"):
            raise ValueError(f"schedule must be 'linear' or 'cosine', got {self.schedule!r}")

    @property
    def f(self) -> int:
        return 1 if self.autoencoder is None else self.autoencoder.f

    @property
    def lr_size(self) -> int:
        return self.image_size // self.factor


class SuperResDiffusion(LatentSpaceModel):
    """eps_theta(cat[z_t, resize(y)], t) with a frozen autoencoder (LDM-SR) or none (pixel SR).
    The autoencoder, schedule, encode and decode are those of ``ldm.LatentSpaceModel``."""

    # ------------------------------------------------------------- conditioning y

    def condition(self, lr: torch.Tensor) -> torch.Tensor:
        """y in [-1, 1] (b 3 H/f_sr W/f_sr) -> the channels stacked on z_t (b 3 h w).

        LDM-SR at f = 4: h = H/4 is already y's size, so y goes in unchanged.
        Pixel SR (f = 1): h = H, so y is first upsampled by bicubic interpolation (as SR3 does)."""
        s = self.config.lr_size
        if lr.ndim != 4 or lr.shape[1:] != (3, s, s):
            raise ValueError(f"the low-resolution images must be (b, 3, {s}, {s}) for {self.config.image_size}x{self.config.image_size} outputs at x{self.config.factor}, got {tuple(lr.shape)}; downsample the high-resolution images with superres.downsample first")
        _, h, w = self.latent_shape
        lr = lr.to(self.device, torch.float32)
        if (h, w) == (s, s):
            return lr
        return bicubic_upsample(lr, h // s)

    def eps(self, z_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """eps_theta(cat[z_t, cond], t), cond = self.condition(y) (b 3 h w)."""
        return self.unet(z_t, t, concat=cond)

    # ------------------------------------------------------------- training and sampling

    def loss(self, z0: torch.Tensor, lr: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The denoising loss on targets z_0 (b c h w: scaled latents, or pixels in [-1, 1]) and y (b 3 s s)."""
        return diffusion_loss(self.unet, z0, self.schedule, None, "eps", generator, concat=self.condition(lr))

    @torch.no_grad()
    def sample_latents(self, lr: torch.Tensor, steps: int = 50, eta: float = 0.0, seed: int = 0, x_T: torch.Tensor | None = None, callback=None) -> torch.Tensor:
        """z_0 for each y: z_T ~ N(0, I) (seeded), then DDIM with y concatenated at every step."""
        if not 1 <= steps <= self.config.T:
            raise ValueError(f"steps={steps}: DDIM takes between 1 and T={self.config.T} steps")
        cond = self.condition(lr)
        generator = torch.Generator().manual_seed(seed)
        if x_T is None:
            x_T = torch.randn((len(cond), *self.latent_shape), generator=generator)
        return ddim_sample(lambda x, t: self.eps(x, t, cond), x_T.to(self.device), self.schedule, steps=steps, eta=eta, generator=generator, callback=callback)

    @torch.no_grad()
    def upscale(self, lr: torch.Tensor, steps: int = 50, eta: float = 0.0, seed: int = 0) -> torch.Tensor:
        """x4 super-resolution of y in [0, 1] (or uint8) (b 3 s s) -> images in [0, 1] (b 3 4s 4s), on the CPU."""
        if lr.dtype == torch.uint8:
            lr = lr.float() / 255
        if lr.is_floating_point() and (lr.min() < -1e-3 or lr.max() > 1 + 1e-3):
            raise ValueError(f"upscale takes images in [0, 1], got values in [{lr.min():.2f}, {lr.max():.2f}]")
        was_training = self.training
        self.eval()
        z0 = self.sample_latents(lr.float() * 2 - 1, steps, eta, seed)
        self.train(was_training)
        return ((self.decode(z0) + 1) / 2).clamp(0, 1).cpu()

    def num_params(self) -> int:
        """Trainable parameters (the UNet; the autoencoder is shared and frozen)."""
        return self.unet.num_params()


# ---------------------------------------------------------------- training


def sr_training_data(model: SuperResDiffusion, images_uint8: torch.Tensor, batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """(targets, y) for training: y = downsample(x) in [-1, 1] (n 3 s s), and the targets

    - LDM-SR: the latent cache z_0 = scale * E(x) (n 4 h w), encoded once (why LDMs train cheaply);
    - pixel SR: the images themselves, kept as uint8 (n 3 H W) and converted per batch."""
    from .train import encode_images

    H = model.config.image_size
    if images_uint8.ndim != 4 or images_uint8.shape[1:] != (3, H, H):
        raise ValueError(f"images must be (n, 3, {H}, {H}) uint8, got {tuple(images_uint8.shape)}")
    lr = torch.cat([downsample(images_uint8[i : i + 1000].float() / 127.5 - 1, model.config.factor) for i in range(0, len(images_uint8), 1000)])
    targets = images_uint8 if model.autoencoder is None else encode_images(model.autoencoder, images_uint8, batch_size)
    return targets, lr


def train_superres(model: SuperResDiffusion, targets: torch.Tensor, lr: torch.Tensor, cfg, out_dir: str | Path | None = None, resume: bool = False, on_step: Callable[[int], None] | None = None, max_grad_norm: float = 1.0):
    """Train eps_theta of ``model`` on ``sr_training_data`` output. Returns (model with EMA weights, history).

    The same loop, optimiser, EMA and gradient clipping as ``train.train_ldm``, so the two SR
    models differ only in where they diffuse (latents or pixels)."""
    from .train import EMA, run_training

    if len(targets) != len(lr):
        raise ValueError(f"targets ({len(targets)}) and low-resolution images ({len(lr)}) must pair up one to one")
    torch.manual_seed(cfg.seed)
    device = model.device
    ema = EMA(model.unet, cfg.ema_decay)
    optimizer = torch.optim.AdamW(model.unet.parameters(), lr=cfg.lr, weight_decay=0.0)

    def step_fn(step: int, generator: torch.Generator) -> dict:
        index = torch.randint(len(targets), (cfg.batch_size,), generator=generator)
        z0 = targets[index].to(device)
        if z0.dtype == torch.uint8:  # pixel targets: uint8 -> [-1, 1]
            z0 = z0.float() / 127.5 - 1
        loss = model.loss(z0, lr[index], generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.unet.parameters(), max_grad_norm)
        optimizer.step()
        ema.update(model.unet)
        return {"loss": loss.item()}

    model.train()
    name = "LDM-SR" if model.autoencoder is not None else "pixel SR"
    history = run_training(step_fn, cfg, modules={"unet": model.unet, "ema": ema}, optimizers={"opt": optimizer}, out_dir=out_dir, resume=resume, description=f"{name} x{model.config.factor}", on_step=on_step)
    model.unet.load_state_dict(ema.model.state_dict())  # sample with the EMA weights
    model.eval()
    return model, history
