"""Lesson 10: attribute binding, the limitation this series was seeded with.

"a red car and a white sheep" comes out with a red sheep: a text-to-image model can draw every
thing a caption names and still put the attributes on the wrong objects. On our shapes the
question is exact: for "a red circle and a blue square" the attribute classifier tells us
which colour each drawn shape wears.

Three measurements, all on the same two-object test captions:

1. **Binding vs presence** of the shipped per-token model ``shapes-kl-f4``: *presence* asks
   whether each named colour and each named shape appears at all; *binding* whether each colour
   sits on its own shape. The gap between them is the leakage.
2. **Per-token vs pooled** conditioning: the explanation to test is that squeezing a caption
   into one vector loses which word belongs to which. We train a model with the SAME recipe and
   budget whose text encoder ends in a mean over tokens (``TextEncoderConfig(pooled=True)``),
   so the UNet's cross-attention sees one context token instead of one per word.
3. **A remedy beyond the paper**, at sampling time: a few gradient steps on z_t during the
   first (noisiest) DDIM steps that push the cross-attention maps toward the caption's
   structure, in the spirit of Attend-and-Excite (Chefer et al. 2023) and of the binding loss of
   SynGen (Rassin et al. 2023). Two losses, each measured before/after on the same noises:

   - ``"excite"``: Attend-and-Excite's loss: every attribute word must get a strong attention
     peak somewhere, L = max_w (1 - max_p A_w[p]);
   - ``"bind"``: each colour word's map must overlap its own shape word's map and not the other
     object's words: L = sum_k [o(c_k, s_j) + o(c_k, c_j) - o(c_k, s_k)], j = the other object,
     with o(u, v) = sum_p min(u[p], v[p]) the overlap of two maps normalised over pixels p.

``run(profile)`` trains the pooled model (about 7 minutes on a 2-core CPU; its training state
stays in ``runs/binding/`` so an interrupted run resumes), measures everything and writes
``data/experiments/binding.json`` and ``binding-samples.png``. No checkpoint is shipped for the
pooled model: this command reproduces it.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange

from ..checkpoints import CheckpointError, config_from_json, read_manifest
from ..config import Profile
from ..data import COLOURS, caption_objects, save_png_grid
from ..eval.prompts import binding_table, classify_images, describe, score_binding, seen_objects, two_object_captions
from ..guidance import LOSSES, AttentionGuidance, generate
from ..ldm import LatentDiffusion, LDMConfig
from ..train import train_diffusion
from ..zoo import CLASSIFIER, LDM_MAIN, ae_name, ldm_recipe, load_pretrained, prepare_ldm_training
from . import RESULTS_DIR, save_results

NAME = "binding"
WORK_DIR = Path("runs/binding")
SAMPLE_GRID = "binding-samples.png"
GRID_CAPTIONS = 8  # captions (columns) in the saved sample grid

# ---------------------------------------------------------------- the models compared


def variant_recipe(profile: Profile, pooled: bool, seed: int = 0):
    """The shipped LDM's recipe (``zoo.ldm_recipe``), with per-token or pooled text."""
    ae = load_pretrained(ae_name("kl", 4))
    config, train_config = ldm_recipe(ae.config, profile, seed)
    config = dataclasses.replace(config, text=dataclasses.replace(config.text, pooled=pooled))
    return ae, config, train_config


def train_variant(
    profile: Profile, pooled: bool, work_dir: Path = WORK_DIR, seed: int = 0, progress: bool = True
) -> tuple[LatentDiffusion, dict]:
    """Train an LDM exactly as ``zoo.build_ldm`` trains the shipped one, except for the
    ``pooled`` switch. The training state is kept in ``work_dir``; a finished run is reloaded
    instead of retrained. Returns (model, {"train_seconds", "steps", "final_loss"})."""
    ae, config, train_config = variant_recipe(profile, pooled, seed)
    train_config = dataclasses.replace(train_config, progress=progress)
    ldm, latents, tokens = prepare_ldm_training(config, ae, profile, seed)
    out = Path(work_dir) / ("pooled" if pooled else "token") / profile.name
    ldm, history = train_diffusion(ldm, latents, tokens, train_config, out_dir=out, resume=True)
    info = {
        "train_seconds": history[-1]["seconds"],
        "steps": train_config.steps,
        "final_loss": history[-1]["loss"],
        "pooled": pooled,
    }
    return ldm.eval(), info


def per_token_model(
    profile: Profile, work_dir: Path = WORK_DIR, seed: int = 0, progress: bool = True
) -> tuple[LatentDiffusion, dict]:
    """The per-token model: the shipped ``shapes-kl-f4`` when its recorded recipe is the one this
    profile would train (so the comparison with the pooled model is fair), else trained here."""
    _, config, train_config = variant_recipe(profile, pooled=False, seed=seed)
    entry = read_manifest().get(LDM_MAIN, {})
    same = _same_config(entry.get("config"), config) and _same_training(
        entry.get("train") or {}, dataclasses.asdict(train_config)
    )
    if same:
        return load_pretrained(LDM_MAIN), {
            "train_seconds": entry["train_seconds"],
            "steps": train_config.steps,
            "pooled": False,
            "shipped": LDM_MAIN,
        }
    model, info = train_variant(profile, pooled=False, work_dir=work_dir, seed=seed, progress=progress)
    return model, {**info, "shipped": None}


def _same_training(a: dict, b: dict) -> bool:
    keys = ("steps", "batch_size", "lr", "warmup", "lr_min_ratio", "ema_decay", "seed")
    return all(a.get(k) == b.get(k) for k in keys)


def _same_config(stored: dict | None, config: LDMConfig) -> bool:
    """Whether a manifest's stored config is ``config``. It is read back as a checkpoint's config is
    (``config_from_json``), so a field added since with its default value (``pos_init_std``,
    ``freeze_text``) still compares equal, as it loads the same model."""
    if not stored:
        return False
    try:
        return config_from_json(LDMConfig, stored) == config
    except (CheckpointError, TypeError, ValueError):  # fields this version does not know, or bad values
        return False



# ---------------------------------------------------------------- reading attention where colours leak


def colour_mask(image: torch.Tensor, colour: str, tol: float = 70.0) -> torch.Tensor:
    """H W bool: the pixels of ``image`` (3 H W in [0, 1]) within ``tol`` (of 255) of a named colour."""
    rgb = torch.tensor(COLOURS[colour], dtype=torch.float32)[:, None, None]
    return (image * 255 - rgb).norm(dim=0) < tol


@torch.no_grad()
def sample_with_attention(
    ldm: LatentDiffusion, captions: list[str], steps: int = 50, guidance: float = 3.0, seed: int = 0
) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """Generate one image per caption (as ``ldm.generate``) and keep its cross-attention maps,
    averaged over heads, over the layers of each resolution and over the DDIM steps, upsampled
    (bilinear) to the image. Returns (images b 3 H W in [0, 1], {resolution: maps b L H W})."""
    sums: dict[int, torch.Tensor] = {}
    counts: dict[int, int] = {}

    def record(i, t, x_t, x0_hat):  # after each DDIM step's UNet call
        for m in ldm.unet.attention_maps().values():  # (2b, heads, h, w, L): [uncond; cond]
            m = m[m.shape[0] // 2 :].mean(1)  # the conditional half, mean over heads: b h w L
            r = m.shape[1]
            sums[r] = sums.get(r, 0) + m
            counts[r] = counts.get(r, 0) + 1

    ldm.eval()
    with ldm.unet.record_attention():
        z0 = ldm.sample_latents(captions, steps=steps, guidance=guidance, seed=seed, callback=record)
    images = ldm.decode_to_images(z0)
    H = images.shape[-1]
    maps = {
        r: F.interpolate(
            rearrange(sums[r] / counts[r], "b h w l -> b l h w"), size=(H, H), mode="bilinear", align_corners=False
        ).cpu()
        for r in sorted(sums, reverse=True)
    }
    return images, maps


def attention_on_objects(
    image: torch.Tensor, word_maps: torch.Tensor, caption: str, seen: dict[str, str], tokenizer
) -> list[dict] | None:
    """Where each attribute word of a two-object caption was read, in an image whose objects the
    classifier ``seen`` as two objects in the caption's two colours. word_maps: (L, H, W) attention
    per token, upsampled to the image. For each word: its mean map value on the pixels of the drawn
    object that carries the word ("own": the object with that colour for a colour word, with that
    shape for a shape word) and on the other object. None if the image does not show both colours
    on two objects (then "own" is undefined)."""
    got = seen_objects(seen)
    wanted = caption_objects(caption)
    if len(got) != 2 or {c for c, _ in got} != {c for c, _ in wanted}:
        return None
    masks = {c: colour_mask(image, c) for c, _ in got}  # colour -> its drawn object's pixels
    if any(m.sum() == 0 for m in masks.values()):
        return None
    shape_colour = {s: c for c, s in got}  # the colour each drawn shape wears
    words = ["<start>"] + tokenizer.words(caption)
    rows = []
    for colour, shape in wanted:
        for word, kind in ((colour, "colour"), (shape, "shape")):
            own_colour = colour if kind == "colour" else shape_colour.get(shape)
            if own_colour is None:  # that shape was not drawn
                continue
            other_colour = next(c for c in masks if c != own_colour)
            m = word_maps[words.index(word)]
            rows.append(
                {
                    "word": word,
                    "kind": kind,
                    "own": m[masks[own_colour]].mean().item(),
                    "other": m[masks[other_colour]].mean().item(),
                }
            )
    return rows


# ---------------------------------------------------------------- the experiment


REMEDY_SCALES = (0.01, 0.03, 0.1, 0.3)  # step sizes tried for each loss, on validation captions
N_TUNE = 96  # validation captions for choosing the step size (the test captions are not looked at)


def measure(
    ldm: LatentDiffusion,
    captions: list[str],
    classifier,
    config: AttentionGuidance | None = None,
    steps: int = 50,
    guidance: float = 3.0,
    seed: int = 0,
) -> tuple[dict, torch.Tensor]:
    """binding_table of samples for ``captions`` (plus seconds per image). Returns (table, images)."""
    start = time.perf_counter()
    images = generate(ldm, captions, config, steps, guidance, seed)
    seconds = time.perf_counter() - start
    seen = classify_images(images, classifier)
    table = binding_table(captions, seen)
    table["seconds_per_image"] = seconds / len(captions)
    table["seen"] = [describe(s) for s in seen[:GRID_CAPTIONS]]
    table["binding_flags"] = [int(score_binding(c, s)["binding"]) for c, s in zip(captions, seen)]  # paired comparisons
    return table, images


def tune_remedies(
    ldm: LatentDiffusion, classifier, steps: int = 50, seed: int = 0, n: int = N_TUNE, scales=REMEDY_SCALES
) -> tuple[dict[str, AttentionGuidance], dict]:
    """For each loss of ``LOSSES``, the step size in ``scales`` with the best binding on ``n``
    two-object *validation* captions (ties: the smaller step). Returns (chosen configs, the table)."""
    captions = two_object_captions(n, "val", seed)
    base, _ = measure(ldm, captions, classifier, None, steps, 3.0, seed)
    keep = ("binding", "presence", "swapped", "seconds_per_image")
    table = {"split": "val", "n": n, "none": {k: base[k] for k in keep}}
    chosen = {}
    for loss in LOSSES:
        best = None
        for scale in scales:
            config = AttentionGuidance(loss=loss, scale=scale)
            result, _ = measure(ldm, captions, classifier, config, steps, 3.0, seed)
            table[f"{loss} scale {scale}"] = {k: result[k] for k in keep}
            if best is None or result["binding"] > best[1]:
                best = (config, result["binding"])
        chosen[loss] = best[0]
    return chosen, table


def run(
    profile: Profile,
    out_dir: Path = RESULTS_DIR,
    n: int | None = None,
    work_dir: Path = WORK_DIR,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """The whole lesson-10 experiment; writes ``binding.json`` and ``binding-samples.png``."""
    start = time.perf_counter()
    n = n or profile.n_samples_eval
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    captions = two_object_captions(n, "test", seed)
    classifier = load_pretrained(CLASSIFIER)
    sampler = {"sampler": "DDIM", "steps": profile.sample_steps, "eta": 0.0, "guidance": 3.0, "seed": seed}

    token, token_info = per_token_model(profile, work_dir, seed, progress)
    train_start = time.perf_counter()
    pooled, pooled_info = train_variant(profile, pooled=True, work_dir=work_dir, seed=seed, progress=progress)
    pooled_info["seconds_this_call"] = round(time.perf_counter() - train_start, 1)

    models, grid = {}, {}
    for name, model, info in (("token", token, token_info), ("pooled", pooled, pooled_info)):
        table, images = measure(model, captions, classifier, None, profile.sample_steps, 3.0, seed)
        models[name] = {**info, **table}
        grid[name] = images[:GRID_CAPTIONS]
    chosen, tuning = tune_remedies(token, classifier, profile.sample_steps, seed, n=min(N_TUNE, n))
    remedies = {}
    for name, config in chosen.items():
        table, images = measure(token, captions, classifier, config, profile.sample_steps, 3.0, seed)
        remedies[name] = {"config": dataclasses.asdict(config), **table}
        grid[f"token + {name}"] = images[:GRID_CAPTIONS]
    save_png_grid(torch.stack(list(grid.values())), out_dir / SAMPLE_GRID, scale=2)  # one row per model
    results = {
        "captions": {
            "split": "test",
            "n": len(captions),
            "n_and": sum(" and " in c for c in captions),
            "grid": captions[:GRID_CAPTIONS],
        },
        "sampler": sampler,
        "models": models,
        "remedies": remedies,
        "tuning": tuning,
        "grid": {"file": SAMPLE_GRID, "rows": list(grid)},
    }
    # A resumed run reuses the pooled model's training from an earlier call: count it in the total.
    reused = max(0.0, pooled_info["train_seconds"] - pooled_info["seconds_this_call"])
    results["reused_training_seconds"] = round(reused, 1)
    save_results(NAME, results, out_dir, time.perf_counter() - start + reused)
    return results
