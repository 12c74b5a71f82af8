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
# - how to test the seed review's explanation of it. Stable Diffusion's tau_theta is CLIP's text
#   encoder, which CLIP trained only through its **pooled** token, so (the review says) its other token
#   outputs need not know which word belongs to which, and the UNet, which reads all of them, mixes
#   the attributes. We train three text encoders with the same UNet recipe and budget: **per-token,
#   trained jointly** with the UNet (the paper's setting), **one pooled vector**, and **CLIP-like**:
#   pretrained contrastively on its pooled token, then frozen (Stable Diffusion's setting). We follow
#   each along training with intervals, look at its attention maps, and probe what its token outputs know;
# - a remedy beyond the paper, at sampling time: nudging z_t so the cross-attention maps respect
#   the caption (in the spirit of Attend-and-Excite), measured with and without on the same noises.
#
# **Study time:** about 60 minutes (reading, the statistics of sections 4 to 6, three exercises of
# under a minute of CPU each).
#
# **Run time** of Run All: 24 s measured at the last rebuild on one thread of the 2-core build machine
# (an "Intel(R) Xeon(R) Processor") while another job used the other core; 18 s on both of its cores
# (Run All; other 2-core CPUs can be ~1.7x different). The comparison of the three trained models comes
# from the shipped results of `python -m ldm_mini experiment binding` (72 min on 2 cores; printed
# below); samples, attention maps and the remedy on a few captions run live.

# %%
# Parameters
import os

PROFILE = os.environ.get("LDM_PROFILE")  # None: "full" on a GPU, "quick" on a CPU
SEED = 0
DEVICE = None  # None: cuda > mps > cpu
N_LIVE = 48  # two-object test captions sampled live (sections 2 and 3)
N_REMEDY = 8  # captions the remedy runs on live (section 5)
RUN_EXPERIMENT = None  # None: only with the "full" profile (it trains three models: 72 min on a 2-core CPU)

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
# it. Only a model that *can* bind can test an explanation of why models fail to: section 4 trains
# three text encoders with that recipe. Everything sampled live here uses the shipped model and the judge.

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
# Forty-eight captions give a rate to within about +-10 points. Section 4's experiment measures with
# more: it trains its own models with the shipped recipe (`python -m ldm_mini experiment binding`,
# results in `data/experiments/binding.json`) and reads each on 200 held-out captions per set with the
# judge (lesson 05's headline measurement, `eval.models.headline_metrics`: its two-object set is the
# "X and Y" captions only, with 95% Wilson intervals). Here is what the file holds and its per-token
# model at the end of training:

# %%
# NBVAL_CHECK_OUTPUT
if RUN_EXPERIMENT:
    binding.run(profile)
record = load_results("binding")
res = record["results"]
rows = res["rows"]  # one per text encoder and measured step
print(f"`{record['command']}` ({record['date']}, {record['seconds'] / 60:.0f} min on {record['machine']['cpu_count']} CPUs, "
      f"torch {record['machine']['torch']}); {len(rows)} rows, {res['n_per_set']} captions per set; {res['reader']}")
token_last = [r for r in rows if r["encoder"] == "token"][-1]
for name in ("single", "presence", "binding", "swapped"):
    lo, hi = token_last[f"{name}_ci"]
    print(f"  per-token model, step {token_last['steps']}: {name:9} {token_last[name]:6.1%} [{lo:.1%}, {hi:.1%}]")

# %% [markdown]
# The experiment's per-token model and the shipped one come from the same recipe and seed, yet bind
# 99.0% and 95.0%: the intervals just overlap. The two trainings ran in different processes (the order
# of floating-point sums depends on the thread count, training amplifies such differences, and the
# shipped file is stored in fp16); we have not pinned down which difference moved them. Keep the gap
# in mind: **two trainings of one recipe can differ by about 4 points**, something the intervals over
# captions below do not include.

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
    word_rows = binding.attention_on_objects(live_images[i], m4[i], caption, s, tokenizer)
    if word_rows is not None and (v["binding"] or v["swapped"]):
        groups["right" if v["binding"] else "swapped"].append(word_rows)
for group, images_rows in groups.items():
    for kind in ("colour", "shape"):
        pairs = [(r["own"], r["other"]) for wr in images_rows for r in wr if r["kind"] == kind]
        if pairs:
            wins = sum(own > other for own, other in pairs)
            ratio = sum(own for own, _ in pairs) / sum(other for _, other in pairs)
            print(f"{group:>7} images ({len(images_rows):>2}): {kind} words brighter on the object that carries them "
                  f"in {wins:>2} of {len(pairs)} ({ratio:.1f}x the weight)")
            # sampled live: which images come out right or swapped depends on the CPU's last digits (docs/CONVENTIONS.md)
            if (N_LIVE, profile.sample_steps) == (48, 50) and group == "right" and kind == "colour":
                assert len(images_rows) >= 35 and wins >= 0.95 * len(pairs) and ratio > 2.2, f"colour words: 90 of 90 in 45 right images, 2.9x when written; got {wins}/{len(pairs)}, {ratio:.2f}x"
            if (N_LIVE, profile.sample_steps) == (48, 50) and group == "right" and kind == "shape":
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
# One swapped image is an anecdote. Section 4 shows the maps of one caption for each of the three
# text encoders, side by side.

# %% [markdown]
# ## 4. Testing the explanation: three text encoders
#
# The seed review's explanation: Stable Diffusion's tau_theta is CLIP's text encoder, and CLIP trained
# it only through its **pooled** token (the one vector its contrastive loss compares with the image).
# Its other token outputs were never asked to say which word belongs to which, yet the UNet's
# cross-attention reads all of them, so "white" may not reach the sheep. Note that this is about
# Stable Diffusion, not the paper: the paper's text-to-image LDM trains its tau_theta (a BERT-like
# transformer) **jointly** with the UNet, so every token output gets the denoising loss's gradient.
#
# We can build all three settings at our scale, each feeding **the same UNet recipe** (the shipped
# model's: `zoo.ldm_recipe`, the same data, steps, batch, learning rate, EMA and seed):
#
# 1. **per-token, joint** (the paper): tau_theta hands the UNet one context vector per token and trains
#    with it;
# 2. **one pooled vector**: the same tau_theta, its outputs averaged into one (`TextEncoderConfig(pooled=True)`);
# 3. **CLIP-like, frozen** (Stable Diffusion): tau_theta first trained *contrastively* against a small image
#    encoder on the training pairs, with CLIP's InfoNCE loss on its pooled token only
#    (`contrastive.pretrain_contrastive`), then frozen; the UNet cross-attends to all its token outputs.
#
# With a single key (model 2), cross-attention has nothing to choose from: every pixel puts weight 1 on
# that one vector, so the caption reaches every pixel the same way:

# %%
# NBVAL_CHECK_OUTPUT
from ldm_mini.text import TextEncoder, TextEncoderConfig

pooled_encoder = TextEncoder(TextEncoderConfig(pooled=True))
context, mask = pooled_encoder(tokenizer([claim]))
print(f"per-token context for {claim!r}: {tuple(ldm.context(ldm.tokens([claim]))[0].shape)}; pooled: {tuple(context.shape)}")
q = torch.randn(1, 16, 64)  # 16 pixels' queries: with one key, softmax over one token is 1 everywhere
print(f"attention weights with one token: {torch.softmax(q @ context.transpose(1, 2), dim=-1).unique().tolist()}")

# %% [markdown]
# Two things pooling does *not* remove here: the average is taken *after* tau_theta's two transformer
# layers, in which every token has already looked at the others, so the pooled vector could still
# carry "red goes with circle"; and the UNet keeps its own self-attention. It removes the *routing* of
# words to places. What the CLIP-like encoder's pretraining reached, and what each model cost:

# %%
# NBVAL_CHECK_OUTPUT
names = {"token": "per-token, joint (paper)", "pooled": "one pooled vector", "clip": "CLIP-like, frozen (SD)"}
encoders = res["encoders"]
pre = encoders["clip"]["contrastive"]
print(f"CLIP-like pretraining: {pre['steps']} steps of {pre['batch_size']} pairs, {pre['pretrain_seconds']:.0f} s; at the end the "
      f"pooled token picks its own image among {pre['batch_size']} in {pre['accuracy']:.0%} of cases (chance {1 / pre['batch_size']:.1%})")
for e, info in encoders.items():
    print(f"{names[e]:26} {info['steps']} UNet steps, {info['params'] / 1e6:.2f}M parameters (UNet + tau_theta), final loss {info['final_loss']:.4f}")

# %% [markdown]
# Each model was measured at four points along training, on the same 200 captions per set from the
# same noises z_T (so two models can be compared caption by caption). A model counts as having **learnt
# the single case** when it draws a one-object caption right at least 95% of the time: comparing
# binding before that would compare models that cannot yet draw what they are asked.

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'encoder':26} {'step':>5} {'single':>7} {'presence':>9} {'binding [95% interval]':>24} {'swapped':>8}")
for r in rows:
    lo, hi = r["binding_ci"]
    print(f"{names[r['encoder']]:26} {r['steps']:>5} {r['single']:7.1%} {r['presence']:9.1%} "
          f"{r['binding']:8.1%} [{lo:5.1%}, {hi:5.1%}] {r['swapped']:8.1%}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
for e in names:
    rs = [r for r in rows if r["encoder"] == e]
    steps = [r["steps"] for r in rs]
    for ax, metric in zip(axes, ("binding", "presence")):
        line, = ax.plot(steps, [100 * r[metric] for r in rs], "o-", label=names[e])
        ax.fill_between(steps, [100 * r[f"{metric}_ci"][0] for r in rs], [100 * r[f"{metric}_ci"][1] for r in rs],
                        alpha=0.15, color=line.get_color())
    axes[1].plot(steps, [100 * r["single"] for r in rs], ":", color=line.get_color(), lw=1.2)
for ax, title in zip(axes, ("binding: each colour on its own shape", "presence (solid) and single object right (dotted)")):
    ax.set_xlabel("UNet training step")
    ax.set_ylabel("% of 200 captions (judge)")
    ax.set_ylim(0, 101)
    ax.set_title(title + ", 95% bands", fontsize=9)
axes[0].legend(fontsize=8, loc="lower right")
plt.tight_layout()
plt.show()

# %% [markdown]
# **What the curves show.** All three models learn the single case early (at least 97% from the first
# point) and all three come to draw both named objects (presence 98-99.5% at step 3000). They part on
# binding:
#
# - the **per-token** model climbs 43% -> 84.5% -> 96% -> 99.0% [96.4, 99.7];
# - the **pooled** model stays at 23% -> 39.5% -> 49.5% -> 45.0% [38.3, 51.9], while its presence rises
#   to 98.5%: it draws both objects and pairs them by coin flip (swapped 53.5%);
# - the **CLIP-like** model starts ahead of the per-token one (51% against 43% at step 750, the frozen
#   encoder already knows the words), then climbs more slowly: 75.5% -> 84.5% -> 94.0% [89.8, 96.5].
#
# The samples tell the same story. The first 8 "X and Y" test captions below each column, the same
# noise z_T in every row:

# %%
from PIL import Image

from ldm_mini.experiments import RESULTS_DIR
from ldm_mini.lessons.plotting import wrap

grid = Image.open(RESULTS_DIR / res["grid"]["file"])
fig, ax = plt.subplots(figsize=(12, 1.35 * len(res["grid"]["rows"]) + 1.2))
ax.imshow(grid)
ax.set_yticks([(k + 0.5) * grid.height / len(res["grid"]["rows"]) for k in range(len(res["grid"]["rows"]))],
              [names[e] for e in res["grid"]["rows"]], fontsize=9)
ax.set_xticks([(k + 0.5) * grid.width / len(res["grid"]["captions"]) for k in range(len(res["grid"]["captions"]))],
              [wrap(c, 14) for c in res["grid"]["captions"]], fontsize=8)
ax.tick_params(length=0)
ax.set_title("the three models at step 3000: one caption per column, the same noise z_T in every row", fontsize=10)
plt.tight_layout()
plt.show()

# %% [markdown]
# The per-token row draws all eight right; the CLIP-like row seven (it swaps the colours of "an orange
# square and a yellow triangle"). The pooled row draws the right two shapes in the right two colours
# every time and swaps the colours in 5 of the 8 (a yellow triangle and a green circle for "a yellow
# circle and a green triangle"): the "red sheep", reproduced on demand.
#
# **What do the token outputs know?** The seed's mechanism is a claim about tau_theta's token outputs:
# after CLIP-style training the output at "sheep" should not know that its sheep is white. We can ask
# each encoder directly (`contrastive.token_probe`, on the captions of 2000 validation images): a linear
# probe reads (a) the colour named by a colour word from that word's output, and (b) the colour *bound
# to* a shape from the shape word's output ("circle" in "a red circle and a blue square" -> red). Six
# colours, so chance is 1 in 6. For the pooled model we probe its token outputs *before* the average,
# which the UNet never sees.

# %%
# NBVAL_CHECK_OUTPUT
probe = res["token_probe"]
print(f"{'encoder':26} {'colour word -> its colour':>26} {'shape word -> its colour':>26}  (chance)")
for e in names:
    cw, sb = probe[e]["colour_word"], probe[e]["shape_binding"]
    print(f"{names[e]:26} {cw['accuracy']:26.1%} {sb['accuracy']:26.1%}  ({sb['chance']:.1%}; {sb['n_test']} test words)")

# %% [markdown]
# Every encoder knows its colour words (100%). The shape word's output knows its bound colour in 100%
# of cases for the per-token model, 95.0% for the CLIP-like one and 79.5% for the pooled one's hidden
# outputs. So our CLIP-like encoder did **not** end up with token outputs that forgot the binding: the
# pooled token reads the words through the layers below it, and the gradient that trains it also
# trains what those layers write at every token. Our encoder attends both ways; CLIP's attends only
# backwards (causal), which changes what each token can see (in "a red car", "car" sees "red", but
# "red" never sees "car").
#
# **The maps per word** for one caption, the same noise z_T in every row: first the sample, then each
# token's map on the 4 x 4 layers (averaged over heads, layers and steps; brighter = more weight). The
# pooled model has one key, so its one map is 1 everywhere (white) and there are no maps per word.

# %%
att = res["attention"]
grid = Image.open(RESULTS_DIR / att["file"])
fig, ax = plt.subplots(figsize=(12, 1.5 * len(att["rows"]) + 0.9))
ax.imshow(grid, interpolation="nearest")
ax.set_yticks([(k + 0.5) * grid.height / len(att["rows"]) for k in range(len(att["rows"]))], [names[e] for e in att["rows"]], fontsize=8)
cols = ["sample"] + att["token"]["words"]
ax.set_xticks([(k + 0.5) * grid.width / len(cols) for k in range(len(cols))], cols, fontsize=8)
ax.tick_params(length=0)
ax.set_title(f'"{att["caption"]}": the sample, then each token\'s map at {att["token"]["resolution"]} x {att["token"]["resolution"]} '
             "(pooled row: its single <pooled> key)", fontsize=9)
plt.tight_layout()
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
for e in att["rows"]:
    on = att[e]["on_objects"]  # binding.attention_on_objects: each word's mean weight on its own and on the other object
    where = "one key, no map per word" if on is None else ", ".join(f"{r['word']} {r['own']:.2f} / {r['other']:.2f}" for r in on)
    print(f"{names[e]:26} drew {att[e]['seen']}; weight on own / other object: {where}")

# %% [markdown]
# The per-token model reads each of the four words more on its own object (2.8x the weight for "red",
# 3.4x for "blue", about 2x for the shape words). The CLIP-like model draws this caption right too, but
# its maps are vaguer: "red" is barely brighter on the red circle (0.11 / 0.09) and "square" spreads
# over both objects (0.32 / 0.31). The pooled model swapped the colours of this caption, as it does
# half the time.
#
# **Is a difference real?** Every model drew the same 200 captions from the same noises, so we can
# compare two of them caption by caption: only the captions where they **disagree** (one binds, the
# other does not) carry information. If the two were equally good, each disagreement would go either
# way with probability 1/2, like a fair coin; the **sign test** asks how often n fair coins split at
# least as lopsidedly as we saw: p = 2 sum_{j <= min(k, n - k)} C(n, j) / 2^n.

# %%
# NBVAL_CHECK_OUTPUT
def sign_test(k, n):
    """Two-sided exact sign test: P(n fair coin flips split at least as lopsided as k : n - k)."""
    return min(1.0, 2 * sum(math.comb(n, j) for j in range(min(k, n - k) + 1)) / 2**n)


def paired(a, b):
    """Captions that a binds and b does not, and the reverse (same captions, same noises)."""
    fa, fb = ([v == "bound" for v in r["two_verdicts"]] for r in (a, b))
    return sum(x and not y for x, y in zip(fa, fb)), sum(y and not x for x, y in zip(fa, fb))


last = {e: [r for r in rows if r["encoder"] == e][-1] for e in names}
for a, b in (("token", "clip"), ("token", "pooled"), ("clip", "pooled")):
    ra, rb = last[a], last[b]
    apart = ra["binding_ci"][1] < rb["binding_ci"][0] or rb["binding_ci"][1] < ra["binding_ci"][0]
    k, m = paired(ra, rb)
    print(f"{a:>6} vs {b:<6}: binding {ra['binding']:6.1%} vs {rb['binding']:6.1%}, intervals {'apart' if apart else 'overlap'}; "
          f"{a} alone binds {k:>3}, {b} alone {m:>2}: sign test p = {sign_test(k, k + m):.2g}")

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
#
# Which model to treat? The pooled one leaks most, but it has one key: every map is 1 everywhere, so
# there is nothing for a loss on the maps to steer. Among the models with a map per word, the CLIP-like
# one leaks most (swapped 4.0% against 0.5%). The step size was chosen per loss on 96 **validation**
# captions (from 0.01, 0.03, 0.1 and 0.3, whichever bound best), so the test captions did not pick it:

# %%
# NBVAL_CHECK_OUTPUT
rem = res["remedies"]
tuning = rem["tuning"]
print(f"treated: the {names[rem['encoder']]} model ({rem['why']})")
print(f"choosing the step size on {tuning['n']} {tuning['split']} captions (binding / presence):")
for name, r in tuning.items():
    if isinstance(r, dict):
        print(f"  {name:<18} {r['binding']:6.1%} / {r['presence']:6.1%}   {r['seconds_per_image']:.2f} s per image")
chosen = {name: guidance.AttentionGuidance(**rem[name]["config"]) for name in ("bind", "excite")}
print("chosen: " + ", ".join(f"{name} scale {c.scale}" for name, c in chosen.items()))

# %% [markdown]
# Large steps wreck the images: at 0.1 both losses lose a tenth or more of the named parts, and at 0.3
# almost nothing recognisable is left (the latent is pushed away from anything the decoder knows).
# Validation chose the smallest step, 0.01, for both.
#
# Live, on the first N_REMEDY test captions and the shipped model: the same noises without and with
# the **bind** guidance, and how the loss moves over the guided steps:

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
# Eight images say nothing about a rate. The measurement that counts is on the 200 test captions of the
# shipped results, the CLIP-like model at step 3000, every row from the same noises, compared caption
# by caption with the sign test:

# %%
# NBVAL_CHECK_OUTPUT
treated = last[rem["encoder"]]  # the unguided row: the model's last point on the curve (the same samples)
print(f"{'sampler':24} {'presence':>9} {'binding [95% interval]':>24} {'swapped':>8} {'s/image':>8}")
for label, r in (("unguided", treated), ("+ bind (scale 0.01)", rem["bind"]), ("+ excite (scale 0.01)", rem["excite"])):
    lo, hi = r["binding_ci"]
    cost = f"{r['seconds_per_image']:>8.3f}" if "seconds_per_image" in r else f"{tuning['none']['seconds_per_image']:>8.3f}"
    print(f"{label:24} {r['presence']:9.1%} {r['binding']:8.1%} [{lo:5.1%}, {hi:5.1%}] {r['swapped']:8.1%} {cost}")
for name in ("bind", "excite"):
    gained, lost = paired(rem[name], treated)
    print(f"{name}: fixes {gained} captions the unguided sampler gets wrong, breaks {lost} it binds; "
          f"sign test p = {sign_test(gained, gained + lost):.2f}")

# %% [markdown]
# **What the remedy did: nothing measurable.** With the bind loss the CLIP-like model binds 94.0%
# [89.8, 96.5], exactly as unguided; it fixes 6 captions and breaks 6 others (p = 1.0). The excite loss
# binds 93.5%, fixing 5 and breaking 6 (p = 1.0). At the step size that keeps the images intact, the
# guidance moves objects around (the live grid above) without pairing colours better. The version of
# this lesson on the old recipe found the same on a model that paired at chance (52.0% and 46.0% against
# 47.5%, p = 0.22 and 0.82). On a model that binds 94% there are only 12 failures of 200 to fix, so a
# real gain of a few points could hide here; a gain of 10 points or more would have shown.
#
# ## 6. The verdict on the seed's explanation
#
# Three steps, all computed from the shipped results: (1) which models have learnt the single case at
# the end of training; (2) whether each pairs colours with shapes better than chance, where chance
# means dealing the two colours to the two shapes at random among the images that show all four named
# parts (binding given presence 1/2, an exact binomial test, the same coin-flip sum as the sign test);
# (3) which gaps between models are beyond the noise of 200 captions (section 4's paired tests), and
# which beyond the 4-point spread of two trainings of one recipe (section 2).

# %%
# NBVAL_CHECK_OUTPUT
learnt = [e for e in names if last[e]["single"] >= res["learnt_single"]]
print(f"learnt the single case (>= {res['learnt_single']:.0%}) at step {last['token']['steps']}: " + ", ".join(names[e] for e in learnt))
for e in names:
    v = last[e]["two_verdicts"]
    right, complete = v.count("bound"), v.count("bound") + v.count("swapped")  # images with both pairs' parts, on 2 objects
    if complete == 0:  # a model that never draws both named pairs (e.g. after a few steps): nothing to pair
        print(f"{names[e]:26} no complete images: pairing not testable")
        continue
    p = sign_test(right, complete)  # H0: each complete image is paired right with probability 1/2
    print(f"{names[e]:26} {right:>3} of {complete} complete images paired right ({right / complete:5.1%}); "
          f"against random pairing p = {p:.2g} -> {'above chance' if p < 0.05 and right > complete / 2 else 'at chance'}")

# %% [markdown]
# **The verdict.**
#
# - **Handing the UNet one pooled vector destroys binding.** The pooled model has learnt the single case
#   (100%) and draws both objects (98.5%), yet pairs them at chance: 90 of 197 right, p = 0.25 against a
#   coin. The per-token model pairs 198 of 199 right. The gap (45.0% against 99.0%; 109 captions to 1)
#   is far beyond any noise here.
# - **A CLIP-like encoder, trained only through its pooled token and frozen, binds almost as well as
#   the jointly trained one**: 94.0% [89.8, 96.5] against 99.0% [96.4, 99.7]. Caption by caption the
#   per-token model wins 12 to 2 (p = 0.013), so the gap is beyond the noise of sampling 200 captions,
#   but it is no larger than the gap between two trainings of the per-token recipe itself (99.0% and
#   95.0%, section 2). We cannot call it a property of the encoder at this budget.
# - **The mechanism the seed names did not appear.** Its premise is that pooled-only training leaves
#   token outputs that do not know their binding. Our CLIP-like encoder's shape tokens know their bound
#   colour in 95.0% of probes (chance 16.7%), and its UNet binds accordingly. So, in our miniature, the
#   seed's explanation of "a red sheep" is **not supported**: what the UNet needs is per-token context
#   that carries the pairing, and contrastive training on the pooled token produced such context here.
#   It does **not** show that CLIP's tokens carry it too: CLIP's encoder is causal, far larger, trained
#   on noisy web captions with many objects per image, where the pooled token can match an image
#   without resolving every pairing. Our test reproduces the setting, not CLIP itself.
#
# Two honest limits: one training per encoder (so no interval over trainings, only the 4-point spread
# seen for the per-token recipe), and a grammar of fixed two-object captions that a small encoder can
# parse completely.

# %% [markdown]
# ## Summary
# - **Binding is not presence.** A model can draw every named colour and shape and still put them on
#   the wrong objects. The first version of the shipped model did so in about half its two-object
#   images, at chance given presence; the shipped model binds most of them (section 1's figures, from the
#   manifest). The "red sheep" was the common case there and is a rare one now.
# - **Inside the model**, cross-attention reads each colour word where that colour is painted and each
#   shape word, less sharply, where that shape is drawn; in right images the two words of a pair are
#   read at one object.
# - **Three text encoders, one UNet recipe, 3000 steps, 200 captions per set**: per-token trained
#   jointly (the paper) binds 99.0% [96.4, 99.7]; one pooled vector 45.0% [38.3, 51.9], at chance given
#   presence; CLIP-like, pretrained on its pooled token and frozen (Stable Diffusion's setting), 94.0%
#   [89.8, 96.5]. All three have learnt the single case (100%).
# - **The seed review's explanation** (pooled-only training leaves token outputs that do not know their
#   binding) is **not supported here**: our CLIP-like encoder's token outputs know the binding (95.0% by
#   a linear probe) and its model binds within the run-to-run spread of the paper's setting. Collapsing
#   the caption to one vector is what breaks binding. Whether CLIP itself behaves so is beyond this test.
# - **A remedy beyond the paper**, attention guidance on z_t in the first 10 DDIM steps with
#   Attend-and-Excite's loss or a SynGen-like binding loss, step size chosen on validation captions:
#   on the CLIP-like model 94.0% (bind) and 93.5% (excite) against 94.0% unguided (p = 1.0 both). It
#   stays in the lesson as a measured negative result, and as a tool: the exercises change what it
#   pulls on.
#
# ## Exercises
#
# Each exercise has a check in `ldm_mini.lessons.exercises.lesson_10`: put your answer in place of
# `None` and run the cell; a wrong answer gets a hint, not the number. Exercises 1 and 3 read the
# shipped results (instant); exercise 2 reuses this notebook's live samples (its check samples them
# again, about 10 s).
#
# 1. **Computation: how far is the pooled model from above chance?** Section 6 found the pooled model
#    pairing 90 of its 197 complete images right. With `sign_test` from section 4, find the
#    **smallest** number of right pairings among those 197 images that the two-sided test would call
#    above chance (p < 0.05). `answer_1`: that count (an integer). How many more right pairings is that
#    than the pooled model's?
# 2. **Code change: which layers?** Section 3 counted on the 4 x 4 maps. Change it to the 2 x 2 maps
#    (`live_maps[min(live_maps)]`) and compute, over the right and swapped live images, the share of
#    colour words brighter on their own object. `answer_2`: that share (a fraction in [0, 1]). Does
#    the verdict "colour words are read on their own object" survive the change of layers?
# 3. **Prediction, then computation: an early lead.** At step 750 the CLIP-like model binds 51.0% and
#    the per-token one 43.0%, and their intervals overlap. Before computing, write down whether you
#    expect the paired sign test to call the CLIP-like model's lead beyond chance (p < 0.05). Then
#    compute it with `paired` and `sign_test` from section 4 on the two step-750 rows of `rows`.
#    `answer_3`: the p-value (a float).
#
# Going further (no check; each needs minutes of training): give the CLIP-like encoder causal attention
# (each token sees only the words before it, as in CLIP) and probe it again; push classifier-free
# guidance away from the *swapped* caption instead of the empty one (`sampling.cfg_model` takes any
# unconditional context); give tau_theta one token per *object* (the sum of its colour and shape
# embeddings), which cannot express a leak.

# %%
from ldm_mini.lessons.exercises import lesson_10 as ex

answer_1 = None  # your answer: the fewest right pairings (of the pooled model's 197 complete images) that p < 0.05 calls above chance, an int
ex.check_1(answer_1)

# %%
from ldm_mini.lessons.exercises import lesson_10 as ex

answer_2 = None  # your answer: share of colour words brighter on their own object on the 2 x 2 maps, a fraction in [0, 1]
ex.check_2(answer_2)

# %%
from ldm_mini.lessons.exercises import lesson_10 as ex

answer_3 = None  # your answer: the paired sign test's p-value for CLIP-like vs per-token at step 750, a float
ex.check_3(answer_3)
