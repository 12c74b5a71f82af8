"""Reference solutions of lesson 09's exercises (super-resolution by concatenation). Try them first."""

import torch


def _six_test_images():
    from ldm_mini.config import get_profile
    from ldm_mini.data import images_uint8, load_shapes
    from ldm_mini.ldm import downsample

    x = images_uint8(load_shapes(get_profile("quick").n_eval, "test", seed=0))[:6].float() / 127.5 - 1
    return x, downsample(x)


def solution_1():
    """Channels x height x width of each UNet's input: z_t ++ y against x_t ++ bicubic(y)."""
    import ldm_mini

    sr_ldm, sr_pixel = ldm_mini.load_pretrained("sr-ldm-f4"), ldm_mini.load_pretrained("sr-pixel")
    into = {}
    for name, model in (("ldm", sr_ldm), ("pixel", sr_pixel)):
        c, h, w = model.latent_shape
        into[name] = model.unet.conv_in.in_channels * h * w  # (c + 3) x h x w
    return into["pixel"] / into["ldm"]  # 6 * 32 * 32 / (7 * 8 * 8)


@torch.no_grad()
def solution_2():
    """The autoencoder's round trip on the six images: the LDM upsampler's ceiling."""
    import ldm_mini
    from ldm_mini.eval import psnr

    sr_ldm = ldm_mini.load_pretrained("sr-ldm-f4")
    x, _ = _six_test_images()
    x_rec = sr_ldm.decode_to_images(sr_ldm.encode(x))  # D(z_0 / scale) with z_0 = scale E(x), in [0, 1]
    return psnr((x + 1) / 2, x_rec)


@torch.no_grad()
def solution_3():
    """Five seeds, then PSNR of each sample and of their mean."""
    import ldm_mini
    from ldm_mini.eval import psnr

    sr_ldm = ldm_mini.load_pretrained("sr-ldm-f4")
    x, y = _six_test_images()
    hr = (x + 1) / 2
    samples = [sr_ldm.upscale((y + 1) / 2, seed=k) for k in range(5)]
    single = sum(psnr(hr, s) for s in samples) / 5
    averaged = psnr(hr, torch.stack(samples).mean(0))
    print(f"one sample {single:.2f} dB, the mean of five {averaged:.2f} dB")
    return "higher" if averaged > single + 0.2 else "lower" if averaged < single - 0.2 else "about the same"
