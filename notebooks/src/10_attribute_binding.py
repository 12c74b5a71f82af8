# %% [markdown]
# # 10 · Limitations: attribute binding
#
# **What you will learn**
# - the limitation this series was seeded with: ask for "a red car and a white sheep" and you may
#   get a *red sheep*. A model can draw every thing a caption names and still put the attributes
#   on the wrong objects;
# - how to measure it: **binding accuracy** (each colour on its own shape) against **presence**
#   (each colour and each shape drawn at all);
# - what the cross-attention maps look like when colours leak;
# - whether the usual explanation holds here: a caption squeezed into **one pooled vector** loses
#   which word belongs to which, so a model that reads **one context vector per token** should bind
#   better. We trained both with the same recipe and budget;
# - a remedy beyond the paper, at sampling time: nudging z_t so the cross-attention maps respect
#   the caption (in the spirit of Attend-and-Excite), measured before and after.
#
# **Time on a laptop CPU:** under a minute (13 s on the 2-core build machine when it had the CPU
# to itself). The comparison of trained models comes from the shipped results of
# `python -m ldm_mini experiment binding` (8.6 min; printed below); samples, attention maps and the
# remedy on a few captions run live.

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
classifier = ldm_mini.load_pretrained("attribute-classifier", device=device)
tokenizer = ldm.tokenizer
print(f"device: {device}, profile: {profile.name}, run the experiment live: {RUN_EXPERIMENT}")

# %% [markdown]
# ## 1. The claim: attributes leak between objects
#
# The paper ends its text-to-image section without this failure; the seed of this series states it
# plainly: "a red car and a white sheep" gives a red sheep. Our shapes make the question exact.
# Every two-object caption names two *different* shapes in two *different* colours, so for each
# image the attribute classifier (lesson 00) can say which colour each drawn shape wears.
#
# Eight samples of one caption, from eight noises z_T, with what the classifier saw in each:

# %%
claim = "a red circle and a blue square"
images = ldm.generate([claim] * 8, steps=profile.sample_steps, guidance=3.0, seed=SEED)
seen = classify_images(images, classifier)
verdicts = [prompts.score_binding(claim, s) for s in seen]
labels = ["right" if v["binding"] else "SWAPPED" if v["swapped"] else "missing a part" for v in verdicts]
show_grid(images, [f"{lab}: {describe(s)}" for lab, s in zip(labels, seen)],
          ncols=8, scale=1.9, fontsize=6, suptitle=f'"{claim}", eight noises (DDIM-{profile.sample_steps}, guidance 3)')
plt.show()
print(f"{sum(v['binding'] for v in verdicts)} of 8 right, {sum(v['swapped'] for v in verdicts)} with the colours swapped, "
      f"{sum(not v['presence'] for v in verdicts)} missing a named colour or shape")

# %% [markdown]
# ## 2. Measuring it: binding against presence
#
# For a two-object caption, with what the classifier sees in the image (`prompts.score_binding`):
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
# Live, on the first N_LIVE two-object test captions (we also keep the attention maps of every
# sample, for section 3):

# %%
captions = prompts.two_object_captions(N_LIVE, "test", seed=SEED)
start = time.perf_counter()
live_images, live_maps = binding.sample_with_attention(ldm, captions, steps=profile.sample_steps, guidance=3.0, seed=SEED)
live_seen = classify_images(live_images, classifier)
live = prompts.binding_table(captions, live_seen)
print(f"{len(captions)} captions sampled in {time.perf_counter() - start:.0f} s")
print(f"presence {live['presence']:.0%}, binding {live['binding']:.0%}, swapped {live['swapped']:.0%}, "
      f"binding given presence {live['binding_given_presence']:.0%} (random pairing: 50%)")

# %% [markdown]
# The shipped experiment ran the same measurement on 200 test captions (the numbers below are read
# from `data/experiments/binding.json`; its first 48 captions are the ones above, from the same
# noises, so the two measurements overlap):

# %%
# NBVAL_CHECK_OUTPUT
if RUN_EXPERIMENT:
    binding.run(profile)
record = load_results("binding")
res = record["results"]
print(f"`{record['command']}` ({record['date']}, {record['seconds'] / 60:.1f} min on {record['machine']['cpu_count']} CPUs, "
      f"torch {record['machine']['torch']}); {res['captions']['n']} captions, {res['captions']['n_and']} of them 'X and Y'")
token = res["models"]["token"]
print(f"per-token model ({token['shipped']}): presence {token['presence']:.1%}, binding {token['binding']:.1%}, "
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
               f'asked: "{captions[i]}"; drawn: {describe(live_seen[i])}\n(below each word: its mean attention weight)')
plt.show()

# %% [markdown]
# One picture is an anecdote, so we measure over all live samples that show both named colours on
# two objects. For each colour word we ask whether its map is brighter on the object painted that
# colour than on the other object; for each shape word, whether it is brighter on the object drawn
# with that shape (`binding.attention_on_objects`, on the 4 x 4 maps; the objects' pixels are found
# by their colour). In a right image those are the same object for a colour word and its shape word;
# in a swapped image they are different objects.

# %%
m4 = live_maps[max(live_maps)]
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
            if N_LIVE == 48 and kind == "colour":
                assert wins >= 0.9 * len(pairs) and ratio > 2.0, f"colour words favour their colour's object in (nearly) every image, about 2.5x; got {wins}/{len(pairs)}, {ratio:.2f}x"
            if N_LIVE == 48 and kind == "shape":
                assert wins > 0.7 * len(pairs) and 1.05 < ratio < 1.6, f"shape words favour their shape's object in most images, 1.2-1.3x; got {wins}/{len(pairs)}, {ratio:.2f}x"

# %% [markdown]
# **What the maps show.** In the image above the model drew a *yellow triangle* and a *green circle*
# for "a yellow circle and a green triangle". On the 4 x 4 maps "yellow" is brightest over the yellow
# triangle and "green" over the green circle, while "circle" is read mostly over the circle ("triangle"
# spreads wider: shape words localise weakly): each word is read where its *own attribute* ended up,
# so a colour word and its shape word are read at **different** objects. The 2 x 2 layers read the layout words
# ("and" takes the largest share there), as lesson 04 found.
#
# The counts say the same over the live samples: colour words favour the object that wears their
# colour in every image, right or swapped (about 2.5 times the weight), and shape words favour the
# object with their shape in most images (1.2-1.3 times, shape words localise more weakly, as in
# lesson 04). In swapped images the localisation is nearly as good as in right ones. The maps are not
# confused about *where* each word is; the model is confused about *which words go together*.
# Attention localises words one by one; nothing in it binds them.

# %% [markdown]
# ## 4. Testing the explanation: per-token vs pooled text
#
# The usual explanation of leakage is that the caption reaches the image generator as **one
# vector**: a pooled text embedding is a summary in which "red circle, blue square" and "blue
# circle, red square" can land close together. Our text encoder tau_theta can do both: by default it
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
# We trained the pooled model with **exactly the recipe of the shipped per-token model**
# (`zoo.ldm_recipe`: the same UNet, data, steps, batch, learning rate, EMA and seed; only
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
for name, label in (("token", "per-token (shipped)"), ("pooled", "pooled (one token)")):
    print(table_row(label, res["models"][name]))
for name in ("token", "pooled"):
    r = res["models"][name]
    print(f"{name}: trained {r['steps']} steps in {r['train_seconds'] / 60:.1f} min")

# %%
from PIL import Image

from ldm_mini.experiments import RESULTS_DIR
from ldm_mini.lessons.plotting import wrap

grid = Image.open(RESULTS_DIR / res["grid"]["file"])
fig, ax = plt.subplots(figsize=(10, 1.45 * len(res["grid"]["rows"])))
ax.imshow(grid)
ax.set_yticks([(k + 0.5) * grid.height / len(res["grid"]["rows"]) for k in range(len(res["grid"]["rows"]))], res["grid"]["rows"])
ax.set_xticks([(k + 0.5) * grid.width / len(res["captions"]["grid"]) for k in range(len(res["captions"]["grid"]))],
              [wrap(c, 16) for c in res["captions"]["grid"]], fontsize=6)
ax.set_title("the shipped results: the first 8 test captions, same noise z_T in every row")
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
# Live, on the first N_REMEDY test captions: the same noises without and with the **bind** guidance,
# and how the loss moves over the guided steps:

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
    t = prompts.binding_table(remedy_captions, classify_images(imgs, classifier))
    print(f"{name:>6}: binding {t['binding']:.0%}, presence {t['presence']:.0%}, swapped {t['swapped']:.0%}")

# %%
fig = show_grid(torch.cat([before, after]), [f"before: {c}" for c in remedy_captions] + ["after (bind guidance)"] * len(remedy_captions),
                ncols=len(remedy_captions), scale=1.6, fontsize=6)
plt.show()
plt.figure(figsize=(4, 2.5))
plt.plot(range(1, len(trace) + 1), trace, marker="o")
plt.xlabel("guided DDIM step (noisiest first)")
plt.ylabel("bind loss, mean over images")
plt.title("the loss each guidance step starts from", fontsize=9)
plt.tight_layout()
plt.show()

# %% [markdown]
# The measurement that counts, on the 200 test captions of the shipped results, each row from the
# same noises:

# %%
# NBVAL_CHECK_OUTPUT
print(header + f" {'s/image':>8}")
rows = [("per-token (shipped)", res["models"]["token"]), ("pooled (one token)", res["models"]["pooled"])]
rows += [(f"per-token + {name} (scale {r['config']['scale']})", r) for name, r in res["remedies"].items()]
for label, r in rows:
    print(table_row(label, r) + f" {r['seconds_per_image']:>8.3f}")


def paired(a, b):
    """Captions that model a binds right and b does not, and the reverse (same captions, same noises)."""
    fa, fb = a["binding_flags"], b["binding_flags"]
    return sum(x and not y for x, y in zip(fa, fb)), sum(y and not x for x, y in zip(fa, fb))


base = res["models"]["token"]
for label, r in rows[1:]:
    gained, lost = paired(r, base)
    print(f"{label}: binds {gained} captions the per-token model gets wrong, and gets {lost} wrong that it binds")

# %% [markdown]
# **What the remedy did.** Large steps wreck the images: at 0.1 the bind loss keeps only about half
# the named parts, and at 0.3 both losses leave almost nothing recognisable (the latent is pushed
# away from anything the decoder knows). Validation chose scale 0.03 for the bind loss (though no
# bind setting beat unguided sampling there: 46.9% against 47.9%) and 0.1 for the excite loss (52.1%).
#
# On the 200 test captions the order flips: the **bind** loss binds 52.0% against 47.5% unguided
# (swapped 45.5% against 52.0%, presence almost unchanged), fixing 26 captions and breaking 17;
# Attend-and-Excite's loss binds 46.0%, fixing 35 and breaking 38. Neither difference is beyond noise:
# of 43 captions where bind guidance and the plain sampler disagree, a 26 / 17 split or one more
# lopsided happens by chance about one time in five (a two-sided sign test gives p ≈ 0.22), and
# validation and test disagree on which loss is ahead, as noise of ±3.5 points would. Guidance moves
# individual samples (in the live grid above, the first caption came out right after guidance; another
# broke), at about 10% more time per image. The honest reading: at strengths that keep the images
# intact, attention guidance on our 4 x 4 maps does **not** measurably improve binding. Excite
# targets *missing* objects, which this model rarely has (presence 99.5%), so it has little to fix;
# the bind loss aims at the right failure, but pulls on shape-word maps that localise only weakly.

# %% [markdown]
# ## 6. Did the paper's explanation hold here?
#
# How big a difference can 200 captions resolve? A proportion near 50% measured on 200 captions has
# a standard error of about sqrt(0.5 · 0.5 / 200) ≈ 3.5 points, and because every model drew from
# the same noises for the same captions we can also count, caption by caption, where two models
# disagree:

# %%
# NBVAL_CHECK_OUTPUT
tok, poo = res["models"]["token"], res["models"]["pooled"]
n = tok["n"]
se = (tok["binding"] * (1 - tok["binding"]) / n) ** 0.5
gained, lost = paired(poo, tok)
print(f"binding: per-token {tok['binding']:.1%} vs pooled {poo['binding']:.1%} (difference {tok['binding'] - poo['binding']:+.1%}; "
      f"one standard error of each is about {se:.1%})")
print(f"caption by caption: the pooled model binds {gained} that the per-token model gets wrong, and misses {lost} that it gets right")
print(f"binding given presence: per-token {tok['binding_given_presence']:.1%}, pooled {poo['binding_given_presence']:.1%}; random pairing 50%")

# %% [markdown]
# **No, not in our mini model.** The explanation predicts a *gap*: per-token context should bind
# better than a pooled vector. We measured none. Both models draw the named parts almost always
# (presence 99.5% and 97.0%) and both pair them at chance: given that all parts are present, 47.7%
# and 47.4% come out paired right, where dealing the two colours to the two shapes at random gives
# 50%. The 1.5-point difference in binding is well inside one standard error, and caption by caption
# the two models trade wins almost evenly (18 against 21). Even the layout of relation captions
# ("above", "to the left of") comes out the same (39.0% bound right *and* laid out right, for both).
#
# So the per-token interface is not what is missing here. Section 3 showed that the per-token model
# does route each word to a place: a colour word is read where that colour is painted, a shape word
# (more weakly) where that shape is drawn. What it has not learned in its 1,800 training steps is to
# tie the two to **the same** place; its tokens are individually localised but not bound. A pooled
# vector, read the same way at every pixel, reaches the same chance-level pairing by another road.
# Two cautions before generalising: our tau_theta is trained from scratch together with the UNet
# (the paper's text-to-image model trains its transformer jointly too, but on 400M image-text
# pairs), and our pooled vector is the mean *after* two transformer layers, which can already mix
# "red" into "circle". The claim we can test says "pooling causes leakage"; our result says
# "per-token conditioning alone does not prevent it".

# %% [markdown]
# ## Summary
# - **Binding is not presence.** The shipped per-token model draws every named colour and shape in
#   99.5% of 200 two-object test captions, but binds them right in only 47.5%: given all parts,
#   it pairs colours and shapes at chance. The seed's "red sheep" is the common case here, not an
#   accident.
# - **Inside the model**, cross-attention reads each colour word where that colour went and each
#   shape word where that shape went, also in swapped images: the words are localised one by one,
#   but nothing ties a colour word and its shape word to the same object.
# - **Per-token vs pooled:** with the same recipe and budget, one pooled context vector binds just
#   as well (46.0%, 47.4% given presence): the explanation "pooling loses the binding" is not what
#   limits our model.
# - **A remedy beyond the paper**, attention guidance on z_t in the first 10 DDIM steps with
#   Attend-and-Excite's loss or a SynGen-like binding loss, step size chosen on validation captions:
#   52.0% (bind) and 46.0% (excite) against 47.5% unguided, differences that 200 captions cannot
#   tell from noise. It stays in the lesson as a measured negative result, and as a tool: the
#   exercises change what it pulls on.
#
# ## Exercises (what else would fix it?)
# 1. **Train longer.** Does binding come with more training? Retrain the per-token model with 3x the
#    steps (`python -m ldm_mini train-ldm --steps 5400 --out runs/ldm-long`) and measure
#    `binding_given_presence` with `binding.measure`: does it leave 50%?
# 2. **Show more two-object scenes.** Half the training images hold one object. Draw a training set
#    with `data.build_shapes(20_000, "train", config=ShapesConfig(p_two=0.9))`, retrain with the same
#    budget and compare. Which helps more per minute of CPU: more steps or more two-object captions?
# 3. **Negative guidance with the swapped caption.** Classifier-free guidance pushes away from the
#    empty caption. Push away from the *wrong binding* instead: replace eps_u by the model's eps for
#    "a blue circle and a red square" when asking for "a red circle and a blue square"
#    (`sampling.cfg_model` takes any uncond context). Measure it with `prompts.binding_table`.
# 4. **Finer maps.** Our UNet attends at 4 x 4 and 2 x 2 only (`attention_levels=(1, 2)`). Add level 0
#    (8 x 8): do colour and shape words then meet at the same place? Does the bind loss work better?
# 5. **Bind by construction.** Give tau_theta one token per *object* (the sum of its colour and
#    shape embeddings) instead of one per word. Why does this make leakage impossible to express, and
#    what does it cost (which captions can it no longer represent)?
# 6. **Why did the bind loss hurt presence?** Plot the shape words' maps during the first guided
#    steps. Try guiding only the 2 x 2 layers (`AttentionGuidance(resolution=2)`), fewer steps, or
#    a loss that only pulls each colour map toward its own shape map.
