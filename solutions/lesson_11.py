"""Reference solutions of lesson 11's exercises (from ldm_mini to Stable Diffusion). Try them first."""

import tempfile
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from ldm_mini.lessons.exercises.lesson_11 import SD_UNET  # the same dict as the notebook's SD_UNET


def solution_1():
    """Build SD 2's UNet on the meta device and read which field the bridge refuses."""
    import diffusers

    from ldm_mini import bridge

    with torch.device("meta"):
        sd2_changes = dict(attention_head_dim=[5, 10, 20, 20], cross_attention_dim=1024, use_linear_projection=True)
        sd2 = diffusers.UNet2DConditionModel(**{**SD_UNET, **sd2_changes})
    try:
        bridge.unet_config_from_diffusers(dict(sd2.config))
    except ValueError as error:
        print(error)  # names attention_head_dim: one head count per level, ours has one for all
    return "attention_head_dim"


def solution_2():
    """Count the FLOPs of SD's UNet on a 32 x 32 latent (256 x 256 pixels at f = 8)."""
    import diffusers

    with torch.device("meta"):
        unet = diffusers.UNet2DConditionModel(**SD_UNET)
        z, ctx = torch.zeros(1, 4, 32, 32), torch.zeros(1, 77, 768)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        unet(z, torch.tensor([500], device="meta"), encoder_hidden_states=ctx)
    return counter.get_total_flops() / 1e9


def solution_3():
    """Export the model, run diffusers' pipeline and our generate() at s = 1 and s = 0.5 from the same x_T."""
    import ldm_mini
    from ldm_mini import bridge

    ldm = ldm_mini.load_pretrained("shapes-kl-f4").eval()
    out = Path(tempfile.mkdtemp()) / "exported"
    bridge.export_to_diffusers(ldm, out)
    pipe = bridge.load_pipeline(out)
    pipe.set_progress_bar_config(disable=True)
    tokenizer, text_encoder = bridge.load_text(out)
    captions = ["a red circle", "a blue square"]
    prompt_embeds, negative_embeds = bridge.pipeline_embeds(tokenizer, text_encoder, captions)
    x_T = torch.randn((len(captions), *ldm.latent_shape), generator=torch.Generator().manual_seed(0))
    diffs = []
    for s in (1.0, 0.5):
        ours = ldm.generate(captions, steps=10, guidance=s, seed=0)
        theirs = pipe(prompt_embeds=prompt_embeds, negative_prompt_embeds=negative_embeds, latents=x_T.clone(),
                      height=32, width=32, num_inference_steps=10, guidance_scale=s, output_type="pt").images
        diffs.append((theirs - ours).abs().max().item())
    return tuple(diffs)


def solution_4():
    """diffusers' DDIM scheduler with trailing spacing: its 50 timesteps."""
    import diffusers

    scheduler = diffusers.DDIMScheduler(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, steps_offset=1, timestep_spacing="trailing"
    )
    scheduler.set_timesteps(50)
    return scheduler.timesteps.tolist()
