"""Why did lesson 09's first pixel-space SR model draw noise? A diagnosis, kept so it can be rerun.

    python scripts/diagnose_sr_pixel.py --checkpoint OLD.safetensors [--label linear-eps]

The first ``sr-pixel`` used the latent models' schedule (sqrt-linear, beta 0.00085 .. 0.012) with
eps-prediction. Its training loss was low and its samples were coloured noise. This script samples a
checkpoint (DDIM-50, 32 test images) three ways and writes the PSNRs to
``data/experiments/sr_pixel_diagnosis.json`` (one entry per ``--label``):

- from pure noise x_T ~ N(0, I), as sampling always does;
- from the x_T that training sees, which keeps sqrt(alpha_bar_T) of the image (here: of bicubic(y));
- from x_t0 of the true image at t0 = 100 .. 999, to see where along the reverse process it breaks.

The first version's checkpoint is in git: ``git show 213933e:data/checkpoints/sr-pixel.safetensors``.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch

from ldm_mini.data import images_uint8, load_shapes
from ldm_mini.eval.measures import psnr
from ldm_mini.experiments import RESULTS_DIR, load_results, save_results
from ldm_mini.ldm import bicubic_upsample, downsample
from ldm_mini.sampling import ddim_sigmas, ddim_step, ddim_timesteps
from ldm_mini.zoo import load_diffusion

NAME = "sr_pixel_diagnosis"


def sample_from(model, cond, x_start, t0: int, steps: int = 50) -> torch.Tensor:
    """DDIM (eta = 0) from x_start, taken to sit at the noisiest DDIM timestep <= t0, down to x_0."""
    timesteps = ddim_timesteps(model.schedule.T, steps)
    alphas, alphas_prev, _ = ddim_sigmas(model.schedule, timesteps, 0.0)
    x = x_start
    with torch.no_grad():
        for k in reversed([k for k in range(len(timesteps)) if timesteps[k] <= t0]):
            t = torch.full((len(x),), int(timesteps[k]))
            x, _ = ddim_step(x, model.eps(x, t, cond), alphas[k], alphas_prev[k])
    return ((x + 1) / 2).clamp(0, 1)


def diagnose(path: str, n: int = 32, seed: int = 0) -> dict:
    model = load_diffusion(path).eval()
    hr = images_uint8(load_shapes(200, "test", seed=seed))[:n].float() / 255
    y = downsample(hr * 2 - 1)
    cond, bicubic = model.condition(y), bicubic_upsample(y, 4)
    noise = torch.randn(hr.shape, generator=torch.Generator().manual_seed(seed))
    abar = model.schedule.alphas_cumprod
    top = int(ddim_timesteps(model.schedule.T, 50)[-1])

    def at(t0: int, x0: torch.Tensor) -> torch.Tensor:  # the x_t0 of training, from x0 in [-1, 1]
        a = abar[t0].item()
        return math.sqrt(a) * x0 + math.sqrt(1 - a) * noise

    pure = sample_from(model, cond, noise, top)
    kept = sample_from(model, cond, at(top, bicubic), top)
    out = {
        "schedule": model.config.schedule,
        "parameterization": model.config.parameterization,
        "signal_left_at_T": abar[-1].sqrt().item(),
        "bicubic_psnr": psnr(((bicubic + 1) / 2).clamp(0, 1), hr),
        "from_pure_noise": {"psnr": psnr(pure, hr), "mean_error": (pure - hr).mean().item()},
        "from_x_T_keeping_bicubic": {"psnr": psnr(kept, hr), "mean_error": (kept - hr).mean().item()},
        "from_true_x_t0": {
            t0: psnr(sample_from(model, cond, at(t0, hr * 2 - 1), t0), hr) for t0 in (100, 500, 900, top)
        },
        "n_images": n,
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--label", required=True, help="the entry's name, e.g. linear-eps")
    args = parser.parse_args()
    torch.manual_seed(0)
    start = time.perf_counter()
    try:
        entries = load_results(NAME)["results"]
    except FileNotFoundError:
        entries = {}
    entries[args.label] = diagnose(args.checkpoint) | {"checkpoint": args.checkpoint}
    command = f"python scripts/diagnose_sr_pixel.py --checkpoint {args.checkpoint} --label {args.label}"
    save_results(NAME, entries, RESULTS_DIR, time.perf_counter() - start, command=command)
    print(json.dumps(entries[args.label], indent=1))


if __name__ == "__main__":
    main()
