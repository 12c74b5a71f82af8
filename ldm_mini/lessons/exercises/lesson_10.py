"""Lesson 10 (attribute binding): checks of its three exercises.

Exercises 1 and 3 read the shipped results (``data/experiments/binding.json``) and compute the truth
from them (exact binomial sums, counts of the stored per-caption flags). Exercise 2 samples the
shipped model on the lesson's 48 live captions (a few seconds) and measures the attention itself.
"""

import functools
import math

from ldm_mini.lessons.exercises import Verdict, close, judge, unanswered

N_LIVE = 48  # the lesson's live two-object test captions


def _results() -> dict:
    from ldm_mini.experiments import load_results

    return load_results("binding")["results"]


def sign_test(k: int, n: int) -> float:
    """Two-sided exact sign test: P(a split of n fair coin flips at least as lopsided as k : n - k)."""
    tail = sum(math.comb(n, i) for i in range(0, min(k, n - k) + 1)) / 2**n
    return min(1.0, 2 * tail)


def last_row(encoder: str) -> dict:
    """The shipped results' row of ``encoder`` ("token", "pooled" or "clip") at its last measured step."""
    return [r for r in _results()["rows"] if r["encoder"] == encoder][-1]


def complete_images(encoder: str = "pooled") -> tuple[int, int]:
    """(right, complete): of the two-object images that show both pairs' parts on two objects (judged
    "bound" or "swapped"), how many a model paired right, at its last step."""
    verdicts = last_row(encoder)["two_verdicts"]
    return verdicts.count("bound"), verdicts.count("bound") + verdicts.count("swapped")


def smallest_above_chance(n: int, level: float = 0.05) -> int:
    """The smallest count k of right pairings among n complete images that the two-sided test calls
    above chance (p < level), against random pairing (probability 1/2 each)."""
    return next(k for k in range(n // 2 + 1, n + 1) if sign_test(k, n) < level)


def check_1(k) -> Verdict:
    """Exercise 1: the fewest right pairings of the pooled model's complete images that would be above chance."""
    ex = "lesson 10, exercise 1"
    if k is None:
        return unanswered(ex, "answer_1 is a whole number: right pairings out of the complete images")
    right, n = complete_images("pooled")
    truth = smallest_above_chance(n)
    one_sided = next(j for j in range(n // 2 + 1, n + 1) if sign_test(j, n) / 2 < 0.05)
    if close(k, truth - 1, abs_=0.1):
        hint = f"one too few: at that count p is still >= 0.05. Evaluate sign_test(k, {n}) on both sides of it."
    elif close(k, one_sided, abs_=0.1) and one_sided != truth:
        hint = ("that is the one-sided threshold. The question 'is pairing different from chance?' counts a split as "
                "lopsided the other way too: use the two-sided p (sign_test), below 0.05.")
    elif close(k, truth / n, abs_=0.01) or close(k, 100 * truth / n, abs_=1):
        hint = f"give the count of images (an integer out of {n}), not a fraction or a percentage."
    else:
        hint = (f"the complete images number {n} (bound + swapped). Increase k from {n // 2 + 1} until "
                f"sign_test(k, {n}) drops below 0.05.")
    return judge(
        ex,
        close(k, truth, abs_=0.1),
        f"{truth} of {n} ({truth / n:.1%}): {truth - right} more right pairings than the pooled model's {right}. "
        f"Even a model that pairs {truth / n:.0%} right is only just distinguishable from a coin with {n} images; "
        "the per-token model's 198 of 199 is far beyond it.",
        hint,
    )


@functools.lru_cache(maxsize=1)
def _live_samples(n: int = N_LIVE):
    """The lesson's first ``n`` live captions sampled as in section 2 (DDIM-50, s = 3, seed 0), with their
    attention maps and what the judge sees; cached, so a second check does not sample again."""
    import ldm_mini
    from ldm_mini.eval import classify_images, prompts
    from ldm_mini.experiments import binding

    ldm = ldm_mini.load_pretrained("shapes-kl-f4")
    judge_net = ldm_mini.load_pretrained("judge")  # the lesson's reader of generated images
    captions = prompts.two_object_captions(n, "test", seed=0)
    images, maps = binding.sample_with_attention(ldm, captions, steps=50, guidance=3.0, seed=0)
    return captions, images, maps, classify_images(images, judge_net), ldm.tokenizer


def colour_word_wins(resolution: int = 2, n: int = N_LIVE) -> float:
    """Share of colour words whose attention (at ``resolution``) is brighter on the object wearing that colour,
    over the right and swapped images among the lesson's first ``n`` live captions."""
    from ldm_mini.eval import prompts
    from ldm_mini.experiments import binding

    captions, images, maps, seen, tokenizer = _live_samples(n)
    wins = []
    for i, (caption, s) in enumerate(zip(captions, seen)):
        v = prompts.score_binding(caption, s)
        rows = binding.attention_on_objects(images[i], maps[resolution][i], caption, s, tokenizer)
        if rows is not None and (v["binding"] or v["swapped"]):
            wins += [r["own"] > r["other"] for r in rows if r["kind"] == "colour"]
    return sum(wins) / len(wins)


def check_2(share) -> Verdict:
    """Exercise 2: the share of colour words brighter on their own object, read on the 2 x 2 maps."""
    ex = "lesson 10, exercise 2"
    if share is None:
        return unanswered(ex, "answer_2 is a fraction in [0, 1]: colour words brighter on their own object, 2 x 2 maps")
    truth = colour_word_wins(2)
    if close(share, colour_word_wins(4), abs_=0.005):
        hint = "that is the 4 x 4 result of section 3: take the 2 x 2 maps, live_maps[min(live_maps)], instead."
    elif close(share, 100 * truth, abs_=0.6):
        hint = "give a fraction in [0, 1], not a percentage."
    else:
        hint = ("rerun section 3's loop with m = live_maps[min(live_maps)] and count, over right and swapped images, "
                "the colour words whose 'own' value beats 'other'; divide by the number of colour words counted.")
    return judge(
        ex,
        close(share, truth, abs_=0.01),
        f"{truth:.0%} (on the 4 x 4 maps: {colour_word_wins(4):.0%}). On the 2 x 2 maps a colour word is read on its "
        "own object hardly more often than a coin would put it there (50%): each 2 x 2 cell covers a quarter of the "
        "image, often both objects at once, and these layers read layout words. A verdict about *where* words are "
        "read holds only for the layers it was measured on.",
        hint,
    )


EARLY_STEP = 750  # the first measured point of the curves, where the CLIP-like model leads


def early_lead(step: int = EARLY_STEP) -> tuple[int, int, float]:
    """(clip alone binds, token alone binds, two-sided sign test p) on the shipped results' rows at ``step``."""
    at = {r["encoder"]: r for r in _results()["rows"] if r["steps"] == step}
    clip, token = ([v == "bound" for v in at[e]["two_verdicts"]] for e in ("clip", "token"))
    k = sum(c and not t for c, t in zip(clip, token))
    m = sum(t and not c for c, t in zip(clip, token))
    return k, m, sign_test(k, k + m)


def check_3(p) -> Verdict:
    """Exercise 3: the paired sign test of the CLIP-like model's lead over the per-token model at step 750."""
    ex = "lesson 10, exercise 3"
    if p is None:
        return unanswered(ex, "answer_3 is a p-value (a float), computed after you wrote down your prediction")
    if isinstance(p, str):
        return judge(ex, False, "", "write your prediction down, then put the computed p-value (a float) in answer_3.")
    k, m, truth = early_lead()
    if close(p, truth / 2, abs_=0.001):
        hint = ("that is the one-sided p. The question is whether the two models differ, in either direction: "
                "sign_test doubles the tail.")
    elif close(p, early_lead(3000)[2], abs_=0.001):
        hint = "that is the comparison at step 3000 (section 4): take the two rows with r['steps'] == 750."
    else:
        hint = ("take the rows r with r['steps'] == 750 for 'clip' and 'token', k, m = paired(clip_row, token_row), "
                "then sign_test(k, k + m).")
    return judge(
        ex,
        close(p, truth, abs_=0.002),
        f"p = {truth:.3f}: the CLIP-like model alone binds {k} captions, the per-token one alone {m}. A split of "
        f"{k} : {m} is lopsided, but {k + m} fair coins split at least that unevenly about {truth:.0%} of the time: "
        "just short of 0.05, so the early lead is suggestive, not established. It matters for the story (the frozen "
        "encoder arrives knowing its words), so a second training of each would be the next measurement.",
        hint,
    )


WRONG = {
    1: [112, 111, 0.57],  # one short of the threshold; the one-sided threshold; a fraction
    2: [1.0, 57.6],  # the 4 x 4 value (every colour word wins there); the 2 x 2 value as a percentage
    3: [0.026, 0.013, "yes"],  # one-sided; the step-3000 comparison; a prediction instead of the p-value
}
