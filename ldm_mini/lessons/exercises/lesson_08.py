"""Lesson 08 (where the bits go): the checks of its three exercises.

1. computation: the share of the bound that the decoder term L_0 holds (stored results);
2. code change: the perceptual share when the split rule's fraction is 0.99 instead of 0.9;
3. prediction: by how much does the bound change when evaluated with S = 20 steps instead of 100?
"""

import functools

from ...data import images_uint8, load_shapes, to_model_range
from ...eval import bound
from ...experiments import bits, load_results
from ...zoo import load_pretrained
from . import close, judge, same_choice, unanswered

LESSON = "lesson 08"
GROWTH = ("lower", "under 10% higher", "10% to 100% higher", "more than double")


def _results() -> dict:
    return load_results("bits")["results"]


def check_1(answer) -> object:
    name = f"{LESSON}, exercise 1"
    if answer is None:
        return unanswered(name, "put in a fraction between 0 and 1 (float): L_0's share of the whole bound")
    res = _results()
    share = res["decoder_bits"] / res["total_bits"]
    if close(answer, 100 * share, abs_=0.5):
        return judge(name, False, "", "that is a percentage: give the share as a fraction between 0 and 1.")
    return judge(
        name,
        close(answer, share, abs_=0.005),
        f"L_0 = {res['decoder_bits']:.3f} of {res['total_bits']:.3f} bits/dim: {share:.3f}. Of L_0, "
        f"{res['decoder_floor_bits']:.3f} bits/dim is what even a perfect denoiser pays for the last step's "
        "fixed-width Gaussian (section 7): that part of the 'perceptual' share says more about beta_1 than "
        "about the model.",
        "divide the decoder's bits/dim (decoder_bits) by the whole bound (total_bits), both from "
        "load_results('bits')['results']; not the step terms, not the rate at t = 0.",
    )


def check_2(answer) -> object:
    name = f"{LESSON}, exercise 2"
    if answer is None:
        return unanswered(name, "put in a fraction between 0 and 1 (float): the perceptual share with fraction = 0.99")
    res = _results()
    split = bits.split_point(res["t"], res["rate"], res["distortion"], res["total_bits"], fraction=0.99)
    share = split["perceptual_share"]
    base = bits.split_point(res["t"], res["rate"], res["distortion"], res["total_bits"], fraction=0.9)
    return judge(
        name,
        close(answer, share, abs_=0.002),
        f"{share:.3f} (split at t = {split['t']}): asking for 99% of the fall moves the split from t = {base['t']} "
        f"to t = {split['t']}, and the perceptual share falls from {base['perceptual_share']:.3f} to {share:.3f}, "
        "which is L_0's share (exercise 1): every step bit is now called semantic. Not because the model decides "
        "content late: the threshold asks for a distortion the S = 100 grid shows only at t = 0 (at t = 10 it is "
        "still above it), so the rule has no step to stop at. Section 8 calls this strictness not testable on "
        "this grid.",
        "change the fraction in the split cell of section 4 to 0.99 and rerun it; report perceptual_share as a "
        f"fraction (0.9 gave {base['perceptual_share']:.3f}; look at where the split moves).",
    )


@functools.lru_cache(maxsize=4)  # a second check of the same exercise does not recompute
def bound_bits(steps: int, n: int = 4, seed: int = 0) -> dict:
    """The live bound of shapes-pixel (bits/dim) on the first n test images with S = ``steps``."""
    model = load_pretrained("shapes-pixel")
    x0 = to_model_range(images_uint8(load_shapes(n, "test", seed=seed)))
    return bound.evaluate_bound(bound.unconditional_eps(model), x0, model.schedule, steps=steps, seed=seed)


def check_3(answer) -> object:
    name = f"{LESSON}, exercise 3"
    if answer is None:
        return unanswered(name, f"put in one of {GROWTH} (a string): your prediction, written before you run it")
    coarse, fine = bound_bits(20), bound_bits(100)
    ratio = coarse["total_bits"] / fine["total_bits"]
    right = GROWTH[0] if ratio < 1.0 else GROWTH[1] if ratio < 1.1 else GROWTH[2] if ratio <= 2.0 else GROWTH[3]
    measured = (f"measured on 4 images: S = 20 gives {coarse['total_bits']:.2f} bits/dim, S = 100 gives "
                f"{fine['total_bits']:.2f} ({100 * (ratio - 1):+.0f}%); L_0 is {coarse['decoder_bits']:.3f} in both "
                "(the same first step), so all of the change is in the step terms.")
    return judge(
        name,
        same_choice(answer, right, GROWTH),
        measured + " Each coarse step must bridge a bigger gap with one Gaussian guess, and those gaps cost "
        "more than the 80 terms saved.",
        measured + " Looser, as section 2 says; the question was how much: a step that jumps 50 t at once is "
        "fitted much worse by a single Gaussian p_theta(x_t-1 | x_t) than five steps of 10.",
    )


WRONG = {
    1: [1.270, 58.3, 0.417, 0.992],  # bits instead of a share; a percentage; the rest; the perceptual share
    2: [0.992, 58.3, 0.417],  # unchanged 0.9 rule; a percentage; the semantic share
    3: ["lower", "under 10% higher", "10% to 100% higher"],
}
