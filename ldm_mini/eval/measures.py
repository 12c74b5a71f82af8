"""Pure measures: PSNR and SSIM, the Frechet distance in a judge network's features.

- **Distortion**: ``psnr`` and ``ssim`` between an image x and its reconstruction x~ = D(E(x)),
  for the autoencoder lessons (the paper's Table 8 and Figure 6 report PSNR and SSIM).
- **A Frechet distance** in the attribute classifier's feature space (``classifier.py``), an *FID
  stand-in*. It is NOT the Inception FID of the paper: its numbers are only comparable with each
  other (same classifier, same number of images), never with published FIDs.

Image ranges, everywhere in this package: measures take images in [0, 1] (float, b 3 h w) as
``LatentDiffusion.generate`` returns them, or uint8 [0, 255]. The classifier itself works in
the model range [-1, 1], like the autoencoder, so the perceptual loss can feed it directly.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure
from torchmetrics.image.fid import FrechetInceptionDistance

from ..data import to_model_range
from ..layers import eval_mode

# ---------------------------------------------------------------------------- image ranges


def _check_unit_range(x: torch.Tensor, name: str = "images") -> torch.Tensor:
    """uint8 -> float [0, 1]; float images must already be in [0, 1] (b 3 h w)."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} must be RGB batches shaped (b, 3, h, w), got {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        return x.float() / 255.0
    if not x.is_floating_point():
        raise ValueError(f"{name} must be float in [0, 1] or uint8, got {x.dtype}")
    lo, hi = x.min().item(), x.max().item()
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise ValueError(
            f"{name} must be in [0, 1], got values in [{lo:.3f}, {hi:.3f}]. "
            "For model-range images in [-1, 1] use data.to_image_range(x); for a slight overshoot, x.clamp(0, 1)"
        )
    return x.clamp(0.0, 1.0)


def _to_classifier_range(x: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] (or uint8) -> [-1, 1], the range the classifier was trained on."""
    if x.dtype == torch.uint8:
        return to_model_range(x)
    return _check_unit_range(x) * 2.0 - 1.0


# ---------------------------------------------------------------------------- PSNR and SSIM

PSNR_MAX = 100.0  # dB; what an exact reconstruction counts as (see psnr_per_image)


def psnr_per_image(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """PSNR = 10 log10(1 / MSE) in dB of each image pair, shape (b,); x, y in [0, 1].

    An exact copy has MSE = 0 and an infinite PSNR. We cap it at ``PSNR_MAX`` = 100 dB so a
    batch mean stays finite when one image happens to be reproduced exactly (a blank
    background, say). 100 dB is far above anything an 8-bit image can show: rounding to 8 bits
    alone already costs about 59 dB.
    """
    x, y = _check_unit_range(x, "x"), _check_unit_range(y, "y")
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    values = peak_signal_noise_ratio(x, y, data_range=1.0, reduction="none", dim=(1, 2, 3))  # b
    return values.clamp(max=PSNR_MAX)


def psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean over the batch of the per-image PSNR (dB); x, y in [0, 1], b 3 h w.

    Rule of thumb on these shapes: ~20 dB is a blurry but recognisable reconstruction,
    30 dB looks right, 40 dB is hard to tell from the original.
    """
    return psnr_per_image(x, y).mean().item()


def ssim(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean structural similarity (Wang et al. 2004) of x and y in [0, 1], b 3 h w; 1 = identical.

    SSIM compares local means, contrasts and correlations in an 11x11 Gaussian window, so it
    punishes blur and lost structure more than PSNR, which only sees the pixel error.
    """
    x, y = _check_unit_range(x, "x"), _check_unit_range(y, "y")
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    return structural_similarity_index_measure(x, y, data_range=1.0).item()


# ---------------------------------------------------------------------------- Frechet distance


class _FeatureIdentity(nn.Module):
    """Hands already-computed features (n, d) to torchmetrics' FID unchanged."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features  # torchmetrics reads this instead of running a dummy image

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return feats


def frechet_distance_from_features(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (n, d) and (m, d):

        d^2 = ||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2))

    the formula of FID (Heusel et al. 2017), computed by torchmetrics in float64.
    Small sets bias it upwards (the covariances are noisy), so only compare values measured
    on the same number of images.
    """
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"features must be (n, d) and (m, d) with the same d, got {tuple(real.shape)} and {tuple(fake.shape)}"
        )
    if real.shape[0] < 2 or fake.shape[0] < 2:
        raise ValueError("a Frechet distance needs at least 2 images per set (and many more for a stable value)")
    metric = FrechetInceptionDistance(feature=_FeatureIdentity(real.shape[1]))
    metric.update(real.detach().cpu().double(), real=True)
    metric.update(fake.detach().cpu().double(), real=False)
    return metric.compute().item()


@torch.no_grad()
def embed_images(images: torch.Tensor, classifier: nn.Module, batch_size: int = 500) -> torch.Tensor:
    """The classifier's embedding (n, d) of images in [0, 1] (or uint8), in batches."""
    device = next(classifier.parameters()).device
    with eval_mode(classifier):
        out = [
            classifier.embed(_to_classifier_range(images[i : i + batch_size]).to(device)).cpu()
            for i in range(0, images.shape[0], batch_size)
        ]
    return torch.cat(out)


def frechet_distance(
    real_images: torch.Tensor, fake_images: torch.Tensor, classifier: nn.Module, batch_size: int = 500
) -> float:
    """FID stand-in: the Frechet distance of real and generated images (in [0, 1] or uint8)
    in the attribute classifier's embedding space. 0 = same feature statistics; lower is better.

    Not Inception FID: the features come from our own small classifier, so the numbers mean
    something only next to other numbers from the same classifier and the same image count.
    Report the floor beside it: two independent sets of *real* images are not at 0 (with
    1000 images each and the default classifier, val vs test gave ~20), because each
    covariance is estimated from a finite sample.
    """
    return frechet_distance_from_features(
        embed_images(real_images, classifier, batch_size), embed_images(fake_images, classifier, batch_size)
    )


# ---------------------------------------------------------------------------- intervals


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% interval (z = 1.96) of a proportion k / n, by Wilson's score method.

    The textbook p +- z sqrt(p (1 - p) / n) collapses to [1, 1] at k = n and can leave [0, 1];
    Wilson's interval does neither: for 200 / 200 it is [0.981, 1.0], not a certainty.
    """
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k = {k}, n = {n}")
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


# ---------------------------------------------------------------------------- an Inception Score analogue


class ObjectLogits(nn.Module):
    """A classifier's (or the judge's) reading of the first object as one class of 6 colours x 3 shapes:
    log p(colour, shape | x) = log p(colour1 | x) + log p(shape1 | x), (b, 18). torchmetrics'
    ``InceptionScore`` takes it in place of Inception's 1000 ImageNet classes."""

    def __init__(self, reader: nn.Module):
        super().__init__()
        self.reader = reader

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # b 3 h w uint8 -> b 18
        logits = self.reader(_to_classifier_range(images))
        colour, shape = logits["colour1"].log_softmax(1), logits["shape1"].log_softmax(1)  # b 6, b 3
        return (colour[:, :, None] + shape[:, None, :]).flatten(1)


def inception_score_analogue(images: torch.Tensor, reader: nn.Module, splits: int = 10, seed: int = 0) -> dict:
    """IS = exp E_x KL(p(y | x) || p(y)) (Salimans et al. 2016) with y the (colour, shape) of the first
    object as ``reader`` (use the judge) sees it: high when each image is read confidently *and* the
    set covers many classes; at most 18 here. ``images``: b 3 h w in [0, 1] or uint8. Returns the mean
    and the standard deviation over ``splits`` equal parts (torchmetrics' protocol)."""
    from torchmetrics.image.inception import InceptionScore

    u8 = images if images.dtype == torch.uint8 else (_check_unit_range(images) * 255).round().byte()
    with warnings.catch_warnings():  # its memory warning is about Inception-sized features, not our 18 classes
        warnings.filterwarnings("ignore", message="Metric `InceptionScore` will save all extracted features")
        metric = InceptionScore(feature=ObjectLogits(reader).eval(), splits=splits)
    with torch.no_grad(), eval_mode(reader):
        metric.update(u8.to(next(reader.parameters()).device))
        with torch.random.fork_rng():  # compute() shuffles before splitting: seeded, so it repeats
            torch.manual_seed(seed)
            mean, std = metric.compute()
    return {"mean": mean.item(), "std": std.item(), "splits": splits, "n": len(u8)}
