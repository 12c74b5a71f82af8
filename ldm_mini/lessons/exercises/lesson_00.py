"""Lesson 00 (overview): three exercises that check themselves.

1. computation: how many numbers Stable Diffusion's denoiser handles per step;
2. code change: a function that counts a caption's real (non-padding) tokens;
3. prediction: do two-object images ever repeat a colour?
"""

from ldm_mini.lessons.exercises import close, judge, same_choice, unanswered

# ---------------------------------------------------------------------------- exercise 1


def latent_ratio(H: int, W: int, f: int, c: int) -> float:
    """Numbers in an H x W x 3 image over numbers in its h x w x c latent (h = H / f, w = W / f)."""
    return (3 * H * W) / ((H // f) * (W // f) * c)


def check_1(answer) -> "Verdict":  # noqa: F821
    """Stable Diffusion v1: 512 x 512 RGB images, f = 8, c = 4. How many numbers does its denoiser see per step?"""
    name = "lesson 00, exercise 1"
    if answer is None:
        return unanswered(name, "answer_1 = an int: the numbers in the latent of a 512 x 512 image at f = 8, c = 4")
    H = W = 512
    truth = (H // 8) * (W // 8) * 4
    return judge(
        name, close(answer, truth),
        f"{truth}: (512/8) x (512/8) x 4 = 64 x 64 x 4, {latent_ratio(H, W, 8, 4):.0f}x fewer than the "
        f"{3 * H * W} numbers of the image (3 f^2 / c, whatever H and W).",
        "the latent is h x w x c with h = H / f and w = W / f: f shrinks both height and width, and c "
        "replaces the image's 3 colour channels. Count the latent, not the image, and not the ratio.",
    )


# ---------------------------------------------------------------------------- exercise 2

PROBE_CAPTIONS = ["", "a red circle", "a small blue square at the top",
                  "an orange triangle to the left of a green circle", "a yellow circle and a purple square"]


def check_2(answer) -> "Verdict":  # noqa: F821
    """answer: a function n_tokens(caption: str) -> int, the tokens of the caption that are not padding."""
    name = "lesson 00, exercise 2"
    if answer is None:
        return unanswered(name, "answer_2 = your function n_tokens(caption) -> int (tokens that are not padding)")
    if not callable(answer):
        return judge(name, False, "", "answer_2 must be a function (def n_tokens(caption): ...), not its result")
    from ldm_mini.text import Tokenizer

    tokenizer = Tokenizer()
    for caption in PROBE_CAPTIONS:
        truth = int(tokenizer.mask(tokenizer([caption]))[0].sum())
        try:
            got = answer(caption)
        except Exception as error:  # a learner's function may raise anything
            return judge(name, False, "", f"n_tokens({caption!r}) raised {type(error).__name__}: {error}")
        if not close(got, truth):
            return judge(
                name, False, "",
                f"n_tokens({caption!r}) gave {got!r}. Look at what `tokenizer([caption])` returns: which id "
                "starts every caption, and which id fills the rest up to L? `tokenizer.mask` marks the real ones.",
            )
    return judge(name, True,
                 "every caption takes 1 + (its words) tokens: the <start> token, then one per word, so even "
                 "the empty caption takes 1. The grammar's longest captions have 10 words: 11 of the L = 16 "
                 "positions; the rest is padding that attention masks out.", "")


# ---------------------------------------------------------------------------- exercise 3

CHOICES_3 = ("never", "sometimes", "often")


def check_3(answer) -> "Verdict":  # noqa: F821
    """Prediction: in two-object images, how often do the two objects share a colour?"""
    name = "lesson 00, exercise 3"
    if answer is None:
        return unanswered(name, f"answer_3 = one of {CHOICES_3}, written down before you count")
    if not isinstance(answer, str) or answer.strip().lower() not in CHOICES_3:
        return judge(name, False, "", f"answer_3 must be one of {CHOICES_3}")
    from ldm_mini.data import load_shapes

    val = load_shapes(1000, "val", seed=0)
    two = [(c1, c2) for c1, c2 in zip(val["colour1"], val["colour2"]) if c2 != "none"]
    share = sum(c1 == c2 for c1, c2 in two) / len(two)
    truth = "never" if share == 0 else ("often" if share > 0.1 else "sometimes")
    return judge(
        name, same_choice(answer, truth, CHOICES_3),
        f"{truth}: {share:.0%} of {len(two)} two-object validation images repeat a colour (the shapes differ "
        "too). The grammar draws two different colours on purpose: only then can a judge tell whether "
        "each colour landed on the right shape (attribute binding, lesson 10).",
        "count it: zip the columns colour1 and colour2 of the two-object rows (colour2 != 'none') and "
        "count equal pairs. Then ask why a course on attribute binding would want the colours distinct.",
    )


WRONG = {
    1: [3 * 512 * 512, 48, 64 * 64, 64 * 64 * 3, 128 * 128 * 4],  # the image, the ratio, forgets c, c = 3, f = 4
    2: [lambda caption: len(caption.split()),  # forgets <start>
        lambda caption: 16,  # counts the padding too
        lambda caption: len(caption.split()) + 2],  # an <end> token the tokenizer does not have
    3: ["sometimes", "often", "maybe"],
}
