# %% [markdown]
# # 01 · Rate, distortion and the two kinds of compression
#
# **What you will learn**
# - what *rate* in bits per dimension (bits/dim) means, from first principles;
# - what *distortion* is, and how the two trade off (a rate-distortion curve);
# - the paper's split of compression into a **perceptual** stage (drop detail the eye hardly
#   sees) and a **semantic** stage (learn what the image is about), and why latent diffusion
#   hands the first to an autoencoder and only the second to the diffusion model.
#
# **Study time:** about 45 minutes (30 to read and look, 15 for the three exercises at the end).
# **Run time:** about 10 s for Run All on 2 CPU cores (9 s when this notebook was rebuilt, on an "Intel(R) Xeon(R) Processor"; other 2-core CPUs can take up to ~1.7x as long). Nothing is trained here.
#
# Symbols follow the series' table (lesson 00, section 7): x an image, E and D the encoder and
# decoder, f the downsampling factor, R the rate in bits/dim.
#
# The paper (Sec. 3, Fig. 2) observes that a likelihood-based model trained on pixels spends
# most of its bits on *imperceptible* details. We will see the same thing with classical tools:
# a few bits carry the content of an image; the remaining many carry fine detail.

# %%
# Parameters
import os

PROFILE = os.environ.get("LDM_PROFILE")  # None: "full" on a GPU, "quick" on a CPU
SEED = 0
DEVICE = None  # None: cuda > mps > cpu
N_IMAGES = 200  # images per curve

# %%
import io

import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image

from ldm_mini.config import get_profile, pick_device, seed_everything
from ldm_mini.data import images_uint8, load_shapes, photo, photo_crops
from ldm_mini.eval import psnr
from ldm_mini.rate import bits_per_dim_dct, bits_per_dim_downsample, bits_per_dim_raw, dct_truncate, downsample_upsample

device = pick_device(DEVICE)
profile = get_profile(PROFILE, device)
seed_everything(SEED)
shapes = images_uint8(load_shapes(profile.n_eval, "val", seed=SEED))[:N_IMAGES].float() / 255  # b 3 32 32 in [0, 1]
photos = torch.from_numpy(photo_crops(N_IMAGES, size=32, split="val", seed=SEED)).permute(0, 3, 1, 2).float() / 255
print(f"{len(shapes)} shapes and {len(photos)} photo crops, each {tuple(shapes.shape[1:])}")

# %% [markdown]
# ## 1. Rate: bits per dimension
#
# An RGB image of H x W pixels has D = 3 H W *dimensions* (numbers). Stored raw, each number
# takes 8 bits (0..255). The **rate** of a representation is the number of bits it needs,
# divided by D:
#
# $$\text{rate} = \frac{\text{bits}}{3HW}\quad\text{[bits/dim]}, \qquad \text{raw 8-bit image: } \frac{8 \cdot 3HW}{3HW} = 8 \text{ bits/dim}.$$
#
# A lossless compressor (PNG here) finds the redundancy and spends fewer bits *without
# losing anything*. How many depends on the image:

# %%
# NBVAL_CHECK_OUTPUT
def png_bits_per_dim(images: torch.Tensor) -> float:
    """Mean PNG file size (bits) per dimension: a real, lossless rate."""
    sizes = []
    for x in images:
        buffer = io.BytesIO()
        Image.fromarray((x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(buffer, format="PNG", optimize=True)
        sizes.append(8 * len(buffer.getvalue()) / x.numel())
    return float(np.mean(sizes))


print(f"raw:               {bits_per_dim_raw():.2f} bits/dim")
print(f"PNG, shapes:       {png_bits_per_dim(shapes):.2f} bits/dim")
print(f"PNG, photo crops:  {png_bits_per_dim(photos):.2f} bits/dim")

# %% [markdown]
# PNG carries a header of a few dozen bytes, which weighs a lot on a 32 x 32 image, so these
# rates are upper bounds. Still: flat shapes are cheap, textured photos expensive. Lossless
# coding has a floor, though (the information the image really holds). To go lower we must
# accept **distortion**: the reconstruction x~ differs from x. We measure it with the PSNR (peak signal-to-noise ratio, in dB; higher is
# better): PSNR = 10 log10(1 / MSE) for images in [0, 1]. Around 30 dB a 32 x 32 image looks right.

# %% [markdown]
# ## 2. Dropping high frequencies: a rate-distortion curve
#
# The discrete cosine transform (DCT, the heart of JPEG) rewrites each channel as a sum of
# cosine patterns, from flat (low frequency) to fine checkerboards (high frequency). Keep only
# the k x k lowest frequencies and you keep k^2 numbers per channel instead of H W. At 8 bits per
# kept number the rate is 8 k^2 / (H W) bits/dim. That is a plain *count*, with no entropy
# coding (JPEG quantises and entropy-codes the coefficients and does much better), so compare
# these rates with each other, not with the PNG numbers above. Here is a photo at several k:

# %%
big = torch.from_numpy(photo("astronaut", 128)[:128, :128].copy()).permute(2, 0, 1).float() / 255  # 3 128 128
ks = [4, 8, 16, 32, 64, 128]
fig, axes = plt.subplots(1, len(ks), figsize=(2.2 * len(ks), 2.6))
for ax, k in zip(axes, ks):
    rec = dct_truncate(big.double(), k).float().clamp(0, 1)
    ax.imshow(rec.permute(1, 2, 0).numpy())
    ax.set_title(f"k={k}\n{bits_per_dim_dct(k, 128, 128):.2f} bits/dim, {psnr(big[None], rec[None]):.1f} dB", fontsize=8)
    ax.axis("off")
fig.suptitle("Keeping the k x k lowest DCT frequencies of each channel")
fig.tight_layout()
plt.show()

# %% [markdown]
# With k = 32 (a sixteenth of the raw rate) the astronaut is clearly there; what is missing is
# texture, fine edges, the stripes of the flag. Even k = 16 keeps the layout and the colours. Now the same over many images, for shapes and photos,
# with a second classical compressor beside it: **downsampling** by a factor f (average-pool,
# then resize back), which keeps 1/f^2 of the numbers. That factor f is exactly the one the
# autoencoder of lesson 02 uses.

# %%
def dct_curve(images: torch.Tensor) -> tuple[list[float], list[float]]:
    H = images.shape[-1]
    rates, psnrs = [], []
    for k in range(1, H):  # k = H would be lossless: infinite PSNR
        rec = dct_truncate(images.double(), k).float().clamp(0, 1)
        rates.append(bits_per_dim_dct(k, H, H))
        psnrs.append(psnr(images, rec))
    return rates, psnrs


def downsample_curve(images: torch.Tensor) -> tuple[list[float], list[float]]:
    rates, psnrs = [], []
    for f in (2, 4, 8, 16):
        rec = downsample_upsample(images, f).clamp(0, 1)
        rates.append(bits_per_dim_downsample(f))
        psnrs.append(psnr(images, rec))
    return rates, psnrs


curves = {name: (dct_curve(x), downsample_curve(x)) for name, x in (("shapes", shapes), ("photos", photos))}

fig, ax = plt.subplots(figsize=(7, 4))
for name, colour in (("shapes", "tab:blue"), ("photos", "tab:orange")):
    (r, p), (rd, pd) = curves[name]
    ax.plot(r, p, "-", color=colour, label=f"{name}: keep k x k DCT")
    ax.plot(rd, pd, "o--", color=colour, label=f"{name}: downsample by f")
for f, x, y1, y2 in zip((2, 4, 8, 16), curves["shapes"][1][0], curves["shapes"][1][1], curves["photos"][1][1]):
    ax.annotate(f"f={f}", (x, min(y1, y2)), textcoords="offset points", xytext=(0, -14), ha="center", fontsize=8)
ax.axhline(30, color="gray", lw=0.8, ls=":")
ax.text(2 ** -6.8, 30.5, "30 dB: looks right", ha="left", fontsize=8, color="gray")
ax.set_xscale("log", base=2)
ax.set_xlabel("rate [bits/dim] (log scale)")
ax.set_ylabel("PSNR [dB] (higher = less distortion)")
ax.set_title("Rate-distortion: 20 dB for 0.2 bits/dim, 40 dB for 7 to 7.5")
ax.legend(fontsize=8)
ax.set_ylim(10, 50)
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
def rate_for(psnr_target: float, rates: list[float], psnrs: list[float]) -> float:
    """The smallest rate on the curve that reaches psnr_target dB."""
    return next(r for r, p in zip(rates, psnrs) if p >= psnr_target)


targets = (20, 25, 30, 35, 40)
print(f"{'':<7} " + " ".join(f"{t:>5} dB" for t in targets) + "   (bits/dim to reach it)   30 -> 40 dB costs")
for name in ("shapes", "photos"):
    (r, p), _ = curves[name]
    need = {t: rate_for(t, r, p) for t in targets}
    extra = need[40] - need[30]  # the bits of the last 10 dB
    print(f"{name:<7} " + " ".join(f"{need[t]:8.3f}" for t in targets)
          + f"   {extra:.2f} more bits/dim = {extra / need[30]:.2f}x the bits of reaching 30 dB")
    # the claim of the text below, checked on the numbers themselves
    assert need[20] < 0.25 and extra > need[30], f"{name}: 20 dB under 0.25 bits/dim and 30 -> 40 dB dearer than 0 -> 30 dB"

# %% [markdown]
# Read the curve from the left. 0.13 to 0.2 bits/dim (k = 4 or 5 of 32) already buy the coarse
# layout and the colours: 20 dB. Reaching 30 dB takes about 3 bits/dim, 14 to 25 times more. And
# the last 10 dB, from 30 to 40, cost *more* bits than all of the first 30 dB: 1.66x as many for
# the shapes and 1.25x for the photos. Those late bits encode detail that a viewer barely notices.
# (The cost per dB does not grow forever: near k = 32 the curve turns up again, because keeping
# every coefficient is lossless, PSNR infinite.) That is the paper's Figure 2 in miniature: a model
# that must reproduce every bit (a likelihood model in pixel space) spends most of its effort on
# that tail.

# %% [markdown]
# ## 3. Perceptual vs semantic compression
#
# The paper names the two regimes:
#
# - **perceptual compression**: removing high-frequency detail that the eye hardly sees. The
#   image still *means* the same thing. Cheap to learn, and learned once: an autoencoder E, D.
# - **semantic compression**: what is *in* the image: a red circle above a green triangle.
#   This is what a generative model must actually learn; it is where its capacity should go.
#
# We can make the distinction measurable on our shapes. Downsample them by f and ask a
# classifier that was trained only on clean images (the attribute classifier of
# `ldm_mini.eval`, shipped with the course) whether it still reads shape, colour, size and
# position. If downsampling only removed perceptual detail, the PSNR would fall while the
# classifier kept reading everything. Does it?

# %%
import ldm_mini
from ldm_mini.data import attribute_labels
from ldm_mini.eval import classifier_accuracy

classifier = ldm_mini.load_pretrained("attribute-classifier")
val = load_shapes(profile.n_eval, "val", seed=SEED)
x_val, labels = images_uint8(val), attribute_labels(val)
rows = []
for f in (1, 2, 4, 8, 16):
    x = x_val.float() / 255
    rec = x if f == 1 else downsample_upsample(x, f).clamp(0, 1)
    rec_uint8 = (rec * 255).round().to(torch.uint8)
    acc = classifier_accuracy(classifier, rec_uint8, labels)
    rows.append((f, bits_per_dim_downsample(f), psnr(x, rec), float(np.mean(list(acc.values())))))
    print(f"f={f:>2}: {rows[-1][1]:6.3f} bits/dim, PSNR {rows[-1][2]:5.1f} dB, attributes read correctly: {rows[-1][3]:6.1%}")
# the classifier's last digits depend on the CPU's kernels: ranges around the values when written (docs/CONVENTIONS.md)
if len(val) == 1000:
    written = {2: (27.8, 1.000), 4: (23.0, 0.923), 8: (18.2, 0.616), 16: (15.5, 0.461)}  # f: (PSNR dB, attributes read)
    for f, bpd, p, a in rows[1:]:
        assert abs(p - written[f][0]) < 0.1 and abs(a - written[f][1]) < 0.01, f"f={f}: {written[f]} when written, got ({p:.2f}, {a:.3f})"

# %%
from ldm_mini.data import ATTRIBUTE_VALUES

# Two baselines for the mean accuracy over the 8 heads, from the labels alone:
chance = float(np.mean([1 / len(values) for values in ATTRIBUTE_VALUES.values()]))  # guess uniformly
majority = float(np.mean([torch.bincount(y).max().item() / len(y) for y in labels.values()]))  # always the commonest class
print(f"uniform guessing: {chance:.1%}; always the most frequent class: {majority:.1%}")
assert chance < majority < rows[-1][3] < majority + 0.1, "at f = 16 the classifier is a few points above the majority baseline"

fs = [r[0] for r in rows]
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
ax1.plot(fs[1:], [r[2] for r in rows[1:]], "o-", color="tab:red")  # f = 1 is the original: infinite PSNR
ax1.set_ylabel("PSNR [dB]")
ax1.set_title("Fidelity: PSNR of the downsampled shapes", fontsize=10)
ax1.axhline(30, color="gray", lw=0.8, ls=":")
ax1.text(16, 29.6, "30 dB: looks right", ha="right", va="top", fontsize=8, color="gray")
ax1.set_ylim(10, 32)
ax2.plot(fs, [100 * r[3] for r in rows], "s-", color="tab:green", label="attribute classifier")
ax2.axhline(100 * majority, color="gray", lw=1, ls="--", label=f"always the most frequent class ({majority:.0%})")
ax2.axhline(100 * chance, color="gray", lw=1, ls=":", label=f"uniform guessing ({chance:.0%})")
ax2.set_ylim(0, 102)
ax2.set_ylabel("attributes read correctly [%]")
ax2.set_title("Meaning: what the classifier still reads", fontsize=10)
ax2.legend(fontsize=8, loc="lower left")
for ax in (ax1, ax2):
    ax.set_xscale("log", base=2)
    ax.set_xticks([1, 2, 4, 8, 16], ["1", "2", "4", "8", "16"])
    ax.set_xlim(0.8, 20)
    ax.set_xlabel("downsampling factor f")
fig.suptitle("Downsampling loses fidelity from f = 2 and meaning from f = 4")
fig.tight_layout()
plt.show()

# %% [markdown]
# Only at f = 2 does downsampling behave like a perceptual compressor: the PSNR falls to 28 dB and
# the classifier still reads 100% of the attributes. From f = 4 on, meaning goes *with* the
# fidelity, not after it: 92% at f = 4 (23 dB), 62% at f = 8 (18 dB), and 46% at f = 16, only a
# few points above the 42% that always guessing the most frequent class gets (many heads are "is
# there a second object?", which half the images answer "none"). Shape goes first (exercise 3):
# a 4 x 4 average blurs a small triangle and a small circle into the same blob.
#
# So the line between perceptual and semantic compression is not a property of the rate alone:
# a crude compressor crosses it early. Lesson 02 *learns* the compressor instead, an autoencoder
# trained with perceptual and adversarial losses; at f = 4 it reconstructs the shapes at about
# 30 dB where downsampling gives 23 dB, and lesson 02 measures how much of the meaning it keeps.

# %% [markdown]
# ## 4. Try it: the rate slider
#
# Move the slider to keep more or fewer DCT frequencies. The right panel shows what was thrown
# away. Watch how early the shapes become recognisable, and how long the photo's texture takes.

# %%
# NBVAL_IGNORE_OUTPUT
from ldm_mini.lessons.widgets import rate_panel

panel = rate_panel({"astronaut (photo)": big, "shapes": shapes[0], "photo crop": photos[3]}, keep=16)

# %% [markdown]
# ## Summary
# - Rate = bits / (3 H W). Raw 8-bit images cost 8 bits/dim; lossless coding gets shapes far
#   below that, photos much less so.
# - Rate and distortion trade off along a curve whose first bits buy most of the quality; the
#   tail pays many bits for imperceptible detail (the paper's Fig. 2).
# - **Perceptual** compression removes that detail; **semantic** compression is the content.
#   The LDM gives the first to an autoencoder, trained once, and the second to the diffusion model.
# - A crude compressor does not respect that line: plain downsampling of 32 x 32 shapes keeps the
#   meaning only up to f = 2; from f = 4 the classifier loses shape first, and by f = 16 it reads
#   little more than always guessing the most frequent class.
#
# ## Exercises
#
# Each exercise has a check: put your answer in `answer_K` and run the cell. A wrong answer gets a
# hint, not the number. Reference solutions are in `solutions/lesson_01.py` (try first). Each runs
# in seconds.
#
# 1. **Computation.** Find the smallest k at which the 128 x 128 astronaut of section 2 (`big`)
#    reaches 30 dB with `dct_truncate`, and give that rate in bits/dim (`bits_per_dim_dct`). Compare
#    it with the k = 16 the eye needs to recognise her. (`ex.check_1`; answer a float.)
# 2. **Code change.** `downsample_upsample` *averages* each f x f block. Write
#    `subsample_upsample(images, f)` that keeps one pixel per block instead (`images[..., ::f, ::f]`)
#    and repeats it over the block (`repeat_interleave` on the last two dimensions). Swap it into
#    `downsample_curve` and see how the dotted curves move; pass the function: `answer_2 =
#    subsample_upsample` (`ex.check_2` prints both PSNRs).
# 3. **Prediction.** When f grows, which attribute does the classifier lose first: `"shape"`,
#    `"colour"`, `"size"` or `"position"`? Write your guess, then test it: in section 3's loop, print
#    `acc` (the accuracy per head) instead of its mean, and look at f = 4. Then run `ex.check_3`.

# %%
from ldm_mini.lessons.exercises import lesson_01 as ex

answer_1 = None  # your answer: a float, bits/dim of the smallest k with PSNR >= 30 dB
ex.check_1(answer_1)

# %%
from ldm_mini.lessons.exercises import lesson_01 as ex

answer_2 = None  # your answer: a function subsample_upsample(images, f) -> tensor shaped like images
ex.check_2(answer_2)

# %%
from ldm_mini.lessons.exercises import lesson_01 as ex

answer_3 = None  # your answer: "shape", "colour", "size" or "position"
ex.check_3(answer_3)
