"""Lesson 09 (super-resolution by concatenation): checks of its three exercises.

Each check computes the truth itself from the shipped models (``sr-ldm-f4``, ``sr-pixel``) on the
lesson's six test images, in a few seconds.
"""

import functools

import torch

from ldm_mini.lessons.exercises import Verdict, close, judge, same_choice, unanswered

N_SHOW = 6  # the lesson's test images
PREDICTIONS = ("higher", "about the same", "lower")
SAME = 0.2  # dB: "about the same" means within this of one sample's PSNR


@functools.lru_cache(maxsize=1)
def _models():
    import ldm_mini

    return ldm_mini.load_pretrained("sr-ldm-f4"), ldm_mini.load_pretrained("sr-pixel")


def shown_images(n: int = N_SHOW) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y): the lesson's first ``n`` test images in [-1, 1] (b 3 32 32) and their 8 x 8 copies y."""
    from ldm_mini.config import get_profile
    from ldm_mini.data import images_uint8, load_shapes
    from ldm_mini.ldm import downsample

    test = images_uint8(load_shapes(get_profile("quick").n_eval, "test", seed=0))
    x = test[:n].float() / 127.5 - 1
    return x, downsample(x)


def unet_input_ratio() -> float:
    """Numbers entering the pixel model's first convolution per image, over the LDM's."""
    numbers = [m.unet.conv_in.in_channels * m.latent_shape[1] * m.latent_shape[2] for m in _models()]
    return numbers[1] / numbers[0]


def check_1(ratio) -> Verdict:
    """Exercise 1: how many times more numbers per image enter the pixel model's UNet than the LDM's."""
    ex = "lesson 09, exercise 1"
    if ratio is None:
        return unanswered(ex, "answer_1 is a number: (numbers into the pixel UNet) / (numbers into the LDM UNet)")
    truth = unet_input_ratio()
    hints = {
        16.0: "16 counts positions only (32 x 32 against 8 x 8); the channels differ too: z_t has 4 and x_t has 3, "
        "and both get the 3 channels of the condition.",
        12.0: "12 compares x (3 x 32 x 32) with z (4 x 8 x 8) but forgets the condition concatenated to each.",
        1 / truth: "upside down: the pixel model's input is the larger one.",
    }
    hint = next((h for value, h in hints.items() if close(ratio, value, rel=0.005)),
                "count channels x height x width of the UNet input of each model: z_t ++ y for the LDM, "
                "x_t ++ bicubic(y) for the pixel model (model.unet.conv_in.in_channels, model.latent_shape).")
    return judge(
        ex,
        close(ratio, truth, rel=0.005),
        f"{truth:.2f}: 6 x 32 x 32 = 6144 numbers against 7 x 8 x 8 = 448. Every layer of the pixel UNet also works "
        "on 16x more positions, which is where the time per step goes.",
        hint,
    )


@torch.no_grad()
def round_trip_psnr(n: int = N_SHOW) -> float:
    """PSNR (dB) of D(E(x)) against x on the lesson's test images: the best an LDM upsampler can do."""
    from ldm_mini.eval import psnr

    sr_ldm, _ = _models()
    x, _ = shown_images(n)
    return psnr((x + 1) / 2, sr_ldm.decode_to_images(sr_ldm.encode(x)))


def check_2(psnr_db) -> Verdict:
    """Exercise 2: PSNR of the autoencoder's round trip D(E(x)) on the six shown images."""
    ex = "lesson 09, exercise 2"
    if psnr_db is None:
        return unanswered(ex, "answer_2 is a PSNR in dB: of D(E(x)) against x on the six shown images")
    truth = round_trip_psnr()
    if close(psnr_db, truth - 20 * torch.log10(torch.tensor(2.0)).item(), abs_=0.05):
        hint = ("about 6 dB too low: PSNR = 10 log10(1 / MSE) needs images in [0, 1]; in [-1, 1] the MSE is 4x "
                "larger. Map with (x + 1) / 2 first, or use decode_to_images.")
    else:
        hint = ("encode the six x (in [-1, 1]) with sr_ldm.encode, decode with sr_ldm.decode_to_images (which "
                "gives [0, 1]) and compare with eval.psnr against (x + 1) / 2. No sampling is involved.")
    return judge(
        ex,
        close(psnr_db, truth, abs_=0.05),
        f"{truth:.1f} dB: the LDM must output D(z) for some z, so even a perfect eps_theta stays at about this "
        "fidelity. The shipped table's ceiling row (30.3 dB on 500 images) is the same measurement.",
        hint,
    )


@torch.no_grad()
def averaging_effect(seeds: int = 5, n: int = N_SHOW) -> tuple[float, float]:
    """(mean PSNR of single LDM SR samples, PSNR of the mean of ``seeds`` samples) on the lesson's images."""
    from ldm_mini.eval import psnr

    sr_ldm, _ = _models()
    x, y = shown_images(n)
    samples = [sr_ldm.upscale((y + 1) / 2, steps=50, seed=k) for k in range(seeds)]
    single = sum(psnr((x + 1) / 2, s) for s in samples) / seeds
    return single, psnr((x + 1) / 2, torch.stack(samples).mean(0))


def check_3(prediction) -> Verdict:
    """Exercise 3: the PSNR of the average of five LDM SR samples, against one sample (a prediction)."""
    ex = "lesson 09, exercise 3"
    if prediction is None:
        return unanswered(ex, f"answer_3 is your prediction, one of {PREDICTIONS}, written before you run the test")
    single, mean = averaging_effect()
    truth = "higher" if mean > single + SAME else "lower" if mean < single - SAME else "about the same"
    return judge(
        ex,
        same_choice(prediction, truth, PREDICTIONS),
        f"{truth}: one sample scores {single:.2f} dB, the average of five {mean:.2f} dB. The average is blurrier, "
        "and blur is what PSNR rewards: where samples disagree (edges), the mean is the pixel-wise best guess. "
        "Here the gain is small because the 8 x 8 input pins most of the answer and the samples differ only at "
        "the edges. That is why the paper judges its upsampler by FID as well.",
        "the test says otherwise. Where do five samples of the same y disagree, and what does averaging do "
        "to a squared error there? (For any fixed target, the error of a mean is at most the mean of the errors.)",
    )


WRONG = {
    1: [16.0, 12.0, 448 / 6144],
    2: [29.31, 23.0],  # the LDM SR row of the table; the bicubic row
    3: ["lower", "about the same"],
}
