# %% [markdown]
# # 10 · Beyond the paper: attribute binding
#
# **What you will learn**
# - a failure the paper does not list among its limitations (its Sec. 5 names two: sequential
#   sampling is slower than a GAN, and the autoencoder's fidelity caps pixel-accurate tasks). This
#   series' seed review raised it about Stable Diffusion: ask for "a red car and a white sheep" and
#   you may get a *red sheep*. A model can draw every thing a caption names and still put the
#   attributes on the wrong objects;
# - how to measure it: **binding accuracy** (each colour on its own shape) against **presence**
#   (each colour and each shape drawn at all), and how to tell a measured rate from chance;
# - what the cross-attention maps look like when colours leak, computed word by word;
# - whether the seed review's explanation can be tested here. SD's tau_theta is CLIP's text encoder,
#   which CLIP trained only through its **pooled** token, so its other tokens need not say which word
#   belongs to which; a model fed **one pooled vector** should then bind worse than one fed **one
#   context vector per token**. We trained both with the same (old) recipe and budget, and found why
#   that comparison could not decide;
# - a remedy beyond the paper, at sampling time: nudging z_t so the cross-attention maps respect
#   the caption (in the spirit of Attend-and-Excite), measured before and after.
#
# **Study time:** about 60 minutes (reading, the statistics of sections 5 and 6, three exercises of
# under a minute of CPU each).
#
# **Run time** of Run All: 23 s measured at the last rebuild on one thread of the 2-core build machine
# (an "Intel(R) Xeon(R) Processor") while another job used the other core; about 12 s on a free 2-core
# CPU; other 2-core CPUs can be ~1.7x different. The comparison of trained models comes
# from the shipped results of `python -m ldm_mini experiment binding` (8.6 min; printed below);
# samples, attention maps and the remedy on a few captions run live.

# %%
# Parameters
import os

PROFILE = os.environ.get("LDM_PROFILE")  # None: "full" on a GPU, "quick" on a CPU
SEED = 0
DEVICE = None  # None: cuda > mps > cpu
N_LIVE = 48  # two-object test captions sampled live (sections 2 and 3)
N_REMEDY = 8  # captions the remedy runs on live (section 5)
RUN_EXPERIMENT = None  # None: only with the "full" profile (it trains a model: ~7 min on a CPU)

# %%
import math
import time

import matplotlib.pyplot as plt
import torch

import ldm_mini
from ldm_mini.config import get_profile, pick_device, seed_everything
from ldm_mini.experiments import binding, load_results
from ldm_mini import guidance
from ldm_mini.eval import classify_images, describe, prompts
from ldm_mini.lessons.plotting import show_grid

device = pick_device(DEVICE)
profile = get_profile(PROFILE, device)
RUN_EXPERIMENT = profile.name == "full" if RUN_EXPERIMENT is None else RUN_EXPERIMENT
seed_everything(SEED)
ldm = ldm_mini.load_pretrained("shapes-kl-f4", device=device)
judge = ldm_mini.load_pretrained("judge", device=device)  # marks generated images (lesson 00, section 8)
tokenizer = ldm.tokenizer
print(f"device: {device}, profile: {profile.name}, run the experiment live: {RUN_EXPERIMENT}")

# %% [markdown]
# ## 1. The claim: attributes leak between objects
#
# The paper does not discuss this failure; the seed review of this series states it plainly, about
# Stable Diffusion: "a red car and a white sheep" gives a red sheep. Our shapes make the question exact.
# Every two-object caption names two *different* shapes in two *different* colours, so for each
# image the judge (lesson 00, section 8) can say which colour each drawn shape wears.
#
# *Where this lesson stands.* The shipped model binds: its headline figures (lesson 05, section 6),
# printed below from the manifest, put most "X and Y" captions right. Its first version did not: trained
# with tau_theta's position embeddings at std 0.02 for 1800 steps, it drew both objects almost always
# and paired colours with shapes at chance (41% bound right). Lesson 05 shows the lever that changed
# it. Sections 4 and 6 below still report the experiment that was run on that **old recipe**
# (`data/experiments/binding.json`: per-token against pooled text, read by the attribute classifier
# before the judge existed); its rerun on the new recipe, with a third, CLIP-like text encoder
# (issue 16), will replace them. Everything sampled live here uses the shipped model and the judge.

# %%
# NBVAL_CHECK_OUTPUT
from ldm_mini.checkpoints import read_manifest

headline = read_manifest()["shapes-kl-f4"]["headline"]
figures = headline["figures"]
print(f"the shipped model on {headline['sets']['two']['n']} 'X and Y' test captions ({headline['sampler']}), read by the judge:")
for name in ("presence", "binding", "swapped"):
    lo, hi = figures[f"{name}_ci"]
    print(f"  {name:9} {figures[name]:6.1%} [{lo:.1%}, {hi:.1%}]")

# %% [markdown]
# Eight samples of one caption, from eight noises z_T, with what the judge saw in each:

# %%
claim = "a red circle and a blue square"
images = ldm.generate([claim] * 8, steps=profile.sample_steps, guidance=3.0, seed=SEED)
seen = classify_images(images, judge)
verdicts = [prompts.score_binding(claim, s) for s in seen]
labels = ["right" if v["binding"] else "SWAPPED" if v["swapped"] else "missing a part" for v in verdicts]
print(f'"{claim}", eight noises z_T (DDIM-{profile.sample_steps}, guidance s = 3); above each image: the verdict and what the judge saw')
show_grid(images, [f"{lab}: {describe(s)}" for lab, s in zip(labels, seen)], ncols=4, scale=2.4, fontsize=8)
plt.show()
print(f"{sum(v['binding'] for v in verdicts)} of 8 right, {sum(v['swapped'] for v in verdicts)} with the colours swapped, "
      f"{sum(not v['presence'] for v in verdicts)} missing a named colour or shape")

# %% [markdown]
# ## 2. Measuring it: binding against presence
#
# For a two-object caption, with what the judge sees in the image (`prompts.score_binding`):
#
# - **presence**: each named colour and each named shape appears somewhere. A model that reads
#   the caption as a *bag of words* can score full marks here.
# - **binding**: exactly two objects, each (colour, shape) pair as the caption says; the order
#   and the layout are free. (The manifest's `two_binding` also asks for the layout of relation
#   captions such as "above"; we print it too, as `binding_layout`.)
# - **swapped**: every named part is present, on two objects, but paired wrongly: the red sheep.
#
# A useful yardstick: among images with all parts present, there are only two ways to pair two
# colours with two shapes. If colours were dealt to shapes **at random**, binding given presence
# would be 1/2.
#
# The rule, written out for the first image above (this is all `prompts.score_binding` does):

# %%
# NBVAL_CHECK_OUTPUT
wanted = prompts.caption_objects(claim)  # the (colour, shape) pairs the caption asks for
example = {"colour1": "blue", "shape1": "circle", "colour2": "red", "shape2": "square"}  # what a swapped image shows
got = [(example["colour1"], example["shape1"]), (example["colour2"], example["shape2"])]
presence = all(c in {c2 for c2, _ in got} and sh in {s2 for _, s2 in got} for c, sh in wanted)
bound = len(got) == 2 and sorted(got) == sorted(wanted)  # the same pairs, in any order
print(f"wanted {wanted}\ngot    {got}\npresence {presence}, binding {bound}, swapped {presence and len(got) == 2 and not bound}")

# %% [markdown]
# Live, on the first N_LIVE two-object test captions (we also keep the attention maps of every
# sample, for section 3):

# %%
captions = prompts.two_object_captions(N_LIVE, "test", seed=SEED)
start = time.perf_counter()
live_images, live_maps = binding.sample_with_attention(ldm, captions, steps=profile.sample_steps, guidance=3.0, seed=SEED)
live_seen = classify_images(live_images, judge)
live = prompts.binding_table(captions, live_seen)
print(f"{len(captions)} captions sampled in {time.perf_counter() - start:.0f} s")
print(f"presence {live['presence']:.0%}, binding {live['binding']:.0%}, swapped {live['swapped']:.0%}, "
      f"binding given presence {live['binding_given_presence']:.0%} (random pairing: 50%)")

# %% [markdown]
# The shipped experiment ran the same measurement on 200 test captions (the numbers below are read
# from `data/experiments/binding.json`; its first 48 captions are the ones above, from the same
# noises), but on the **old recipe's** per-token model (positions at std 0.02, 1800 steps), read by the
# attribute classifier: compare the two to see what the new recipe changed.

# %%
# NBVAL_CHECK_OUTPUT
if RUN_EXPERIMENT:
    binding.run(profile)
record = load_results("binding")
res = record["results"]
print(f"`{record['command']}` ({record['date']}, {record['seconds'] / 60:.1f} min on {record['machine']['cpu_count']} CPUs, "
      f"torch {record['machine']['torch']}); {res['captions']['n']} captions, {res['captions']['n_and']} of them 'X and Y'")
token = res["models"]["token"]
print(f"per-token model of the old recipe ({token['steps']} steps): presence {token['presence']:.1%}, binding {token['binding']:.1%}, "
      f"swapped {token['swapped']:.1%}, binding_layout {token['binding_layout']:.1%}, binding given presence {token['binding_given_presence']:.1%}")

# %% [markdown]
# ## 3. Inside the model: cross-attention where colours leak
#
# Lesson 04 showed that the per-token model reads each word at a place: softmax(Q K^T / sqrt(d))
# gives every latent pixel a weight for every token. Here are those maps (averaged over heads,
# layers and the 50 denoising steps; 4 x 4 and 2 x 2 are the resolutions where our UNet attends)
# for the first live sample whose colours came out **swapped**:

# %%
from ldm_mini.lessons.plotting import show_word_maps  # the same figure as lesson 04's

verdicts = [prompts.score_binding(c, s) for c, s in zip(captions, live_seen)]
leaky = [i for i, v in enumerate(verdicts) if v["swapped"]]
i = next((i for i in leaky if " and " in captions[i]), leaky[0]) if leaky else 0
words = ["<start>"] + tokenizer.words(captions[i])
show_word_maps(live_images[i], {r: m[i, : len(words)] for r, m in live_maps.items()}, words,
               f'asked: "{captions[i]}"; drawn: {describe(live_seen[i])}\n(below each panel: its mean attention weight)')
plt.show()

# %% [markdown]
# One picture is an anecdote, so we measure. For each colour word we ask whether its map is brighter
# on the object painted that colour than on the other object; for each shape word, whether it is
# brighter on the object drawn with that shape. In a right image those are the same object for a
# colour word and its shape word; in a swapped image they are different objects. The objects' pixels
# are found by their colour (`binding.colour_mask`: within 70 of 255 of the named RGB). Here is the
# whole computation for the image above, on the 4 x 4 maps:

# %%
m4 = live_maps[max(live_maps)]  # b L H W: the 4 x 4 layers' maps, upsampled to the image
drawn = {colour: shape for colour, shape in [(live_seen[i]["colour1"], live_seen[i]["shape1"]), (live_seen[i]["colour2"], live_seen[i]["shape2"])]}
masks = {colour: binding.colour_mask(live_images[i], colour) for colour in drawn}  # H W bool: each object's pixels
owner = {**{c: c for c in drawn}, **{sh: c for c, sh in drawn.items()}}  # word -> colour of the object that carries it
for word in [w for w in words if w in owner]:
    own, other = owner[word], next(c for c in drawn if c != owner[word])
    a = m4[i, words.index(word)]
    print(f"{word:>9}: mean weight on the {own} object {a[masks[own]].mean():.3f}, on the {other} object {a[masks[other]].mean():.3f}"
          f" -> {'own' if a[masks[own]].mean() > a[masks[other]].mean() else 'other'} is brighter")

# %% [markdown]
# `binding.attention_on_objects` returns exactly these (own, other) pairs for one image (or None if
# the image does not show the caption's two colours on two objects). Over all live samples that are
# right or swapped, we count the words whose own object is brighter, and the ratio of the weights:

# %%
groups = {"right": [], "swapped": []}
for i, (caption, s, v) in enumerate(zip(captions, live_seen, verdicts)):
    rows = binding.attention_on_objects(live_images[i], m4[i], caption, s, tokenizer)
    if rows is not None and (v["binding"] or v["swapped"]):
        groups["right" if v["binding"] else "swapped"].append(rows)
for group, images_rows in groups.items():
    for kind in ("colour", "shape"):
        pairs = [(r["own"], r["other"]) for rows in images_rows for r in rows if r["kind"] == kind]
        if pairs:
            wins = sum(own > other for own, other in pairs)
            ratio = sum(own for own, _ in pairs) / sum(other for _, other in pairs)
            print(f"{group:>7} images ({len(images_rows):>2}): {kind} words brighter on the object that carries them "
                  f"in {wins:>2} of {len(pairs)} ({ratio:.1f}x the weight)")
            # sampled live: which images come out right or swapped depends on the CPU's last digits (docs/CONVENTIONS.md)
            if N_LIVE == 48 and group == "right" and kind == "colour":
                assert len(images_rows) >= 35 and wins >= 0.95 * len(pairs) and ratio > 2.2, f"colour words: 90 of 90 in 45 right images, 2.9x when written; got {wins}/{len(pairs)}, {ratio:.2f}x"
            if N_LIVE == 48 and group == "right" and kind == "shape":
                assert wins >= 0.9 * len(pairs) and 1.3 < ratio < 2.0, f"shape words: 86 of 90, 1.6x when written; got {wins}/{len(pairs)}, {ratio:.2f}x"

# %% [markdown]
# **What the maps show.** The image above is the one swapped sample among the 48: for "a yellow square
# above an orange triangle" the model drew an orange square above a yellow triangle. On the 4 x 4 maps
# "yellow" is brightest over the yellow triangle and "orange" over the orange square: each colour word
# is read where its colour ended up. The shape words hardly localise in this image (about equal weight
# on both objects), so nothing in the maps ties "yellow" to "square".
#
# Over the live samples the counts tell the story of the right images: in the 45 images judged right,
# colour words favour the object that wears their colour in 90 of 90 cases (2.9 times the weight) and
# shape words the object with their shape in 86 of 90 (1.6 times). In a right image those are the same
# object for the words of one pair, so the maps read a colour word and its shape word at one place.
# One swapped image is an anecdote. The old recipe's model (section 4) swapped half its images, and
# when this lesson was first written its maps read the colour words at their colour and the shape
# words, weakly (1.2-1.3 times), at their shape, in swapped images as in right ones: attention placed
# each word, but nothing tied a colour word to its shape word. The rerun of issue 16 shows the maps of
# each text encoder side by side.

# %% [markdown]
# ## 4. Testing the explanation: per-token vs pooled text
#
# The seed review's explanation: SD's tau_theta is CLIP's text encoder, and CLIP trained it only
# through its **pooled** token (the one vector its contrastive loss compares with the image). Its
# other tokens were never asked to say which word belongs to which, so what reaches the UNet about
# the pairing is, in effect, one summary vector, in which "red circle, blue square" and "blue
# circle, red square" can land close together. Our mini analogue of that contrast: a UNet fed **one
# pooled vector** against one fed **one context vector per token**. Our text encoder tau_theta can do both: by default it
# hands the UNet one context vector per token; with `TextEncoderConfig(pooled=True)` it averages
# them into one. With a single key, cross-attention has nothing to choose from: every pixel puts
# weight 1 on that one vector, so the caption reaches every pixel the same way and the UNet must
# place things from its own convolutions and self-attention alone.
#
# Note what pooling does *not* remove here: the average is taken *after* tau_theta's two
# transformer layers, in which every token has already looked at its neighbours, so the pooled
# vector can still carry "red goes with circle". It only removes the *spatial* routing of words.

# %%
# NBVAL_CHECK_OUTPUT
from ldm_mini.text import TextEncoder, TextEncoderConfig

pooled_encoder = TextEncoder(TextEncoderConfig(pooled=True))
context, mask = pooled_encoder(tokenizer([claim]))
print(f"per-token context for {claim!r}: {tuple(ldm.context(ldm.tokens([claim]))[0].shape)}; pooled: {tuple(context.shape)}")
q = torch.randn(1, 16, 64)  # 16 pixels' queries: with one key, softmax over one token is 1 everywhere
print(f"attention weights with one token: {torch.softmax(q @ context.transpose(1, 2), dim=-1).unique().tolist()}")

# %% [markdown]
# We trained the pooled model with **exactly the recipe of the per-token model of the time** (the
# old recipe of `zoo.ldm_recipe`: the same UNet, data, steps, batch, learning rate, EMA and seed; only
# `pooled=True` differs) and measured both on the same 200 two-object test captions with the same
# noises. No pooled checkpoint is shipped (the checkpoint budget is spent); the experiment command
# trains it again.

# %%
# NBVAL_CHECK_OUTPUT
def table_row(name, r):
    return (f"{name:<32} {r['presence']:>9.1%} {r['binding']:>8.1%} {r['swapped']:>8.1%} "
            f"{r['binding_given_presence']:>10.1%} {r['binding_layout']:>9.1%}")


header = f"{'model':<32} {'presence':>9} {'binding':>8} {'swapped':>8} {'bind|pres':>10} {'+layout':>9}"
print(header)
for name, label in (("token", "per-token (old recipe)"), ("pooled", "pooled (old recipe)")):
    print(table_row(label, res["models"][name]))
for name in ("token", "pooled"):
    r = res["models"][name]
    print(f"{name}: trained {r['steps']} steps in {r['train_seconds'] / 60:.1f} min")

# %%
from PIL import Image

from ldm_mini.experiments import RESULTS_DIR
from ldm_mini.lessons.plotting import wrap

grid = Image.open(RESULTS_DIR / res["grid"]["file"])
fig, ax = plt.subplots(figsize=(12, 1.35 * len(res["grid"]["rows"]) + 1.2))
ax.imshow(grid)
ax.set_yticks([(k + 0.5) * grid.height / len(res["grid"]["rows"]) for k in range(len(res["grid"]["rows"]))], res["grid"]["rows"], fontsize=9)
ax.set_xticks([(k + 0.5) * grid.width / len(res["captions"]["grid"]) for k in range(len(res["captions"]["grid"]))],
              [wrap(c, 14) for c in res["captions"]["grid"]], fontsize=8)
ax.tick_params(length=0)
ax.set_title("the shipped results (old recipe): the first 8 test captions (below), the same noise z_T in every row", fontsize=10)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 5. A remedy beyond the paper: steering the attention while sampling
#
# Section 3 says *where* things go wrong: the maps route each word to a place, but nothing asks a
# colour word and its shape word to be read at the **same** place. Attend-and-Excite (Chefer et al.
# 2023) fixes a related failure (a named object goes missing) without retraining: during the first
# denoising steps, where the layout forms, it takes a few gradient steps on the latent z_t to
# lower a loss on the cross-attention maps, then denoises as usual. SynGen (Rassin et al. 2023)
# uses the same machinery with a loss aimed at binding. We try both losses on our 4 x 4 maps
# (`guidance.LOSSES`), with A_w the map of word w:
#
# - **excite** (Attend-and-Excite): drop `<start>`, renormalise each pixel over the real words, and
#   ask every colour and shape word for a strong peak: L = max_w (1 - max_p A_w[p]);
# - **bind** (SynGen-like): normalise each word's map over the pixels, measure the overlap of two
#   maps by o(u, v) = sum_p min(u_p, v_p), and for each object k with other object j
#   L = sum_k [o(c_k, s_j) + o(c_k, c_j) - o(c_k, s_k)]: a colour word read where its own shape word
#   is read, away from the other object's words.
#
# Each guided step is z_t <- z_t - scale * g / rms(g) with g = dL/dz_t: the gradient goes back through
# the UNet to z_t (`guidance.guidance_step`; `capture_attention` recomputes the maps *with*
# gradients, which `record_attention` does not keep). We guide the first 10 of the 50 DDIM steps.
# The step size was chosen per loss on 96 **validation** captions (from 0.01, 0.03, 0.1 and 0.3,
# whichever bound best), so the test captions did not pick it:

# %%
# NBVAL_CHECK_OUTPUT
tuning = res["tuning"]
print(f"choosing the step size on {tuning['n']} {tuning['split']} captions (binding / presence):")
for name, r in tuning.items():
    if isinstance(r, dict):
        print(f"  {name:<18} {r['binding']:6.1%} / {r['presence']:6.1%}   {r['seconds_per_image']:.2f} s per image")
chosen = {name: guidance.AttentionGuidance(**r["config"]) for name, r in res["remedies"].items()}
print("chosen: " + ", ".join(f"{name} scale {c.scale}" for name, c in chosen.items()))

# %% [markdown]
# Live, on the first N_REMEDY test captions and the shipped model: the same noises without and with
# the **bind** guidance (at the step size chosen for the old model), and how the loss moves over the
# guided steps:

# %%
remedy_captions = captions[:N_REMEDY]
trace = []
start = time.perf_counter()
before = guidance.generate(ldm, remedy_captions, None, steps=profile.sample_steps, seed=SEED)
t_before = time.perf_counter() - start
start = time.perf_counter()
z0 = guidance.guided_sample_latents(ldm, remedy_captions, chosen["bind"], steps=profile.sample_steps, seed=SEED, trace=trace)
after = ((ldm.decode(z0) + 1) / 2).clamp(0, 1).cpu()
t_after = time.perf_counter() - start
print(f"{len(remedy_captions)} images: {t_before:.1f} s unguided, {t_after:.1f} s with guidance")
for name, imgs in (("before", before), ("after", after)):
    t = prompts.binding_table(remedy_captions, classify_images(imgs, judge))
    print(f"{name:>6}: binding {t['binding']:.0%}, presence {t['presence']:.0%}, swapped {t['swapped']:.0%}")

# %%
pairs = [(before[k : k + 4], after[k : k + 4], remedy_captions[k : k + 4]) for k in range(0, len(remedy_captions), 4)]
fig = show_grid(torch.cat([img for b, a, _ in pairs for img in (b, a)]),
                [t for _, _, cs in pairs for t in [f"before: {c}" for c in cs] + ["after (bind guidance)"] * len(cs)],
                ncols=4, scale=2.2, fontsize=8)
plt.show()
plt.figure(figsize=(4, 2.5))
plt.plot(range(1, len(trace) + 1), trace, marker="o")
plt.xlabel("guided DDIM step (noisiest first)")
plt.ylabel("bind loss, mean over images")
plt.title("the loss each guidance step starts from", fontsize=9)
plt.tight_layout()
plt.show()

# %% [markdown]
# The measurement that counts, on the 200 test captions of the shipped results (the old recipe's
# model, which bound at chance and so had the most to gain), each row from the same noises. Because every row drew the same noise for the same caption, we compare caption by
# caption: only the captions where two samplers **disagree** carry information. If guidance did
# nothing, each disagreement would go either way with probability 1/2, like a fair coin; the
# **sign test** asks how often n fair coins split at least as lopsidedly as we saw:
# p = 2 sum_{j <= min(k, n - k)} C(n, j) / 2^n.

# %%
# NBVAL_CHECK_OUTPUT
print(header + f" {'s/image':>8}")
rows = [("per-token (old recipe)", res["models"]["token"]), ("pooled (old recipe)", res["models"]["pooled"])]
rows += [(f"per-token + {name} (scale {r['config']['scale']})", r) for name, r in res["remedies"].items()]
for label, r in rows:
    print(table_row(label, r) + f" {r['seconds_per_image']:>8.3f}")


def paired(a, b):
    """Captions that model a binds right and b does not, and the reverse (same captions, same noises)."""
    fa, fb = a["binding_flags"], b["binding_flags"]
    return sum(x and not y for x, y in zip(fa, fb)), sum(y and not x for x, y in zip(fa, fb))


def sign_test(k, n):
    """Two-sided exact sign test: P(n fair coin flips split at least as lopsided as k : n - k)."""
    return min(1.0, 2 * sum(math.comb(n, j) for j in range(min(k, n - k) + 1)) / 2**n)


base = res["models"]["token"]
for label, r in rows[2:]:
    gained, lost = paired(r, base)
    print(f"{label}: binds {gained} captions the per-token model gets wrong, gets {lost} wrong that it binds; "
          f"sign test p = {sign_test(gained, gained + lost):.2f}")

# %% [markdown]
# **What the remedy did, on the old model.** Large steps wreck the images: at 0.1 the bind loss keeps
# only about half the named parts, and at 0.3 both losses leave almost nothing recognisable (the latent
# is pushed away from anything the decoder knows). Validation chose scale 0.03 for the bind loss
# (though no bind setting beat unguided sampling there: 46.9% against 47.9%) and 0.1 for the excite
# loss (52.1%).
#
# On the 200 test captions the order flips: the **bind** loss binds 52.0% against 47.5% unguided
# (swapped 45.5% against 52.0%, presence almost unchanged), fixing 26 captions and breaking 17;
# Attend-and-Excite's loss binds 46.0%, fixing 35 and breaking 38. Neither difference is beyond noise:
# of 43 captions where bind guidance and the plain sampler disagree, a 26 / 17 split or one more
# lopsided happens by chance about one time in five (the sign test above: p = 0.22; excite: p = 0.82),
# and validation and test disagree on which loss is ahead, as noise of +-3.5 points would. The honest
# reading: at strengths that keep the images intact, attention guidance on our 4 x 4 maps did **not**
# measurably improve the binding of a model that paired at chance. On the shipped model, which binds
# most captions by itself, there is little left to fix: in the live grid above the guidance repaired
# the one caption of eight that was wrong (two triangles for "an orange square and a yellow
# triangle"), and it also moved objects around, so eight images say nothing about a rate. Issue 16's
# rerun measures the remedies on the text encoder that leaks most.


# %% [markdown]
# ## 6. Can the explanation be tested here?
#
# The explanation predicts a *gap*: per-token context should bind better than a pooled vector. A gap
# can only show if at least one of the two models binds **above chance**: if both pair colours with
# shapes at random, both sit on the same floor whatever their interface, and their difference
# measures nothing but noise. So the verdict takes two steps, both computed here:
#
# 1. **Is either model above chance?** Among the images that show every named part, random pairing
#    binds with probability 1/2 (two ways to pair two colours with two shapes). An exact two-sided
#    binomial test (the same coin-flip sum as the sign test) says whether the count of right pairings
#    is farther from half than chance explains (p < 0.05).
# 2. **Only if so, is there a gap?** The caption-by-caption comparison of the two models (sign test
#    on the captions where they disagree).

# %%
# NBVAL_CHECK_OUTPUT
tok, poo = res["models"]["token"], res["models"]["pooled"]
above_chance = {}
for name, r in (("per-token", tok), ("pooled", poo)):
    complete = round(r["presence"] * r["n"])  # images with every named colour and shape
    right = round(r["binding"] * r["n"])  # of those, paired right (binding implies presence)
    p = sign_test(right, complete)  # H0: each complete image is paired right with probability 1/2
    above_chance[name] = p < 0.05 and right > complete / 2
    print(f"{name:>9}: {right} of {complete} complete images paired right ({right / complete:.1%}); "
          f"against random pairing (50%) p = {p:.2f} -> {'above chance' if above_chance[name] else 'at chance'}")
gained, lost = paired(poo, tok)
print(f"caption by caption: the pooled model binds {gained} that the per-token model gets wrong, and misses {lost} "
      f"that it gets right (sign test p = {sign_test(gained, gained + lost):.2f})")
if any(above_chance.values()):
    verdict = "testable: compare the two models caption by caption"
else:
    verdict = "NOT TESTABLE at this budget: both models pair at chance (a floor effect), so no gap can show"
print("verdict:", verdict)

# %% [markdown]
# **With the old recipe: not testable.** Both models draw the named parts almost always (presence
# 99.5% and 97.0%) and both pair them at chance: 47.7% and 47.4% of the complete images come out paired
# right, where dealing the two colours to the two shapes at random gives 50%, and the binomial test
# finds neither count farther from half than chance explains. The two models then also trade wins
# caption by caption almost evenly (18 against 21), but that equality says nothing about the
# explanation: two models on the same floor agree whatever their interface.
#
# **What changed since.** The per-token model now binds far above chance: the shipped model, the same
# UNet with tau_theta's position embeddings started at std 1.0, binds most "X and Y" captions (the
# figures of section 1, from the manifest; lesson 05, section 6, shows the curves). So what held the old
# per-token model on the floor was not the interface between text and image but a text encoder that was
# close to a bag of words: "a red circle and a blue square" and "a red square and a blue circle" hold
# the same words, and without word order tau_theta gives both the same vectors (lesson 05, exercise 4).
# The seed's explanation names a related cause from CLIP's side: token outputs that were never trained
# to say which word belongs to which. With a model that binds, the test becomes possible: a pooled and
# a CLIP-like text encoder trained with the new recipe, against the per-token one, along training
# (issue 16, the next version of this lesson).
#
# Two cautions before carrying anything over to Stable Diffusion: our tau_theta is trained from
# scratch together with the UNet (not a CLIP encoder trained through its pooled token), and our pooled
# vector is the mean *after* two transformer layers, which can already mix "red" into "circle".

# %% [markdown]
# ## Summary
# - **Binding is not presence.** A model can draw every named colour and shape and still put them on
#   the wrong objects. The first version of the shipped model did so in about half its two-object
#   images, at chance given presence; the shipped model binds most of them (section 1's figures, from the
#   manifest). The seed's "red sheep" was the common case there and is a rare one now.
# - **Inside the model**, cross-attention reads each colour word where that colour is painted and each
#   shape word, less sharply, where that shape is drawn; in right images the two words of a pair are
#   read at one object.
# - **Per-token vs pooled**, trained with the old recipe: both bound at chance, so the seed review's
#   explanation ("a pooled text vector loses the binding") was **not testable** with them; neither
#   confirmed nor refuted. What held the per-token model at chance was a text encoder without word
#   order; with it, the test can be run (issue 16).
# - **A remedy beyond the paper**, attention guidance on z_t in the first 10 DDIM steps with
#   Attend-and-Excite's loss or a SynGen-like binding loss, step size chosen on validation captions:
#   on the old model 52.0% (bind) and 46.0% (excite) against 47.5% unguided, differences that 200
#   captions cannot tell from noise. It stays in the lesson as a measured negative result, and as a tool: the
#   exercises change what it pulls on.
#
# ## Exercises
#
# Each exercise has a check in `ldm_mini.lessons.exercises.lesson_10`: put your answer in place of
# `None` and run the cell; a wrong answer gets a hint, not the number. Exercises 1 and 3 read the
# shipped results (instant); exercise 2 reuses this notebook's live samples (its check samples them
# again, about 10 s).
#
# 1. **Computation: how far is the floor from testable?** Section 6 found the old per-token model
#    pairing 95 of 199 complete images right, at chance. With `sign_test` from section 5, find the **smallest** number of right
#    pairings among those 199 images that the two-sided test would call above chance (p < 0.05).
#    `answer_1`: that count (an integer). How many more right pairings is that than ours?
# 2. **Code change: which layers?** Section 3 counted on the 4 x 4 maps. Change it to the 2 x 2 maps
#    (`live_maps[min(live_maps)]`) and compute, over the right and swapped live images, the share of
#    colour words brighter on their own object. `answer_2`: that share (a fraction in [0, 1]). Does
#    the verdict "colour words are read on their own object" survive the change of layers?
# 3. **Prediction: do two models at chance agree at chance?** Both models bind about 47% of the 200
#    captions. Before counting, write down how often they agree (both right or both wrong on the same
#    caption): "under 60%", "60% to 90%" or "over 90%". Then count it from
#    `res["models"]["pooled"]["binding_flags"]` and `res["models"]["token"]["binding_flags"]`.
#    `answer_3`: your prediction (the string); the check counts and tells you.
#
# Going further (no check; each needs minutes of training): train the pooled model with the new recipe
# (`TextEncoderConfig(pooled=True, pos_init_std=1.0)`) and compare it with the shipped per-token model; push classifier-free guidance away from the *swapped* caption
# instead of the empty one (`sampling.cfg_model` takes any unconditional context); give tau_theta one
# token per *object* (the sum of its colour and shape embeddings), which cannot express a leak.

# %%
from ldm_mini.lessons.exercises import lesson_10 as ex

answer_1 = None  # your answer: the fewest right pairings (of 199 complete images) that p < 0.05 calls above chance, an int
ex.check_1(answer_1)

# %%
from ldm_mini.lessons.exercises import lesson_10 as ex

answer_2 = None  # your answer: share of colour words brighter on their own object on the 2 x 2 maps, a fraction in [0, 1]
ex.check_2(answer_2)

# %%
from ldm_mini.lessons.exercises import lesson_10 as ex

answer_3 = None  # your answer: "under 60%", "60% to 90%" or "over 90%" (written before counting)
ex.check_3(answer_3)
