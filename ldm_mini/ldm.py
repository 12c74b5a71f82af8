"""The diffusion models: text-to-image LDM and x4 super-resolution, both on one base.

``DiffusionModel`` is what every diffusion model here shares: eps_theta (``unet``), the noise
schedule, and the frozen first stage, the autoencoder (E, D) with its latent scale, or none for
pixel space (f = 1 without E and D: the baseline the paper compares against).

``LatentDiffusion`` adds text conditioning by cross-attention. Training (the paper's Eq. 4: its
Eq. 2 with the caption y read through tau_theta by the cross-attention of Eq. 3):

    L_LDM = E_{E(x), y, eps ~ N(0, I), t} || eps - eps_theta(z_t, t, tau_theta(y)) ||^2

where z_t = sqrt(alpha_bar_t) z_0 + sqrt(1 - alpha_bar_t) eps and z_0 = E(x) times the latent
scale. About 10% of captions are replaced by the empty caption "" during training, so the same
network also learns the unconditional eps_theta(z_t, t, tau_theta("")) that classifier-free
guidance needs at sampling time. Generation: z_T ~ N(0, I) -> DDIM (or DDPM) with guidance ->
z_0 -> x~ = D(z_0 / scale).

``SuperResDiffusion`` conditions by *concatenation* instead (the paper's Sec. 4.4 and Table 5):
from a low-resolution image y (b 3 H/4 W/4) recover x (b 3 H W).

    z_t (b 4 h w) --cat--> (b 4+3 h w) --UNet--> eps (b 4 h w)
    y   (b 3 h w) --^

With f = 4 and a x4 task the latent z = E(x) has h = H/4: exactly the size of y, so y is stacked
on z_t as 3 more input channels with no resizing. In pixel space (SR3-like, Saharia et al. 2021)
x_t is (b 3 H W), so y is first upsampled to H x W by bicubic interpolation. Why concatenation
here and cross-attention for text? The conditioning is an *image* spatially aligned with the
target: pixel (i, j) of y says what belongs at pixel (i, j) of z. A caption has no spatial
layout, so there each position must *look up* the words it needs (attention).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .autoencoder import Autoencoder, AutoencoderConfig
from .data import to_image_range
from .diffusion import NoiseSchedule, diffusion_loss
from .layers import eval_mode
from .sampling import cfg_model, check_sampling_args, ddim_sample, ddpm_sample
from .text import TextEncoder, TextEncoderConfig, Tokenizer
from .unet import UNet, UNetConfig

FACTOR = 4  # the paper's x4 task (64 -> 256 on ImageNet; here 8 -> 32)


# ---------------------------------------------------------------- configs


@dataclass
class DiffusionConfig:
    """What every diffusion model's config holds: the first stage, eps_theta and the schedule."""

    autoencoder: AutoencoderConfig | None = field(default_factory=AutoencoderConfig)  # None: pixel space
    unet: UNetConfig = field(default_factory=UNetConfig)  # eps_theta; in_channels must be the latent c
    image_size: int = 32  # H = W of generated images
    schedule: str = "linear"  # "linear" (LDM's sqrt-linear) or "cosine"
    T: int = 1000  # diffusion steps
    beta_start: float = 0.00085  # Stable Diffusion's range for the "linear" schedule
    beta_end: float = 0.012
    parameterization: str = "eps"  # what the UNet predicts: "eps" or "v"

    def __post_init__(self):
        c = self.latent_channels
        if self.unet.in_channels != c or self.unet.out_channels != c:
            raise ValueError(
                f"the UNet must take and return the latent's {c} channels; set UNetConfig(in_channels={c}, "
                    f"out_channels={c})"
            )
        if self.schedule not in ("linear", "cosine"):
            raise ValueError(f"schedule must be 'linear' or 'cosine', got {self.schedule!r}")
        if self.parameterization not in ("eps", "v"):
            raise ValueError(f"parameterization must be 'eps' or 'v', got {self.parameterization!r}")

    @property
    def f(self) -> int:
        return 1 if self.autoencoder is None else self.autoencoder.f

    @property
    def latent_channels(self) -> int:
        return 3 if self.autoencoder is None else self.autoencoder.latent_channels

    def noise_schedule(self) -> NoiseSchedule:
        if self.schedule == "linear":
            return NoiseSchedule.linear(self.T, self.beta_start, self.beta_end)
        return NoiseSchedule.cosine(self.T)


@dataclass
class LDMConfig(DiffusionConfig):
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)  # tau_theta
    cond_drop: float = 0.1  # share of captions replaced by "" in training (for guidance)
    # False: tau_theta trains jointly with eps_theta, as the paper does for text. True: tau_theta was
    # trained elsewhere and stays fixed, as Stable Diffusion keeps CLIP's text encoder fixed (a CLIP-like
    # encoder of our own: contrastive.py); trainable() then leaves it out, so neither the optimiser nor
    # the EMA of train_diffusion touches it.
    freeze_text: bool = False

    def __post_init__(self):
        super().__post_init__()
        if self.unet.context_dim != self.text.dim:
            raise ValueError(
                f"UNet context_dim {self.unet.context_dim} must equal the text encoder's dim {self.text.dim}: "
                f"set UNetConfig(context_dim={self.text.dim}) or TextEncoderConfig(dim={self.unet.context_dim})"
            )


def sr_unet_config(latent_channels: int, model_channels: int = 32) -> UNetConfig:
    """The UNet both SR models share: no cross-attention, 3 concatenated channels for y.

    Small on purpose (0.82M parameters at 32 channels): both shipped SR models together must
    fit in 3.5 MB at fp16. channel_mult (1, 1, 2) keeps the width low at full resolution; the
    middle block still has one self-attention layer."""
    return UNetConfig(
        in_channels=latent_channels,
        out_channels=latent_channels,
        model_channels=model_channels,
        channel_mult=(1, 1, 2),
        attention_levels=(),
        num_heads=4,
        use_context=False,
        concat_channels=3,
    )


@dataclass
class SRConfig(DiffusionConfig):
    # eps_theta; in_channels = latent c, concat_channels = 3
    unet: UNetConfig = field(default_factory=lambda: sr_unet_config(4))
    factor: int = FACTOR  # upscaling factor: y is image_size / factor on a side

    def __post_init__(self):
        super().__post_init__()
        if self.unet.concat_channels != 3:
            raise ValueError(
                f"the UNet must take the 3 channels of the low-resolution image as concat_channels, got "
                    f"{self.unet.concat_channels}"
            )
        if self.unet.use_context:
            raise ValueError(
                "super-resolution is conditioned by concatenation only: build the UNet with use_context=False"
            )
        _check_size(self.image_size, self.image_size, self.factor, "image_size")
        if self.autoencoder is not None:
            _check_size(self.image_size, self.image_size, self.autoencoder.f, "image_size")

    @property
    def low_res_size(self) -> int:
        return self.image_size // self.factor


# ---------------------------------------------------------------- the degradation and the bicubic baseline


def _check_size(h: int, w: int, factor: int, what: str) -> None:
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    if h % factor or w % factor:
        raise ValueError(
            f"{what} size {h}x{w} is not divisible by the factor {factor}: crop or pad it to a multiple of "
                f"{factor} first (e.g. {h - h % factor}x{w - w % factor})"
        )


def downsample(hr: torch.Tensor, factor: int = FACTOR, value_range: tuple[float, float] = (-1.0, 1.0)) -> torch.Tensor:
    """The degradation y = downsample(x): bicubic with anti-aliasing, (b 3 H W) -> (b 3 H/f W/f).

    Anti-aliasing low-pass filters before subsampling (as PIL's resize does), so thin edges
    blur instead of aliasing. The result is clamped to ``value_range`` (bicubic overshoots).
    """
    if hr.ndim != 4:
        raise ValueError(f"hr must be a batch (b, c, H, W), got shape {tuple(hr.shape)}")
    _check_size(hr.shape[-2], hr.shape[-1], factor, "the high-resolution image")
    y_low = F.interpolate(hr.float(), scale_factor=1 / factor, mode="bicubic", antialias=True, align_corners=False)
    return y_low.clamp(*value_range)


def bicubic_upsample(
    y_low: torch.Tensor, factor: int = FACTOR, value_range: tuple[float, float] = (-1.0, 1.0)
) -> torch.Tensor:
    """The classic baseline: bicubic interpolation (b 3 h w) -> (b 3 f*h f*w), clamped to ``value_range``.

    (Anti-aliasing only matters when shrinking, so upsampling does without it.)"""
    if y_low.ndim != 4:
        raise ValueError(f"y_low must be a batch (b, c, h, w), got shape {tuple(y_low.shape)}")
    up = F.interpolate(y_low.float(), scale_factor=factor, mode="bicubic", align_corners=False)
    return up.clamp(*value_range)


# ---------------------------------------------------------------- the shared base


class DiffusionModel(nn.Module):
    """What every diffusion model here shares: eps_theta (``unet``), the noise schedule, and the
    frozen first stage, the autoencoder (E, D) with its latent scale, or none for pixel space.
    ``LatentDiffusion`` (text, cross-attention) and ``SuperResDiffusion`` (concatenation) add their
    conditioning y on top, through ``eps(z_t, t, y)`` and ``loss(z_0, y)``."""

    def __init__(self, config: DiffusionConfig):
        super().__init__()
        self.config = config
        self.autoencoder = Autoencoder(config.autoencoder).requires_grad_(False).eval() if config.autoencoder else None
        self.unet = UNet(config.unet)
        self.schedule = config.noise_schedule()

    def train(self, mode: bool = True):
        super().train(mode)
        if self.autoencoder is not None:
            self.autoencoder.eval()  # stage 1 is frozen: trained once, reused
        return self

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(c, h, w) of z for an image of config.image_size (of x itself in pixel space)."""
        H = self.config.image_size
        if self.autoencoder is None:
            return (3, H, H)
        return self.autoencoder.latent_shape(H, H)

    def description(self) -> str:
        """A short name for progress bars."""
        return "diffusion"

    def trainable(self) -> nn.ModuleDict:
        """The parts a diffusion training run updates (the autoencoder stays frozen)."""
        return nn.ModuleDict({"unet": self.unet})

    def num_params(self) -> int:
        """Trainable parameters (the autoencoder is shared and frozen)."""
        return sum(p.numel() for p in self.trainable().parameters())

    def to_eps(self, z_t: torch.Tensor, t: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """The UNet's output as an eps prediction, whatever the parameterization (v: Salimans & Ho 2022)."""
        return out if self.config.parameterization == "eps" else self.schedule.eps_from_v(z_t, t, out)

    # --------------------------------------------------------- between pixels and latents

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x in [-1, 1] (b 3 H W) -> z_0 = scale * E(x) (b c h w); the identity in pixel space."""
        if self.autoencoder is None:
            return x
        return self.autoencoder.encode_latent(x) * self.autoencoder.scale_factor

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z_0 (b c h w) -> x~ = D(z_0 / scale) in [-1, 1] (b 3 H W)."""
        if self.autoencoder is None:
            return z.clamp(-1, 1)
        return self.autoencoder.decode(z / self.autoencoder.scale_factor).clamp(-1, 1)

    @torch.no_grad()
    def _sample(
        self,
        eps_model,
        batch: int,
        steps: int,
        eta: float,
        seed: int,
        sampler: str = "ddim",
        x_T: torch.Tensor | None = None,
        callback=None,
        guide=None,
    ) -> torch.Tensor:
        """z_0 from z_T ~ N(0, I) (seeded) through the reverse process of ``eps_model(z_t, t)``."""
        generator = torch.Generator().manual_seed(seed)
        if x_T is None:
            x_T = torch.randn((batch, *self.latent_shape), generator=generator)
        x_T = x_T.to(self.device)
        if sampler == "ddpm":
            return ddpm_sample(eps_model, x_T, self.schedule, generator=generator, callback=callback)
        return ddim_sample(
            eps_model, x_T, self.schedule, steps=steps, eta=eta, generator=generator, callback=callback, guide=guide
        )

    def decode_to_images(self, z0: torch.Tensor) -> torch.Tensor:
        """z_0 -> images in [0, 1] (b 3 H W) on the CPU."""
        return to_image_range(self.decode(z0)).cpu()


class LatentDiffusion(DiffusionModel):
    """The text-to-image LDM: the shared parts plus tau_theta and its tokenizer."""

    def __init__(self, config: LDMConfig):
        super().__init__(config)
        self.text_encoder = TextEncoder(config.text)
        if config.freeze_text:
            self.text_encoder.requires_grad_(False).eval()
        self.tokenizer = Tokenizer(context_len=config.text.context_len)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.config.freeze_text:
            self.text_encoder.eval()  # a frozen tau_theta is used as it was pretrained
        return self

    def trainable(self) -> nn.ModuleDict:
        """eps_theta, and tau_theta unless ``config.freeze_text``: what the optimiser and the EMA update."""
        if self.config.freeze_text:
            return nn.ModuleDict({"unet": self.unet})
        return nn.ModuleDict({"unet": self.unet, "text_encoder": self.text_encoder})

    # --------------------------------------------------------- conditioning y -> tau_theta(y)

    def description(self) -> str:
        return f"LDM f={self.config.f}"

    def tokens(self, captions: list[str]) -> torch.Tensor:
        return self.tokenizer(captions).to(self.device)

    def context(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tau_theta(y): (b, L, d) context and (b, L) mask (True on real tokens)."""
        return self.text_encoder(tokens)

    def eps(self, z_t: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """eps_theta(z_t, t, tau_theta(y)) as an eps prediction, whatever the parameterization."""
        context, mask = self.context(tokens)
        return self.to_eps(z_t, t, self.unet(z_t, t, context, context_mask=mask))

    # --------------------------------------------------------- training

    def loss(self, z0: torch.Tensor, tokens: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """L_LDM on a batch of cached latents z_0 (b c h w) and caption tokens (b, L)."""
        drop = torch.rand(tokens.shape[0], generator=generator).to(tokens.device) < self.config.cond_drop
        empty = self.tokenizer([""]).to(tokens.device)
        tokens = torch.where(drop[:, None], empty, tokens)  # ~10% unconditional, for guidance
        context, mask = self.context(tokens)
        return diffusion_loss(
            self.unet, z0, self.schedule, context, self.config.parameterization, generator, context_mask=mask
        )

    # --------------------------------------------------------- sampling

    def guided_model(self, captions: list[str], guidance: float):
        """eps_model(z_t, t) with classifier-free guidance: eps_u + s (eps_c - eps_u)."""
        context, mask = self.context(self.tokens(captions))
        uncond, uncond_mask = self.context(self.tokens([""]))

        def eps_unet(x, t, c, context_mask=None):
            return self.to_eps(x, t, self.unet(x, t, c, context_mask=context_mask))

        return cfg_model(
            self.unet if self.config.parameterization == "eps" else eps_unet,
            context,
            uncond,
            guidance,
            mask,
            uncond_mask,
        )

    @torch.no_grad()
    def sample_latents(
        self,
        captions: list[str],
        steps: int = 50,
        guidance: float = 3.0,
        eta: float = 0.0,
        seed: int = 0,
        sampler: str = "ddim",
        x_T: torch.Tensor | None = None,
        callback=None,
        guide=None,
    ) -> torch.Tensor:
        """z_0 for each caption: start from z_T ~ N(0, I) (seeded) and run the reverse process.
        ``guide(i, t, z_t) -> z_t`` (DDIM only) may change z_t before each step (``guidance.py``)."""
        if len(captions) == 0:
            raise ValueError("no captions given: pass at least one, e.g. ['a red circle']")
        check_sampling_args(steps, self.config.T, eta, guidance, sampler)
        eps_model = self.guided_model(list(captions), guidance)
        return self._sample(eps_model, len(captions), steps, eta, seed, sampler, x_T, callback, guide)

    @torch.no_grad()
    def generate(
        self,
        captions: list[str] | str,
        steps: int = 50,
        guidance: float = 3.0,
        eta: float = 0.0,
        seed: int = 0,
        sampler: str = "ddim",
    ) -> torch.Tensor:
        """Images for the captions: float (b, 3, H, W) in [0, 1], on the CPU."""
        if isinstance(captions, str):
            captions = [captions]
        with eval_mode(self):
            z0 = self.sample_latents(captions, steps, guidance, eta, seed, sampler)
        return self.decode_to_images(z0)


class SuperResDiffusion(DiffusionModel):
    """eps_theta(cat[z_t, resize(y)], t) with a frozen autoencoder (LDM-SR) or none (pixel SR).

    Training (the paper's Eq. 4, with y concatenated instead of read by cross-attention):

        L = E_{z_0, y, eps, t} || eps - eps_theta(cat[z_t, resize(y)], t) ||^2

    Sampling: z_T ~ N(0, I) -> DDIM with the same y at every step -> z_0 -> x~ = D(z_0 / scale)."""

    def description(self) -> str:
        return f"{'LDM-SR' if self.autoencoder is not None else 'pixel SR'} x{self.config.factor}"

    # ------------------------------------------------------------- conditioning y

    def condition(self, y_low: torch.Tensor) -> torch.Tensor:
        """y in [-1, 1] (b 3 H/f_sr W/f_sr) -> the channels stacked on z_t (b 3 h w).

        LDM-SR at f = 4: h = H/4 is already y's size, so y goes in unchanged.
        Pixel SR (f = 1): h = H, so y is first upsampled by bicubic interpolation (as SR3 does)."""
        s = self.config.low_res_size
        if y_low.ndim != 4 or y_low.shape[1:] != (3, s, s):
            raise ValueError(
                f"the low-resolution images must be (b, 3, {s}, {s}) for "
                    f"{self.config.image_size}x{self.config.image_size} outputs at x{self.config.factor}, got "
                        f"{tuple(y_low.shape)}; downsample the high-resolution images with ldm.downsample first"
            )
        _, h, w = self.latent_shape
        y_low = y_low.to(self.device, torch.float32)
        if (h, w) == (s, s):
            return y_low
        return bicubic_upsample(y_low, h // s)

    def eps(self, z_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """eps_theta(cat[z_t, cond], t), cond = self.condition(y) (b 3 h w)."""
        return self.to_eps(z_t, t, self.unet(z_t, t, concat=cond))

    # ------------------------------------------------------------- training and sampling

    def loss(self, z0: torch.Tensor, y_low: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The denoising loss on targets z_0 (b c h w: scaled latents, or pixels in [-1, 1]) and y (b 3 s s)."""
        return diffusion_loss(
            self.unet, z0, self.schedule, None, self.config.parameterization, generator, concat=self.condition(y_low)
        )

    @torch.no_grad()
    def sample_latents(
        self,
        y_low: torch.Tensor,
        steps: int = 50,
        eta: float = 0.0,
        seed: int = 0,
        x_T: torch.Tensor | None = None,
        callback=None,
    ) -> torch.Tensor:
        """z_0 for each y: z_T ~ N(0, I) (seeded), then DDIM with y concatenated at every step."""
        check_sampling_args(steps, self.config.T, eta)
        cond = self.condition(y_low)
        return self._sample(lambda x, t: self.eps(x, t, cond), len(cond), steps, eta, seed, "ddim", x_T, callback)

    @torch.no_grad()
    def upscale(self, y_low: torch.Tensor, steps: int = 50, eta: float = 0.0, seed: int = 0) -> torch.Tensor:
        """x4 super-resolution of y in [0, 1] (or uint8) (b 3 s s) -> images in [0, 1] (b 3 4s 4s), on the CPU."""
        if y_low.dtype == torch.uint8:
            y_low = y_low.float() / 255
        if y_low.is_floating_point() and (y_low.min() < -1e-3 or y_low.max() > 1 + 1e-3):
            raise ValueError(f"upscale takes images in [0, 1], got values in [{y_low.min():.2f}, {y_low.max():.2f}]")
        with eval_mode(self):
            z0 = self.sample_latents(y_low.float() * 2 - 1, steps, eta, seed)
        return self.decode_to_images(z0)
