"""Reference solutions of lesson 03's exercises (try them first)."""

import torch


def solution_1():
    from ldm_mini.data import images_uint8, load_shapes, to_model_range
    from ldm_mini.diffusion import NoiseSchedule

    schedule = NoiseSchedule.linear(T=1000, beta_start=0.00085, beta_end=0.012)
    x0 = to_model_range(images_uint8(load_shapes(1000, "val", seed=0).select(range(200))))
    real_snr = x0.std().item() ** 2 * schedule.snr(torch.arange(1000))
    return int((real_snr < 1).nonzero()[0])


def solution_2():
    import ldm_mini
    from ldm_mini.diffusion import NoiseSchedule

    ae = ldm_mini.load_pretrained("ae-kl-f4")
    schedule = NoiseSchedule.linear(T=1000, beta_start=0.00085, beta_end=0.012)

    def noised_without_scale(x0, t, eps):
        with torch.no_grad():
            z_0 = ae.encode_latent(x0)  # E(x), no scale_factor
            return ae.decode(schedule.q_sample(z_0, t, eps)).clamp(-1, 1)

    return noised_without_scale


def solution_3():
    import ldm_mini

    ae = ldm_mini.load_pretrained("ae-kl-f4")
    print("std of E(x):", 1 / ae.scale_factor.item())  # 2.47 > 1: more signal against the same noise
    return "later"
