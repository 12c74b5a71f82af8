"""Lesson 11 (from ldm_mini to Stable Diffusion): checks of its four exercises.

Each check builds what it needs on PyTorch's ``meta`` device (shapes, no weights, no download), so the
truth is computed here, not typed in: the field ldm_mini refuses in SD 2's UNet config, the FLOPs of
SD's UNet at 256 x 256, diffusers' "trailing" timesteps. Exercise 3 (guidance at s <= 1) needs two
pipeline runs; its check tests the two measured differences against what the two formulas imply.
"""

import torch
from torch.utils.flop_counter import FlopCounterMode

from ldm_mini.lessons.exercises import Verdict, close, judge, same_choice, unanswered

# Stable Diffusion v1.x unet/config.json, the fields that differ from diffusers' defaults (as lesson 11 types them in)
SD_UNET = dict(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    layers_per_block=2,
    block_out_channels=[320, 640, 1280, 1280],
    down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
    up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
    cross_attention_dim=768,
    attention_head_dim=8,
    norm_num_groups=32,
    flip_sin_to_cos=True,
    freq_shift=0,
)
SD2_CHANGES = dict(attention_head_dim=[5, 10, 20, 20], cross_attention_dim=1024, use_linear_projection=True)
SD2_FIELDS = ("attention_head_dim", "cross_attention_dim", "use_linear_projection")


def _sd_unet(**changes):
    import diffusers

    with torch.device("meta"):
        return diffusers.UNet2DConditionModel(**{**SD_UNET, **changes})


def _unet_gflops(unet, latent: int, context_dim: int = 768) -> float:
    """GFLOPs of one forward pass of a diffusers UNet on a latent x latent input, 77 tokens, on the meta device."""
    with torch.device("meta"):
        z, ctx, t = torch.zeros(1, 4, latent, latent), torch.zeros(1, 77, context_dim), torch.tensor([500])
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        unet(z, t, encoder_hidden_states=ctx)
    return counter.get_total_flops() / 1e9


def refused_field() -> str:
    """The SD 2 field that ``bridge.unet_config_from_diffusers`` names when it refuses (computed, not typed in)."""
    from ldm_mini import bridge

    try:
        bridge.unet_config_from_diffusers(dict(_sd_unet(**SD2_CHANGES).config))
    except ValueError as error:
        named = [f for f in SD2_FIELDS if f in str(error)]
        if len(named) == 1:
            return named[0]
        raise AssertionError(f"expected exactly one SD 2 field in the refusal, got {named}:\n{error}") from error
    raise AssertionError("ldm_mini accepted SD 2's UNet config; exercise 1 has no answer")


def check_1(field) -> Verdict:
    """Exercise 1: the name of the SD 2 UNet config field that ldm_mini refuses (a string)."""
    ex = "lesson 11, exercise 1"
    if field is None:
        return unanswered(ex, "answer_1 is the config field's name as a string, e.g. 'layers_per_block'")
    truth = refused_field()
    return judge(
        ex,
        same_choice(field, truth, SD2_FIELDS + tuple(SD_UNET)),
        f"{truth}: ldm_mini has one head count for all levels (UNetConfig.num_heads); SD 2 gives each level its own "
        "(a fixed head width of 64 channels), which no ldm_mini config can express. The other two changes are plain "
        "numbers or the projection flag we already translate.",
        "not that one. Read the ValueError that bridge.unet_config_from_diffusers raises: which field has a value per "
        "level where ldm_mini's UNetConfig keeps one number? (A wider context or a Linear projection are easy to "
        "express.)",
    )


def check_2(gflops_at_256) -> Verdict:
    """Exercise 2: GFLOPs of one SD v1 UNet call at 256 x 256 (32 x 32 latents, 77 tokens)."""
    ex = "lesson 11, exercise 2"
    if gflops_at_256 is None:
        return unanswered(ex, "answer_2 is a number: GFLOPs (1e9 FLOPs) of one SD UNet call on a 32 x 32 latent")
    unet = _sd_unet()
    truth, full = _unet_gflops(unet, 32), _unet_gflops(unet, 64)
    if close(gflops_at_256, full / 4, rel=0.01):
        hint = ("that is the 512 x 512 count divided by 4, pure pixel scaling. Self-attention grows with the square of "
                "the number of positions, so it shrinks 16x, not 4x: count it with flops() on the meta device.")
    elif close(gflops_at_256, full, rel=0.01):
        hint = "that is the 512 x 512 count: build the input latent at 32 x 32 (256 / f with f = 8), not 64 x 64."
    else:
        hint = ("count it: flops(lambda: sd_unet(z, t, encoder_hidden_states=ctx)) with z = torch.zeros(1, 4, 32, 32) "
                "and ctx = torch.zeros(1, 77, 768) made under torch.device('meta'); give GFLOPs (divide by 1e9).")
    return judge(
        ex,
        close(gflops_at_256, truth, rel=0.01),
        f"{truth:.1f} GFLOPs, {truth / full:.3f} of the 512 x 512 call: a bit less than the 0.25 of pure pixel "
        "scaling, "
        "because self-attention (quadratic in the positions) shrinks 16x while convolutions shrink 4x.",
        hint,
    )


def check_3(max_diffs) -> Verdict:
    """Exercise 3: (max |pipeline - generate()| at s = 1, the same at s = 0.5), images in [0, 1]."""
    ex = "lesson 11, exercise 3"
    if max_diffs is None:
        return unanswered(ex, "answer_3 is a pair (max_diff_s1, max_diff_s05): the largest per-pixel differences")
    ok_shape = isinstance(max_diffs, (tuple, list)) and len(max_diffs) == 2
    if not ok_shape or not all(close(d, 0.5, abs_=0.5) for d in max_diffs):
        return Verdict(ex, False, "give two numbers in [0, 1]: (max_diff at s = 1, max_diff at s = 0.5)")
    d1, d05 = (float(d) for d in max_diffs)
    if d1 >= 2e-3:
        hint = ("at s = 1, eps_u + 1 (eps_c - eps_u) = eps_c: both compute the conditional prediction, so the images "
                "should agree to float rounding (< 2e-3). Did you use the same x_T and the same steps for both?")
    else:
        hint = ("at s = 0.5 we interpolate, eps_u + 0.5 (eps_c - eps_u), but the pipeline only guides when "
                "guidance_scale > 1 and otherwise returns eps_c: the two images should differ visibly (> 1e-2).")
    return judge(
        ex,
        d1 < 2e-3 and d05 > 1e-2,
        "at s = 1 both compute eps_c; below 1 the pipeline switches guidance off "
        "(do_classifier_free_guidance is guidance_scale > 1) while we interpolate toward eps_u.",
        hint,
    )


def trailing_timesteps(steps: int = 50) -> list[int]:
    """diffusers' DDIM timesteps with ``timestep_spacing="trailing"`` for our schedule, ascending."""
    import diffusers

    scheduler = diffusers.DDIMScheduler(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, timestep_spacing="trailing"
    )
    scheduler.set_timesteps(steps)
    return sorted(int(t) for t in scheduler.timesteps)


def check_4(timesteps) -> Verdict:
    """Exercise 4: the 50 timesteps of the exported scheduler with ``timestep_spacing="trailing"``."""
    from ldm_mini.sampling import ddim_timesteps

    ex = "lesson 11, exercise 4"
    if timesteps is None:
        return unanswered(ex, "answer_4 is the scheduler's 50 timesteps (a list or tensor of ints)")
    try:
        ts = sorted(int(t) for t in timesteps)
    except (TypeError, ValueError):
        return Verdict(ex, False, "give the timesteps as a list (or tensor) of integers: list(scheduler.timesteps)")
    truth = trailing_timesteps(50)
    if ts == ddim_timesteps(1000, 50).tolist():
        hint = ("those are ours ('leading' with steps_offset=1: 1, 21, ..., 981). Load the scheduler with "
                "timestep_spacing='trailing' and call set_timesteps(50) before reading .timesteps.")
    elif len(ts) != 50:
        hint = f"expected 50 timesteps, got {len(ts)}: call set_timesteps(50) first"
    else:
        hint = ("not those: 'trailing' counts down from T - 1 = 999 in steps of T / S = 20. Read scheduler.timesteps "
                "after set_timesteps(50).")
    return judge(
        ex,
        ts == truth,
        f"'trailing' visits {truth[-1]}, {truth[-2]}, ..., {truth[0]}: it starts from the noisiest step t = 999, where "
        "ours and 'leading' start at 981 and end at t = 1.",
        hint,
    )


WRONG = {
    1: ["cross_attention_dim", "use_linear_projection"],
    2: [803.0 / 4, 803.0],  # pure pixel scaling of the 512 x 512 count; the 512 x 512 count itself
    3: [(0.0, 0.0), (0.3, 0.3)],  # "both agree", "both differ"
    4: [list(range(1, 1000, 20)), list(range(0, 1000, 20))],  # ours ('leading'), and leading without the offset
}
