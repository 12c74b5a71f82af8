# %% [markdown]
# # 00 · Overview: what a latent diffusion model is
#
# **What you will learn**
# - the pipeline of a latent diffusion model (LDM), as in Rombach et al., *High-Resolution
#   Image Synthesis with Latent Diffusion Models* (CVPR 2022), and why it is split in two stages;
# - the built-in data this course trains on: captioned shapes, drawn on your machine, and crops
#   of photographs that ship inside scikit-image (nothing is downloaded);
# - how a caption becomes tokens for the text encoder tau_theta;
# - what each later lesson builds, and the symbols every lesson uses (section 7).
#
# **Study time:** about 30 minutes (20 to read, 10 for the three exercises at the end).
# **Run time:** about 6-8 s for Run All on 2 CPU cores (measured when this notebook was rebuilt, on an "Intel(R) Xeon(R) Processor"; other 2-core CPUs can take up to ~1.7x as long).
#
# Every lesson starts with the same *parameters cell*: the profile ("quick" for a CPU,
# "full" for a GPU), the seed and the device. Change them there, nowhere else.

# %%
# Parameters
import os

PROFILE = os.environ.get("LDM_PROFILE")  # None: "full" on a GPU, "quick" on a CPU
SEED = 0
DEVICE = None  # None: cuda > mps > cpu

# %%
import matplotlib.pyplot as plt
import torch

import ldm_mini
from ldm_mini.config import get_profile, pick_device, seed_everything

device = pick_device(DEVICE)
profile = get_profile(PROFILE, device)
seed_everything(SEED)
print(f"ldm_mini {ldm_mini.__version__}, torch {torch.__version__}")
print(f"device: {device}, profile: {profile.name}, threads: {torch.get_num_threads()}")

# %% [markdown]
# ## 1. The idea in one picture
#
# A diffusion model learns to turn noise into images by undoing a gradual noising process.
# Run in *pixel space*, every one of its hundreds of denoising steps touches every pixel:
# that is what made diffusion models cost hundreds of GPU-days. The paper's observation is that
# most of those pixels' bits describe **imperceptible detail**. So it splits the work in two:
#
# 1. **Perceptual compression** (lessons 01-02). An autoencoder, encoder E and decoder D, is
#    trained once. E maps an image x of H x W x 3 pixels to a latent z = E(x) of size
#    h x w x c, with downsampling factor f = H / h. D maps it back: x~ = D(z).
# 2. **Semantic compression** (lessons 03-06). A diffusion model learns the distribution of
#    the latents z. Its denoiser eps_theta(z_t, t, tau_theta(y)) is a UNet that reads the
#    caption y through **cross-attention**, after a text encoder tau_theta.
#
# To generate, start from noise z_T ~ N(0, I), denoise it step by step (DDPM or DDIM), and
# decode once with D.

# %%
from ldm_mini.lessons.plotting import pipeline_figure

pipeline_figure()
plt.show()

# %% [markdown]
# ## 2. The data: captioned shapes
#
# Real text-to-image models train on billions of captioned photos. We draw our own: one or two
# shapes (circle, square, triangle) in six colours, two sizes and five positions, with a caption
# from a small English grammar. Because we know every attribute of every image, we can later
# *measure* whether a generated image matches its prompt.
#
# The images are a pure function of `(seed, split, index)`, so everyone in a classroom sees
# the same pictures. The first call draws 20,000 images and caches them in `data/cache/`.

# %%
import time

from ldm_mini.data import images_uint8, load_shapes

start = time.perf_counter()
train = load_shapes(profile.n_train, "train", seed=SEED)
val = load_shapes(profile.n_eval, "val", seed=SEED)
print(f"loaded in {time.perf_counter() - start:.1f} s")  # slow the first time only
train

# %%
# NBVAL_CHECK_OUTPUT
print(len(train), "training images,", len(val), "validation images")
print("columns:", train.column_names)
print("example:", {k: v for k, v in train[0].items() if k != "image"})

# %%
from ldm_mini.lessons.plotting import show_grid

first = train.select(range(24))
show_grid(images_uint8(first), first["caption"], ncols=8)
plt.show()

# %% [markdown]
# Half of the images hold two objects. Their captions either state a relation
# ("above", "to the left of") or just say "and". The attribute columns always list the
# objects in a fixed order (left before right, top before bottom), whatever order the
# caption uses: that lets lesson 10 check *which* colour landed on *which* shape.

# %%
# NBVAL_CHECK_OUTPUT
from collections import Counter

kinds = Counter(train["caption_kind"])
for kind, count in sorted(kinds.items()):
    print(f"{kind:<24} {count / len(train):6.1%}")

# %% [markdown]
# ## 3. Real photographs
#
# Shapes are flat and clean. To see what an autoencoder throws away in real textures
# (lesson 01), we also crop the photographs that ship inside scikit-image. Train and
# validation crops come from different photos.

# %%
from ldm_mini.data import PHOTO_SOURCES, photo_crops

crops = photo_crops(16, size=32, split="train", seed=SEED)
print("photos used for training crops:", ", ".join(PHOTO_SOURCES["train"]))
show_grid(crops, ncols=8)
plt.show()

# %% [markdown]
# ## 4. From caption to tokens
#
# The text encoder tau_theta cannot read letters; it reads integer **tokens**. Our captions
# come from a closed vocabulary, so a tokenizer is one dictionary lookup per word. Every
# caption starts with a `<start>` token and is padded to a fixed length L. The empty caption
# "" is kept for **classifier-free guidance** (lesson 06), where the model also learns to
# denoise without any caption.

# %%
# NBVAL_CHECK_OUTPUT
from ldm_mini.text import Tokenizer

tokenizer = Tokenizer()
print("vocabulary size:", len(tokenizer), "| context length L:", tokenizer.context_len)
tokens = tokenizer(["a red circle above a green triangle", ""])
print(tokens)
print("padding mask of the first caption:", tokenizer.mask(tokens)[0].int().tolist())

# %% [markdown]
# A word the model never saw has no token. Rather than guessing, the tokenizer says so and
# lists the words it knows:

# %%
# NBVAL_CHECK_OUTPUT
try:
    tokenizer(["a red car and a white sheep"])
except ValueError as error:
    print(error)

# %% [markdown]
# ## 5. How much smaller is the latent space?
#
# A 32 x 32 RGB image is 3,072 numbers. With f = 4 and c = 4 latent channels the diffusion
# model works on 8 x 8 x 4 = 256 numbers: 12 times fewer per denoising step, and the UNet's
# convolutions and attention shrink with them. Lesson 07 measures what that buys.

# %%
# NBVAL_CHECK_OUTPUT
H = W = profile.image_size
for f in (1, 2, 4, 8, 16):
    h, w, c = H // f, W // f, (3 if f == 1 else 4)
    print(f"f = {f:>2}: latent {h:>2} x {w:>2} x {c} = {h * w * c:>5} numbers ({H * W * 3 / (h * w * c):5.1f}x fewer than pixels)")

# %% [markdown]
# ## 6. The road ahead
#
# | lesson | what it builds | the paper |
# |---|---|---|
# | 01 Rate and distortion | bits/dim, perceptual vs semantic compression | Sec. 1, Fig. 2 |
# | 02 The autoencoder | E, D, KL-reg and VQ-reg, the loss, the factor f | Sec. 3.1, Tab. 8 |
# | 02b The latent space | the latent scale, what the latent looks like, why it stays a 2D grid | Sec. 3.1 |
# | 03 Forward noising | q(z_t given z_0), noise schedules, signal-to-noise | Sec. 3.2 |
# | 04 The UNet and cross-attention | eps_theta, tau_theta, Q from the image, K and V from text | Sec. 3.3, Fig. 3 |
# | 05 Training the LDM | the loss of Eq. 2, conditioned on the caption (Eq. 4), on cached latents | Sec. 3.2-3.3 |
# | 06 Sampling | DDPM, DDIM, classifier-free guidance | Sec. 4.3 |
# | 07 Choosing f | quality and speed against f | Fig. 6, Fig. 7 |
# | 08 Where the bits go | rate vs distortion along the reverse process | Sec. 1, Fig. 2 |
# | 09 Super-resolution | concatenation conditioning | Tab. 5 |
# | 10 Attribute binding | where conditioning fails | the limitation the seed review raises; Sec. 3.3 |
# | 11 To Stable Diffusion | our model beside SD v1, component by component | Sec. 4.3, Fig. 3 |
#
# ## 7. The symbols of the series
#
# Every later lesson writes the same symbol for the same thing, in its text and in its code.
# Come back to this table when a lesson uses a symbol you do not remember. The "in code"
# column gives the name in the `ldm_mini` package (`ae` an autoencoder, `schedule` a
# `NoiseSchedule`, `ldm` a text-to-image `LatentDiffusion`); the cell after the table looks
# each one up, so the table cannot drift away from the code.
#
# | symbol | in code | meaning |
# |---|---|---|
# | x | `x` (`x0` for a clean image) | image, H x W x 3, model range [-1, 1] |
# | E, D | `ae.encode_latent(x)`, `ae.decode(z)` | encoder, decoder of the autoencoder (`ae.encode(x)` gives KL-reg's posterior q(z given x), not z) |
# | f | `ae.config.f` | downsampling factor, h = H / f, w = W / f |
# | c | `ae.config.latent_channels` | channels of the latent |
# | z = z_0 | `z0` | the latent the diffusion model sees, scaled: z_0 = scale * E(x) |
# | scale | `ae.scale_factor` | 1 / std(E(x)) on training images; decode with D(z_0 / scale) |
# | t, T | `t`, `schedule.T` | timestep 0..T-1 (code counts from 0: the paper's t = 1 is `t = 0`), T = 1000 |
# | beta_t, alpha_t, alpha_bar_t | `schedule.betas`, `schedule.alphas`, `schedule.alphas_cumprod` | noise schedule; alpha_t = 1 - beta_t, alpha_bar_t = prod_{s<=t} alpha_s |
# | SNR(t) | `schedule.snr(t)` | alpha_bar_t / (1 - alpha_bar_t) |
# | eps | `eps`, `noise` | Gaussian noise N(0, I) |
# | z_t | `z_t` = `schedule.q_sample(z0, t, noise)` | noised latent sqrt(alpha_bar_t) z_0 + sqrt(1 - alpha_bar_t) eps |
# | eps_theta(z_t, t, tau_theta(y)) | `ldm.eps(z_t, t, tokens)` (it calls `ldm.unet(z_t, t, context)`) | the denoiser's noise prediction |
# | x0_hat (z0_hat) | `x0_hat` = `schedule.predict_x0_from_eps(z_t, t, eps)` | predicted clean latent (z_t - sqrt(1 - alpha_bar_t) eps_theta) / sqrt(alpha_bar_t) |
# | y, tau_theta | `caption`, `ldm.text_encoder` | the caption and the text encoder; tau_theta(y) = `ldm.context(ldm.tokens(captions))[0]` is b L d |
# | s | `guidance` (of `ldm.generate`) | classifier-free guidance scale: eps_u + s (eps_c - eps_u) |
# | S, tau_i | `steps`, `ddim_timesteps(T, steps)` | number of sampling steps and the timesteps they visit |
# | eta, sigma_i | `eta` | DDIM stochasticity; eta = 0 deterministic, eta = 1 DDPM's variance |
# | v | `parameterization="v"` | v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) z_0 (`schedule.v_from_eps_x0`) |
# | K | `ae.config.vq_codebook_size` | VQ codebook size |
# | R, bits/dim | `ldm_mini.rate` | rate in bits per image dimension (3 H W) |
#
# Two names differ from what you may meet elsewhere: the code calls alpha_bar_t `alphas_cumprod`
# (as the paper's reference code and diffusers do) and the guidance scale s `guidance`.

# %%
# NBVAL_CHECK_OUTPUT
# Look up every "in code" name of the table in the package: a renamed function would fail here.
import inspect
from dataclasses import fields

from ldm_mini.autoencoder import Autoencoder, AutoencoderConfig
from ldm_mini.diffusion import NoiseSchedule
from ldm_mini.ldm import DiffusionConfig, LatentDiffusion
from ldm_mini.sampling import ddim_timesteps

schedule = NoiseSchedule.linear()
names = {
    "schedule": [n for n in ("T", "betas", "alphas", "alphas_cumprod", "snr", "q_sample", "predict_x0_from_eps", "v_from_eps_x0") if not hasattr(schedule, n)],
    "ae": [n for n in ("encode_latent", "decode", "encode") if not hasattr(Autoencoder, n)],
    "ae.config": [n for n in ("f", "latent_channels", "vq_codebook_size") if n not in {f.name for f in fields(AutoencoderConfig)}],
    "ldm": [n for n in ("eps", "tokens", "context", "generate") if not hasattr(LatentDiffusion, n)],
    "ldm.generate": [n for n in ("steps", "guidance", "eta") if n not in inspect.signature(LatentDiffusion.generate).parameters],
    "config": [n for n in ("parameterization", "T") if n not in {f.name for f in fields(DiffusionConfig)}],
}
print("missing names:", {k: v for k, v in names.items() if v} or "none")
print("ae has scale_factor:", "scale_factor" in dict(Autoencoder(AutoencoderConfig()).named_buffers()))
print("DDIM timesteps for S = 5:", ddim_timesteps(1000, 5).tolist())

# %% [markdown]
# ## 8. Who judges a generated image
#
# From lesson 04 on we ask of generated images: does "a red circle and a blue square" show a red
# circle and a blue square? Three readers take part, and the series keeps their jobs apart:
#
# - the **attribute classifier** (`eval/classifier.py`) names every attribute of a scene. Its
#   feature maps are the *perceptual loss* of every autoencoder (lesson 02), so the decoders were
#   trained to please it. Letting it mark the samples would be a student marking the exam they wrote;
# - the **judge** (`eval/judge.py`) names the same attributes and marks every sample in the series.
#   No model was trained against it: another architecture (strided convolutions, ReLU, wider), another
#   seed, and it learnt through the defects generated images have (blur, colour casts, stray specks,
#   grain);
# - the **detector** (`eval/detector.py`) involves no learning at all: connected blobs, their mean
#   colour, how an object narrows towards its top (a triangle) and how much of its box it fills (a
#   square). It is the check on the judge.
#
# A judge is only worth what it agrees with. The manifest records, for the shipped judge, how often
# it and the detector read the same objects (the same colours on the same shapes), on real test images
# and on images generated by the shipped model (lesson 05 uses these):

# %%
# NBVAL_CHECK_OUTPUT
from ldm_mini.checkpoints import read_manifest

manifest = read_manifest()
judge_entry, headline = manifest["judge"]["metrics"], manifest["shapes-kl-f4"]["headline"]
print(f"the judge on clean validation images: {min(v for k, v in judge_entry.items() if k.startswith('val_acc')):.1%} "
      f"or better on every attribute; with defects added: {min(v for k, v in judge_entry.items() if k.startswith('val_defects')):.1%} or better")
print(f"judge and detector read the same objects on {judge_entry['real_agree_objects']:.1%} of {judge_entry['real_n']} real test images "
      f"(the detector matches the true scene on {judge_entry['real_detector_objects_right']:.1%})")
agree = headline["agreement"]
print(f"... and on {agree['objects']:.1%} of {agree['n']} generated images ({len(agree['disagree'])} disagreements; "
      f"same verdict for the caption on {agree['verdict']:.1%})")

# %% [markdown]
# ## Summary
# - An LDM = an autoencoder (E, D) trained once for *perceptual* compression, plus a diffusion
#   model trained in its latent space for *semantic* compression.
# - The caption y enters the denoiser through tau_theta and cross-attention.
# - Our data is drawn on your machine and every attribute is known, so every claim can be measured.
# - Generated images are marked by a judge no model was trained against, checked by a rule-based detector.
#
# ## Exercises
#
# Each exercise has a check: put your answer in `answer_K` and run the cell. A wrong answer gets a
# hint, not the number. Reference solutions are in `solutions/lesson_00.py` (try first).
#
# 1. **Computation.** Stable Diffusion v1 generates 512 x 512 RGB images with f = 8 and c = 4.
#    How many numbers does its denoiser handle at each step? Then compare with section 5's table:
#    why is the ratio to the pixels the same as our f = 8 row? (`ex.check_1`; answer an int.)
# 2. **Code change.** Write a function `n_tokens(caption)` that returns how many of the caption's
#    L = 16 token positions are real (not padding), using `tokenizer` and `tokenizer.mask` from
#    section 4. Pass the function itself: `answer_2 = n_tokens` (`ex.check_2`). Before you run it:
#    how many tokens does the empty caption "" take?
# 3. **Prediction.** In the two-object images, how often do the two objects have the same colour:
#    `"never"`, `"sometimes"` or `"often"`? Write your guess first, then count it in `train`
#    (the columns `colour1` and `colour2`; `colour2` is `"none"` for one object), then run
#    `ex.check_3`. Why would a course that measures attribute binding (lesson 10) want this?

# %%
from ldm_mini.lessons.exercises import lesson_00 as ex

answer_1 = None  # your answer: an int, the numbers in one latent of Stable Diffusion v1
ex.check_1(answer_1)

# %%
from ldm_mini.lessons.exercises import lesson_00 as ex

answer_2 = None  # your answer: a function n_tokens(caption: str) -> int
ex.check_2(answer_2)

# %%
from ldm_mini.lessons.exercises import lesson_00 as ex

answer_3 = None  # your answer: "never", "sometimes" or "often"
ex.check_3(answer_3)
