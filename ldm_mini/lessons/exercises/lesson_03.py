"""Lesson 03 (forward noising): three exercises that check themselves.

1. computation: the t at which the pixels' real signal-to-noise ratio falls below 1;
2. code change: noise the latent without the scale factor, decode it;
3. prediction: without the scale, does the content vanish earlier or later in t?
"""

import torch

from ldm_mini.lessons.exercises import close, judge, same_choice, unanswered


def lesson_schedule():
    """The LDM's sqrt-linear schedule of the lesson (Stable Diffusion's beta range, T = 1000)."""
    from ldm_mini.diffusion import NoiseSchedule

    return NoiseSchedule.linear(T=1000, beta_start=0.00085, beta_end=0.012)


def first_t_below(schedule, variance: float) -> int:
    """The first t at which variance * SNR(t) < 1: data of that variance is then more noise than signal."""
    snr = schedule.snr(torch.arange(schedule.T))
    below = (variance * snr < 1).nonzero()
    return int(below[0]) if len(below) else schedule.T


# ---------------------------------------------------------------------------- exercise 1


def pixel_std(n: int = 200) -> float:
    """std of the lesson's pixels x_0 in [-1, 1] (the first n validation images)."""
    from ldm_mini.data import images_uint8, load_shapes, to_model_range

    return float(to_model_range(images_uint8(load_shapes(1000, "val", seed=0).select(range(n)))).std())


def check_1(answer) -> "Verdict":  # noqa: F821
    """The first t at which std(x_0)^2 * SNR(t) < 1 for the lesson's pixels (LDM schedule)."""
    name = "lesson 03, exercise 1"
    if answer is None:
        return unanswered(name, "answer_1 = an int t: the first timestep at which std(x_0)^2 * SNR(t) < 1")
    schedule, std = lesson_schedule(), pixel_std()
    truth = first_t_below(schedule, std ** 2)
    ok = isinstance(answer, int) or (isinstance(answer, torch.Tensor) and answer.numel() == 1)
    return judge(
        name, ok and close(answer, truth),
        f"t = {truth}: with std(x_0) = {std:.2f} the real SNR is {std ** 2:.2f} SNR(t), so the pixels are "
        f"half noise already at t = {truth}, long before t = {first_t_below(schedule, 1.0)} where the schedule "
        "says signal = noise. The scale factor exists so the latent does not have this problem.",
        "the real SNR of data with std sigma is sigma^2 alpha_bar_t / (1 - alpha_bar_t) (signal variance over "
        "noise variance, both squared quantities). Measure sigma = x0.std(), compute it over "
        "`schedule.snr(torch.arange(1000))`, and take the FIRST t where it is below 1.",
    )


# ---------------------------------------------------------------------------- exercise 2


def _probe():
    import ldm_mini
    from ldm_mini.data import images_uint8, load_shapes, to_model_range

    ae = ldm_mini.load_pretrained("ae-kl-f4")
    x0 = to_model_range(images_uint8(load_shapes(1000, "val", seed=0).select(range(4))))
    t = torch.tensor([0, 300, 600, 999])
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        eps = torch.randn(ae.encode_latent(x0).shape, generator=g)
    return ae, x0, t, eps


def reference_noised_without_scale(ae, x0, t, eps):
    """D(z_t) with z_t = sqrt(alpha_bar_t) E(x) + sqrt(1 - alpha_bar_t) eps: no scale on the way in or out."""
    with torch.no_grad():
        return ae.decode(lesson_schedule().q_sample(ae.encode_latent(x0), t, eps)).clamp(-1, 1)


def check_2(answer) -> "Verdict":  # noqa: F821
    """answer: a function noised_without_scale(x0, t, eps) -> images in [-1, 1], b 3 H W."""
    name = "lesson 03, exercise 2"
    if answer is None:
        return unanswered(name, "answer_2 = your function noised_without_scale(x0, t, eps) -> decoded images "
                                "in [-1, 1]")
    if not callable(answer):
        return judge(name, False, "", "answer_2 must be a function (def noised_without_scale(x0, t, eps): ...)")
    ae, x0, t, eps = _probe()
    try:
        with torch.no_grad():
            got = answer(x0.clone(), t.clone(), eps.clone())
    except Exception as error:  # a learner's function may raise anything
        return judge(name, False, "", f"noised_without_scale raised {type(error).__name__}: {error}")
    if not isinstance(got, torch.Tensor) or got.shape != x0.shape:
        return judge(name, False, "", f"return decoded images shaped like x0, {tuple(x0.shape)}")
    truth = reference_noised_without_scale(ae, x0, t, eps)
    ok = torch.allclose(got.detach().float().clamp(-1, 1).cpu(), truth, atol=1e-3)
    return judge(
        name, ok,
        f"z_t = sqrt(alpha_bar_t) E(x) + sqrt(1 - alpha_bar_t) eps, decoded by D with nothing to undo. E(x) has "
        f"std {1 / ae.scale_factor.item():.2f}, not 1: now test exercise 3's prediction with this function.",
        "three places to look: z_0 is `ae.encode_latent(x0)` with no `* ae.scale_factor`; noise it with "
        "`schedule.q_sample(z_0, t, eps)`; decode with `ae.decode(z_t)` (nothing to divide out, since nothing "
        "was multiplied in; the lesson's `decode` helper divides by the scale) and clamp to [-1, 1].",
    )


# ---------------------------------------------------------------------------- exercise 3

CHOICES_3 = ("earlier", "later", "same")


def check_3(answer) -> "Verdict":  # noqa: F821
    """Prediction: without the scale, does the decoded content vanish at an earlier t, a later t, or the same?"""
    name = "lesson 03, exercise 3"
    if answer is None:
        return unanswered(name, f"answer_3 = one of {CHOICES_3}: write it before you run the test")
    if not isinstance(answer, str) or answer.strip().lower() not in CHOICES_3:
        return judge(name, False, "", f"answer_3 must be one of {CHOICES_3}")
    import ldm_mini

    scale = ldm_mini.load_pretrained("ae-kl-f4").scale_factor.item()
    std_raw = 1 / scale  # std of E(x) on training images, since scale = 1 / std(E(x))
    truth = "later" if std_raw > 1.05 else ("earlier" if std_raw < 0.95 else "same")
    schedule = lesson_schedule()
    t_scaled, t_raw = first_t_below(schedule, 1.0), first_t_below(schedule, std_raw ** 2)
    return judge(
        name, same_choice(answer, truth, CHOICES_3),
        f"{truth}: unscaled, E(x) has std {std_raw:.2f}, so its real SNR is {std_raw ** 2:.1f} SNR(t): signal = "
        f"noise moves from t = {t_scaled} to t = {t_raw}. The schedule's noise is fixed at variance "
        "1 - alpha_bar_t; a bigger signal drowns later. The cost: the steps at small t barely change z_t, "
        "and at t = T - 1 z_T is further from N(0, I) (sqrt(alpha_bar_999) E(x) is larger) than sampling assumes.",
        f"the noise added by q_sample has variance 1 - alpha_bar_t whatever the data; the signal has variance "
        f"alpha_bar_t std(z_0)^2. Print `ae.scale_factor` ({scale:.3f} = 1 / std(E(x))): is the unscaled "
        "latent's std above or below 1? Then run the test in the exercise cell.",
    )


def _with_scale(x0, t, eps):
    """The lesson's own pipeline: scale in, noise, divide the scale out, decode (not what exercise 2 asks)."""
    import ldm_mini

    ae = ldm_mini.load_pretrained("ae-kl-f4")
    with torch.no_grad():
        z_t = lesson_schedule().q_sample(ae.encode_latent(x0) * ae.scale_factor, t, eps)
        return ae.decode(z_t / ae.scale_factor).clamp(-1, 1)


def _scale_not_undone(x0, t, eps):
    """Drops the scale on the way out only: decodes the scaled latent as if it were E(x)."""
    import ldm_mini

    ae = ldm_mini.load_pretrained("ae-kl-f4")
    with torch.no_grad():
        return ae.decode(lesson_schedule().q_sample(ae.encode_latent(x0) * ae.scale_factor, t, eps)).clamp(-1, 1)


WRONG = {
    1: [354, 353, 118, 222, 0.5],  # the unit-variance answer, its off-by-one, the last t above 1, std not squared
    2: [_with_scale, _scale_not_undone, lambda x0, t, eps: x0],
    3: ["earlier", "same", "never"],
}
