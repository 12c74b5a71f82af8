"""Lesson 02b's exercises: the latent scale factor and the shape of the latent.

1. (computation) the signal left at the last diffusion step if the latent were not scaled.
2. (code change) per-channel statistics of the scaled latent z_0 = scale * E(x).
3. (prediction) what a shift of the image does to a 2D latent.
"""

import functools

import torch

from . import Verdict, close, judge, same_choice, unanswered

# Exercise 1: the model whose unscaled latent is asked about; the series' schedule (docs/CONVENTIONS.md).
EX1_MODEL = "ae-kl-f16"
# Exercise 2: the model and the training images (the first EX2_N of the training split, seed 0).
EX2_MODEL, EX2_N = "ae-kl-f4", 250
# Exercise 3: shift the image by this many pixels; which latent shift (in cells) matches best?
EX3_MODEL, EX3_SHIFT, EX3_N = "ae-kl-f4", 4, 8
EX3_CHOICES = ("0", "1", "2", "4")


def _name(k: int) -> str:
    return f"lesson 02b, exercise {k}"


@functools.lru_cache(maxsize=None)
def _model(name: str):
    import ldm_mini

    return ldm_mini.load_pretrained(name).eval()


# ---------------------------------------------------------------------------- exercise 1


def unscaled_snr_at_T() -> float:
    """The true answer of exercise 1: alpha_bar_{T-1} std(z)^2 / (1 - alpha_bar_{T-1}), std = 1 / scale."""
    from ldm_mini.diffusion import NoiseSchedule

    a = NoiseSchedule.linear(T=1000, beta_start=0.00085, beta_end=0.012).alphas_cumprod[-1].item()
    std = 1.0 / _model(EX1_MODEL).scale_factor.item()
    return a * std**2 / (1 - a)


def check_1(answer) -> Verdict:
    if answer is None:
        return unanswered(_name(1), "put the signal-to-noise ratio (a float, no unit) in answer_1")
    truth = unscaled_snr_at_T()
    scale = _model(EX1_MODEL).scale_factor.item()
    if close(answer, truth * scale**2, rel=0.02):
        hint = "that is the SNR of the *scaled* latent (std 1); the question is about z = E(x) before scaling."
    elif close(answer, truth * scale, rel=0.02):
        hint = "the signal's power is its variance, std^2: square the std."
    else:
        hint = ("std(z) = 1 / scale_factor of the model; SNR = alpha_bar std^2 / (1 - alpha_bar) with "
                "alpha_bar at the last step, t = T - 1, of the schedule of section 1.")
    return judge(_name(1), close(answer, truth, rel=0.02),
                 f"{truth:.4f}: {truth / (truth * scale**2):.1f}x the scaled latent's, so sampling's pure-noise "
                 "start would be further from what training ended on.", hint)


# ---------------------------------------------------------------------------- exercise 2


@functools.lru_cache(maxsize=1)
def channel_means() -> torch.Tensor:
    """Per-channel means of z_0 = scale * E(x) on the first EX2_N training images (float64, c)."""
    from ldm_mini.data import images_uint8, load_shapes, to_model_range

    ae = _model(EX2_MODEL)
    x = to_model_range(images_uint8(load_shapes(EX2_N, "train", seed=0)))
    with torch.no_grad():
        z0 = ae.encode_latent(x) * ae.scale_factor
    return z0.double().mean(dim=(0, 2, 3))


def check_2(answer) -> Verdict:
    if answer is None:
        return unanswered(_name(2), "put the largest |mean| of one channel of z_0 (a float, units of z_0) in answer_2")
    means = channel_means()
    truth = means.abs().max().item()
    scale = _model(EX2_MODEL).scale_factor.item()
    if close(answer, truth / scale, rel=0.03):
        hint = "that is in units of the unscaled E(x); multiply by the scale factor first."
    elif close(answer, means.mean().item(), rel=0.05, abs_=0.02):
        hint = ("that is the mean over all channels, where the offsets cancel; "
                "take the mean per channel (dim=(0, 2, 3)).")
    else:
        hint = ("z0 = ae.encode_latent(x) * ae.scale_factor, then z0.mean(dim=(0, 2, 3)) gives one mean per "
                "channel; the answer is the largest of their absolute values.")
    return judge(_name(2), close(answer, truth, rel=0.03),
                 f"{truth:.3f}: channel means {[round(m, 2) for m in means.tolist()]}. One global scale makes the "
                 "overall std 1, but each channel keeps its own offset: the latent is not N(0, I).", hint)


# ---------------------------------------------------------------------------- exercise 3


@functools.lru_cache(maxsize=1)
def shift_errors() -> dict:
    """Relative error ||E(roll(x, EX3_SHIFT px)) - roll(E(x), c cells)|| / ||E(x)|| for each choice c."""
    from ldm_mini.data import images_uint8, load_shapes, to_model_range

    ae = _model(EX3_MODEL)
    x = to_model_range(images_uint8(load_shapes(EX3_N, "val", seed=0)))
    with torch.no_grad():
        z = ae.encode_latent(x)
        z_shifted = ae.encode_latent(torch.roll(x, EX3_SHIFT, dims=-1))
    return {c: ((z_shifted - torch.roll(z, int(c), dims=-1)).norm() / z.norm()).item() for c in EX3_CHOICES}


def check_3(answer) -> Verdict:
    if answer is None:
        return unanswered(_name(3), f"write your prediction, one of {EX3_CHOICES} (cells), in answer_3, then run")
    if isinstance(answer, int) and not isinstance(answer, bool):
        answer = str(answer)
    errors = shift_errors()
    truth = min(errors, key=errors.get)
    measured = "relative error against the latent shifted by " + ", ".join(f"{c}: {e:.2f}" for c, e in errors.items())
    if isinstance(answer, str) and answer.strip() not in EX3_CHOICES:
        return Verdict(_name(3), False, f"answer with one of {EX3_CHOICES}")
    return judge(_name(3), same_choice(answer, truth, EX3_CHOICES),
                 f"{measured} cells. E is convolutional with f = 4: a shift by 4 pixels is a shift by one latent "
                 "cell (not exactly: the borders and the attention layer see the wrapped-around edge).",
                 f"not what happens: {measured} cells. Latent cell (i, j) describes the image near (f i, f j); "
                 "how many cells is a 4-pixel shift when f = 4?")


WRONG = {
    1: [0.00468, 0.01499, 0.000457],  # the scaled latent's SNR; std not squared; scale instead of std
    2: [0.146, 3.10, 0.0],  # the mean over all channels; unscaled; "it is N(0, I)"
    3: ["4", "0"],  # a pixel shift taken as a cell shift; "attention makes it shift-free"
}
