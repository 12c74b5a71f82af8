"""Lesson 10 (attribute binding): checks of its three exercises.

Exercises 1 and 3 read the shipped results (``data/experiments/binding.json``) and compute the truth
from them (exact binomial sums, counts of the stored per-caption flags). Exercise 2 samples the
shipped model on the lesson's 48 live captions (a few seconds) and measures the attention itself.
"""

import functools
import math

from ldm_mini.lessons.exercises import Verdict, close, judge, same_choice, unanswered

N_LIVE = 48  # the lesson's live two-object test captions


def _results() -> dict:
    from ldm_mini.experiments import load_results

    return load_results("binding")["results"]


def sign_test(k: int, n: int) -> float:
    """Two-sided exact sign test: P(a split of n fair coin flips at least as lopsided as k : n - k)."""
    tail = sum(math.comb(n, i) for i in range(0, min(k, n - k) + 1)) / 2**n
    return min(1.0, 2 * tail)


def complete_images(model: str = "token") -> int:
    """Images of the shipped results that show every named colour and shape (presence x n)."""
    r = _results()["models"][model]
    return round(r["presence"] * r["n"])


def smallest_above_chance(n: int, level: float = 0.05) -> int:
    """The smallest count k of right pairings among n complete images that the two-sided test calls
    above chance (p < level), against random pairing (probability 1/2 each)."""
    return next(k for k in range(n // 2 + 1, n + 1) if sign_test(k, n) < level)


def check_1(k) -> Verdict:
    """Exercise 1: the fewest right pairings of the per-token model's complete images that would be above chance."""
    ex = "lesson 10, exercise 1"
    if k is None:
        return unanswered(ex, "answer_1 is a whole number: right pairings out of the complete images")
    n = complete_images("token")
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
        hint = (f"the complete images number {n} (presence x 200). Increase k from {n // 2 + 1} until "
                f"sign_test(k, {n}) drops below 0.05.")
    return judge(
        ex,
        close(k, truth, abs_=0.1),
        f"{truth} of {n} ({truth / n:.1%}): a model must pair at least that many right before any comparison with "
        f"another can mean anything. Ours pairs {round(_results()['models']['token']['binding'] * 200)}: the floor.",
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


AGREEMENT_CHOICES = ("under 60%", "60% to 90%", "over 90%")


def agreement(a: str = "pooled", b: str = "token") -> float:
    """Share of the 200 test captions on which two models' binding verdicts agree (both right or both wrong)."""
    fa, fb = (_results()["models"][m]["binding_flags"] for m in (a, b))
    return sum(x == y for x, y in zip(fa, fb)) / len(fa)


def check_3(choice) -> Verdict:
    """Exercise 3: how often the pooled and the per-token model agree, caption by caption (a prediction)."""
    ex = "lesson 10, exercise 3"
    if choice is None:
        return unanswered(ex, f"answer_3 is your prediction, one of {AGREEMENT_CHOICES}, written before you count")
    share = agreement()
    truth = AGREEMENT_CHOICES[0] if share < 0.6 else AGREEMENT_CHOICES[1] if share <= 0.9 else AGREEMENT_CHOICES[2]
    return judge(
        ex,
        same_choice(choice, truth, AGREEMENT_CHOICES),
        f"{truth} ({share:.1%}). Two independent coin flips at ~47% would agree only about half the time; these two "
        "models agree far more because the same noise z_T, through the same recipe, largely fixes the layout and "
        "the pairing. That is why the paired sign test sees more than the two rates alone.",
        "count it: sum(a == b for a, b in zip(pooled_flags, token_flags)) / 200. Two models that both bind at chance "
        "need not agree at chance: what else do they share for each caption?",
    )


WRONG = {
    1: [100, 113, 0.57],  # just above half; one short of the threshold; a fraction
    2: [1.0, 57.6],  # the 4 x 4 value (every colour word wins there); the 2 x 2 value as a percentage
    3: ["under 60%", "over 90%"],
}
