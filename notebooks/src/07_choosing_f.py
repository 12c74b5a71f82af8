# %% [markdown]
# # 07 · Choosing f: how much should the autoencoder compress?
#
# **What you will learn**
# - the paper's experiment behind its main design choice (Sec. 4.1, Figures 6 and 7): the same
#   diffusion model trained on latents of autoencoders with downsampling factors f = 1 (pixel
#   space), 2, 4, 8 and 16, under one training budget;
# - why f = 1 is slow (the UNet works on 12x more numbers than at f = 4) and why large f is
#   expected to stop improving (the autoencoder has already thrown the detail away: lesson 02's
#   PSNR column), and why a short training run cannot show that;
# - how to read a throughput-quality plot: images per second against sample quality, for
#   different numbers of DDIM steps;
# - what our mini experiment says next to what the paper says, and, as important, which of the
#   paper's claims our small budget can test at all: each verdict below is computed in the
#   notebook from the stored numbers by a rule you can read and change.
#
# **Study time:** about 60 minutes (25 to read, 15 to follow and change the verdict rules of
# section 6, 20 for the three exercises). **Run time:** about 60 s for Run All (61 s measured at
# the rebuild on a 2-core Intel Xeon, most of it the live speed test of section 2 and the shipped
# f = 4 model measured the sweep's way in section 3; other 2-core
# CPUs can take ~1.7x as long). The sweep itself (5 models x 600 steps, each measured 4 times
# while training and at 5 DDIM step counts) took 25 minutes: the project's command
# `python -m ldm_mini experiment f_sweep` ran it and shipped its results in `data/experiments/`;
# this lesson reads them, and measures the speed part live. In the full
# profile (a GPU) it reruns the sweep with bigger models.

# %%
# Parameters
import os

PROFILE = os.environ.get("LDM_PROFILE")  # None: "full" on a GPU, "quick" on a CPU
SEED = 0
DEVICE = None  # None: cuda > mps > cpu
RUN_EXPERIMENT = None  # None: rerun the sweep only in the full profile; True / False to force
LIVE_REPEATS = 3  # timed repetitions for the live speed measurements (the median is shown)

# %%
import inspect
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image

from ldm_mini.checkpoints import read_manifest
from ldm_mini.config import get_profile, pick_device, seed_everything
from ldm_mini.experiments import RESULTS_DIR, f_sweep, load_results

device = pick_device(DEVICE)
profile = get_profile(PROFILE, device)
seed_everything(SEED)
if RUN_EXPERIMENT is None:
    RUN_EXPERIMENT = profile.name == "full"
cfg = f_sweep.sweep_config(profile)
print(f"device: {device}, profile: {profile.name}, rerun the sweep here: {RUN_EXPERIMENT}")

# %% [markdown]
# ## 1. The claim
#
# Latent diffusion splits the work: an autoencoder (E, D) compresses an image x of H x W x 3
# numbers to a latent z of h x w x c with h = H / f, and the diffusion model eps_theta learns
# only in that smaller space. The factor f is a dial:
#
# - **small f** (f = 1 is plain pixel-space diffusion): the diffusion model must spend its
#   capacity on imperceptible detail, and every training and sampling step is expensive;
# - **large f**: steps are cheap, but the autoencoder loses detail that no diffusion model can
#   put back, so quality stalls early.
#
# The paper (Sec. 4.1, Fig. 6) trains class-conditional ImageNet models at 256 x 256 with f in
# {1, 2, 4, 8, 16, 32} for 2 million steps each and reports that small f (LDM-{1,2}) makes slow
# training progress, that overly large f makes the fidelity stagnate after comparably few steps
# (LDM-32 ends behind LDM-{4-16}), and that LDM-{4-16} strike the balance (an FID gap of 38 between LDM-1 and
# LDM-8 after 2M steps). Fig. 7 plots sampling throughput against FID for DDIM steps
# {10, 20, 50, 100, 200}: LDM-{4-8} give the best trade-off.
#
# **Our version.** The same text-to-image UNet (same width, same blocks, attention on the two
# lower levels and in the middle) on the 32 x 32 shapes, with the shipped KL autoencoders
# ae-kl-f{2,4,8,16} of lesson 02 and no autoencoder at f = 1. The only thing f changes in the UNet
# is its input size h = 32 / f; at f = 16 the 2 x 2 latent can be halved only once, so that UNet
# has two levels instead of three and fewer parameters (`f_sweep.unet_config`).
#
# **A confound to keep in mind.** Our images are 32 x 32, the paper's 256 x 256, so the same f
# gives a latent 8x smaller a side. Our f = 4 latent is 8 x 8: the latent size of the paper's
# LDM-32 at 256 px, its most compressed model, the one that ends behind. Our f = 8 (4 x 4) and f = 16 (2 x 2) are smaller
# than any latent in the paper. What limits a model may be the number of latent pixels per object
# rather than f itself, so "f = 4 wins here" and "f = 4 wins in the paper" are not the same
# statement. Here is what each model works on:

# %%
# NBVAL_CHECK_OUTPUT
manifest = read_manifest()
print(f"{'f':>3} {'latent c x h x w':>17} {'numbers':>8} {'x fewer':>8} {'UNet levels':>12} {'UNet params':>12} {'AE PSNR (dB)':>13}")
models = {}
for f in cfg.factors:
    ldm = f_sweep.build_model(f, cfg)
    models[f] = ldm
    c, h, w = ldm.latent_shape
    ae_psnr = manifest[f"ae-kl-f{f}"]["metrics"]["psnr"] if f > 1 else float("inf")
    print(f"{f:>3} {f'{c} x {h} x {w}':>17} {c * h * w:>8} {3 * 32 * 32 / (c * h * w):>8.1f} {len(ldm.config.unet.channel_mult):>12} {ldm.unet.num_params():>12,} {ae_psnr:>13.1f}")

# %% [markdown]
# The last column is lesson 02's measurement of each autoencoder alone, D(E(x)) against x: it is
# the **ceiling** of the LDM at that f. Whatever the diffusion model learns, its samples pass
# through D, and D at f = 16 cannot draw an edge sharper than 21.6 dB allows. (f = 1 has no
# autoencoder: no ceiling.)
#
# ## 2. The cost of a step, measured now
#
# Before looking at quality, the part of the claim we can check on the spot: how long one
# training step (batch 64, forward and backward through eps_theta and tau_theta) and one batch of
# samples (DDIM-20 with guidance, decoder included) take at each f. The models are untrained;
# speed does not depend on the weights. (Timings vary with the machine and with what else runs
# on it, so nbval does not compare them.)

# %%
# NBVAL_IGNORE_OUTPUT
def median_seconds(fn, repeats=LIVE_REPEATS):
    fn()  # warm-up: first calls allocate
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


live = {}
generator = torch.Generator().manual_seed(SEED)
# a training batch of 64, 16 images by DDIM-20; fewer in a miniature run (config.Profile.miniature)
batch, n_images, S = profile.cap_samples(64), profile.cap_samples(16), profile.cap_steps(20)
for f, ldm in models.items():
    ldm.to(device)
    z0 = torch.randn(batch, *ldm.latent_shape, generator=generator).to(device)
    tokens = ldm.tokens(["a red circle above a blue square"] * batch)
    params = list(ldm.unet.parameters()) + list(ldm.text_encoder.parameters())

    def train_step():
        loss = ldm.loss(z0, tokens)
        loss.backward()
        for p in params:
            p.grad = None

    step = median_seconds(train_step)
    sample = median_seconds(lambda: ldm.generate(["a red circle"] * n_images, steps=S, guidance=3.0))
    live[f] = {"step": step, "images_per_s": n_images / sample}
for f, m in live.items():
    print(f"f={f:>2}: training step {m['step'] * 1000:6.0f} ms ({live[1]['step'] / m['step']:5.1f}x faster than f=1),"
          f" DDIM-{S} sampling {m['images_per_s']:6.1f} images/s ({m['images_per_s'] / live[1]['images_per_s']:5.1f}x)")

# %% [markdown]
# ## 3. Quality against training steps (the paper's Fig. 6)
#
# The sweep trained each model for the same number of optimiser steps and, every few steps,
# sampled one image for each of held-out test captions (DDIM-20, guidance s = 3) and judged them
# two ways:
#
# - **FD**: the Frechet distance between the samples and real held-out images in the features of
#   our attribute classifier (lesson 02's "rFID" stand-in; the paper uses FID with Inception
#   features, which cannot be downloaded here). Lower is better. Even two sets of real images
#   are not at 0 with this few images per set: the cell after the plot measures this floor.
# - **prompt accuracy**: the share of captions whose image the classifier reads back right (one
#   object of the right colour and shape; for two-object captions both, correctly bound).

# %%
# NBVAL_CHECK_OUTPUT
if RUN_EXPERIMENT:
    f_sweep.run(profile)
record = load_results("f_sweep")
res = record["results"]
sweep = {int(f): m for f, m in res["models"].items()}
conf = res["config"]  # the sweep's settings (c stays the latent channels)
print(f"measured on {record['date']} by `{record['command']}` in {record['seconds'] / 60:.0f} min "
      f"({record['machine']['cpu_count']} CPU cores, {record['machine']['device']}, torch {record['machine']['torch']})")
print(f"budget: {conf['steps']} steps at batch {conf['batch_size']} for every f; UNet width {conf['model_channels']}; "
      f"{conf['n_eval']} captions per measurement, DDIM-{conf['eval_ddim_steps']}, s = {conf['guidance']}")
print(f"\n{'f':>3} {'s/step':>7} {'train min':>9} {'final FD':>9} {'accuracy':>9} {'img/s DDIM-50':>14}")
for f, m in sweep.items():
    fifty = next(r for r in m["throughput"] if r["ddim_steps"] == 50)
    print(f"{f:>3} {m['seconds_per_step']:>7.3f} {m['seconds_per_step'] * conf['steps'] / 60:>9.1f} {m['curve'][-1]['fd']:>9.1f} {m['curve'][-1]['accuracy']:>9.2f} {fifty['images_per_s']:>14.1f}")

# %%
# the yardsticks drawn into the plot (both explained in the next cells)
floor = f_sweep.fd_floor(n=conf["n_eval"])  # FD of two sets of real test images, n each: what a perfect model would get
# the shipped f = 4 model (64 channels, 1800 steps; lessons 05-06), measured the sweep's way: the same test
# captions, DDIM steps, guidance and seed, read by the attribute classifier as the sweep's models were (~15 s)
import ldm_mini
from ldm_mini.data import images_uint8, load_shapes

test = load_shapes(1000, "test", seed=conf["seed"])
reference = f_sweep.measure_quality(
    ldm_mini.load_pretrained("shapes-kl-f4"), test["caption"][: conf["n_eval"]], images_uint8(test)[: conf["n_eval"]],
    ldm_mini.load_pretrained("attribute-classifier"), conf["eval_ddim_steps"], conf["guidance"], conf["seed"])
reference_acc = reference["accuracy"]
chance = 1 / (6 * 3)  # guessing the colour (6) and shape (3) of a one-object caption

colours = {1: "black", 2: "tab:blue", 4: "tab:green", 8: "tab:orange", 16: "tab:red"}
fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
for f, m in sweep.items():
    steps = [p["step"] for p in m["curve"]]
    axes[0].plot(steps, [p["fd"] for p in m["curve"]], "o-", color=colours[f], label=f"f = {f}")
    axes[1].plot(steps, [p["accuracy"] for p in m["curve"]], "o-", color=colours[f], label=f"f = {f}")
    minutes = [s * m["seconds_per_step"] / 60 for s in steps]
    axes[2].plot(minutes, [p["fd"] for p in m["curve"]], "o-", color=colours[f], label=f"f = {f}")
for ax in (axes[0], axes[2]):
    ax.axhspan(floor["mean"] - floor["sd"], floor["mean"] + floor["sd"], color="grey", alpha=0.25, label="real vs real (+-1 sd)")
yardsticks = [
    axes[1].axhline(reference_acc, color="tab:green", ls=":", lw=1.2, label=f"shipped f = 4 model, 1800 steps ({reference_acc:.2f})"),
    axes[1].axhline(chance, color="grey", ls="--", lw=1, label="chance, one object (1/18)"),
]
axes[0].set(xlabel="training steps", ylabel="FD (lower is better, log)", title="quality vs steps (cf. Fig. 6)", yscale="log")
axes[1].set(xlabel="training steps", ylabel="prompt accuracy", title="prompt accuracy vs steps", ylim=(0, 1))
axes[2].set(xlabel="CPU minutes of training (log)", ylabel="FD (log)", title="quality vs compute", xscale="log", yscale="log")
for ax in axes:
    ax.grid(alpha=0.3)
axes[1].legend(handles=yardsticks, fontsize=8, loc="upper left")
handles, labels = axes[0].get_legend_handles_labels()
fig.legend(handles, labels, loc="lower center", ncol=6, fontsize=9, frameon=False)
fig.tight_layout(rect=(0, 0.08, 1, 1))
plt.show()

# %% [markdown]
# **How noisy is an FD of 100 images?** The grey band above is the yardstick: the FD between the
# sweep's 100 reference test images and 8 other sets of 100 real test images. A model that drew
# perfect images would land in that band, not at 0. Here is the computation:

# %%
print(inspect.getsource(f_sweep.fd_floor))

# %%
N_FLOOR = conf["n_eval"]  # images per set, 100 as in the sweep; exercise 2 changes it
floor_n = f_sweep.fd_floor(n=N_FLOOR)
print(f"FD of two sets of {N_FLOOR} real images, 8 draws: " + ", ".join(f"{v:.0f}" for v in floor_n["values"]))
print(f"floor {floor_n['mean']:.0f} +- {floor_n['sd']:.0f} (sd); final FDs of the sweep (100 images): "
      + ", ".join(f"f={f} {m['curve'][-1]['fd']:.0f}" for f, m in sweep.items()))
# computed live (classifier features): check ranges, not digits (docs/CONVENTIONS.md)
if conf["n_eval"] == 100:  # the figure quoted: the quick sweep's sets of 100 (the full sweep's are 1000)
    assert 170 < floor["mean"] < 245 and 15 < floor["sd"] < 40, f"the floor at 100 images was 206 +- 27 when written, got {floor}"

# %% [markdown]
# **What the shipped run shows, and what it cannot.** Pixel space is far behind after the same
# 600 steps (FD 1008, prompt accuracy 0.15, its samples only starting to look like shapes), and the
# third panel puts the curves on a compute axis: f = 4 had its 600 steps in under a minute, f = 1
# needed 14 minutes for a worse result. That much is clear. The rest is not:
#
# - **FD cannot rank f = 2, 4 and 8.** Their final FDs (281, 218, 227) sit at the floor of two
#   sets of *real* images (about 206, moving by about +-27 from one set of 100 to the next), and
#   the curves cross: f = 8 had the lowest FD until step 450, f = 4 only at the last point.
# - **Prompt accuracy** separates f = 2 and f = 4 (0.33, 0.30; the binomial noise of 100 captions
#   is about +-0.05 each) from f = 8 (0.13) and f = 16 (0.04), but the best of them gets a third of
#   the captions right, where the shipped f = 4 model, trained longer, gets 0.91 (dotted line; measured
#   above in the same way, on the same 100 captions): every model is early in training, and early progress ranks speed of learning, not where a
#   model ends up.
# - **The f = 16 "stall"** is one point: its FD fell to 315 at step 450 and rose to 405 at step 600.
#   One rise, just past the noise threshold of section 6, at a budget where f = 16 is still far from its
#   autoencoder's ceiling (exercise 3), is not the paper's stagnation after training.
#
# (The shipped run's seconds per step were measured while other jobs shared the machine, so they
# are higher than the live measurement of section 2; the ratios between f are what to compare.)

# %% [markdown]
# ## 4. Throughput against quality (the paper's Fig. 7)
#
# A trained model can be sampled with more or fewer DDIM steps S. Fewer steps: more images per
# second, usually worse images. Each curve below is one f, each point one S in
# {10, 20, 50, 100, 200}; up is faster, and left (low FD) or right (high accuracy) is better.

# %%
fig, axes = plt.subplots(1, 2, figsize=(12.5, 4))
for f, m in sweep.items():
    rows = m["throughput"]
    for ax, key in zip(axes, ("fd", "accuracy")):
        ax.plot([r[key] for r in rows], [r["images_per_s"] for r in rows], "o-", color=colours[f], label=f"f = {f}")
        left = key == "accuracy" and f == 1  # f = 1's S = 10 label would sit on f = 8's S = 200 label
        for r, offset in ((rows[0], (-34, 2) if left else (4, 2)), (rows[-1], (4, -10))):  # S = 10 above, S = 200 below
            ax.annotate(f"S={r['ddim_steps']}", (r[key], r["images_per_s"]), fontsize=8, xytext=offset, textcoords="offset points")
axes[0].set(xlabel="FD (lower is better)", ylabel="images / s (log)", yscale="log", xscale="log", title="throughput vs FD (cf. Fig. 7)")
axes[1].set(xlabel="prompt accuracy (higher is better)", ylabel="images / s (log)", yscale="log", title="throughput vs prompt accuracy", xlim=(0, 0.5))
axes[1].axvline(chance, color="grey", ls="--", lw=1, label="chance, one object")
for ax in axes:
    ax.grid(alpha=0.3)
axes[1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))  # outside: no label under it
fig.tight_layout()
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
print("images/s and prompt accuracy at each number of DDIM steps S")
print(f"{'f':>3} " + " ".join(f"{'S=' + str(S):>17}" for S in conf["ddim_steps"]))
for f, m in sweep.items():
    print(f"{f:>3} " + " ".join(f"{r['images_per_s']:7.1f}/s acc {r['accuracy']:4.2f}" for r in m["throughput"]))

# %% [markdown]
# **What the shipped run shows.** Every curve is nearly vertical: on these simple images the
# number of DDIM steps barely changes quality (S = 10 is as good as S = 200, within the noise of
# 50 captions), while throughput falls as 1/S. So the best point of each model is its fastest,
# and the models order by speed at equal quality: f = 4 at S = 10 draws 138 images/s at prompt
# accuracy 0.36, while pixel space at S = 200 draws 0.7 images/s at 0.10. f = 8 and f = 16 are
# faster still but worse. The paper's Fig. 7 puts LDM-{4-8} on the best frontier and LDM-1 slow at
# every S. Here only the pixel-space half of that picture is reproduced: f = 2 and f = 4 tie at the
# top, and f = 8 is faster but clearly worse (0.12-0.14), as in section 3. (The FD values here come from 50 images and are higher than section 3's,
# which used 100: the Frechet distance of small samples is biased upwards, so compare FDs only
# at equal image counts; exercise 2 measures by how much.) The accuracies here come from 50
# captions each (+-0.07 binomial noise), so the order of f = 2 and f = 4 is again a tie.
#
# ## 5. Look at the samples
#
# Numbers summarise; eyes judge. The selector shows the same eight captions drawn by each model
# at the end of its training (DDIM-50, s = 3, the same seed), beside the autoencoder's ceiling.

# %%
import textwrap

sample_captions = res["sample_captions"]
wrapped = ["\n".join(textwrap.wrap(caption, 18)) for caption in sample_captions]  # 8 pt fits ~18 characters a column


def caption_ticks(ax, grid):
    width = grid.shape[1] / len(sample_captions)
    ax.set_xticks([width * (i + 0.5) for i in range(len(sample_captions))], wrapped, fontsize=8)
    ax.tick_params(length=0)
    ax.set_yticks([])


def draw_f_view(f: int):
    view = f_sweep.samples_view(record, f, manifest)  # the selector's logic, unit-tested in the package
    fig, ax = plt.subplots(figsize=(12, 2.6))
    ax.imshow(view["grid"], interpolation="nearest")
    caption_ticks(ax, view["grid"])
    ax.set_title(view["title"], fontsize=10)
    fig.tight_layout()
    return fig


fig, axes = plt.subplots(len(sweep), 1, figsize=(12, 1.75 * len(sweep) + 0.7))
for row, (ax, f) in enumerate(zip(axes, sweep)):
    view = f_sweep.samples_view(record, f, manifest)
    ax.imshow(view["grid"], interpolation="nearest")
    ax.set_xticks([]), ax.set_yticks([])
    if row == 0:  # the captions once, wrapped, above the first row
        caption_ticks(ax, view["grid"])
        ax.xaxis.set_ticks_position("top")
    ax.set_title(view["title"], fontsize=9, pad=42 if row == 0 else 4)  # one title per row: the model
fig.tight_layout()
plt.show()

# %% [markdown]
# What to look for: pixel space (f = 1) has learned layouts and colours but not yet clean
# backgrounds; f = 2 and f = 4 draw some captions cleanly and turn others into blotches (a model
# early in training, not a ceiling: the f = 4 autoencoder reconstructs at 30 dB); f = 16's shapes
# are soft, as its 21.6 dB autoencoder allows, and often the wrong colour or count. Eight images
# per model are an illustration, not a measurement.
#
# The selector shows one model at a time, larger, with the captions under their images.

# %%
# NBVAL_IGNORE_OUTPUT
from ldm_mini.lessons.widgets import choice_panel

panel = choice_panel({f"f = {f}": (lambda f=f: draw_f_view(f)) for f in sweep}, description="model")

# %% [markdown]
# ## 6. Did the paper's claims hold here? The verdicts, computed
#
# A verdict needs three things: the numbers being compared, a rule that says when a difference is
# real, and a budget that can show the effect at all. A claim about where training *ends* (a
# ceiling, a sweet spot) cannot be checked on models that are still early in training. So each
# claim below gets one of three verdicts: **held**, **did not hold**, or **not testable at this
# budget**. The rules first; they are plain functions, so you can change them and rerun.

# %%
N = conf["n_eval"]  # captions (and images) behind each point of the curves: 100
final = {f: m["curve"][-1] for f, m in sweep.items()}  # the EMA weights after 600 steps
step_s = {f: m["seconds_per_step"] for f, m in sweep.items()}
speed = {f: next(r["images_per_s"] for r in m["throughput"] if r["ddim_steps"] == 50) for f, m in sweep.items()}
fd_noise = floor["sd"]  # how much an FD of N images moves when the images are redrawn (section 3)


def fd_differs(a, b):
    """Two FDs differ when the gap exceeds 2 standard deviations of a difference of two noisy FDs."""
    return abs(a - b) > 2 * math.sqrt(2) * fd_noise


def acc_se(p, n=N):
    """Binomial standard error of an accuracy measured on n captions (kept above 0 at p = 0)."""
    return math.sqrt(max(p * (1 - p), 1 / n) / n)


def acc_differs(p, q, n=N):
    return abs(p - q) > 2 * math.hypot(acc_se(p, n), acc_se(q, n))


def clearly_faster(slow, fast):
    """Timings move ~15% run to run and the sweep shared its machine: ask for a factor of 2."""
    return slow > 2 * fast


best_acc = max(p["accuracy"] for p in final.values())
near_end = best_acc >= 0.9 * reference_acc  # is any model near what the f = 4 recipe reaches trained longer?


def verdict(testable: bool, ok: bool) -> str:
    return ("held" if ok else "did not hold") if testable else "not testable at this budget"


print(f"FD differs when the gap exceeds {2 * math.sqrt(2) * fd_noise:.0f}; accuracies of {N} captions at 0.3 "
      f"differ when the gap exceeds {2 * math.hypot(acc_se(0.3), acc_se(0.3)):.2f}")
print(f"best prompt accuracy of the sweep {best_acc:.2f}, the shipped f = 4 model {reference_acc:.2f}: "
      f"near the end of training: {near_end}")

# %% [markdown]
# Now the claims. Each block names the paper's claim, computes whether the evidence is strong
# enough to judge it (`testable`) and what it says (`ok`), and prints the numbers it used.

# %%
mid = min((4, 8), key=lambda f: final[f]["fd"])  # the better of the paper's sweet spot LDM-{4-8}
big = max(sweep)
claims = []

# 1. Pixel space is slow to train (Sec. 4.1, Fig. 6: "substantially larger train times").
ok = all(clearly_faster(step_s[1], step_s[f]) for f in sweep if f != 1)
claims.append((verdict(True, ok), f"f = 1 trains slowest per step: {step_s[1]:.3f} s vs "
               + ", ".join(f"f={f} {step_s[f]:.3f} s" for f in sweep if f != 1)))

# 2. Pixel space samples slowest (Fig. 7).
ok = all(clearly_faster(speed[f], speed[1]) for f in sweep if f != 1)
claims.append((verdict(True, ok), f"f = 1 samples slowest (DDIM-50): {speed[1]:.1f} images/s vs f={mid} {speed[mid]:.1f}"))

# 3. Small f makes slow training progress: after the same steps, LDM-1 is behind the middle (Fig. 6).
fd_real = fd_differs(final[1]["fd"], final[mid]["fd"])
acc_real = acc_differs(final[1]["accuracy"], final[mid]["accuracy"])
ok = (not fd_real or final[mid]["fd"] < final[1]["fd"]) and (not acc_real or final[mid]["accuracy"] > final[1]["accuracy"])
claims.append((verdict(fd_real or acc_real, ok),
               f"after the same {final[1]['step']} steps f = {mid} is ahead of f = 1: FD {final[mid]['fd']:.0f} vs "
               f"{final[1]['fd']:.0f}, accuracy {final[mid]['accuracy']:.2f} vs {final[1]['accuracy']:.2f}"))

# 4. Overly large f stagnates: its quality stops improving while smaller f keep going (Fig. 6, LDM-32).
#    A stagnation is about the end of training: testable only near it.
fds = [p["fd"] for p in sweep[big]["curve"]]
claims.append((verdict(near_end, final[big]["fd"] > final[mid]["fd"]),
               f"f = {big} stagnates: its FD by step {', '.join(f'{v:.0f}' for v in fds)} (one rise, at the last "
               f"point); accuracy {final[big]['accuracy']:.2f} at the end, best model {best_acc:.2f}"))

# 5. The sweet spot is LDM-{4-8} (Fig. 7). Testable only near the end of training, and only if
#    the best f by each measure beats the others by more than the noise.
best_fd_f = min(sweep, key=lambda f: final[f]["fd"])
best_acc_f = max(sweep, key=lambda f: final[f]["accuracy"])
tied_fd = [f for f in sweep if not fd_differs(final[f]["fd"], final[best_fd_f]["fd"])]
tied_acc = [f for f in sweep if not acc_differs(final[f]["accuracy"], final[best_acc_f]["accuracy"])]
order = lambda k: sorted((2, 4, 8), key=lambda f: sweep[f]["curve"][k]["fd"])  # noqa: E731
crossing = order(-1) != order(-2)
separated = len(tied_fd) == 1 and len(tied_acc) == 1
claims.append((verdict(near_end and separated and not crossing, best_fd_f in (4, 8) and best_acc_f in (4, 8)),
               f"the sweet spot is f in {{4, 8}}: within the noise of the best FD: f = {tied_fd}; of the best "
               f"accuracy: f = {tied_acc}; the FD order of f = 2, 4, 8 changed at the last point: {crossing}"))

for v, text in claims:
    print(f"{v}: {text}")
# the text below reads these verdicts; the rules' inputs are live (the FD noise), so check the outcome, not digits
if res["profile"] == "quick":  # the verdicts of the quick profile's sweep (the shipped one); a full sweep may differ
    assert [v for v, _ in claims] == ["held"] * 3 + ["not testable at this budget"] * 2, claims
    assert tied_fd == [2, 4, 8] and tied_acc == [2, 4] and crossing, (tied_fd, tied_acc, crossing)

# %% [markdown]
# **What the verdicts say.** Three claims held, each by a wide margin: pixel space is 4-33x slower
# per training step than the latent models, 4-44x slower to sample, and after the same 600 steps it
# is far behind (FD 1008 vs 218; accuracy 0.15 vs 0.30, a gap of 2.6 standard errors). Those are
# claims about the *start* of training and about cost, and 600 steps can show them.
#
# The other two are **not testable at this budget**, and the code says why:
#
# - **Large f stagnates.** The paper's LDM-32 stops improving after training far longer than
#   ours. Our f = 16 "stall" is one point (FD 315 at step 450, 405 at step 600, a rise just past
#   the noise threshold), its accuracy of 0.04 is far below what its own autoencoder allows
#   (exercise 3 measures that ceiling), and the best model of the sweep reached 0.33 where the
#   shipped f = 4 model reaches 0.91. A model that has not reached its ceiling cannot show one.
# - **The sweet spot is 4-8.** By FD, f = 2, 4 and 8 are all within the noise of the best (and near
#   the floor of real images); by accuracy f = 2 and 4 tie; the FD curves of f = 4 and 8 crossed at
#   the last point. A ranking that changes with the last point is not a ranking.
#
# Two more reasons to hold back, which no rule here can fix: the FD floor measured on *real*
# images is only a rough stand-in for the noise of an FD of *generated* images, and the confound of
# section 1 (our f = 4 latent is the size of the paper's LDM-32 latent). Testing them needs a
# rerun with a longer budget, more images per point and repeated seeds; the rules above are what
# its numbers would be judged by. Change a rule (the factor 2 in `fd_differs`, the 0.9 in
# `near_end`) and rerun the two cells: the verdicts follow the rule, not the text.
#
# ## Summary
# - f sets how many numbers the diffusion model works on: 3072 per image in pixel space, 256 at
#   f = 4, 16 at f = 16. Training and sampling cost follow that number (measured live above), and
#   that part of the paper's case held here by wide margins.
# - Under a fixed, short budget, pixel space learns slowest per step as well. Which middle f is
#   best, and whether large f stalls at the autoencoder's ceiling, are claims about the end of
#   training: 600 steps cannot test them, and the lesson says so rather than guess.
# - A verdict is a comparison plus a noise rule plus a budget: an FD of 100 images moves by about
#   +-27 when the images are redrawn, an accuracy of 100 captions by about +-0.05.
# - Throughput-quality plots compare samplers and models at once: each S is a point, each model a
#   curve; the best model is the one whose curve lies up and to the left.
# - Mind the image size: our f = 4 latent (8 x 8) is the size of the paper's LDM-32 latent.
#
# ## Exercises
#
# Each takes a minute or two on a 2-core CPU; nothing is retrained. Write your answer into the
# cell and run it: the check says right or gives a hint.
#
# 1. **Computation: an equal-time budget.** The sweep gave every model the same number of steps.
#    Give them the same CPU time instead: from `sweep` (section 3), take every measured point whose
#    training time `step * seconds_per_step` is at most 60 s. What is the lowest FD among them
#    (a float), and which f reached it? (`ex.check_1`)
# 2. **Code change: the FD floor at 50 images.** Section 4's FDs use 50 images, section 3's 100.
#    Change `N_FLOOR` in the floor cell of section 3 to 50, rerun it, and report the mean floor
#    (`floor_n["mean"]`, a float). By how much does halving the set raise the floor? (`ex.check_2`)
# 3. **Prediction: the ceiling at f = 16.** Every sample of the f = 16 model passes through the
#    decoder of ae-kl-f16 (21.6 dB). Predict the prompt accuracy of that autoencoder's
#    *reconstructions* of 100 real test images, judged like the samples: "above 0.9", "0.3 to 0.9"
#    or "below 0.3". Write it down, then run the check, which measures it
#    (`f_sweep.reconstruction_score(16)`, a few seconds). What does it tell you about claim 4?

# %%
from ldm_mini.lessons.exercises import lesson_07 as ex

answer_1 = None  # your answer: the lowest FD (float) among the points reached within 60 s of training
ex.check_1(answer_1)

# %%
from ldm_mini.lessons.exercises import lesson_07 as ex

answer_2 = None  # your answer: the mean FD floor (float) of two sets of 50 real images
ex.check_2(answer_2)

# %%
from ldm_mini.lessons.exercises import lesson_07 as ex

answer_3 = None  # your prediction (str): "above 0.9", "0.3 to 0.9" or "below 0.3"
ex.check_3(answer_3)
