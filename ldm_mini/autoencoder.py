"""Stage 1 of the LDM: perceptual compression with an autoencoder (E, D).

The paper (Rombach et al. 2022, Sec. 3.1) first trains an autoencoder once and reuses it:

    x (b 3 H W) --E--> z (b c h w), h = H / f --D--> x~ (b 3 H W)

f is the downsampling factor. The latent z stays *2D* (unlike the 1D token sequences of
VQGAN/DALL-E), so the UNet of stage 2 can keep its convolutional inductive bias.

Two regularisers keep the latent space well behaved:

* KL-reg: E predicts a diagonal Gaussian q(z|x) = N(mu, sigma^2) and a tiny KL penalty
  pulls it toward N(0, I), like a VAE with a very small weight.
* VQ-reg: a vector-quantisation layer snaps every latent vector to the nearest of K
  codebook vectors. The paper puts it "in the decoder": the diffusion model works on the
  *pre-quantisation* latent z, and `decode` quantises first.

The module follows the layout of the reference code (ldm/modules/diffusionmodules/model.py),
shrunk so that it trains on a laptop CPU.
"""

import math
from dataclasses import dataclass
from typing import Iterable, Optional, Union

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .layers import Downsample, Upsample, autoencoder_norm

ALLOWED_F = (1, 2, 4, 8, 16)
ALLOWED_REG = ("kl", "vq")


@dataclass
class AutoencoderConfig:
    f: int = 4  # downsampling factor H / h; one of 1, 2, 4, 8, 16
    reg: str = "kl"  # latent regulariser: "kl" (KL-reg) or "vq" (VQ-reg)
    in_channels: int = 3  # image channels (RGB)
    base_channels: int = 32  # channels at full resolution
    channel_mult: Optional[tuple[int, ...]] = None  # per level; None: (1, 2, 2, 2, 2)[:levels]
    num_res_blocks: int = 1  # ResnetBlocks per level in E (D has one more, as the reference)
    latent_channels: int = 4  # c, the channels of z
    attn_mid: bool = True  # single-head self-attention in the middle blocks of E and D
    vq_codebook_size: int = 256  # K, the number of codebook vectors (VQ-reg only)
    vq_beta: float = 0.25  # commitment weight beta (VQ-reg only)
    vq_dead_code_restart: bool = True  # re-initialise unused codes (VQ-reg only)
    vq_restart_after: int = 20  # training steps a code may stay unused before a restart

    def __post_init__(self):
        if self.f not in ALLOWED_F:
            raise ValueError(f"f={self.f} is not supported; use one of {ALLOWED_F}")
        if self.reg not in ALLOWED_REG:
            raise ValueError(f"reg={self.reg!r} is unknown; use one of {ALLOWED_REG}")
        if self.channel_mult is None:
            # Cap the multiplier at 2 so that deep (f=16) models stay small.
            self.channel_mult = (1, 2, 2, 2, 2)[: self.levels]
        self.channel_mult = tuple(self.channel_mult)
        if len(self.channel_mult) != self.levels:
            raise ValueError(
                f"channel_mult={self.channel_mult} has {len(self.channel_mult)} levels but f={self.f} "
                f"needs log2(f) + 1 = {self.levels}; pass {self.levels} multipliers or None"
            )

    @property
    def levels(self) -> int:
        """Number of resolutions: f = 2 ** (levels - 1)."""
        return int(math.log2(self.f)) + 1


# ---------------------------------------------------------------------------- building blocks


class ResnetBlock(nn.Module):
    """x + conv(SiLU(norm(conv(SiLU(norm(x)))))), with a 1x1 conv on the skip when channels change."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.norm1 = autoencoder_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = autoencoder_norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x):  # b c h w
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over the h*w positions, with a residual connection."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = autoencoder_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x):  # b c h w
        h, w = x.shape[-2:]
        q, k, v = self.qkv(self.norm(x)).chunk(3, dim=1)
        q, k, v = (rearrange(t, "b c h w -> b 1 (h w) c") for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(c)) v
        out = rearrange(out, "b 1 (h w) c -> b c h w", h=h, w=w)
        return x + self.proj_out(out)


def mid_block(channels: int, attn: bool) -> nn.Sequential:
    """ResnetBlock, self-attention, ResnetBlock at the lowest resolution."""
    return nn.Sequential(
        ResnetBlock(channels, channels),
        AttnBlock(channels) if attn else nn.Identity(),
        ResnetBlock(channels, channels),
    )


class Encoder(nn.Module):
    """E: image (b in_channels H W) -> latent parameters (b out_channels H/f W/f)."""

    def __init__(self, config: AutoencoderConfig, out_channels: int):
        super().__init__()
        ch = [config.base_channels * m for m in config.channel_mult]
        self.conv_in = nn.Conv2d(config.in_channels, ch[0], 3, padding=1)
        blocks = []
        c_in = ch[0]
        for level, c_out in enumerate(ch):
            for _ in range(config.num_res_blocks):
                blocks.append(ResnetBlock(c_in, c_out))
                c_in = c_out
            if level != len(ch) - 1:  # f = 2 ** (levels - 1): no Downsample after the last level
                blocks.append(Downsample(c_in))
        self.down = nn.Sequential(*blocks)
        self.mid = mid_block(c_in, config.attn_mid)
        self.norm_out = autoencoder_norm(c_in)
        self.conv_out = nn.Conv2d(c_in, out_channels, 3, padding=1)

    def forward(self, x):  # b c H W -> b c' h w
        h = self.mid(self.down(self.conv_in(x)))
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    """D: latent (b c h w) -> image (b out_channels H W), the mirror image of E."""

    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        ch = [config.base_channels * m for m in config.channel_mult]
        c_in = ch[-1]
        self.conv_in = nn.Conv2d(config.latent_channels, c_in, 3, padding=1)
        self.mid = mid_block(c_in, config.attn_mid)
        blocks = []
        for level in reversed(range(len(ch))):
            # One block more than E per level, as the reference: decoding is the harder job.
            for _ in range(config.num_res_blocks + 1):
                blocks.append(ResnetBlock(c_in, ch[level]))
                c_in = ch[level]
            if level != 0:
                blocks.append(Upsample(c_in))
        self.up = nn.Sequential(*blocks)
        self.norm_out = autoencoder_norm(c_in)
        self.conv_out = nn.Conv2d(c_in, config.in_channels, 3, padding=1)

    def forward(self, z):  # b c h w -> b 3 H W
        h = self.up(self.mid(self.conv_in(z)))
        return self.conv_out(F.silu(self.norm_out(h)))


# ---------------------------------------------------------------------------- KL-reg


class DiagonalGaussian:
    """The posterior q(z|x) = N(mean, exp(logvar)) of KL-reg, per latent element.

    `params` is the encoder output, b (2c) h w: the first c channels are the mean, the last c
    the log-variance (clamped to [-30, 20] for numerical safety, as the reference).
    """

    def __init__(self, params: torch.Tensor):
        self.mean, logvar = params.chunk(2, dim=1)  # b c h w each
        self.logvar = logvar.clamp(-30.0, 20.0)
        self.std = torch.exp(0.5 * self.logvar)
        self.var = torch.exp(self.logvar)

    def sample(self, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """z = mean + std * eps, eps ~ N(0, I) (the reparameterisation trick)."""
        eps = torch.randn(self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + self.std * eps

    def mode(self) -> torch.Tensor:
        return self.mean

    def kl(self) -> torch.Tensor:
        """KL(q(z|x) || N(0, I)) in nats, summed over c, h, w: shape (b,)."""
        return 0.5 * torch.sum(self.mean**2 + self.var - 1.0 - self.logvar, dim=(1, 2, 3))


# ---------------------------------------------------------------------------- VQ-reg


class VectorQuantizer(nn.Module):
    """VQ-reg: replace each latent vector z_ij (c numbers) by its nearest codebook vector e_k.

    Loss (the paper's form, van den Oord et al. 2017, with beta = 0.25):
        beta * ||sg[z_q] - z||^2   (commitment: keep E close to the codes)
      +        ||z_q - sg[z]||^2   (codebook: move the codes toward E's outputs)
    Gradients pass the non-differentiable argmin with the straight-through estimator
    z_q = z + sg[z_q - z]: forward value z_q, backward identity to z.

    Codebook collapse guard: dead-code restart. A code unused for `restart_after` training
    steps in a row is re-initialised to a random encoder output of the current batch (drawn
    with torch's global RNG, so seeded runs are reproducible). We prefer this to EMA codebook
    updates because it keeps the loss above exactly as written (EMA replaces its second term by
    a running average) and it is a few readable lines.
    """

    def __init__(self, num_codes: int, dim: int, beta: float = 0.25, dead_code_restart: bool = True,
                 restart_after: int = 20):
        super().__init__()
        self.num_codes, self.dim, self.beta = num_codes, dim, beta
        self.dead_code_restart, self.restart_after = dead_code_restart, restart_after
        self.codebook = nn.Embedding(num_codes, dim)  # K x c
        nn.init.uniform_(self.codebook.weight, -1.0 / num_codes, 1.0 / num_codes)  # as the reference
        self.register_buffer("unused_steps", torch.zeros(num_codes, dtype=torch.long))

    def nearest_codes(self, z_flat: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code (L2) for each row of z_flat (n c) -> (n,)."""
        e = self.codebook.weight
        # ||z - e||^2 = ||z||^2 + ||e||^2 - 2 z.e, without building an n x K x c tensor
        d = z_flat.pow(2).sum(1, keepdim=True) + e.pow(2).sum(1) - 2.0 * z_flat @ e.t()  # n K
        return d.argmin(dim=1)

    def forward(self, z: torch.Tensor, restart: bool = True):
        """z (b c h w) -> (z_q (b c h w), info) with info keys loss, indices (b h w), usage, perplexity.

        Dead codes are restarted only in training mode and when `restart` is True (the
        autoencoder's training forward); decoding never changes the codebook.
        """
        b, c, h, w = z.shape
        z_flat = rearrange(z, "b c h w -> (b h w) c")
        with torch.no_grad():
            indices = self.nearest_codes(z_flat)
        z_q = rearrange(self.codebook(indices), "(b h w) c -> b c h w", b=b, h=h, w=w)

        loss = self.beta * F.mse_loss(z, z_q.detach()) + F.mse_loss(z_q, z.detach())
        z_q = z + (z_q - z).detach()  # straight-through estimator

        with torch.no_grad():
            counts = torch.bincount(indices, minlength=self.num_codes)
            usage, perplexity = codebook_stats(counts)
            if restart and self.training and self.dead_code_restart:
                self.restart_dead_codes(counts, z_flat)
        info = {"loss": loss, "indices": indices.view(b, h, w), "usage": usage, "perplexity": perplexity}
        return z_q, info

    @torch.no_grad()
    def restart_dead_codes(self, counts: torch.Tensor, z_flat: torch.Tensor) -> int:
        """Re-initialise codes unused for `restart_after` steps to random rows of z_flat; returns how many."""
        self.unused_steps += 1
        self.unused_steps[counts > 0] = 0
        dead = self.unused_steps >= self.restart_after
        n_dead = int(dead.sum())
        if n_dead:
            pick = torch.randint(z_flat.shape[0], (n_dead,), device=z_flat.device)
            self.codebook.weight[dead] = z_flat[pick].to(self.codebook.weight.dtype)
            self.unused_steps[dead] = 0
        return n_dead


def codebook_stats(counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """From code counts (K,): usage = fraction of codes used, perplexity = exp(-sum p log p).

    Perplexity is the "effective number of codes": K_used when the used codes are equally likely.
    """
    p = counts.float() / counts.sum().clamp(min=1)
    usage = (counts > 0).float().mean()
    perplexity = torch.exp(-torch.special.xlogy(p, p).sum())
    return usage, perplexity


# ---------------------------------------------------------------------------- the autoencoder


class Autoencoder(nn.Module):
    """The first-stage model: E, D and a regulariser (KL-reg or VQ-reg), with a latent scale.

    KL-reg:  x --E--> quant_conv --> DiagonalGaussian --sample/mode--> z --post_quant_conv--> D
    VQ-reg:  x --E--> quant_conv --> z --VectorQuantizer--> z_q --post_quant_conv--> D

    `encode_latent(x)` gives the latent z the diffusion model works on; for VQ-reg this is the
    pre-quantisation latent (the quantiser is part of the decoder, as in the paper), and
    `decode(z)` quantises it first.

    Latent scale: the buffer `scale_factor` (1.0 until `measure_scale_factor` sets it to
    1 / std(z) on data, the paper's scale_by_std) is *not* applied here. The LDM multiplies z
    by it after encoding, so the diffusion model sees unit-variance latents, and divides it out
    before decoding: x~ = D(z_ldm / scale_factor).
    """

    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        self.config = config
        c = config.latent_channels
        moments = 2 * c if config.reg == "kl" else c  # KL: mean and logvar
        self.encoder = Encoder(config, moments)
        self.quant_conv = nn.Conv2d(moments, moments, 1)
        self.post_quant_conv = nn.Conv2d(c, c, 1)
        self.decoder = Decoder(config)
        self.quantizer = None
        if config.reg == "vq":
            self.quantizer = VectorQuantizer(config.vq_codebook_size, c, config.vq_beta,
                                             config.vq_dead_code_restart, config.vq_restart_after)
        self.register_buffer("scale_factor", torch.tensor(1.0))

    # --- input checks

    def check_image(self, x: torch.Tensor) -> None:
        f, ch = self.config.f, self.config.in_channels
        if x.ndim != 4:
            raise ValueError(f"expected images shaped (b, {ch}, H, W), got shape {tuple(x.shape)}; "
                             "add a batch dimension with x[None]")
        if x.shape[1] != ch:
            raise ValueError(f"expected {ch} image channels, got {x.shape[1]} (shape {tuple(x.shape)}); "
                             f"pass images shaped (b, {ch}, H, W) or set AutoencoderConfig(in_channels=...)")
        H, W = x.shape[-2:]
        if H % f or W % f:
            raise ValueError(f"image size {H}x{W} is not divisible by f={f}; use a size that is a multiple "
                             f"of {f} (e.g. {math.ceil(H / f) * f}x{math.ceil(W / f) * f})")

    def check_latent(self, z: torch.Tensor) -> None:
        c = self.config.latent_channels
        if z.ndim != 4 or z.shape[1] != c:
            raise ValueError(f"expected latents shaped (b, {c}, h, w), got shape {tuple(z.shape)}")

    def latent_shape(self, H: int, W: int) -> tuple[int, int, int]:
        """(c, h, w) of the latent of an H x W image."""
        f = self.config.f
        return (self.config.latent_channels, H // f, W // f)

    # --- E and D

    def encode(self, x: torch.Tensor) -> Union[DiagonalGaussian, torch.Tensor]:
        """KL-reg: the posterior q(z|x) (a DiagonalGaussian). VQ-reg: the pre-quantisation z (b c h w)."""
        self.check_image(x)
        moments = self.quant_conv(self.encoder(x))
        return DiagonalGaussian(moments) if self.config.reg == "kl" else moments

    def encode_latent(self, x: torch.Tensor, sample: bool = False,
                      generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """The latent z (b c H/f W/f) for the diffusion model, unscaled.

        KL-reg: the posterior mean, or a sample when `sample=True`. VQ-reg: pre-quantisation z.
        """
        out = self.encode(x)
        if self.config.reg == "vq":
            return out
        return out.sample(generator) if sample else out.mode()

    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """VQ-reg only: z -> (z_q, info); see VectorQuantizer."""
        if self.quantizer is None:
            raise ValueError("quantize() needs a VQ-reg autoencoder (AutoencoderConfig(reg='vq'))")
        return self.quantizer(z, restart=False)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """x~ = D(z), b c h w -> b 3 H W. VQ-reg quantises z first (the quantiser is part of D)."""
        self.check_latent(z)
        if self.quantizer is not None:
            z, _ = self.quantizer(z, restart=False)
        return self.decoder(self.post_quant_conv(z))

    def forward(self, x: torch.Tensor, sample_posterior: bool = True,
                generator: Optional[torch.Generator] = None) -> tuple[torch.Tensor, dict]:
        """Reconstruct x; returns (x_rec, aux).

        aux["reg_loss"]: the unweighted regulariser, a scalar
            KL-reg: KL nats per image dimension, mean over the batch (KL / (3 H W));
            VQ-reg: the VQ loss beta ||sg[z_q] - z||^2 + ||z_q - sg[z]||^2.
        KL-reg also gives aux["kl"] (b,) in nats; VQ-reg gives "indices", "usage", "perplexity".
        """
        if self.config.reg == "kl":
            posterior = self.encode(x)
            z = posterior.sample(generator) if sample_posterior else posterior.mode()
            kl = posterior.kl()
            aux = {"kl": kl, "reg_loss": kl.mean() / x[0].numel(), "z": z}
            return self.decoder(self.post_quant_conv(z)), aux
        z = self.encode(x)
        z_q, info = self.quantizer(z)
        aux = {"reg_loss": info["loss"], "indices": info["indices"], "usage": info["usage"],
               "perplexity": info["perplexity"], "z": z}
        return self.decoder(self.post_quant_conv(z_q)), aux

    def last_layer(self) -> torch.Tensor:
        """The weight of D's last convolution (for the adversarial loss's adaptive weight)."""
        return self.decoder.conv_out.weight

    # --- latent scale (the paper's scale_by_std)

    @torch.no_grad()
    def measure_scale_factor(self, x_batches: Union[torch.Tensor, Iterable[torch.Tensor]],
                             sample: bool = False, batch_size: int = 256) -> float:
        """Set `scale_factor` = 1 / std(z) over the latents of `x_batches`; returns it.

        `x_batches` is an iterable of image batches, or one tensor (encoded `batch_size` at a time).
        The reference measures it on one batch of posterior samples; with the tiny KL weight the
        posterior std is negligible, so the mean (sample=False) gives the same number, reproducibly.
        """
        if isinstance(x_batches, torch.Tensor):
            x_batches = x_batches.split(batch_size)
        n, s, s2 = 0, 0.0, 0.0
        for x in x_batches:
            z = self.encode_latent(x, sample=sample).double()
            n, s, s2 = n + z.numel(), s + z.sum().item(), s2 + z.pow(2).sum().item()
        if n < 2:
            raise ValueError("measure_scale_factor needs at least one image batch")
        std = math.sqrt(max(s2 - s * s / n, 0.0) / (n - 1))
        if std == 0.0:
            raise ValueError("the latents have zero std; is the encoder trained?")
        self.scale_factor.fill_(1.0 / std)
        return 1.0 / std
