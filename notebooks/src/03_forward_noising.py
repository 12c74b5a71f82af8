# %% [markdown]
# # 03 · Forward noising: q(z_t | z_0), schedules and the signal-to-noise ratio
#
# **What you will learn**
# - the forward process of a diffusion model: how a clean latent z_0 is turned into noise
#   z_T ~ N(0, I) in T small Gaussian steps, and the closed form q(z_t | z_0) that jumps to any
#   step t at once;
# - noise schedules: the "linear" schedule of the LDM paper (linear in sqrt(beta)) and the cosine
#   schedule, compared through alpha_bar_t and the log signal-to-noise ratio log SNR(t);
# - why the step-by-step chain and the closed form are the same process (checked numerically);
# - what noise looks like in pixel space and in the f = 4 latent space of the autoencoder of
#   lesson 02, decoded back to images.
#
# **Study time:** about 60 minutes (40 to read and check the derivation, 20 for the three exercises).
# **Run time:** about 30 s for Run All on 2 CPU cores (27 s when this notebook was rebuilt, on an "Intel(R) Xeon(R) Processor"; other 2-core CPUs can take up to ~1.7x as long). Nothing is trained; the shipped KL-f4 autoencoder `ae-kl-f4`
# is loaded.
#
# Symbols follow the series' table (lesson 00, section 7): z_0 = scale * E(x) (`z0`), z_t (`z_t`),
# beta_t, alpha_t, alpha_bar_t (`schedule.betas`, `schedule.alphas`, `schedule.alphas_cumprod`),
# SNR(t) (`schedule.snr(t)`), eps (`eps`, `noise`).
#
# In the paper (Sec. 3.2) the diffusion model never sees pixels: it learns to undo noise on the
# latents z = E(x) of the autoencoder. This lesson builds the noise it learns to undo.

# %%
# Parameters
import os

PROFILE = os.environ.get("LDM_PROFILE")  # None: "full" on a GPU, "quick" on a CPU
SEED = 0
DEVICE = None  # None: cuda > mps > cpu
N_IMAGES = 200  # validation images for the statistics of section 5

# %%
import math

import matplotlib.pyplot as plt
import torch

import ldm_mini
from ldm_mini.config import get_profile, pick_device, seed_everything
from ldm_mini.data import images_uint8, load_shapes, to_image_range, to_model_range
from ldm_mini.diffusion import NoiseSchedule

device = pick_device(DEVICE)
profile = get_profile(PROFILE, device)
N_IMAGES = profile.cap_samples(N_IMAGES)  # 8 in a miniature run (config.Profile.miniature)
seed_everything(SEED)
val = load_shapes(profile.n_eval, "val", seed=SEED).select(range(N_IMAGES))
x0 = to_model_range(images_uint8(val)).to(device)  # b 3 32 32 in [-1, 1]
ae = ldm_mini.load_pretrained("ae-kl-f4", device=device)
print(f"{len(x0)} images {tuple(x0.shape[1:])}; autoencoder f = {ae.config.f}, latent c = {ae.config.latent_channels}")

# %% [markdown]
# ## 1. The forward process
#
# Pick a **variance schedule** beta_1, ..., beta_T of small numbers (T = 1000). Each forward step
# shrinks the signal a little and adds a little Gaussian noise:
#
# $$q(z_t \mid z_{t-1}) = \mathcal N\big(\sqrt{1-\beta_t}\, z_{t-1},\ \beta_t I\big), \qquad z_t = \sqrt{1-\beta_t}\, z_{t-1} + \sqrt{\beta_t}\, \epsilon_t,\quad \epsilon_t \sim \mathcal N(0, I).$$
#
# The factor sqrt(1 - beta_t) is what keeps the variance at 1 for unit-variance data, so after many
# steps z_T is (nearly) N(0, I), the distribution we will start sampling from. With
# alpha_t = 1 - beta_t and alpha_bar_t = alpha_1 alpha_2 ... alpha_t, all t steps collapse into one:
#
# $$q(z_t \mid z_0) = \mathcal N\big(\sqrt{\bar\alpha_t}\, z_0,\ (1-\bar\alpha_t)\, I\big), \qquad z_t = \sqrt{\bar\alpha_t}\, z_0 + \sqrt{1-\bar\alpha_t}\,\epsilon,\quad \epsilon \sim \mathcal N(0, I).$$
#
# That one line is `NoiseSchedule.q_sample(x0, t, noise)`: `sqrt_alphas_cumprod[t] * x0 +
# sqrt_one_minus_alphas_cumprod[t] * noise`. It is why training is cheap: to get a noisy z_t for a
# random t, we never run the chain. (Section 3 checks that the chain and the shortcut agree.)
#
# **Counting.** The code, like the paper's reference code, indexes timesteps t = 0, ..., T - 1,
# and t = 0 is already the *first* noising step (the paper's t = 1). The clean latent z_0 of the
# paper is the argument `x0`; `alphas_cumprod[0]` = alpha_bar of the first step = 1 - beta_1.
#
# The LDM's "linear" schedule is linear in sqrt(beta), from beta_start = 0.00085 to beta_end =
# 0.012 (the range of Stable Diffusion), computed in float64:
# `betas = linspace(sqrt(beta_start), sqrt(beta_end), T) ** 2`.

# %%
# NBVAL_CHECK_OUTPUT
schedule = NoiseSchedule.linear(T=1000, beta_start=0.00085, beta_end=0.012)
print(schedule)
a = schedule.alphas_cumprod
print(f"beta_1 = {schedule.betas[0]:.6f}, beta_T = {schedule.betas[-1]:.6f}")
print(f"alpha_bar_0          = {a[0]:.5f}   (1 - beta_1: one tiny step of noise)")
print(f"sqrt(alpha_bar_999)  = {a[-1].sqrt():.6f}  (the signal left at the last step)")
print(f"sqrt(1 - alpha_bar_999) = {(1 - a[-1]).sqrt():.6f}")

# %% [markdown]
# Those two numbers are pinned by the tests against the reference code: alpha_bar_0 = 0.99915
# and sqrt(alpha_bar_999) = 0.068265. Notice the second one is **not 0**: at t = T - 1 about 7%
# of z_0 is still in z_T. Sampling starts from pure noise anyway, a small mismatch the model
# lives with (Lin et al. 2024, "Common diffusion noise schedules and sample steps are flawed").

# %% [markdown]
# ## 2. Schedules and the signal-to-noise ratio
#
# How fast the signal fades is set by the schedule. A useful single number per step is the
# **signal-to-noise ratio**: z_t has signal sqrt(alpha_bar_t) z_0 and noise of variance
# 1 - alpha_bar_t, so for unit-variance data
#
# $$\mathrm{SNR}(t) = \frac{\bar\alpha_t}{1-\bar\alpha_t} \qquad (\text{`schedule.snr(t)`}).$$
#
# log SNR(t) = 0 is the step where signal and noise are equally strong. Three schedules:
# - **"linear" (LDM)**: linear in sqrt(beta), beta from 0.00085 to 0.012 (this course's default);
# - **cosine** (Nichol & Dhariwal 2021): alpha_bar(t) = cos^2(((t/T + s)/(1 + s)) pi/2), up to
#   normalisation, with s = 0.008: `NoiseSchedule.cosine()`;
# - **DDPM's linear** (Ho et al. 2020): beta linear from 0.0001 to 0.02, for reference.

# %%
schedules = {
    "linear (LDM, sqrt-linear)": schedule,
    "cosine": NoiseSchedule.cosine(T=1000),
    "DDPM linear (1e-4 .. 0.02)": NoiseSchedule(torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)),
}
ts = torch.arange(1000)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for name, s in schedules.items():
    axes[0].plot(ts, s.alphas_cumprod, label=name)
    axes[1].plot(ts, s.snr(ts).log(), label=name)
axes[0].set_ylabel("alpha_bar_t (signal variance kept)")
axes[1].set_ylabel("log SNR(t) = log(alpha_bar_t / (1 - alpha_bar_t))")
axes[1].axhline(0, color="gray", lw=0.8, ls=":")
axes[1].text(990, 0.3, "signal = noise", ha="right", fontsize=8, color="gray")
for ax in axes:
    ax.set_xlabel("timestep t")
    ax.legend(fontsize=8)
fig.suptitle("Three noise schedules: how much of z_0 is left at step t")
fig.tight_layout()
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'t':>5} | " + " | ".join(f"{name.split(' (')[0]:>23}" for name in schedules))
print(f"{'':>5} | " + " | ".join(f"{'alpha_bar':>10} {'log SNR':>12}" for _ in schedules))
for t in (0, 99, 249, 499, 749, 999):
    cells = []
    for s in schedules.values():
        cells.append(f"{s.alphas_cumprod[t]:10.5f} {s.snr(torch.tensor([t]))[0].log():12.2f}")
    print(f"{t:>5} | " + " | ".join(cells))
for name, s in schedules.items():
    t_half = int((s.snr(ts) < 1).nonzero()[0])
    print(f"{name:<27}: signal = noise at t = {t_half}")

# %% [markdown]
# Reading the plots:
# - The LDM schedule keeps far more signal late in the chain than DDPM's linear one (log SNR
#   -5.4 at the end instead of -10), because its betas stop at 0.012 instead of 0.02. DDPM's
#   schedule was designed for pixels; the LDM paper inherits a gentler one for unit-variance
#   latents, and so spends fewer steps on "already pure noise".
# - The cosine schedule has a nearly straight log SNR in the middle: it spreads the steps evenly
#   over noise levels, keeps signal = noise until t = 496 (the LDM schedule: t = 354), and sends the
#   SNR far lower at the very end (log SNR about -20, alpha_bar near 0).
# - All three start almost clean (log SNR +7 to +10): the first steps only touch fine detail.

# %% [markdown]
# ## 3. The chain and the closed form are the same process
#
# Why does the chain collapse to one Gaussian? Two steps, written out (alpha = 1 - beta):
#
# $$z_2 = \sqrt{\alpha_2}\big(\sqrt{\alpha_1} z_0 + \sqrt{1-\alpha_1}\,\epsilon_1\big) + \sqrt{1-\alpha_2}\,\epsilon_2 = \sqrt{\alpha_1\alpha_2}\, z_0 + \underbrace{\sqrt{\alpha_2(1-\alpha_1)}\,\epsilon_1 + \sqrt{1-\alpha_2}\,\epsilon_2}_{\text{Gaussian, variance } \alpha_2(1-\alpha_1) + 1 - \alpha_2 \;=\; 1 - \alpha_1\alpha_2}$$
#
# and so on by induction. After t steps, the noise part is a *fixed weighted sum* of the
# per-step noises:
#
# $$z_t = \sqrt{\bar\alpha_t}\, z_0 + \sum_{s \le t} w_s\, \epsilon_s, \qquad w_s = \sqrt{\beta_s\, \bar\alpha_t / \bar\alpha_s}, \qquad \sum_{s\le t} w_s^2 = 1 - \bar\alpha_t .$$
#
# So we can check the closed form two ways, with the *same* noise draws:
# 1. **exactly**: run the chain, combine its noises into epsilon = sum_s w_s eps_s / sqrt(1 - alpha_bar_t),
#    and feed that one epsilon to `q_sample`: it must land on the chain's z_t;
# 2. **in distribution**: over many runs of the chain, the mean of z_t must be sqrt(alpha_bar_t) z_0
#    and its standard deviation sqrt(1 - alpha_bar_t); the combined epsilon must be N(0, 1).
#
# We run 2,000 chains of the 1,000 steps on the f = 4 latent of one image (256 numbers), in float64.
# The sum is accumulated on the fly as S_t = sum_s sqrt(beta_s / alpha_bar_s) eps_s, so that
# sum_s w_s eps_s = sqrt(alpha_bar_t) S_t.

# %%
# NBVAL_CHECK_OUTPUT
with torch.no_grad():
    z_one = (ae.encode_latent(x0[:1]) * ae.scale_factor).double().cpu()  # 1 c h w, scaled as the LDM does
n_chains, checkpoints = 2000, (0, 99, 499, 999)
g = torch.Generator().manual_seed(SEED)
z = z_one.expand(n_chains, -1, -1, -1).clone()  # the chain: z_t, one row per run
S = torch.zeros_like(z)  # sum_s sqrt(beta_s / alpha_bar_s) eps_s
betas, abar = schedule.betas, schedule.alphas_cumprod
kept = {}
for t in range(schedule.T):
    eps_t = torch.randn(z.shape, generator=g, dtype=torch.float64)
    z = (1 - betas[t]).sqrt() * z + betas[t].sqrt() * eps_t  # one forward step
    S += (betas[t] / abar[t]).sqrt() * eps_t
    if t in checkpoints:
        kept[t] = (z.clone(), S.clone())

print(f"{'t':>4} {'sum w_s^2':>10} {'1-alpha_bar':>11} | {'chain == q_sample':>17} | "
      f"{'mean err':>8} {'std (chain)':>11} {'sqrt(1-ab)':>10} | {'eps mean':>8} {'eps std':>7}")
for t, (z_chain, S_t) in kept.items():
    a_t = abar[t]
    w2 = (betas[: t + 1] * a_t / abar[: t + 1]).sum()
    eps = a_t.sqrt() * S_t / (1 - a_t).sqrt()  # the one epsilon equivalent to all t + 1 step noises
    z_closed = schedule.q_sample(z_one.expand(n_chains, -1, -1, -1), torch.full((n_chains,), t), eps)
    exact = (z_chain - z_closed).abs().max().item() < 1e-12  # float64 rounding: ~1e-14
    mean_err = (z_chain.mean(0) - a_t.sqrt() * z_one[0]).abs().max()
    print(f"{t:>4} {w2:10.6f} {1 - a_t:11.6f} | {str(exact):>17} | "
          f"{mean_err:8.3f} {z_chain.std(0).mean():11.4f} {(1 - a_t).sqrt():10.4f} | {eps.mean():8.4f} {eps.std():7.4f}")

# %% [markdown]
# Column by column: the weights' squares sum to exactly 1 - alpha_bar_t; feeding the combined
# epsilon to `q_sample` reproduces the chain to float64 rounding (differences of about 1e-14); the empirical
# mean is within Monte-Carlo error of sqrt(alpha_bar_t) z_0 (with 2,000 runs the standard error is
# about sqrt(1 - alpha_bar_t) / 45, so a max error over 256 numbers of up to ~0.06 is expected); the
# spread matches sqrt(1 - alpha_bar_t); and the combined epsilon has mean 0 and standard deviation 1.
# The picture: one latent number across the 2,000 chains, against the closed-form density.

# %%
k = int(z_one.flatten().abs().argmax())  # the latent entry with the largest |z_0|: its mean moves most
fig, axes = plt.subplots(1, len(kept), figsize=(13, 2.8), sharey=False)
for ax, (t, (z_chain, _)) in zip(axes, kept.items()):
    values = z_chain.flatten(1)[:, k]
    mu, sd = abar[t].sqrt() * z_one.flatten()[k], (1 - abar[t]).sqrt()
    ax.hist(values.numpy(), bins=40, density=True, color="tab:blue", alpha=0.6, label="2,000 chains")
    grid = torch.linspace(float(values.min()), float(values.max()), 200, dtype=torch.float64)
    ax.plot(grid, torch.exp(-0.5 * ((grid - mu) / sd) ** 2) / (sd * math.sqrt(2 * math.pi)), color="tab:red", label="q(z_t | z_0)")
    ax.axvline(float(z_one.flatten()[k]), color="black", lw=0.8, ls=":")
    ax.set_title(f"t = {t}: mean {mu:.2f}, std {sd:.3f}", fontsize=9)
    ax.tick_params(labelsize=7)
axes[0].legend(fontsize=7)
fig.suptitle(f"One latent entry (z_0 = {float(z_one.flatten()[k]):.2f}, dotted): the chain's histogram vs the closed form")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Noise in pixel space
#
# First the way DDPM does it: noise the pixels x (in [-1, 1]) directly, x_t = sqrt(alpha_bar_t) x_0 +
# sqrt(1 - alpha_bar_t) eps, with the same eps for every t so only the mixing changes.

# %%
T_STRIP = [0, 50, 100, 200, 300, 400, 500, 700, 999]
show = x0[[0, 3, 5]]  # three validation images
g = torch.Generator().manual_seed(SEED)
eps_x = torch.randn(show.shape, generator=g).to(device)


def strip(rows: list[torch.Tensor], row_labels: list[str], title: str):
    """Rows of images in [0, 1] (each b=len(T_STRIP), 3 H W) with t on the columns."""
    fig, axes = plt.subplots(len(rows), len(T_STRIP), figsize=(1.35 * len(T_STRIP), 1.45 * len(rows)), squeeze=False)
    for r, (row, label) in enumerate(zip(rows, row_labels)):
        for c, t in enumerate(T_STRIP):
            ax = axes[r, c]
            ax.imshow(row[c].permute(1, 2, 0).cpu().numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"t={t}\nSNR {schedule.snr(torch.tensor([t]))[0]:.2g}", fontsize=8)
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


t_batch = torch.tensor(T_STRIP)
pixel_rows = [to_image_range(schedule.q_sample(img.expand(len(T_STRIP), -1, -1, -1), t_batch, eps.expand(len(T_STRIP), -1, -1, -1)).clamp(-1, 1))
              for img, eps in zip(show, eps_x)]
strip(pixel_rows, [f"image {i}" for i in (0, 3, 5)], "Pixel space: x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps")
plt.show()

# %% [markdown]
# ## 5. Noise in latent space
#
# The LDM noises the latent instead. Encode once with E, **scale** to unit variance (the paper's
# `scale_by_std`: z_0 = scale * E(x), with scale = 1 / std(E(x)) measured on training data and stored
# in the autoencoder), noise in the 8 x 8 x 4 latent, and decode with D(z_t / scale) to look at it.
#
# Why the scale? The schedule assumes unit-variance data: SNR(t) = alpha_bar_t / (1 - alpha_bar_t) is
# the true signal-to-noise ratio only then. Data with a larger spread would keep its content to
# larger t, data with a smaller one would drown earlier, and the schedule would be mis-tuned. Our
# pixels are not unit-variance either, which is worth knowing when comparing the two rows below:

# %%
with torch.no_grad():
    z_raw = ae.encode_latent(x0)  # b c h w, unscaled E(x)
z0 = z_raw * ae.scale_factor  # what the diffusion model sees
print(f"scale factor (1 / std of E(x) on training images): {ae.scale_factor.item():.4f}")
print(f"std of pixels x_0 in [-1, 1]:  {x0.std():.3f}")
print(f"std of E(x), unscaled:         {z_raw.std():.3f}")
print(f"std of z_0 = scale * E(x):     {z0.std():.3f}  (on {len(z0)} validation images)")
print(f"latent {tuple(z0.shape[1:])} = {z0[0].numel()} numbers vs {x0[0].numel()} pixels")
# E's outputs: their last digits depend on the CPU's kernels, so a range, not the digits (docs/CONVENTIONS.md)
assert abs(z0.std() - 1) < 0.05, f"scaling should bring the latents' std to about 1 (1.012 when written), got {z0.std():.4f}"


# %%
def decode(z: torch.Tensor) -> torch.Tensor:
    """D(z / scale): a scaled latent back to an image in [-1, 1]."""
    with torch.no_grad():
        return ae.decode(z / ae.scale_factor).clamp(-1, 1)


g = torch.Generator().manual_seed(SEED)
eps_z = torch.randn(z0[[0, 3, 5]].shape, generator=g).to(device)
rows, labels = [], []
for i, (img_row, z_img, eps) in enumerate(zip(pixel_rows, z0[[0, 3, 5]], eps_z)):
    z_t = schedule.q_sample(z_img.expand(len(T_STRIP), -1, -1, -1), t_batch, eps.expand(len(T_STRIP), -1, -1, -1))
    rows += [img_row, to_image_range(decode(z_t))]
    labels += [f"image {(0, 3, 5)[i]}: x_t", "D(z_t / scale)"]
strip(rows, labels, "Pixel space (x_t) vs latent space, decoded (D(z_t / scale)), same t")
plt.show()

# %% [markdown]
# What to look at:
# - In pixel space the noise is independent per pixel: a fine salt-and-pepper that the eye
#   averages away, so the shapes stay visible up to t = 400-500.
# - In latent space each of the 8 x 8 latent positions stands for a 4 x 4 patch of pixels, so
#   decoded latent noise comes out as **blotches and strokes** the size of a patch, in the colours
#   D knows how to paint. D never saw noisy latents in training; D(z_t) is its best guess of an
#   image for a latent that is off the data's manifold, and it always looks like *some* picture.
# - Because the noise is the same at every t (only the mixing changes), the blotches keep their
#   places along a row and grow stronger, while the object fades.
#
# Two things differ between the rows besides the space. The pixels have std 0.39 (mostly flat
# background), not 1, so at the same t their real signal-to-noise ratio is 0.39^2 = 0.15 times the
# schedule's SNR(t): pixels drown *earlier* than the schedule assumes. The latent was scaled to
# std 1, so for it SNR(t) is the true ratio. That is exactly the job of the scale factor.

# %% [markdown]
# ## 6. When does the content disappear?
#
# Let the attribute classifier of lesson 01 (trained on clean images only) read shape, colour,
# size and position from x_t and from D(z_t / scale), for 200 validation images at each t. It is a
# crude judge: it never saw noise, so its accuracy drops partly because noise looks unfamiliar.
# Still, it tells *when* the picture stops showing what it showed.

# %%
import numpy as np

from ldm_mini.data import attribute_labels
from ldm_mini.eval import classifier_accuracy

classifier = ldm_mini.load_pretrained("attribute-classifier", device=device)
labels = attribute_labels(val)
T_ACC = [0, 100, 200, 300, 400, 500, 600, 700, 800, 999]
g = torch.Generator().manual_seed(SEED + 1)
eps_px = torch.randn(x0.shape, generator=g).to(device)
eps_lat = torch.randn(z0.shape, generator=g).to(device)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    return (to_image_range(x.clamp(-1, 1)) * 255).round().to(torch.uint8).cpu()


accuracy = {"pixel x_t": [], "latent D(z_t)": []}
for t in T_ACC:
    tt = torch.full((len(x0),), t)
    x_t = schedule.q_sample(x0, tt, eps_px)
    z_t = schedule.q_sample(z0, tt, eps_lat)
    for name, img in (("pixel x_t", x_t), ("latent D(z_t)", decode(z_t))):
        acc = classifier_accuracy(classifier, to_uint8(img), labels)
        accuracy[name].append(float(np.mean(list(acc.values()))))
print(f"{'t':>4} {'log SNR':>8} | {'pixel x_t':>9} {'latent D(z_t)':>13}   (mean attribute accuracy)")
for i, t in enumerate(T_ACC):
    print(f"{t:>4} {schedule.snr(torch.tensor([t]))[0].log():8.2f} | {accuracy['pixel x_t'][i]:9.0%} {accuracy['latent D(z_t)'][i]:13.0%}")
# the classifier and D: last digits depend on the CPU's kernels, so check ranges around the values when written
if N_IMAGES == 200:
    written = {"pixel x_t": [100, 97, 78, 59, 47, 40, 36, 33, 31, 28], "latent D(z_t)": [100, 99, 91, 76, 61, 52, 43, 37, 33, 30]}  # % per t
    for name, values in written.items():
        assert all(abs(100 * a - w) < 2 for a, w in zip(accuracy[name], values)), f"{name}: {values} when written, got {[round(100 * a, 1) for a in accuracy[name]]}"
    assert all(a >= p for a, p in zip(accuracy["latent D(z_t)"], accuracy["pixel x_t"])), "the decoded latent holds on longer than the pixels"

# %%
from ldm_mini.data import ATTRIBUTE_VALUES

# baselines from the labels alone: guess each head uniformly, or always answer its most frequent class
chance = float(np.mean([1 / len(values) for values in ATTRIBUTE_VALUES.values()]))
majority = float(np.mean([torch.bincount(y).max().item() / len(y) for y in labels.values()]))
print(f"uniform guessing: {chance:.0%}; always the most frequent class: {majority:.0%}")
if N_IMAGES == 200:  # counted from the labels: the same on every machine
    assert round(100 * majority) == 45 and round(100 * chance) == 26, "the text below quotes 45% and 26%"

fig, ax = plt.subplots(figsize=(7, 3.8))
for name, marker in (("pixel x_t", "o-"), ("latent D(z_t)", "s-")):
    ax.plot(T_ACC, [100 * v for v in accuracy[name]], marker, label=name)
ax.axhline(100 * majority, color="gray", lw=1, ls="--", label=f"always the most frequent class ({majority:.0%})")
ax.axhline(100 * chance, color="gray", lw=1, ls=":", label=f"uniform guessing ({chance:.0%})")
ax.axvline(354, color="tab:purple", lw=0.8, ls="-.")
ax.text(362, 88, "latent:\nSNR(t) = 1\n(t = 354)", fontsize=8, color="tab:purple")
ax.set_xlabel("timestep t")
ax.set_ylabel("attributes read correctly [%]")
ax.set_ylim(0, 102)
ax.set_title("How long the content survives the forward process")
ax.legend(fontsize=8, loc="upper right")
fig.tight_layout()
plt.show()

# %% [markdown]
# Both curves start at the classifier's clean accuracy (100%) and end near 30%, what it reads from
# almost pure noise: above uniform guessing (26%) but *below* the 45% that always answering the most
# frequent class would get, so at the end the classifier is misled by the noise rather than neutral.
# The content fades over t of about 150 to 600, around t = 354 where the latent's SNR(t) = 1; the
# pixels fall below the majority baseline by t = 500, the decoded latent by t = 600. The decoded
# latent holds on longer than the pixels: partly the std effect above (the pixels' real SNR is
# 0.15 SNR(t), so it reaches 1 much earlier than t = 354: exercise 1 finds where), partly because D turns even a
# noisy latent into a clean-looking picture, which suits a classifier trained on clean pictures
# better than salt-and-pepper does.
#
# For the diffusion model this says where its work is. Above t = 800 the input is almost pure
# noise and eps_theta can do little but guess the data's average; the *semantic* decisions (which
# object, which colour, where) are made in the middle band; below t = 100 only detail changes.
# Lesson 06 shows the same from the other end: DDIM's guess z0_hat shows the coarse layout and the
# colours first, and sharpens the edges only in the last steps.

# %% [markdown]
# ## 7. Try it: the t slider
#
# Move t and watch the same image in both spaces: the pixels x_t, the four channels of the latent
# z_t, its decoding D(z_t / scale), and where t sits on the log SNR curve. The picker switches to the
# cosine schedule: at the same t it keeps more signal early on and less at the end.
# The panel's logic is `ldm_mini.lessons.widgets.noising_view`, tested in `tests/test_widgets_sampling.py`.

# %%
# NBVAL_IGNORE_OUTPUT
from ldm_mini.lessons.widgets import noising_panel

panel = noising_panel(x0[3], z0[3], {"linear (LDM)": schedule, "cosine": schedules["cosine"]}, decode, t=300, seed=SEED)

# %% [markdown]
# ## Summary
# - The forward process adds Gaussian noise in T small steps, z_t = sqrt(1 - beta_t) z_{t-1} +
#   sqrt(beta_t) eps_t; its t-step marginal is q(z_t | z_0) = N(sqrt(alpha_bar_t) z_0, (1 - alpha_bar_t) I),
#   so a noisy sample at any t costs one line (`q_sample`). The chain and the closed form agree
#   exactly when the chain's noises are combined with the weights w_s, and in distribution.
# - The schedule sets alpha_bar_t; log SNR(t) = log(alpha_bar_t / (1 - alpha_bar_t)) is the clearest way
#   to compare schedules. The LDM's sqrt-linear schedule gives alpha_bar_0 = 0.99915 and
#   sqrt(alpha_bar_999) = 0.068265: it never reaches pure noise.
# - The LDM noises the unit-variance latent z_0 = scale * E(x); the scale makes SNR(t) the true
#   signal-to-noise ratio. Decoded, latent noise is blotchy, and the content fades over the middle
#   band of t (log SNR near 0) in both spaces.
#
# ## Exercises
#
# Each exercise has a check: put your answer in `answer_K` and run the cell. A wrong answer gets a
# hint, not the number. Reference solutions are in `solutions/lesson_03.py` (try first). Each runs
# in seconds.
#
# 1. **Computation.** Data with standard deviation sigma has the real signal-to-noise ratio
#    sigma^2 SNR(t) under q(z_t | z_0). For the lesson's pixels (sigma = `x0.std()`, printed in
#    section 5) and the LDM schedule, at which t does it first fall below 1? Compare with t = 354
#    for unit-variance data. (`ex.check_1`; answer an int.)
# 2. **Code change.** Remove the latent scale: write `noised_without_scale(x0, t, eps)` that
#    encodes `x0` with `ae.encode_latent` (no `ae.scale_factor`), noises it with `schedule.q_sample`,
#    and decodes with `ae.decode` (nothing to divide out), clamped to [-1, 1]. `eps` has the latent's
#    shape. Pass the function: `answer_2 = noised_without_scale` (`ex.check_2`).
# 3. **Prediction.** Without the scale, does the decoded content vanish at an `"earlier"`, a
#    `"later"` or the `"same"` t as with it? Write your guess (think of the std of E(x) printed in
#    section 5), then run the cell: once `answer_2` and `answer_3` are set, it first measures section
#    6's accuracy again with your function in place of D(z_t / scale), then checks your guess.

# %%
from ldm_mini.lessons.exercises import lesson_03 as ex

answer_1 = None  # your answer: an int, the first t with std(x_0)^2 * SNR(t) < 1
ex.check_1(answer_1)

# %%
from ldm_mini.lessons.exercises import lesson_03 as ex

answer_2 = None  # your answer: a function noised_without_scale(x0, t, eps) -> images in [-1, 1]
ex.check_2(answer_2)

# %%
from ldm_mini.lessons.exercises import lesson_03 as ex

answer_3 = None  # your answer: "earlier", "later" or "same"
if answer_3 is not None and callable(answer_2):  # the test: section 6's measurement, with and without the scale
    for t in T_ACC:
        tt = torch.full((len(x0),), t)
        scaled = decode(schedule.q_sample(z0, tt, eps_lat))
        unscaled = answer_2(x0, tt, eps_lat)
        accs = [np.mean(list(classifier_accuracy(classifier, to_uint8(img), labels).values()))
                for img in (scaled, unscaled)]
        print(f"t = {t:>3}: attributes read with the scale {accs[0]:4.0%}, without {accs[1]:4.0%}")
ex.check_3(answer_3)
