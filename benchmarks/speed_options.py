"""Speed options, before/after on the f = 4 LDM (the shipped recipe), all in one process, interleaved.

Training step at batch 64:      fp32 (the default, AdamW(foreach=True)) | channels_last memory format | bf16 autocast |
                                AdamW looping over the parameters (torch's CPU default, what train_diffusion '
                                    torch'used before it passed foreach=True)
DDIM-50 sampling with guidance: torch.no_grad (the default) | torch.inference_mode | bf16 autocast
bf16 needs a CPU with bf16 instructions (AVX-512 BF16 / AMX) to pay off; elsewhere it can be slower,
which is why it is a measured option and not a default.
"""

from __future__ import annotations

import time

import torch

from .common import compare, save
from .latent_vs_pixel import TrainStep, build, sampler

SAMPLE_BATCH = 16


def _with(ctx_factory, fn):
    def call():
        with ctx_factory():
            return fn()
    return call


def run(repeats: int = 5) -> dict:
    bf16 = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731
    base, cl, half = (TrainStep(build(4)) for _ in range(3))
    per_parameter = TrainStep(build(4), foreach=False)
    cl.ldm.unet.to(memory_format=torch.channels_last)
    cl.latents = cl.latents.contiguous(memory_format=torch.channels_last)
    train = compare({"fp32": base, "channels_last": cl, "bf16_autocast": _with(bf16, half),
                     "adamw_per_parameter_before": per_parameter}, repeats=repeats)

    ldm = base.ldm.eval()
    sample = sampler(ldm, batch=SAMPLE_BATCH)
    # the sampled images must not depend on the mode (bf16 will differ a little: reported)
    ref = sample()
    with torch.inference_mode():
        same_inference = (sample() - ref).abs().max().item()
    with bf16():
        diff_bf16 = (sample() - ref).abs().max().item()
    samp = compare({"no_grad": sample, "inference_mode": _with(torch.inference_mode, sample),
                    "bf16_autocast": _with(bf16, sample)}, repeats=max(3, repeats - 2))
    out = {
        "train_batch": 64,
        "sample_batch": SAMPLE_BATCH,
        "train": train,
        "sample": samp,
        "sample_max_abs_diff": {"inference_mode": same_inference, "bf16_autocast": diff_bf16},
        "speedup": {
            "train_channels_last": train["fp32"]["median_s"] / train["channels_last"]["median_s"],
            "train_bf16": train["fp32"]["median_s"] / train["bf16_autocast"]["median_s"],
            "train_adamw_foreach_after_vs_before": train["adamw_per_parameter_before"]["median_s"]
            / train["fp32"]["median_s"],
            "sample_inference_mode": samp["no_grad"]["median_s"] / samp["inference_mode"]["median_s"],
            "sample_bf16": samp["no_grad"]["median_s"] / samp["bf16_autocast"]["median_s"],
        },
    }
    return out


def report(r: dict) -> str:
    t, s = r["train"], r["sample"]
    return "\n".join(
        ["train step f4 b=64: " + ", ".join(f"{k} {v['median_s']:.3f} s" for k, v in t.items())]
        + [f"DDIM-50 f4 b={r['sample_batch']}: " + ", ".join(f"{k} {v['median_s']:.3f} s" for k, v in s.items())]
        + ["speedups: " + ", ".join(f"{k} x{v:.2f}" for k, v in r["speedup"].items())]
        + [
            "sample max |diff| vs no_grad fp32: "
            + ", ".join(f"{k} {v:.1e}" for k, v in r["sample_max_abs_diff"].items())
        ]
    )


def main() -> None:
    start = time.perf_counter()
    r = run()
    save("speed_options", r, time.perf_counter() - start)
    print(report(r))


if __name__ == "__main__":
    main()
