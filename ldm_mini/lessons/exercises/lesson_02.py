"""Lesson 02's exercises: the rate of a KL latent, the PatchGAN's receptive field, and what a
learned compressor does with images unlike its training data.

1. (computation) bits/dim of a KL-reg latent with given mean and variance.
2. (code change) a discriminator whose logits really judge patches: fewer strided layers.
3. (prediction) ae-kl-f4 against resizing by 4, on photos instead of shapes.
"""

import functools
import math

import torch

from . import Verdict, close, judge, same_choice, unanswered

H = W = 32  # the series' image size
# Exercise 1: every element of a 4 x 8 x 8 latent has this posterior q(z|x) = N(mean, var).
EX1_SHAPE, EX1_MEAN, EX1_VAR = (4, 8, 8), 0.5, 0.25
# Exercise 2: the largest receptive field (pixels on a side) that still counts as "a patch".
EX2_MAX_FIELD = 16
# Exercise 3: the photo crops and the model compared with resizing.
EX3_N_PHOTOS, EX3_MODEL, EX3_F = 64, "ae-kl-f4", 4
EX3_CHOICES = ("autoencoder", "resize")


def _name(k: int) -> str:
    return f"lesson 02, exercise {k}"


# ---------------------------------------------------------------------------- exercise 1


def kl_bits_per_dim() -> float:
    """The true answer of exercise 1, from the package's own KL and rate functions."""
    from ldm_mini.autoencoder import DiagonalGaussian
    from ldm_mini.rate import bits_per_dim_kl

    c, h, w = EX1_SHAPE
    mean = torch.full((1, c, h, w), EX1_MEAN, dtype=torch.float64)
    logvar = torch.full((1, c, h, w), math.log(EX1_VAR), dtype=torch.float64)
    return bits_per_dim_kl(DiagonalGaussian(torch.cat([mean, logvar], dim=1)).kl(), H, W)


def check_1(answer) -> Verdict:
    if answer is None:
        return unanswered(_name(1), "put the rate in bits/dim (a float) in answer_1")
    truth = kl_bits_per_dim()
    c, h, w = EX1_SHAPE
    if close(answer, truth * math.log(2), rel=1e-3):
        hint = "that is nats per dimension: the KL comes in nats; a bit is ln 2 nats."
    elif close(answer, truth * 3 * H * W / (c * h * w), rel=1e-3):
        hint = "you divided by the latent's c h w numbers; bits/dim counts per *image* dimension, 3 H W."
    else:
        hint = ("one element costs 0.5 (mean^2 + var - 1 - ln var) nats; sum over the c h w elements, "
                "convert nats to bits (divide by ln 2), then divide by the 3 H W numbers of the image.")
    return judge(_name(1), close(answer, truth, rel=1e-3),
                 f"{truth:.5f} bits/dim: 256 elements x 0.4431 nats = 113.4 nats per image, / ln 2 / 3072.", hint)


# ---------------------------------------------------------------------------- exercise 2


def _centre_logit_field(n_layers: int) -> tuple[int, int]:
    """(columns of a 32 x 32 input that the centre logit depends on, logits per image), by autograd."""
    from ldm_mini.losses import NLayerDiscriminator

    torch.manual_seed(0)
    disc = NLayerDiscriminator(n_layers=n_layers).eval()  # eval: BatchNorm uses no batch statistics
    x = torch.randn(1, 3, H, W, requires_grad=True)
    logits = disc(x)  # 1 1 h' w'
    i, j = logits.shape[-2] // 2, logits.shape[-1] // 2
    logits[0, 0, i, j].backward()
    cols = x.grad.abs().sum(dim=(0, 1, 2)).nonzero().flatten()
    return int(cols.max() - cols.min() + 1), logits.shape[-2] * logits.shape[-1]


@functools.lru_cache(maxsize=1)
def patch_logits() -> int:
    """The true answer of exercise 2: logits per image of the deepest discriminator whose centre
    logit depends on at most EX2_MAX_FIELD columns of the image."""
    best = None
    for n_layers in range(0, 4):
        field, count = _centre_logit_field(n_layers)
        if field <= EX2_MAX_FIELD:
            best = count
    return best


def check_2(answer) -> Verdict:
    if answer is None:
        return unanswered(_name(2), "put the number of logits per 32 x 32 image (an int) in answer_2")
    truth = patch_logits()
    ok = isinstance(answer, int) and not isinstance(answer, bool) and answer == truth
    if answer == 36:
        hint = "36 is today's 6 x 6 map, whose logits each see 34 x 34 pixels; try fewer layers."
    elif isinstance(answer, int) and answer == round(math.sqrt(truth)):
        hint = "that is one side of the map; count all the logits, h' x w'."
    else:
        hint = ("build NLayerDiscriminator(n_layers=n) for n = 2, 1, 0, run the receptive-field walk of "
                f"section 3 on each, keep the largest n whose field is <= {EX2_MAX_FIELD} pixels, and "
                "count the logits of its output on a 32 x 32 image.")
    return judge(_name(2), ok, f"{truth} logits: n_layers = 1 sees 16 x 16 pixels each, a 14 x 14 map.", hint)


# ---------------------------------------------------------------------------- exercise 3


@functools.lru_cache(maxsize=1)
def photo_psnrs() -> dict:
    """PSNR (dB) of the shipped ae-kl-f4 and of resizing by f = 4 on lesson 01's photo crops."""
    import ldm_mini
    from ldm_mini.data import photo_crops, to_image_range
    from ldm_mini.eval import psnr
    from ldm_mini.rate import downsample_upsample

    photos = torch.from_numpy(photo_crops(EX3_N_PHOTOS, size=H, split="val", seed=0)).permute(0, 3, 1, 2).float() / 255
    ae = ldm_mini.load_pretrained(EX3_MODEL).eval()
    with torch.no_grad():
        rec = to_image_range(ae(photos * 2 - 1, sample_posterior=False)[0])
    return {"autoencoder": psnr(photos, rec), "resize": psnr(photos, downsample_upsample(photos, EX3_F).clamp(0, 1))}


def check_3(answer) -> Verdict:
    if answer is None:
        return unanswered(_name(3), f"write your prediction, one of {EX3_CHOICES}, in answer_3 before you run this")
    p = photo_psnrs()
    truth = max(p, key=p.get)
    measured = (f"on {EX3_N_PHOTOS} photo crops: {EX3_MODEL} {p['autoencoder']:.1f} dB, "
                f"resize by {EX3_F} {p['resize']:.1f} dB.")
    if isinstance(answer, str) and answer.strip().lower() not in EX3_CHOICES:
        return Verdict(_name(3), False, f"answer with one of {EX3_CHOICES}")
    return judge(_name(3), same_choice(answer, truth, EX3_CHOICES),
                 f"{measured} D has learned to draw flat shapes, and draws them whatever it is given: "
                 "a learned compressor is only good on data like its training data.",
                 f"not what happens: {measured} The autoencoder never saw a photo; what has D learned to draw? "
                 "Look at its reconstructions of a few photo crops.")


WRONG = {
    1: [kl_bits_per_dim() * math.log(2),  # nats, not bits
        kl_bits_per_dim() * 3 * H * W / 256,  # per latent number instead of per image dimension
        0.5 * (EX1_MEAN**2 + EX1_VAR - 1) * 256 / math.log(2) / (3 * H * W)],  # forgot - ln var
    2: [36, 225, 14],  # today's map; n_layers = 0 (10 x 10 fields); one side only
    3: ["autoencoder"],
}
