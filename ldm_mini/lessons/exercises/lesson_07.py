"""Lesson 07 (choosing f): the checks of its three exercises.

1. computation: the least training time in which a 32 px model of the stored sweep reached the
   lesson's bar (the judge reads >= 90% of one-object captions right), and which f that was;
2. code change: the FD floor of two real image sets at n = 200 images (the curves' set size);
3. prediction: the judge's single-object accuracy on ae-kl-f16's reconstructions (the ceiling at f = 16).
"""

import functools

from ...experiments import f_sweep, load_results
from . import close, judge, same_choice, unanswered

LESSON = "lesson 07"
LEARNT = 0.90  # the lesson's bar
BAND_CHOICES = ("above 0.9", "0.3 to 0.9", "below 0.3")


def first_to_learn(size: int = 32, bar: float = LEARNT) -> tuple[int, float] | None:
    """(f, seconds) of the model at ``size`` px whose curve first reached ``bar`` single-object
    accuracy in the least training time; None if none did."""
    models = load_results("f_sweep")["results"]["sizes"][str(size)]["models"]
    reached = [
        (next(p["seconds"] for p in m["points"] if p["single"] >= bar), int(f))
        for f, m in models.items()
        if any(p["single"] >= bar for p in m["points"])
    ]
    if not reached:
        return None
    seconds, f = min(reached)
    return f, seconds


def check_1(answer) -> object:
    name = f"{LESSON}, exercise 1"
    if answer is None:
        return unanswered(name, "put in a number: the training seconds (float) of the 32 px model first at LEARNT")
    found = first_to_learn()
    if found is None:
        return judge(name, False, "", "no 32 px model reached the bar in these results: nothing to report")
    f, seconds = found
    return judge(
        name,
        close(answer, seconds, abs_=0.5),
        f"{seconds:.0f} s, by f = {f}. Per step the small latents are cheap, so a model can reach the bar in "
        "fewer seconds while needing more steps: compare the two x axes of sections 4 and 5.",
        "for each f, walk its points in order and stop at the first with single >= LEARNT; take that point's "
        "'seconds' (training time, not the step), then the smallest over the f.",
    )


@functools.lru_cache(maxsize=4)  # a second check of the same exercise does not recompute
def fd_floor(n: int) -> float:
    return f_sweep.fd_floor(n=n)["fd"]


def check_2(answer) -> object:
    name = f"{LESSON}, exercise 2"
    if answer is None:
        return unanswered(name, "put in a number: the FD floor (float) of two sets of 200 real images")
    truth, at_1000 = fd_floor(200), fd_floor(1000)
    return judge(
        name,
        close(answer, truth, rel=0.03),
        f"{truth:.2f} at 200 images against {at_1000:.2f} at 1000: with fewer images the 128 x 128 covariances "
        "are estimated worse and even two real sets look apart. An FD of 200 images and one of 1000 are not "
        "on the same scale, which is why the lesson compares models at the budget points (1000 each).",
        "call f_sweep.fd_floor(n=200) and report its 'fd' (not 'fd_ci'); if you got the 1000-image value, the "
        "call did not use your n.",
    )


@functools.lru_cache(maxsize=1)
def reconstruction_score_f16() -> float:
    return f_sweep.reconstruction_score(16)


def check_3(answer) -> object:
    name = f"{LESSON}, exercise 3"
    if answer is None:
        return unanswered(name, f"put in one of {BAND_CHOICES} (a string): your prediction, written before you run it")
    score = reconstruction_score_f16()
    right = BAND_CHOICES[0] if score > 0.9 else BAND_CHOICES[1] if score >= 0.3 else BAND_CHOICES[2]
    return judge(
        name,
        same_choice(answer, right, BAND_CHOICES),
        f"measured: the judge reads {score:.0%} of ae-kl-f16's one-object reconstructions right. Sixteen numbers "
        "(a 2 x 2 x 4 latent) keep a large shape and its colour but lose many small ones: the f = 16 model's "
        "ceiling on this measure is well under the 90% bar, whatever the diffusion model learns.",
        f"measured: {score:.0%}. A 2 x 2 latent of 4 channels holds 16 numbers for a whole scene: large shapes "
        "survive, small ones and their colours often do not (edges at ~20 dB). Compare with f = 8's 100%.",
    )


WRONG = {
    1: [-1.0, 1e9, "f = 4"],  # not a time; nothing reached it that late; not a number
    2: [0.0, -1.0, "0.5"],  # real sets are not at 0 apart; an FD is never negative; not a number
    3: ["above 0.9", "below 0.3", "0.59"],  # measured 59% (200 test images); a number instead of a band
}
