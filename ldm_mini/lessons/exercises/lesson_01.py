"""Lesson 01 (rate and distortion): three exercises that check themselves.

1. computation: the rate at which the 128 x 128 astronaut reaches 30 dB under DCT truncation;
2. code change: nearest-neighbour subsampling instead of average pooling;
3. prediction: which attribute the classifier loses first when the shapes are downsampled.
"""

import torch

from ldm_mini.lessons.exercises import close, judge, same_choice, unanswered

# ---------------------------------------------------------------------------- exercise 1


def astronaut() -> torch.Tensor:
    """The lesson's 128 x 128 astronaut crop, 3 128 128 in [0, 1]."""
    from ldm_mini.data import photo

    return torch.from_numpy(photo("astronaut", 128)[:128, :128].copy()).permute(2, 0, 1).float() / 255


def smallest_k(image: torch.Tensor, target_db: float) -> int:
    """The smallest k whose k x k lowest DCT frequencies reconstruct `image` at >= target_db PSNR."""
    from ldm_mini.eval import psnr
    from ldm_mini.rate import dct_truncate

    def reaches(k: int) -> bool:
        rec = dct_truncate(image.double(), k).float().clamp(0, 1)
        return psnr(image[None], rec[None]) >= target_db

    lo, hi = 1, image.shape[-1]  # the error only falls as k grows (orthogonal basis): bisect
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if reaches(mid) else (mid + 1, hi)
    return lo


def check_1(answer) -> "Verdict":  # noqa: F821
    """The rate in bits/dim (8 bits per kept coefficient) at which the astronaut first reaches 30 dB."""
    name = "lesson 01, exercise 1"
    if answer is None:
        return unanswered(name, "answer_1 = a rate in bits/dim (a float): the smallest k x k DCT truncation "
                                "of the 128 x 128 astronaut with PSNR >= 30 dB, as bits/dim")
    from ldm_mini.rate import bits_per_dim_dct

    k = smallest_k(astronaut(), 30.0)
    truth = bits_per_dim_dct(k, 128, 128)
    return judge(
        name, close(answer, truth, rel=2e-3),
        f"k = {k}: {truth:.3f} bits/dim, {truth / 8:.0%} of the raw 8 bits/dim. The astronaut is recognisable "
        "at k = 16 (0.125 bits/dim); 30 dB needs about 30x more bits, spent on texture.",
        "loop k = 1, 2, ... over `dct_truncate(big.double(), k)`, stop at the first k with "
        "`psnr(big[None], rec[None]) >= 30`, and convert that k with `bits_per_dim_dct(k, 128, 128)` "
        "(a rate in bits/dim, not a fraction of the raw rate, not k itself).",
    )


# ---------------------------------------------------------------------------- exercise 2


def _probe_images() -> torch.Tensor:
    from ldm_mini.data import images_uint8, load_shapes

    return images_uint8(load_shapes(1000, "val", seed=0))[:16].float() / 255  # b 3 32 32 in [0, 1]


def check_2(answer) -> "Verdict":  # noqa: F821
    """answer: a function subsample_upsample(images, f) that keeps ONE pixel of each f x f block
    (no averaging) and repeats it over the block, returning a tensor shaped like `images`."""
    name = "lesson 01, exercise 2"
    if answer is None:
        return unanswered(name, "answer_2 = your function subsample_upsample(images, f) -> images of the same shape")
    if not callable(answer):
        return judge(name, False, "", "answer_2 must be a function (def subsample_upsample(images, f): ...)")
    from ldm_mini.eval import psnr
    from ldm_mini.rate import downsample_upsample

    x = _probe_images()
    lines = []
    for f in (2, 4, 8):
        try:
            rec = answer(x.clone(), f)
        except Exception as error:  # a learner's function may raise anything
            return judge(name, False, "", f"subsample_upsample(images, {f}) raised {type(error).__name__}: {error}")
        if not isinstance(rec, torch.Tensor) or rec.shape != x.shape:
            return judge(name, False, "", f"at f = {f} the result must be a tensor shaped {tuple(x.shape)}")
        b, c, H, W = x.shape
        blocks_in = x.reshape(b, c, H // f, f, W // f, f)
        blocks_out = rec.float().reshape(b, c, H // f, f, W // f, f)
        first = blocks_out[:, :, :, :1, :, :1]
        if not torch.allclose(blocks_out, first.expand_as(blocks_out), atol=1e-6):
            return judge(name, False, "", f"at f = {f} the output is not constant on each f x f block: keep one "
                                          "number per block (x[..., ::f, ::f]) and repeat it f times along "
                                          "height and width (`repeat_interleave`)")
        hits = (blocks_in - first).abs() < 1e-6  # does the kept value occur among the block's own pixels?
        if not bool(hits.flatten(3).any(-1).all()):
            return judge(name, False, "", f"at f = {f} some block's value is none of its own pixels: that is "
                                          "averaging (or a shifted grid). Keep one pixel of each block as it is.")
        ours, pooled = psnr(x, rec.float().clamp(0, 1)), psnr(x, downsample_upsample(x, f).clamp(0, 1))
        lines.append(f"f = {f}: {ours:.1f} dB vs {pooled:.1f} dB")
    return judge(name, True, "subsampling vs average pooling on 16 shapes: " + "; ".join(lines)
                 + ". Averaging wins at every f: a block's mean is the one number closest to all its pixels in "
                   "squared error, and a single pixel is a noisy stand-in for it. Subsampling also aliases: "
                   "thin edges vanish or jump by a whole block.", "")


# ---------------------------------------------------------------------------- exercise 3

CHOICES_3 = ("shape", "colour", "size", "position")
GROUPS = {"shape": ("shape1", "shape2"), "colour": ("colour1", "colour2"), "size": ("size1", "size2"),
          "position": ("pos1", "pos2")}


def accuracy_by_group(f: int, n: int = 1000) -> dict[str, float]:
    """Mean accuracy of the attribute classifier per group (both objects' heads) on validation shapes
    downsampled by f (average pooling, then resized back)."""
    import ldm_mini
    from ldm_mini.data import attribute_labels, images_uint8, load_shapes
    from ldm_mini.eval import classifier_accuracy
    from ldm_mini.rate import downsample_upsample

    val = load_shapes(1000, "val", seed=0).select(range(n))
    x = images_uint8(val).float() / 255
    rec = (downsample_upsample(x, f).clamp(0, 1) * 255).round().to(torch.uint8)
    acc = classifier_accuracy(ldm_mini.load_pretrained("attribute-classifier"), rec, attribute_labels(val))
    return {group: sum(acc[h] for h in heads) / len(heads) for group, heads in GROUPS.items()}


def check_3(answer) -> "Verdict":  # noqa: F821
    """Prediction: which attribute group does the classifier lose first as f grows?"""
    name = "lesson 01, exercise 3"
    if answer is None:
        return unanswered(name, f"answer_3 = one of {CHOICES_3}, written down before you measure")
    if not isinstance(answer, str) or answer.strip().lower() not in CHOICES_3:
        return judge(name, False, "", f"answer_3 must be one of {CHOICES_3}")
    acc = accuracy_by_group(4)  # f = 4: the first factor at which the mean accuracy drops
    truth = min(acc, key=acc.get)
    shown = ", ".join(f"{g} {a:.0%}" for g, a in acc.items())
    return judge(
        name, same_choice(answer, truth, CHOICES_3),
        f"{truth}: at f = 4 the classifier reads {shown}. A 4 x 4 average turns a small triangle's corner "
        "and a circle's curve into the same blurred blob; the mean colour, the blob's size and its place survive.",
        "measure it: print `classifier_accuracy` per attribute at f = 4 and f = 8 in section 3 (not the "
        "mean). Which property lives in the fine outline of a 32 x 32 object, and which in its average?",
    )


def _average_pool(images, f):
    from ldm_mini.rate import downsample_upsample

    return downsample_upsample(images, f)


WRONG = {
    1: [3.6958 / 8, 8 * 86 ** 2 / 128 ** 2, 87, 0.5],  # a fraction of the raw rate, the last k below 30 dB, k itself
    2: [_average_pool, lambda images, f: images, lambda images, f: images[..., ::f, ::f]],
    3: ["colour", "position", "size", "meaning"],
}
