"""ldm_mini against Hugging Face diffusers (pip install -e ".[bench]").

1. The UNet: diffusers' UNet2DConditionModel built with our architecture (the shipped recipe:
   channels 64/128/128, one ResBlock per level going down, cross-attention at levels 1, 2 and the
   middle, 4 heads, context width 64, GroupNorm 32, cos-first time embedding, linear proj_in/out,
   GEGLU). Parameter counts are printed (they must agree within 5%). Timed: forward, and forward +
   backward, at batch 64 on the f = 4 latents (8 x 8 x 4) with 16 context tokens and their mask.
2. The DDIM loop: ldm_mini.sampling.ddim_sample against diffusers' DDIMScheduler loop, both driving
   the same trivial eps model, so what is timed is the loop's own overhead. The scheduler is set
   to docs/CONVENTIONS.md ("Noise schedule", "DDIM") (scaled_linear betas 0.00085..0.012, set_alpha_to_one=False,
   steps_offset=1, "leading" spacing, no clipping); the two results must agree to 1e-5.
"""

from __future__ import annotations

import time

import torch

from ldm_mini.config import QUICK, seed_everything
from ldm_mini.diffusion import NoiseSchedule
from ldm_mini.sampling import ddim_sample, ddim_timesteps
from ldm_mini.unet import UNet
from ldm_mini.zoo import ldm_recipe

from .common import compare, save

BATCH = 64
TOKENS = 16


def diffusers_unet(c):
    """UNet2DConditionModel with the architecture of our UNetConfig `c` (the bridge's config mapping)."""
    from diffusers import UNet2DConditionModel

    from ldm_mini.bridge import unet_config_to_diffusers

    return UNet2DConditionModel(**unet_config_to_diffusers(c, sample_size=8))


def unet_benchmark(repeats: int = 7) -> dict:
    config, _ = ldm_recipe(None, QUICK)
    c = config.unet
    c.in_channels = c.out_channels = 4  # the f = 4 latents
    seed_everything(0)
    ours, theirs = UNet(c), diffusers_unet(c)
    n_ours, n_theirs = ours.num_params(), sum(p.numel() for p in theirs.parameters())
    print(f"parameters: ldm_mini {n_ours:,}  diffusers {n_theirs:,}  ({100 * (n_theirs / n_ours - 1):+.2f}%)")
    assert abs(n_theirs / n_ours - 1) < 0.05, "the two UNets are not matched"

    g = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, 4, 8, 8, generator=g)
    t = torch.randint(0, 1000, (BATCH,), generator=g)
    ctx = torch.randn(BATCH, TOKENS, c.context_dim, generator=g)
    # captions of various lengths
    mask = torch.arange(TOKENS)[None] < torch.randint(2, TOKENS, (BATCH, 1), generator=g)

    def fwd_ours():
        with torch.no_grad():
            return ours(x, t, ctx, context_mask=mask)

    def fwd_theirs():
        with torch.no_grad():
            return theirs(x, t, encoder_hidden_states=ctx, encoder_attention_mask=mask).sample

    def train_ours():
        ours.zero_grad(set_to_none=True)
        ours(x, t, ctx, context_mask=mask).square().mean().backward()

    def train_theirs():
        theirs.zero_grad(set_to_none=True)
        theirs(x, t, encoder_hidden_states=ctx, encoder_attention_mask=mask).sample.square().mean().backward()

    ours.train(), theirs.train()
    fwd = compare({"ldm_mini": fwd_ours, "diffusers": fwd_theirs}, repeats=repeats)
    fb = compare({"ldm_mini": train_ours, "diffusers": train_theirs}, repeats=repeats)
    return {
        "batch": BATCH,
        "latent": [4, 8, 8],
        "context_tokens": TOKENS,
        "params": {"ldm_mini": n_ours, "diffusers": n_theirs, "relative_diff": n_theirs / n_ours - 1},
        "forward": fwd,
        "forward_backward": fb,
        "forward_ratio": fwd["ldm_mini"]["median_s"] / fwd["diffusers"]["median_s"],
        "forward_backward_ratio": fb["ldm_mini"]["median_s"] / fb["diffusers"]["median_s"],
    }


def ddim_scheduler():
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        timestep_spacing="leading",
        prediction_type="epsilon",
    )


def trivial_eps(x: torch.Tensor, t) -> torch.Tensor:
    """A stand-in eps_theta that costs almost nothing but depends on x and t (so the loops can disagree)."""
    t = torch.as_tensor(t, dtype=x.dtype)
    return 0.5 * x * (t.reshape(-1, *[1] * (x.ndim - 1)) / 1000)


def diffusers_ddim(
    x_T: torch.Tensor, steps: int, eta: float = 0.0, alphas_cumprod: torch.Tensor | None = None
) -> torch.Tensor:
    """diffusers' DDIM loop. alphas_cumprod: replace the scheduler's float32 alpha_bar by these (ours are float64)."""
    scheduler = ddim_scheduler()
    if alphas_cumprod is not None:
        scheduler.alphas_cumprod = alphas_cumprod.clone()
        # set_alpha_to_one=False: the last step lands on alpha_bar_0
        scheduler.final_alpha_cumprod = alphas_cumprod[0].clone()
    scheduler.set_timesteps(steps)
    x = x_T
    with torch.no_grad():
        for t in scheduler.timesteps:
            x = scheduler.step(trivial_eps(x, t), t, x, eta=eta).prev_sample
    return x


def ddim_benchmark(steps: int = 50, repeats: int = 7, shape=(BATCH, 4, 8, 8)) -> dict:
    """Agreement and loop overhead. diffusers computes its betas in float32, we in float64
    (docs/CONVENTIONS.md, "Noise schedule"):
    alpha_bar differs by up to ~5e-7, which the 1/sqrt(alpha_bar) ~ 15 of the noisiest steps amplifies.
    So agreement is checked twice: with identical alpha_bar (the loops themselves must agree to 1e-5
    absolute) and with each library's own schedule (to 1e-5 relative to the largest |x|)."""
    schedule = NoiseSchedule.linear(1000, 0.00085, 0.012)
    x_T = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    ours = ddim_sample(trivial_eps, x_T, schedule, steps=steps)
    theirs_same_abar = diffusers_ddim(x_T, steps, alphas_cumprod=schedule.alphas_cumprod)
    theirs = diffusers_ddim(x_T, steps)
    scheduler = ddim_scheduler()
    scheduler.set_timesteps(steps)
    same_timesteps = sorted(scheduler.timesteps.tolist()) == ddim_timesteps(1000, steps).tolist()
    diff_same = (ours - theirs_same_abar).abs().max().item()
    diff_own = (ours - theirs).abs().max().item()
    rel_own = diff_own / ours.abs().max().item()
    times = compare(
        {
            "ldm_mini": lambda: ddim_sample(trivial_eps, x_T, schedule, steps=steps),
            "diffusers": lambda: diffusers_ddim(x_T, steps),
        },
        repeats=repeats,
    )
    return {
        "steps": steps,
        "shape": list(shape),
        "same_timesteps": same_timesteps,
        "max_abs_diff_same_alpha_bar": diff_same,
        "max_abs_diff_own_schedules": diff_own,
        "max_rel_diff_own_schedules": rel_own,
        "max_abs_alpha_bar_diff": (scheduler.alphas_cumprod.double() - schedule.alphas_cumprod).abs().max().item(),
        "agree_1e-5": diff_same <= 1e-5 and rel_own <= 1e-5 and same_timesteps,
        "loop": times,
        "overhead_per_step_ms": {k: 1000 * v["median_s"] / steps for k, v in times.items()},
        "overhead_ratio": times["ldm_mini"]["median_s"] / times["diffusers"]["median_s"],
    }


def run() -> dict:
    import diffusers

    return {"diffusers": diffusers.__version__, "unet": unet_benchmark(), "ddim": ddim_benchmark()}


def report(r: dict) -> str:
    u, d = r["unet"], r["ddim"]
    ms = lambda s: f"{1000 * s['median_s']:.1f} ms"  # noqa: E731
    return "\n".join(
        [
            f"UNet params: ldm_mini {u['params']['ldm_mini']:,}, diffusers {u['params']['diffusers']:,} "
            f"({100 * u['params']['relative_diff']:+.2f}%)",
            f"forward b=64:          ldm_mini {ms(u['forward']['ldm_mini'])}, diffusers "
            f"{ms(u['forward']['diffusers'])}, ratio {u['forward_ratio']:.2f}",
            f"forward+backward b=64: ldm_mini {ms(u['forward_backward']['ldm_mini'])}, diffusers "
            f"{ms(u['forward_backward']['diffusers'])}, ratio {u['forward_backward_ratio']:.2f}",
            f"DDIM-{d['steps']} loop, trivial model: ldm_mini {d['overhead_per_step_ms']['ldm_mini']:.3f} "
            f"ms/step, diffusers "
            f"{d['overhead_per_step_ms']['diffusers']:.3f} ms/step, ratio {d['overhead_ratio']:.2f}",
            f"DDIM agreement: same alpha_bar max |diff| {d['max_abs_diff_same_alpha_bar']:.1e}; own schedules "
            f"max |diff| "
            f"{d['max_abs_diff_own_schedules']:.1e} (relative {d['max_rel_diff_own_schedules']:.1e}); timesteps "
            f"equal: {d['same_timesteps']}",
        ]
    )


def main() -> None:
    start = time.perf_counter()
    r = run()
    save("vs_diffusers", r, time.perf_counter() - start)
    print(report(r))


if __name__ == "__main__":
    main()
