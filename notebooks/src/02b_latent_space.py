# %% [markdown]
# # 02b · The latent space: its scale, a look inside, and why it is a 2D grid
#
# Lesson 02 built and measured the autoencoder E, D. This lesson looks at what the diffusion model
# of lessons 03-06 will actually work on: the latent z_0 = scale * E(x).
#
# **What you will learn**
# - the **latent scale factor** scale = 1 / std(E(x)) (the reference code's `scale_by_std`),
#   why the noise schedule wants it, and what it does *not* do: the latent is not N(0, I);
# - how to read the latent of every shipped autoencoder, image by image, in an interactive panel;
# - why the paper keeps the latent as a 2D grid, with a small experiment that compares a 2D and a
#   1D latent of the same size, and what one run of it can and cannot tell.
#
# **Before you start:** lesson 02 (E, D, f, KL-reg and VQ-reg, the shipped autoencoders).
#
# **Study time:** about 45 minutes (reading and thinking about 25, the three exercises about 20).
#
# **Run time:** about 2.5 minutes of CPU for Run All on a free 2-core Intel Xeon (measured when
# this notebook was built: 141 s); nearly all of it is section 3's two 300-step training
# runs. Other 2-core CPUs can take up to about twice as long.

# %%
# Parameters
import os

PROFILE = os.environ.get("LDM_PROFILE")  # None: "full" on a GPU, "quick" on a CPU
SEED = 0
DEVICE = None  # None: cuda > mps > cpu
N_EVAL = 500  # validation images for the 2D-vs-1D comparison
COMPARE_STEPS = 300  # steps of each model in the 2D-vs-1D experiment (section 3)

# %%
import math
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

import ldm_mini
from ldm_mini import checkpoints as ck
from ldm_mini.autoencoder import Autoencoder, AutoencoderConfig
from ldm_mini.config import get_profile, pick_device, seed_everything
from ldm_mini.data import images_uint8, load_shapes, to_image_range, to_model_range
from ldm_mini.eval import psnr, ssim
from ldm_mini.lessons.cache import ModelCache
from ldm_mini.zoo import AE_FACTORS, AE_REGS, ae_name, load_pretrained

device = pick_device(DEVICE)
profile = get_profile(PROFILE, device)
seed_everything(SEED)
H = W = profile.image_size
train = images_uint8(load_shapes(profile.n_train, "train", seed=SEED))  # b 3 32 32, uint8
val = images_uint8(load_shapes(profile.n_eval, "val", seed=SEED))
# the autoencoders lesson 02 retrained if it ran in the "full" profile, else the shipped ones
retrained = Path("../runs/lesson02/checkpoints")
ae_dir = retrained if (retrained / "manifest.json").exists() else ck.CHECKPOINT_DIR
manifest = ck.read_manifest(ae_dir)
names = [ae_name(reg, f) for f in AE_FACTORS for reg in AE_REGS if ae_name(reg, f) in manifest]
models = ModelCache(names, lambda name: load_pretrained(name, ae_dir, device=device))  # loads each model once
print(f"device: {device}, profile: {profile.name}, threads: {torch.get_num_threads()}")
print(f"{len(train)} training and {len(val)} validation images; {len(names)} autoencoders in {ae_dir.name}/")

# %% [markdown]
# ## 1. The latent scale factor
#
# The diffusion model of lessons 03-06 adds noise to the latent:
# z_t = sqrt(alpha_bar_t) z_0 + sqrt(1 - alpha_bar_t) eps. Its noise schedule is designed for data
# of about **unit variance**: at the last step the remaining signal-to-noise ratio
# SNR = alpha_bar_t var(z_0) / (1 - alpha_bar_t) must be close to 0, so that sampling can start from
# pure N(0, I) noise. But nothing in the KL-reg training fixes the scale of E(x) (a KL weight of
# 1e-6 barely pulls it). So the paper measures the standard deviation of the latents once and
# uses z_0 = scale * E(x) with **scale = 1 / std(E(x))** (and divides it out before D): unit
# standard deviation. The paper notes in Sec. 4.3.2 (details in its appendix) that the
# signal-to-noise ratio set by the latent's scale matters; the reference code calls the fix
# `scale_by_std`. Stable Diffusion's famous 0.18215 is that number for its own autoencoder.

# %%
from ldm_mini.diffusion import NoiseSchedule

ae_kl4 = models["ae-kl-f4"]
with torch.no_grad():
    z = torch.cat([ae_kl4.encode_latent(to_model_range(b).to(device)).cpu() for b in train[:1000].split(250)])  # E(x), unscaled
std = z.std().item()
z0 = z * ae_kl4.scale_factor.item()  # what the diffusion model sees
print(f"E(x) of 1000 training images (KL-f4): mean {z.mean().item():+.3f}, std {std:.3f}")
print(f"scale factor 1 / std = {1 / std:.4f}; stored in the checkpoint: {ae_kl4.scale_factor.item():.4f}")
print(f"z_0 = scale * E(x): mean {z0.mean().item():+.3f}, std {z0.std().item():.3f}")
schedule = NoiseSchedule.linear(T=1000, beta_start=0.00085, beta_end=0.012)
a_T = schedule.alphas_cumprod[-1].item()
for label, s in (("unscaled E(x)", std), ("scaled z_0", 1.0)):
    print(f"SNR at the last step t = T - 1 for {label:<13} (std {s:.3f}): {a_T * s**2 / (1 - a_T):.5f}")
print("scale factors of all models:", ", ".join(f"{n[3:]} {models[n].scale_factor.item():.3f}" for n in names))
# E's outputs: the last digits depend on the CPU's kernels, so a tolerance (docs/CONVENTIONS.md)
assert abs(1 / std - ae_kl4.scale_factor.item()) < 0.005, f"1 / std of these latents should match the stored scale factor 0.4050, got {1 / std:.4f}"
assert 0.10 < z0.mean().item() < 0.20 and abs(z0.std().item() - 1) < 0.01, f"z_0: mean +0.146, std 1.000 when written, got {z0.mean():+.3f}, {z0.std():.3f}"

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
lim = max(4.0, z.abs().flatten().quantile(0.999).item())  # all but the rarest 0.1% of values
grid = np.linspace(-lim, lim, 300)
for ax, values, title in ((axes[0], z, "E(x), unscaled"), (axes[1], z0, "z_0 = scale * E(x), what diffusion sees")):
    ax.hist(values.flatten().numpy(), bins=150, range=(-lim, lim), density=True, color="tab:blue", alpha=0.7)
    ax.plot(grid, np.exp(-grid**2 / 2) / math.sqrt(2 * math.pi), "k--", lw=1, label="N(0, 1)")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("latent value")
axes[0].set_ylabel("density")
axes[1].legend(fontsize=8)
fig.suptitle("KL-f4 latent values before and after the scale factor (1000 training images)", fontsize=11)
fig.tight_layout()
plt.show()

# %% [markdown]
# **The latent is not N(0, I).** A popular review of the paper (the one this course started from)
# says, in translation, that because the autoencoder assumes a standard normal prior, "the encoded
# distribution of real images follows N(0, I)", and so do the diffusion model's samples. The histogram says
# otherwise. Unscaled, E(x) has mean +0.36 and std 2.47, far from (0, 1): the KL weight of 1e-6
# barely pulls it. After the scale factor, z_0 has std 1.000 by construction, but its mean is still
# +0.146, and its shape is not the dashed Gaussian: several bumps instead of one bell, a sharp
# edge near +2 and almost no right tail. Each channel has its own offset, as the next cell shows.
# The paper only rescales; it does not centre or whiten, and it does not claim N(0, I).
#
# That is fine. The diffusion model's job is to learn exactly this distribution; the scale factor
# only makes sure its noise schedule starts and ends where it should. What *is* N(0, I) is the
# noise eps, and, after the last forward step, z_{T-1} (almost: the SNR above is 0.005, not 0).

# %%
channel_mean, channel_std = z0.mean(dim=(0, 2, 3)), z0.std(dim=(0, 2, 3))
for k in range(z0.shape[1]):
    print(f"z_0 channel {k}: mean {channel_mean[k].item():+.2f}, std {channel_std[k].item():.2f}")
# var(z_0) = (mean of the within-channel variances) + (variance of the channel means)
share = ((channel_mean - z0.mean()) ** 2).mean().item() / z0.var().item()
print(f"the differences between the channel means carry {share:.0%} of z_0's variance")
assert 0.5 < share < 0.8, f"the channel offsets carry about 65% of the variance when written, got {share:.0%}"

# %% [markdown]
# ## 2. Explore: every autoencoder, image by image
#
# Pick f and the regulariser. The panel shows originals, reconstructions, the error map and
# the c = 4 latent channels E(x) of each image (red positive, blue negative, one colour scale per
# image). Look at how the latent channels still *look like* the image at small f, and how the
# error concentrates on edges and small objects as f grows, and find section 1's channel offsets
# (for KL-f4: channel 3 is red almost everywhere, channel 0 mostly blue). (Models load on first
# use, then stay cached.) A static copy of the panel's first view comes first, for readers without
# a kernel:

# %%
from ldm_mini.lessons.widgets import autoencoder_view, draw_autoencoder_view

panel_images = val[[0, 1, 2, 3, 5, 8]]
draw_autoencoder_view(autoencoder_view(models["ae-kl-f4"], panel_images), "ae-kl-f4 (a static copy of the panel's first view)")
plt.show()

# %%
# NBVAL_IGNORE_OUTPUT
from ldm_mini.lessons.widgets import autoencoder_panel

panel = autoencoder_panel(models, panel_images, f=4, reg="kl")

# %% [markdown]
# ## 3. Why a 2D latent? A 1D latent of the same size
#
# VQGAN and DALL-E flatten their latent codes into a **1D sequence** and model it with an
# autoregressive transformer. The paper keeps the latent as a **2D grid** (c x h x w), so that
# its UNet can keep the inductive bias of convolutions, and argues (Sec. 3.1) that this lets a mild
# compression (small f) keep the image's detail. We can test one piece of that argument on the
# autoencoder itself: does the *shape* of the bottleneck matter when the number of latent numbers
# is the same?
#
# `FlatLatentAutoencoder` has E's and D's trunks exactly as in lesson 02 (f = 4), but where E ends
# in a 3 x 3 convolution to c = 4 channels, it flattens the features at 8 x 8 and applies a
# Linear layer to a **flat vector of 256 numbers**, the same count as the 4 x 8 x 8 grid. D starts
# with a Linear layer back and a reshape. Both are trained with the same data, seed, batches,
# learning rate and number of steps, with the L1 loss only (no regulariser), so the only
# difference is the shape of the bottleneck. To fit the budget of a laptop, both use half the
# width of the shipped models (16 channels at full resolution, 32 at 8 x 8).

# %%
# NBVAL_CHECK_OUTPUT
from ldm_mini.experiments.flat_latent import FlatLatentAutoencoder
from ldm_mini.train import TrainConfig, lr_at, sample_batch


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


compare_config = AutoencoderConfig(f=4, reg="kl", base_channels=16, latent_channels=4)  # half width: faster
torch.manual_seed(SEED)
grid_ae = Autoencoder(compare_config).to(device)
torch.manual_seed(SEED)
flat_ae = FlatLatentAutoencoder(compare_config, image_size=H).to(device)
print(f"2D latent: {tuple(grid_ae.encode_latent(to_model_range(val[:1]).to(device)).shape[1:])}, {n_params(grid_ae):,} parameters")
print(f"1D latent: {tuple(flat_ae.encode_latent(to_model_range(val[:1]).to(device)).shape[1:])}, {n_params(flat_ae):,} parameters "
      f"({n_params(flat_ae) / n_params(grid_ae):.1f}x as many)")

# %% [markdown]
# The flat model has several times the parameters: its two Linear layers hold a separate weight for
# every (position, channel, latent number) triple, where a convolution reuses one 3 x 3 kernel at
# every position. More parameters, same number of latent numbers. Now the same training budget for
# both (the plain loop, written out):

# %%
# NBVAL_IGNORE_OUTPUT
def train_l1(model, steps: int, seed: int = SEED) -> list[float]:
    """Adam on |x - D(E(x))|, warm-up + cosine learning rate; the same batches for every model."""
    cfg = TrainConfig(steps=steps, batch_size=64, lr=2e-3, warmup=20, lr_min_ratio=0.1)
    generator = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    losses = []
    model.train()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        x = sample_batch(train, cfg.batch_size, generator, device)
        loss = (x - model.decode(model.encode_latent(x))).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


curves, seconds = {}, {}
for label, model in (("2D latent 4x8x8", grid_ae), ("1D latent 256", flat_ae)):
    start = time.perf_counter()
    curves[label] = train_l1(model, COMPARE_STEPS)
    seconds[label] = time.perf_counter() - start
    print(f"{label}: {COMPARE_STEPS} steps in {seconds[label]:.0f} s")

# %%
@torch.no_grad()
def reconstruct(model, images_u8):
    model.eval()
    return to_image_range(model.decode(model.encode_latent(to_model_range(images_u8).to(device)))).cpu()


x_eval = val[:N_EVAL]
x01 = x_eval.float() / 255
compare = {label: reconstruct(model, x_eval) for label, model in (("2D latent 4x8x8", grid_ae), ("1D latent 256", flat_ae))}
for label, rec in compare.items():
    print(f"{label:<16} final training L1 {np.mean(curves[label][-10:]):.4f}   validation PSNR {psnr(x01, rec):.1f} dB, SSIM {ssim(x01, rec):.3f}")
gap = psnr(x01, compare["2D latent 4x8x8"]) - psnr(x01, compare["1D latent 256"])
print(f"the 2D latent is {gap:+.1f} dB better with the same number of latent numbers and steps")
# live training: the digits vary with the CPU, the claim must not (docs/CONVENTIONS.md)
if COMPARE_STEPS == 300:
    assert gap > 1.0, f"the 2D latent should beat the 1D one by more than 1 dB (+1.9 when written), got {gap:+.2f} dB"
    assert ssim(x01, compare["2D latent 4x8x8"]) > ssim(x01, compare["1D latent 256"]) + 0.02, "the 2D latent also has the clearly higher SSIM (0.894 vs 0.852)"

# %%
n_show = 6
fig = plt.figure(figsize=(12, 4.2))
gs = fig.add_gridspec(3, n_show + 4)
ax = fig.add_subplot(gs[:, :3])
for label, losses in curves.items():
    ax.plot(np.convolve(losses, np.ones(10) / 10, mode="valid"), label=label)
ax.set_yscale("log")
ax.set_xlabel("step")
ax.set_title("training L1 (10-step mean)", fontsize=10)
ax.legend(fontsize=8)
rows = [("original", x01[:n_show])] + [(label, rec[:n_show]) for label, rec in compare.items()]
for r, (label, imgs) in enumerate(rows):
    for j in range(n_show):
        ax = fig.add_subplot(gs[r, 4 + j])
        ax.imshow(imgs[j].permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if j == 0:
            ax.set_ylabel(label, fontsize=8)
fig.suptitle(f"Same data, same steps, same number of latent numbers: 2D grid vs 1D vector ({COMPARE_STEPS} steps each)")
fig.tight_layout()
plt.show()

# %% [markdown]
# **What this run shows, and what it does not.** With this seed, 300 steps and half-width models,
# the 2D latent ends 1.9 dB ahead in PSNR (and 0.04 in SSIM) on 500 validation images, and its
# training loss is lower from about step 20 on. That is one run: it does not tell how much of the
# gap is the seed (the spread over seeds is not measured here), whether the gap persists, shrinks
# or grows with longer training (both curves are still falling at step 300, and the flat model has
# 5.3x the parameters to use once it has learned more), or whether it holds at the width and f of
# the shipped models. So read it as: *at this small
# budget*, the grid-shaped bottleneck trained faster.
#
# Why might it? The paper's argument, which this experiment is consistent with but does not
# isolate: a convolution applies the same small kernel at every position, so once E has learned
# what an edge looks like in one corner, it knows it everywhere, and latent cell (i, j) naturally
# describes the image near (f i, f j) (exercise 3 tests that). The flat model's Linear layers have
# no such sharing: every latent number is a weighted sum over *all* 32 x 8 x 8 trunk features, and
# D's first layer must learn, separately for every position, where to put what it reads.
#
# The same argument, one stage later, is why the paper keeps the 2D latent: its diffusion UNet is
# convolutional too, and a grid latent lets it reuse what it learns at one position everywhere.

# %% [markdown]
# ## Summary
# - The diffusion model works on z_0 = scale * E(x) with scale = 1 / std(E(x)) measured once on
#   training images (0.405 for KL-f4), so that its noise schedule ends near pure noise (SNR at
#   t = T - 1 of 0.005 instead of 0.029 unscaled).
# - The scaled latent has std 1 but is **not** N(0, I): its mean is +0.15, each channel has its own
#   offset (the differences between channel means carry about two thirds of the variance), and
#   its histogram has several bumps. The diffusion model learns that distribution; only the noise
#   eps is N(0, I).
# - The latent channels of a small-f autoencoder still look like the image; as f grows, the error
#   concentrates on edges and small objects.
# - In one run (one seed, 300 steps, half width), a 2D latent reconstructed 1.9 dB better than a
#   1D vector of the same size; the paper's explanation is that convolutions share what they
#   learn across positions. More seeds and longer runs would be needed to say how general that is.
#
# ## Exercises
# Each runs in well under a minute on 2 CPU cores and checks itself: put your answer in the cell
# and run it.
#
# 1. **(computation)** Had the paper *not* rescaled, what would the signal-to-noise ratio
#    alpha_bar_t var(E(x)) / (1 - alpha_bar_t) be at the last step t = T - 1 for the unscaled
#    latent of `ae-kl-f16`? Use its stored `scale_factor` (std(E(x)) = 1 / scale) and the schedule
#    of section 1. Answer: a float. Check: `ex.check_1`.
# 2. **(code change)** Change the cell after the histogram to measure the per-channel means of
#    z_0 = scale * E(x) for `ae-kl-f4` on the first 250 training images (`train[:250]`) instead of
#    1000. Answer: the largest absolute channel mean, a float in units of z_0. Check: `ex.check_2`.
# 3. **(prediction)** Shift every image 4 pixels to the right (`torch.roll(x, 4, dims=-1)`) and
#    encode it with `ae-kl-f4` (f = 4). By how many latent cells does the latent move? Write your
#    prediction first, one of "0", "1", "2", "4"; the check then encodes 8 validation images both
#    ways and tells you which shift of the latent matches best. Check: `ex.check_3`.

# %%
from ldm_mini.lessons.exercises import lesson_02b as ex

answer_1 = None  # your answer: the SNR at t = T - 1 of ae-kl-f16's unscaled latent, a float (no unit)
ex.check_1(answer_1)

# %%
from ldm_mini.lessons.exercises import lesson_02b as ex

answer_2 = None  # your answer: the largest |per-channel mean| of z_0 on train[:250], a float (units of z_0)
ex.check_2(answer_2)

# %%
from ldm_mini.lessons.exercises import lesson_02b as ex

answer_3 = None  # your prediction: "0", "1", "2" or "4" (latent cells), written before running
ex.check_3(answer_3)
