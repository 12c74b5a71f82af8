# %% [markdown]
# # 11 · From ldm_mini to Stable Diffusion
#
# **What you will learn**
# - that Stable Diffusion v1 *is* the latent diffusion model you built in lessons 02-06, scaled up:
#   the same three parts (E and D, eps_theta with cross-attention, tau_theta) and the same sampler,
#   component by component, with parameter counts and FLOPs per image for both;
# - how to hand our model to Hugging Face **diffusers**: `ldm-mini export-diffusers` writes a folder
#   that diffusers loads with its own classes, and diffusers' own `StableDiffusionPipeline` then draws
#   the same pictures as our `generate()` (the difference is measured below);
# - the few things diffusers' classes cannot express about our model, and what ignoring them costs;
# - the way back: SD's own UNet and VAE configs are ldm_mini configs, so with SD weights on disk our
#   sampler and lesson 04's attention maps run on Stable Diffusion itself.
#
# **Study time:** about 50 minutes (reading, the two tables, and the four exercises, each under a
# minute of CPU).
#
# **Run time** of Run All: 20 s measured at the last rebuild on the 2-core build machine (an
# "Intel(R) Xeon(R) Processor") while other jobs shared its cores; 14 s on a free 2-core CPU
# (`make notebooks`); other 2-core CPUs can be ~1.7x different. It runs two 50-step generations of four
# images, one by us and one by diffusers; the rest is counting. Nothing is trained and nothing is
# downloaded: SD's architecture is built on PyTorch's `meta` device (shapes without weights). The
# optional last section runs real SD weights only if you point `LDM_SD_PATH` at a local copy.

# %%
# Parameters
import os

PROFILE = os.environ.get("LDM_PROFILE")  # None: "full" on a GPU, "quick" on a CPU
SEED = 0
DEVICE = None  # None: cuda > mps > cpu (the diffusers comparison runs on the CPU)
STEPS = 50  # DDIM steps for both generations
GUIDANCE = 3.0  # our default guidance scale s (SD's default is 7.5)
SD_PATH = os.environ.get("LDM_SD_PATH")  # a local Stable Diffusion v1 folder (unet/, vae/, text_encoder/, tokenizer/), or None
SD_STEPS = 20  # DDIM steps for the optional real-SD run (each costs two 860M-parameter UNet calls)

# %%
import json
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from torch.utils.flop_counter import FlopCounterMode

import diffusers
import transformers
from transformers import CLIPTextConfig, CLIPTextModel

import ldm_mini
from ldm_mini import bridge
from ldm_mini.autoencoder import Autoencoder
from ldm_mini.config import seed_everything
from ldm_mini.lessons.plotting import show_grid
from ldm_mini.unet import UNet

diffusers.utils.logging.set_verbosity_error()  # keep loading notes (e.g. "accelerate not found") out of the outputs
transformers.utils.logging.set_verbosity_error()
seed_everything(SEED)
ldm = ldm_mini.load_pretrained("shapes-kl-f4").eval()  # on the CPU: diffusers' pipeline runs beside it
print(f"diffusers {diffusers.__version__}, torch {torch.__version__}")

# %% [markdown]
# ## 1. The same three parts under other names
#
# The paper's model (its Fig. 3) is three networks and a sampler:
#
# $$\tilde x = D\big(z_0 / \text{scale}\big), \qquad z_0 = \text{DDIM}\Big(z_T \sim \mathcal N(0, I);\; \epsilon_\theta(z_t, t, \tau_\theta(y))\Big), \qquad \hat\epsilon = \epsilon_u + s\,(\epsilon_c - \epsilon_u).$$
#
# Stable Diffusion v1 (CompVis and Stability AI, 2022) is this model, trained on LAION images (at 512 x 512
# in its last stages). In diffusers each part is a class, and a "pipeline" ties them together:
#
# | the paper / ldm_mini | diffusers (Stable Diffusion) | lesson |
# |---|---|---|
# | `Autoencoder` (E, D), KL-reg, `scale_factor` | `AutoencoderKL`, `config.scaling_factor` | 02 |
# | `NoiseSchedule.linear` (sqrt-linear betas), T | `DDIMScheduler(beta_schedule="scaled_linear")` | 03 |
# | `UNet` eps_theta: `ResBlock`, `SpatialTransformer` | `UNet2DConditionModel`: `ResnetBlock2D`, `Transformer2DModel` | 04 |
# | `Tokenizer`, `TextEncoder` tau_theta (trained with the UNet) | `CLIPTokenizer`, `CLIPTextModel` (frozen, pretrained) | 04 |
# | `ddim_sample`, `cfg_model` | `DDIMScheduler.step`, the loop in `StableDiffusionPipeline.__call__` | 06 |
#
# The one real design difference is tau_theta: the paper trains its text transformer jointly with
# the UNet (as we do, on our 27-word vocabulary), SD v1 takes OpenAI's CLIP ViT-L/14 text encoder
# and keeps it frozen.

# %% [markdown]
# ## 2. Side by side: every hyperparameter, with parameter counts
#
# Our numbers are read from the shipped model. SD v1's come from its published configs (the
# `unet/config.json` and `vae/config.json` of the v1 releases, typed in below): we build its UNet,
# VAE and CLIP text encoder with diffusers and transformers **on the meta device**, which creates
# every parameter's shape but no memory and no weights, and count.

# %%
SD_UNET = dict(  # Stable Diffusion v1.x unet/config.json (the fields that differ from diffusers' defaults)
    sample_size=64, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=[320, 640, 1280, 1280],
    down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"], up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
    cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32, flip_sin_to_cos=True, freq_shift=0)
SD_VAE = dict(  # vae/config.json
    block_out_channels=[128, 256, 512, 512], down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
    latent_channels=4, layers_per_block=2, norm_num_groups=32, sample_size=512, scaling_factor=0.18215)


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


with torch.device("meta"):
    sd_unet = diffusers.UNet2DConditionModel(**SD_UNET)
    sd_vae = diffusers.AutoencoderKL(**SD_VAE)
    sd_clip = CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                           num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu"))
print("built on", next(sd_unet.parameters()).device)

# %%
# NBVAL_CHECK_OUTPUT
c, ae = ldm.config, ldm.autoencoder
rows = [
    ("image size H x W", f"{c.image_size} x {c.image_size}", "512 x 512"),
    ("downsampling factor f", ae.config.f, 2 ** (len(SD_VAE["block_out_channels"]) - 1)),
    ("latent z: c x h x w", " x ".join(map(str, ldm.latent_shape)), f"4 x {SD_UNET['sample_size']} x {SD_UNET['sample_size']}"),
    ("latent scale (1 / std z)", f"{float(ae.scale_factor):.5f} (measured)", f"{SD_VAE['scaling_factor']} (measured by its authors)"),
    ("autoencoder parameters", f"{count(ae):,}", f"{count(sd_vae):,}"),
    ("UNet widths", [c.unet.model_channels * m for m in c.unet.channel_mult], SD_UNET["block_out_channels"]),
    ("UNet ResBlocks per level (down)", c.unet.num_res_blocks, SD_UNET["layers_per_block"]),
    ("attention heads", c.unet.num_heads, SD_UNET["attention_head_dim"]),
    ("UNet parameters", f"{ldm.unet.num_params():,}", f"{count(sd_unet):,}"),
    ("text encoder tau_theta", "2-layer transformer, trained", "CLIP ViT-L/14 text, frozen"),
    ("tokens L x width d", f"{c.text.context_len} x {c.text.dim}", f"77 x {SD_UNET['cross_attention_dim']}"),
    ("text encoder parameters", f"{count(ldm.text_encoder):,}", f"{count(sd_clip):,}"),
    ("T, betas", f"{c.T}, {c.schedule} {c.beta_start}..{c.beta_end}", "1000, scaled_linear 0.00085..0.012"),
    ("sampler, guidance s", f"DDIM-{STEPS}, s = {GUIDANCE}", "PNDM/DDIM-50, s = 7.5"),
]
print(f"{'':32s} {'ldm_mini shapes-kl-f4':32s} Stable Diffusion v1")
for name, ours, sd in rows:
    print(f"{name:32s} {str(ours):32s} {sd}")
print(f"\nparameters in all: ldm_mini {count(ldm):,}, SD v1 {count(sd_unet) + count(sd_vae) + count(sd_clip):,} "
      f"({(count(sd_unet) + count(sd_vae) + count(sd_clip)) / count(ldm):.0f}x)")

# %% [markdown]
# Read the table from the top. f = 4 with c = 4 keeps 4 x 8 x 8 = 256 numbers of our 3,072 (12x);
# SD's f = 8 keeps 4 x 64 x 64 = 16,384 of 786,432 (48x): the paper's "LDM-8", a stronger perceptual
# compression, affordable because a 512-pixel image has more redundancy than our 32-pixel shapes.
# Both latent scales are the same measurement (lesson 02b: 1 / std of z on training data); ours is
# 0.405 because our small KL weight left z with std 2.5, SD's 0.18215 because its latents had std 5.5.
# The noise schedule is *identical*: the sqrt-linear betas from 0.00085 to 0.012 that we use were taken
# from SD. The UNet is the same design with 130 times as many parameters: 860 million.
#
# ## 3. FLOPs per image
#
# One image costs S sampler steps, each one UNet call per branch of classifier-free guidance (two
# with s > 1: the batch [uncond, cond]), plus one decoder call and one text-encoder call:
#
# $$\text{FLOPs per image} \approx S \cdot 2 \cdot F_{\text{UNet}} + F_D \quad (+ F_{\tau_\theta},\ \text{negligible}).$$
#
# `torch.utils.flop_counter.FlopCounterMode` counts the FLOPs of every matrix product, convolution
# and attention that a forward pass dispatches (2 per multiply-add; normalisations and activations
# are not counted). It only needs shapes, so SD's UNet and decoder are counted **on the meta device,
# at full size** (64 x 64 latents, 77 tokens, 512 x 512 output): no scaling, no estimate.

# %%
# NBVAL_CHECK_OUTPUT
def flops(fn) -> float:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        fn()
    return counter.get_total_flops()


ctx_ours = torch.zeros(1, c.text.context_len, c.text.dim)
f_unet_ours = flops(lambda: ldm.unet(torch.zeros(1, *ldm.latent_shape), torch.tensor([500]), ctx_ours))
f_dec_ours = flops(lambda: ae.decode(torch.zeros(1, *ldm.latent_shape)))
with torch.device("meta"):
    z_sd, ctx_sd = torch.zeros(1, 4, 64, 64), torch.zeros(1, 77, 768)
f_unet_sd = flops(lambda: sd_unet(z_sd, torch.tensor([500], device="meta"), encoder_hidden_states=ctx_sd))
f_dec_sd = flops(lambda: sd_vae.decode(z_sd))
per_image_ours = STEPS * 2 * f_unet_ours + f_dec_ours
per_image_sd = 50 * 2 * f_unet_sd + f_dec_sd
print(f"UNet forward, one latent:  ldm_mini {f_unet_ours / 1e9:8.3f} GFLOPs   SD v1 {f_unet_sd / 1e9:10.1f} GFLOPs")
print(f"decoder D, one image:      ldm_mini {f_dec_ours / 1e9:8.3f} GFLOPs   SD v1 {f_dec_sd / 1e9:10.1f} GFLOPs")
print(f"one image, DDIM-{STEPS} + CFG:  ldm_mini {per_image_ours / 1e9:8.1f} GFLOPs   SD v1 {per_image_sd / 1e12:10.1f} TFLOPs"
      f"   ({per_image_sd / per_image_ours:,.0f}x)")

# %% [markdown]
# SD needs about 83 TFLOPs per 512 x 512 image, about 5,000 times our 17 GFLOPs per 32 x 32 image:
# one call of SD's UNet (803 GFLOPs) costs as much as about 4,800 calls of ours.
# Two things stand out. SD's decoder alone (2.5 TFLOPs) costs as much as three UNet calls, because it
# works at full 512 x 512 resolution with 128-512 channels; in ours the decoder is a small share.
# And the UNet calls dominate both: 100 of them per image. That is why the paper works in latent
# space (lesson 07 measured the same ratio at f = 1 vs f = 4) and why fewer sampler steps (lesson 06)
# matter so much in practice.
#
# ## 4. Our model, exported: diffusers samples it
#
# `ldm_mini.bridge.export_to_diffusers(ldm, OUT)` (on the command line:
# `ldm-mini export-diffusers shapes-kl-f4 OUT`) renames every weight to diffusers' layout and writes
# `OUT/unet`, `OUT/vae` and `OUT/scheduler`, which `UNet2DConditionModel.from_pretrained`,
# `AutoencoderKL.from_pretrained` and `DDIMScheduler.from_pretrained` load, plus our tokenizer and
# tau_theta beside them (diffusers has no class for those).

# %%
# NBVAL_IGNORE_OUTPUT
out = Path(tempfile.mkdtemp()) / "shapes-kl-f4-diffusers"
start = time.perf_counter()
bridge.export_to_diffusers(ldm, out)
size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
print(f"exported in {time.perf_counter() - start:.1f} s: {size / 1e6:.1f} MB (float32; our shipped file is fp16)")

# %%
# NBVAL_CHECK_OUTPUT
print(sorted(p.name for p in out.iterdir()))
unet_cfg = json.loads((out / "unet" / "config.json").read_text())
sched_cfg = json.loads((out / "scheduler" / "scheduler_config.json").read_text())
print({k: unet_cfg[k] for k in ("block_out_channels", "down_block_types", "attention_head_dim", "cross_attention_dim", "use_linear_projection")})
print({k: sched_cfg[k] for k in ("beta_schedule", "beta_start", "beta_end", "steps_offset", "set_alpha_to_one", "clip_sample", "timestep_spacing")})
print("our DDIM timesteps == diffusers':", bridge.timesteps_match(diffusers.DDIMScheduler.from_pretrained(out / "scheduler"), STEPS))

# %% [markdown]
# The scheduler settings are the conventions of lesson 06 in diffusers' words: `scaled_linear` is
# our sqrt-linear schedule; `"leading"` spacing with `steps_offset=1` visits tau = 1, 21, ..., 981 for
# S = 50, as our `ddim_timesteps`; `set_alpha_to_one=False` makes the last step land on alpha_bar_0.
#
# **Classifier-free guidance, compared.** diffusers' pipeline builds the batch `[uncond, cond]`, calls
# the UNet once, splits the result with `chunk(2)` and forms `noise_pred_uncond + guidance_scale *
# (noise_pred_text - noise_pred_uncond)`: our eps_u + s (eps_c - eps_u), in our order. Two details
# differ: `guidance_rescale` (default 0, off) can blend in a rescaled prediction (Lin et al. 2023),
# and the pipeline runs guidance only when s > 1: at s = 1 both compute eps_c, but for 0 <= s < 1 the
# pipeline silently returns the conditional prediction where we interpolate toward eps_u.
#
# **The attention mask.** Our UNet ignores padding tokens (a mask); SD's pipeline passes no mask, and
# SD's CLIP context attends to its padding, as it was trained. So `bridge.pipeline_embeds` cuts the
# padding off: each caption keeps its real tokens only (captions of one call need the same number of
# words). The unconditional context tau_theta("") has one real token; repeating it n times is exact,
# because attention over n identical keys returns their common value.
#
# Now the real thing: diffusers' own `StableDiffusionPipeline` over the exported unet, vae and
# scheduler, no text encoder or safety checker, our tau_theta's contexts as `prompt_embeds`, and the
# same initial noise z_T as `latents=`.

# %%
# NBVAL_IGNORE_OUTPUT
captions = ["a red circle", "a blue square", "a green triangle", "a purple circle"]  # 3 words each
pipe = bridge.load_pipeline(out)
tokenizer, text_encoder = bridge.load_text(out)
prompt_embeds, negative_embeds = bridge.pipeline_embeds(tokenizer, text_encoder, captions)
x_T = torch.randn((len(captions), *ldm.latent_shape), generator=torch.Generator().manual_seed(SEED))  # what generate(seed=SEED) draws
start = time.perf_counter()
ours = ldm.generate(captions, steps=STEPS, guidance=GUIDANCE, seed=SEED)
t_ours = time.perf_counter() - start
start = time.perf_counter()
theirs = pipe(prompt_embeds=prompt_embeds, negative_prompt_embeds=negative_embeds, latents=x_T.clone(), height=32, width=32,
              num_inference_steps=STEPS, guidance_scale=GUIDANCE, output_type="pt").images
t_theirs = time.perf_counter() - start
print(f"ldm_mini generate(): {t_ours:.1f} s; diffusers StableDiffusionPipeline: {t_theirs:.1f} s (4 images, DDIM-{STEPS}, s = {GUIDANCE})")
print(f"max |difference| per pixel (images in [0, 1]): {(theirs - ours).abs().max().item():.2e}")

# %%
# NBVAL_CHECK_OUTPUT
assert theirs.shape == ours.shape == (4, 3, 32, 32)
assert (theirs - ours).abs().max() < 2e-3, "the pipeline should reproduce generate() to 2e-3 per pixel"
print("diffusers' pipeline reproduces generate() within 2e-3 per pixel")

# %%
show_grid(torch.cat([ours, theirs, (theirs - ours).abs() * 1e4]),
          [f"ldm_mini: {t}" for t in captions] + ["diffusers pipeline"] * 4 + ["|difference| x 10,000"] * 4,
          ncols=4, scale=2.0, fontsize=8)
plt.show()

# %% [markdown]
# The two rows are the same pictures: the largest difference is about a millionth, float32 rounding
# (diffusers also computes alpha_bar in float32 where we use float64). The bottom row magnifies the
# difference 10,000 times and is still nearly black. (The times printed above are single runs on a
# CPU that other programs may share; `make bench` times the UNets and the DDIM loops properly.)
#
# ## 5. What diffusers cannot say about our model
#
# The weights map one to one (`tests/test_bridge.py` checks every name and shape), but three details
# of our architecture have no field in diffusers' configs. The export records them in each
# `config.json` under the private key `_ldm_mini_exact` (diffusers ignores keys that start with `_`),
# and `bridge.load_unet` / `bridge.load_vae` apply them after `from_pretrained`:
#
# - **GroupNorm groups.** diffusers uses one `norm_num_groups` for the whole autoencoder; ours keeps 4
#   channels per group at every width (8 groups at width 32, 16 at width 64). The export writes the
#   most frequent count and sets the others after loading.
# - **GroupNorm eps** in front of each SpatialTransformer: diffusers fixes 1e-6, ours is 1e-5.
# - **Encoder padding.** diffusers' (and the reference code's) stride-2 encoder convolution pads the
#   right and bottom edge only; ours pads one pixel on every side.
#
# What does ignoring them cost? Plain `from_pretrained`, against the exact load:

# %%
# NBVAL_CHECK_OUTPUT
exact_vae = json.loads((out / "vae" / "config.json").read_text())[bridge.EXACT_KEY]
exact_unet = json.loads((out / "unet" / "config.json").read_text())[bridge.EXACT_KEY]
print(f"UNet: {len(exact_unet['group_norms'])} GroupNorms get eps 1e-5; "
      f"VAE: {len(exact_vae['group_norms'])} GroupNorms get 8 groups instead of 16, "
      f"{len(exact_vae['symmetric_downsample'])} encoder downsamplers pad every side")
g = torch.Generator().manual_seed(SEED)
z_t, t = torch.randn(4, *ldm.latent_shape, generator=g), torch.tensor([1, 250, 500, 999])
tokens = ldm.tokens(captions)
context, mask = ldm.context(tokens)
z0 = ldm.sample_latents(captions, steps=20, guidance=GUIDANCE, seed=SEED)  # four real latents
diffs = {}
with torch.no_grad():
    eps_ours = ldm.eps(z_t, t, tokens)
    for exact in (True, False):
        unet = bridge.load_unet(out / "unet", exact)
        vae = bridge.load_vae(out / "vae", exact)
        eps = unet(z_t, t, encoder_hidden_states=context, encoder_attention_mask=mask).sample
        x = vae.decode(z0 / vae.config.scaling_factor).sample.clamp(-1, 1)
        diffs[exact] = ((eps - eps_ours).abs().max().item(), (x - ldm.decode(z0)).abs().max().item(), x)
assert diffs[True][0] < 1e-4 and diffs[True][1] < 1e-4 and diffs[False][0] < 1e-4
assert diffs[False][1] > 0.05
print("exact load:          UNet within 1e-4 of eps_theta, decoder within 1e-4 of D")
print("plain from_pretrained: UNet still within 1e-4 (eps barely matters), decoder off by more than 0.05")

# %%
# NBVAL_IGNORE_OUTPUT
print(f"max |difference| exact load: UNet {diffs[True][0]:.1e}, decoder {diffs[True][1]:.1e}; "
      f"plain from_pretrained: UNet {diffs[False][0]:.1e}, decoder {diffs[False][1]:.2f} (images in [-1, 1])")
show_grid(torch.cat([(diffs[True][2] + 1) / 2, (diffs[False][2] + 1) / 2]),
          ["exact load"] * 4 + ["plain from_pretrained"] * 4, ncols=4, scale=2.0, fontsize=8)
plt.show()

# %% [markdown]
# The eps change is invisible, but the wrong group count changes the decoder's output by a large
# fraction of the pixel range: normalising 2 channels per group instead of 4 gives other means and
# variances at every layer of the 32-channel level. So an architecture is more than its weights:
# two models with identical parameter tensors can compute different functions, and a conversion
# must check the hyperparameters that have no tensor (groups, eps, padding), not only the names.
#
# ## 6. The way back: SD's configs are ldm_mini configs
#
# `bridge.load_from_diffusers(unet_dir, vae_dir)` reads a diffusers folder into our classes and
# refuses, naming the field, any config we cannot reproduce. SD v1's configs pass: here they are
# translated to our dataclasses, and our own `UNet` and `Autoencoder` built from them (on the meta
# device again) have exactly SD's parameter counts and FLOPs.

# %%
# NBVAL_CHECK_OUTPUT
sd_unet_config = bridge.unet_config_from_diffusers(dict(sd_unet.config))
sd_ae_config = bridge.vae_config_from_diffusers(dict(sd_vae.config))
print(sd_unet_config)
print(sd_ae_config)
with torch.device("meta"):
    our_sd_unet = UNet(sd_unet_config)
    our_sd_ae = Autoencoder(sd_ae_config)
f_ours_as_sd = flops(lambda: our_sd_unet(z_sd, torch.tensor([500], device="meta"), ctx_sd))
print(f"UNet parameters: ldm_mini's UNet {our_sd_unet.num_params():,}, diffusers' {count(sd_unet):,}; "
      f"FLOPs {f_ours_as_sd / 1e9:.1f} vs {f_unet_sd / 1e9:.1f} GFLOPs")
print(f"autoencoder parameters: ldm_mini's Autoencoder {count(our_sd_ae):,}, diffusers' {count(sd_vae):,}")

# %% [markdown]
# Our UNet at SD's size is SD's UNet: `model_channels=320, channel_mult=(1, 2, 4, 4)`,
# cross-attention at the three upper levels, 8 heads, context width 768. The one flag we translate
# is `use_linear_projection=False`: SD v1 writes `proj_in`/`proj_out` as 1 x 1 convolutions, which
# are our Linear layers with the weight reshaped.
#
# ## 7. Where the lessons appear in Stable Diffusion
#
# | lesson | idea | in SD / diffusers |
# |---|---|---|
# | 01 rate-distortion | perceptual vs semantic compression | f = 8: the VAE removes imperceptible detail, the UNet models the rest |
# | 02 autoencoder | KL-reg, latent scale 1/std(z) | `AutoencoderKL`, `scaling_factor=0.18215` |
# | 03 forward noising | q(z_t given z_0), sqrt-linear schedule | `DDIMScheduler.add_noise`, `scaled_linear` betas |
# | 04 UNet, cross-attention | Q from pixels, K and V from tau_theta(y) | `Transformer2DModel.attn2`; attention maps per word (Prompt-to-Prompt) |
# | 05 training | L_LDM, 10% empty captions | the same loss in diffusers' `train_text_to_image.py`; SD dropped 10% of captions |
# | 06 sampling | DDIM, eta, guidance, inversion | `DDIMScheduler`, `guidance_scale`, `DDIMInverseScheduler` |
# | 07 choosing f | cost vs quality over f | SD chose f = 8 (the paper's LDM-8) |
# | 08 bits | where the bits go | why diffusion in a 48x-compressed latent is enough |
# | 09 super-resolution | concatenation conditioning | `StableDiffusionUpscalePipeline` (the x4 upscaler concatenates the low-res image to z_t) |
# | 10 binding | colours leak between objects | not a limitation the paper lists (its Sec. 5 names slow sequential sampling and the autoencoder's fidelity ceiling); raised by this series' seed review about SD, whose CLIP text encoder was trained only through its pooled token (in lesson 10 a CLIP-like frozen encoder binds 94.0% against 99.0% jointly trained, one pooled vector 45.0%: the mechanism is not supported at our scale); Attend-and-Excite ships in diffusers |
#
# ## 8. Real Stable Diffusion weights (optional, nothing is downloaded)
#
# If you have a Stable Diffusion v1 folder on disk (the diffusers layout: `unet/`, `vae/`,
# `text_encoder/`, `tokenizer/`), set `LDM_SD_PATH` to it before starting Jupyter. The cells below then
# load SD's UNet and VAE **into ldm_mini's classes**, encode the prompt with SD's CLIP (transformers),
# sample with *our* `ddim_sample` and `cfg_model` at s = 7.5, and draw lesson 04's cross-attention
# map for one word. On a CPU each step costs two 860M-parameter UNet calls (about 1.6 TFLOPs).

# %%
# NBVAL_IGNORE_OUTPUT
if SD_PATH is None or not (Path(SD_PATH) / "unet" / "config.json").exists():
    print("skipped: no Stable Diffusion weights here. Set LDM_SD_PATH to a local SD v1 folder (unet/, vae/, "
          "text_encoder/, tokenizer/) to run this section; nothing is downloaded.")
    sd = None
else:
    from transformers import CLIPTokenizer

    from ldm_mini.diffusion import NoiseSchedule
    from ldm_mini.sampling import cfg_model, ddim_sample

    sd_path = Path(SD_PATH)
    sd_unet_ours, sd_ae_ours = bridge.load_from_diffusers(sd_path / "unet", sd_path / "vae")
    clip_tok = CLIPTokenizer.from_pretrained(sd_path / "tokenizer")
    clip = CLIPTextModel.from_pretrained(sd_path / "text_encoder").eval()
    prompt = "a photograph of a red apple on a wooden table"

    def clip_context(text: str) -> torch.Tensor:
        ids = clip_tok([text], padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        with torch.no_grad():
            return clip(ids).last_hidden_state  # 1 77 768; SD attends to all 77 tokens (no mask)

    sd = dict(context=clip_context(prompt), uncond=clip_context(""), prompt=prompt)
    schedule = NoiseSchedule.linear(1000, 0.00085, 0.012)
    eps_model = cfg_model(sd_unet_ours, sd["context"], sd["uncond"], 7.5)
    z_T = torch.randn(1, 4, 64, 64, generator=torch.Generator().manual_seed(SEED))
    start = time.perf_counter()
    with torch.no_grad():
        z0_sd = ddim_sample(eps_model, z_T, schedule, steps=SD_STEPS)
        sd["image"] = ((sd_ae_ours.decode(z0_sd / sd_ae_ours.scale_factor) + 1) / 2).clamp(0, 1)
    print(f"SD v1 in ldm_mini's classes: DDIM-{SD_STEPS} at s = 7.5 in {time.perf_counter() - start:.0f} s")

# %%
# NBVAL_IGNORE_OUTPUT
if sd is not None:
    word = "apple"
    ids = clip_tok([sd["prompt"]]).input_ids[0]
    position = [clip_tok.decode([i]).strip() for i in ids].index(word)
    t_mid = torch.tensor([501])
    z_mid = schedule.q_sample(z0_sd, t_mid, z_T)   # the generated latent, half re-noised (as in lesson 04)
    with torch.no_grad(), sd_unet_ours.record_attention():
        sd_unet_ours(z_mid, t_mid, sd["context"])   # lesson 04's instrument, on SD's UNet
    maps = [m[0, :, :, :, position].mean(0) for m in sd_unet_ours.attention_maps().values() if m.shape[2] == 16]
    fig, axes = plt.subplots(1, 2, figsize=(6, 3))
    axes[0].imshow(sd["image"][0].permute(1, 2, 0).numpy())
    axes[0].set_title(sd["prompt"], fontsize=7)
    axes[1].imshow(torch.stack(maps).mean(0).numpy(), cmap="magma")
    axes[1].set_title(f"cross-attention to '{word}' (16 x 16 layers, t = 501)", fontsize=7)
    for ax in axes:
        ax.axis("off")
    plt.show()

# %% [markdown]
# ## Summary
# - Stable Diffusion v1 is the paper's LDM at scale: f = 8, c = 4, latent scale 0.18215 (ours 0.405),
#   the same sqrt-linear schedule with T = 1000, an 860M-parameter UNet of exactly our design (our
#   `UNet` class at SD's config has SD's 859,520,964 parameters), CLIP ViT-L/14 as a frozen tau_theta
#   with 77 tokens, guidance 7.5. About 83 TFLOPs per 512 x 512 image (ours: 17 GFLOPs).
# - `ldm-mini export-diffusers` turns our model into a folder diffusers loads with its own classes;
#   diffusers' `StableDiffusionPipeline` then reproduces `generate()` to about 1e-6 per pixel.
# - Classifier-free guidance is the same formula in the same batch order; the pipeline skips it for
#   s <= 1 and passes no attention mask, so prompts go in without padding.
# - A conversion must match what has no tensor: GroupNorm groups and eps, padding. Ignoring the
#   groups leaves every weight right and the decoder wrong.
#
# ## Exercises
#
# Each exercise has a check in `ldm_mini.lessons.exercises.lesson_11`: put your answer in place of
# `None` and run the cell; a wrong answer gets a hint, not the number. Each runs in well under a
# minute (the meta device counts without weights).
#
# 1. **Code change: SD 2.** Stable Diffusion 2's UNet changed `attention_head_dim` to `[5, 10, 20, 20]`
#    (64 channels per head at every level, so the head *count* grows with the width),
#    `cross_attention_dim` to 1024 and `use_linear_projection` to True. Build it on the meta device
#    with `SD_UNET` and those changes, and pass its config to `bridge.unet_config_from_diffusers`.
#    Which field does ldm_mini refuse, and why? `answer_1`: the field's name (a string).
# 2. **Computation: resolution.** Estimate the FLOPs of one SD UNet call at 256 x 256 (latents
#    32 x 32) as a fraction of the 512 x 512 call, knowing that convolutions scale with the number of
#    pixels and self-attention with its square; then count it with `flops` on the meta device.
#    `answer_2`: GFLOPs of one call at 256 x 256 (a number).
# 3. **Prediction: guidance at s <= 1.** Write down first: at s = 1 and at s = 0.5, will diffusers'
#    pipeline and our `generate` give the same images? (Reread section 4's note on guidance.) Then run
#    both from the same `x_T` (10 steps are enough). `answer_3`: the pair `(max_diff_s1, max_diff_s05)`
#    of largest per-pixel differences, images in [0, 1].
# 4. **Computation: other spacings.** diffusers also offers `timestep_spacing="trailing"`. Load the
#    exported scheduler with it (`DDIMScheduler.from_pretrained(out / "scheduler",
#    timestep_spacing="trailing")`), call `set_timesteps(50)` and read its timesteps. How do they
#    differ from ours, and which of the two starts from the noisiest step t = 999? `answer_4`: the 50
#    timesteps (a list of ints).

# %%
from ldm_mini.lessons.exercises import lesson_11 as ex

answer_1 = None  # your answer: the refused config field's name, a string
ex.check_1(answer_1)

# %%
from ldm_mini.lessons.exercises import lesson_11 as ex

answer_2 = None  # your answer: GFLOPs of one SD v1 UNet call on a 32 x 32 latent (256 x 256 pixels), a float
ex.check_2(answer_2)

# %%
from ldm_mini.lessons.exercises import lesson_11 as ex

answer_3 = None  # your answer: (max_diff_s1, max_diff_s05), max |pipeline - generate()| per pixel in [0, 1], two floats
ex.check_3(answer_3)

# %%
from ldm_mini.lessons.exercises import lesson_11 as ex

answer_4 = None  # your answer: the 50 'trailing' timesteps, a list of ints
ex.check_4(answer_4)
