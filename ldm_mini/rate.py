"""Rate in bits per dimension: how much information a representation keeps (paper Fig. 2).

A "dimension" is one number of the image: an RGB H x W image has 3 H W dimensions, and an
8-bit image costs 8 bits/dim raw. The paper's point: a likelihood model spends most of its bits
on imperceptible detail; the autoencoder removes that detail (perceptual compression) cheaply,
so the diffusion model can spend its capacity on the content (semantic compression).

The helpers below count bits in three ways, each an estimate with a stated assumption:
VQ latents (indices into a codebook), KL latents (the KL term is a rate in nats) and classical
baselines for lesson 01 (keep low DCT frequencies, or downsample).
"""

import math

import torch
import torch.nn.functional as F


def bits_per_dim_raw(bits_per_channel: int = 8) -> float:
    """Uncompressed rate: every dimension stored with `bits_per_channel` bits (8 for 8-bit images)."""
    return float(bits_per_channel)


def bits_per_dim_vq(h: int, w: int, K: int, H: int, W: int, channels: int = 3) -> float:
    """Upper bound for a VQ latent: h*w indices of log2(K) bits each, over H*W*channels dims.

    E.g. f=4, K=256 on 32x32 RGB: 8*8*8 / (32*32*3) = 0.1667 bits/dim (48x less than raw 8-bit).
    """
    return h * w * math.log2(K) / (H * W * channels)


def code_entropy_bits(indices: torch.Tensor, K: int) -> float:
    """Empirical entropy (bits) of the code distribution in `indices`: -sum p log2 p."""
    counts = torch.bincount(indices.flatten().long(), minlength=K).double()
    p = counts / counts.sum()
    return float(-torch.special.xlogy(p, p).sum() / math.log(2))


def bits_per_dim_vq_entropy(indices: torch.Tensor, K: int, H: int, W: int, channels: int = 3) -> float:
    """Tighter estimate for a VQ latent: h*w codes of entropy(code usage) bits each.

    `indices` is (b, h, w). An entropy coder that knows the code frequencies (but not the
    spatial correlations) reaches this rate; it is <= bits_per_dim_vq, with equality when all K
    codes are used equally often.
    """
    if indices.ndim != 3:
        raise ValueError(f"expected indices shaped (b, h, w), got shape {tuple(indices.shape)}")
    h, w = indices.shape[1:]
    return h * w * code_entropy_bits(indices, K) / (H * W * channels)


def bits_per_dim_kl(kl_nats_per_sample, H: int, W: int, channels: int = 3) -> float:
    """Rate of a KL-reg latent: KL(q(z|x) || N(0, I)) / ln 2 / (H*W*channels), batch mean.

    The KL is the expected cost in nats of sending z with a code built for the prior N(0, I)
    (the "bits-back" argument); a tiny KL weight lets this rate grow large.
    """
    kl = torch.as_tensor(kl_nats_per_sample, dtype=torch.float64).mean()
    return float(kl / math.log(2) / (H * W * channels))


# ---------------------------------------------------------------------------- DCT (lesson 01)


def dct_matrix(n: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """Orthonormal DCT-II matrix C (n x n): coefficients = C @ signal, signal = C.T @ coefficients.

    C[k, i] = s_k cos(pi (2i + 1) k / (2n)), s_0 = sqrt(1/n), s_k = sqrt(2/n).
    """
    i = torch.arange(n, dtype=torch.float64)
    k = i[:, None]
    C = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    C[0] /= math.sqrt(2.0)
    return C.to(dtype=dtype, device=device)


def dct2(img: torch.Tensor) -> torch.Tensor:
    """2D DCT-II over the last two dims (... H W), orthonormal: C_H @ img @ C_W^T."""
    H, W = img.shape[-2:]
    return dct_matrix(H, img.dtype, img.device) @ img @ dct_matrix(W, img.dtype, img.device).T


def idct2(coeffs: torch.Tensor) -> torch.Tensor:
    """Inverse of dct2: C_H^T @ coeffs @ C_W."""
    H, W = coeffs.shape[-2:]
    return dct_matrix(H, coeffs.dtype, coeffs.device).T @ coeffs @ dct_matrix(W, coeffs.dtype, coeffs.device)


def dct_truncate(img: torch.Tensor, keep: int) -> torch.Tensor:
    """Keep only the lowest-frequency keep x keep DCT coefficients of each channel (... H W).

    The classical "drop the high frequencies" compressor (the core of JPEG, without quantisation).
    keep >= max(H, W) keeps every coefficient (an exact round trip).
    """
    H, W = img.shape[-2:]
    if not 1 <= keep <= max(H, W):
        raise ValueError(f"keep={keep} must be between 1 and max(H, W) = {max(H, W)}")
    coeffs = dct2(img)
    mask = torch.zeros_like(coeffs)
    mask[..., :keep, :keep] = 1.0
    return idct2(coeffs * mask)


def bits_per_dim_dct(keep: int, H: int, W: int, bits_per_coeff: int = 8) -> float:
    """Rate of `dct_truncate`: keep*keep coefficients of `bits_per_coeff` bits per channel, over H*W.

    A simple counting estimate: every kept coefficient costs the same number of bits; a real
    codec (JPEG) quantises and entropy-codes them and does better.
    """
    return min(keep, H) * min(keep, W) * bits_per_coeff / (H * W)


# ---------------------------------------------------------------------------- downsampling (lesson 01)


def downsample_upsample(img: torch.Tensor, factor: int, mode: str = "bicubic") -> torch.Tensor:
    """Average-pool by `factor`, then resize back (b c H W): the pixel-space baseline of f."""
    H, W = img.shape[-2:]
    if H % factor or W % factor:
        raise ValueError(f"image size {H}x{W} is not divisible by factor={factor}")
    small = F.avg_pool2d(img, factor)
    return F.interpolate(small, size=(H, W), mode=mode, align_corners=False if mode != "nearest" else None)


def bits_per_dim_downsample(factor: int, bits_per_channel: int = 8) -> float:
    """Rate of keeping an image downsampled by `factor` at `bits_per_channel`: 8 / factor^2."""
    return bits_per_channel / factor**2
