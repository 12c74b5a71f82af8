"""LatentDiffusion: the autoencoder (E, D), the denoiser eps_theta and tau_theta, tied together.

Training (the paper's Eq. 2, with conditioning as in Eq. 3):

    L_LDM = E_{E(x), y, eps ~ N(0, I), t} || eps - eps_theta(z_t, t, tau_theta(y)) ||^2

where z_t = sqrt(alpha_bar_t) z_0 + sqrt(1 - alpha_bar_t) eps and z_0 = E(x) times the latent
scale. About 10% of captions are replaced by the empty caption "" during training, so the same
network also learns the unconditional eps_theta(z_t, t, tau_theta("")) that classifier-free
guidance needs at sampling time.

Generation: z_T ~ N(0, I) -> DDIM (or DDPM) with guidance -> z_0 -> x~ = D(z_0 / scale).

With ``autoencoder=None`` the same class is a *pixel-space* diffusion model (f = 1 without
E and D): the baseline the paper compares against.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .autoencoder import Autoencoder, AutoencoderConfig
from .diffusion import NoiseSchedule, diffusion_loss
from .sampling import cfg_model, ddim_sample, ddpm_sample
from .text import TextEncoder, TextEncoderConfig, Tokenizer
from .unet import UNet, UNetConfig


@dataclass
class LDMConfig:
    autoencoder: AutoencoderConfig | None = field(default_factory=AutoencoderConfig)  # None: pixel space
    unet: UNetConfig = field(default_factory=UNetConfig)  # eps_theta; in_channels must be the latent c
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)  # tau_theta
    image_size: int = 32  # H = W of generated images
    schedule: str = "linear"  # "linear" (LDM's sqrt-linear) or "cosine"
    T: int = 1000  # diffusion steps
    beta_start: float = 0.00085  # Stable Diffusion's range for the "linear" schedule
    beta_end: float = 0.012
    cond_drop: float = 0.1  # share of captions replaced by "" in training (for guidance)
    parameterization: str = "eps"  # what the UNet predicts: "eps" or "v"

    def __post_init__(self):
        c = self.autoencoder.latent_channels if self.autoencoder is not None else 3
        if self.unet.in_channels != c or self.unet.out_channels != c:
            raise ValueError(f"the UNet must take and return the latent's {c} channels; set UNetConfig(in_channels={c}, out_channels={c})")
        if self.unet.context_dim != self.text.dim:
            raise ValueError(f"UNet context_dim {self.unet.context_dim} must equal the text encoder's dim {self.text.dim}")
        if self.schedule not in ("linear", "cosine"):
            raise ValueError(f"schedule must be 'linear' or 'cosine', got {self.schedule!r}")

    @property
    def f(self) -> int:
        return 1 if self.autoencoder is None else self.autoencoder.f


class LatentSpaceModel(nn.Module):
    """What every diffusion model here shares: eps_theta (``unet``), the noise schedule, and the
    frozen first stage, the autoencoder (E, D) with its latent scale, or none for pixel space.
    ``LatentDiffusion`` (text, cross-attention) and ``superres.SuperResDiffusion`` (concatenation)
    add their conditioning on top."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.autoencoder = Autoencoder(config.autoencoder).requires_grad_(False).eval() if config.autoencoder else None
        self.unet = UNet(config.unet)
        if config.schedule == "linear":
            self.schedule = NoiseSchedule.linear(config.T, config.beta_start, config.beta_end)
        else:
            self.schedule = NoiseSchedule.cosine(config.T)

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


class LatentDiffusion(LatentSpaceModel):
    """The text-to-image LDM: the shared parts plus tau_theta and its tokenizer."""

    def __init__(self, config: LDMConfig):
        super().__init__(config)
        self.text_encoder = TextEncoder(config.text)
        self.tokenizer = Tokenizer(context_len=config.text.context_len)

    # --------------------------------------------------------- conditioning y -> tau_theta(y)

    def tokens(self, captions: list[str]) -> torch.Tensor:
        return self.tokenizer(captions).to(self.device)

    def context(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tau_theta(y): (b, L, d) context and (b, L) mask (True on real tokens)."""
        return self.text_encoder(tokens)

    def eps(self, z_t: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """eps_theta(z_t, t, tau_theta(y)) as an eps prediction, whatever the parameterization."""
        context, mask = self.context(tokens)
        out = self.unet(z_t, t, context, context_mask=mask)
        return out if self.config.parameterization == "eps" else self.schedule.eps_from_v(z_t, t, out)

    # --------------------------------------------------------- training

    def loss(self, z0: torch.Tensor, tokens: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """L_LDM on a batch of cached latents z_0 (b c h w) and caption tokens (b, L)."""
        drop = torch.rand(tokens.shape[0], generator=generator).to(tokens.device) < self.config.cond_drop
        empty = self.tokenizer([""]).to(tokens.device)
        tokens = torch.where(drop[:, None], empty, tokens)  # ~10% unconditional, for guidance
        context, mask = self.context(tokens)
        return diffusion_loss(self.unet, z0, self.schedule, context, self.config.parameterization, generator, context_mask=mask)

    # --------------------------------------------------------- sampling

    def guided_model(self, captions: list[str], guidance: float):
        """eps_model(z_t, t) with classifier-free guidance: eps_u + s (eps_c - eps_u)."""
        context, mask = self.context(self.tokens(captions))
        uncond, uncond_mask = self.context(self.tokens([""]))
        unet = self.unet
        if self.config.parameterization == "v":
            unet = lambda x, t, c, context_mask=None: self.schedule.eps_from_v(x, t, self.unet(x, t, c, context_mask=context_mask))  # noqa: E731
        return cfg_model(unet, context, uncond, guidance, mask, uncond_mask)

    @torch.no_grad()
    def sample_latents(self, captions: list[str], steps: int = 50, guidance: float = 3.0, eta: float = 0.0, seed: int = 0, sampler: str = "ddim", x_T: torch.Tensor | None = None, callback=None) -> torch.Tensor:
        """z_0 for each caption: start from z_T ~ N(0, I) (seeded) and run the reverse process."""
        _check_sampling_args(captions, steps, guidance, eta, self.config.T, sampler)
        generator = torch.Generator().manual_seed(seed)
        if x_T is None:
            x_T = torch.randn((len(captions), *self.latent_shape), generator=generator)
        x_T = x_T.to(self.device)
        eps_model = self.guided_model(list(captions), guidance)
        if sampler == "ddpm":
            return ddpm_sample(eps_model, x_T, self.schedule, generator=generator, callback=callback)
        return ddim_sample(eps_model, x_T, self.schedule, steps=steps, eta=eta, generator=generator, callback=callback)

    @torch.no_grad()
    def generate(self, captions: list[str] | str, steps: int = 50, guidance: float = 3.0, eta: float = 0.0, seed: int = 0, sampler: str = "ddim") -> torch.Tensor:
        """Images for the captions: float (b, 3, H, W) in [0, 1], on the CPU."""
        if isinstance(captions, str):
            captions = [captions]
        was_training = self.training
        self.eval()
        z0 = self.sample_latents(captions, steps, guidance, eta, seed, sampler)
        self.train(was_training)
        return ((self.decode(z0) + 1) / 2).clamp(0, 1).cpu()


def _check_sampling_args(captions, steps: int, guidance: float, eta: float, T: int, sampler: str) -> None:
    if len(captions) == 0:
        raise ValueError("no captions given: pass at least one, e.g. ['a red circle']")
    if sampler not in ("ddim", "ddpm"):
        raise ValueError(f"sampler must be 'ddim' or 'ddpm', got {sampler!r}")
    if not 1 <= steps <= T:
        raise ValueError(f"steps={steps}: DDIM takes between 1 and T={T} steps (the model was trained with T={T})")
    if guidance < 0:
        raise ValueError(f"guidance={guidance} must be >= 0 (0: unconditional, 1: conditional, > 1: guided; 3 is a good start)")
    if not 0 <= eta <= 1:
        raise ValueError(f"eta={eta} must be in [0, 1] (0: deterministic DDIM, 1: DDPM-like noise)")
