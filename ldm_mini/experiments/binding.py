"""Lesson 10: attribute binding, the limitation this series was seeded with.

"a red car and a white sheep" comes out with a red sheep: a text-to-image model can draw every
thing a caption names and still put the attributes on the wrong objects. On our shapes the
question is exact: for "a red circle and a blue square" the judge (``eval/judge.py``) tells us
which colour each drawn shape wears.

The seed review's explanation: Stable Diffusion's tau_theta is CLIP's text encoder, which CLIP
trained through its *pooled* token only, so its other token outputs need not say which colour
belongs to which shape; yet the UNet's cross-attention reads them all. We test it with three
tau_theta, each under the same UNet recipe (``zoo.ldm_recipe``) and the same training budget:

- ``token``: one context vector per token, tau_theta trained jointly with eps_theta (the paper's setting);
- ``pooled``: one pooled vector, the mean over tokens (``TextEncoderConfig(pooled=True)``);
- ``clip``: the CLIP-like tau_theta of ``contrastive.py``, pretrained by InfoNCE on its pooled token
  against an image encoder on the training pairs, then frozen; the UNet reads all its token outputs.

For each, along training (``N_POINTS`` evenly spaced steps, stop-and-resume with ``zoo.train_with_curve``):
the headline figures (``eval.models.headline_metrics``, read by the judge, 95% Wilson intervals):
``single`` (so no model is compared before it draws one object right), ``presence``, ``binding`` and
``swapped`` on the "X and Y" captions. Then, on the trained models: what each tau_theta's token outputs
know (``contrastive.token_probe``), the cross-attention maps per word for one caption, and a remedy
beyond the paper on the model that leaks most, at sampling time: a few gradient steps on z_t during
the first (noisiest) DDIM steps that push the cross-attention maps toward the caption's structure, in
the spirit of Attend-and-Excite (Chefer et al. 2023) and of SynGen's binding loss (Rassin et al. 2023):

- ``"excite"``: every attribute word must get a strong attention peak, L = max_w (1 - max_p A_w[p]);
- ``"bind"``: each colour word's map must overlap its own shape word's map and not the other
  object's words: L = sum_k [o(c_k, s_j) + o(c_k, c_j) - o(c_k, s_k)], j = the other object,
  with o(u, v) = sum_p min(u[p], v[p]) the overlap of two maps normalised over pixels p.

``run(profile)`` writes ``data/experiments/binding.json`` (``rows``: one per encoder and point),
``binding-attention.png`` and ``binding-samples.png``. Everything slow is kept under ``work_dir``
(``runs/binding/<profile>/``: the latent cache; in ``<encoder>/`` the training state, the curve, the
contrastive pretraining and the remedies), so a killed run continues where it stopped: a measured
point is read back, not measured again, and training resumes from its last saved state.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange

from ..checkpoints import read_manifest
from ..config import Profile
from ..contrastive import ContrastiveConfig, pretrain_contrastive, token_probe, with_frozen_text_encoder
from ..data import COLOURS, caption_objects, images_uint8, load_shapes, save_png_grid
from ..eval.models import headline_captions, headline_metrics
from ..eval.prompts import classify_images, describe, seen_objects
from ..guidance import LOSSES, AttentionGuidance, generate
from ..ldm import LatentDiffusion, LDMConfig
from ..text import TextEncoder
from ..train import TrainConfig, encode_images
from ..zoo import JUDGE, ae_name, fresh_ldm, ldm_recipe, load_pretrained, progress_points, train_with_curve
from . import RESULTS_DIR, save_results

NAME = "binding"
WORK_DIR = Path("runs/binding")
SAMPLE_GRID = "binding-samples.png"
ATTENTION_GRID = "binding-attention.png"
GRID_CAPTIONS = 8  # captions (columns) in the saved sample grid

ENCODERS = ("token", "pooled", "clip")
N_POINTS = 4  # measured points along training, evenly spaced, the last at the end
LEARNT_SINGLE = 0.95  # a point is fit to compare on binding once the model draws one object right this often
ATTENTION_CAPTION = "a red circle and a blue square"  # the caption whose maps per word are kept
N_PROBE = 2_000  # val images whose captions the token probes read
GUIDANCE = 3.0  # classifier-free guidance scale s of every sample here

# ---------------------------------------------------------------- the three text encoders


def encoder_recipe(profile: Profile, encoder: str, ae_config, seed: int = 0) -> tuple[LDMConfig, TrainConfig]:
    """The shipped LDM's recipe (``zoo.ldm_recipe``), with tau_theta of one kind. Only ``pooled`` changes the
    config here; ``clip`` gets its frozen tau_theta later (``with_frozen_text_encoder``, same width)."""
    if encoder not in ENCODERS:
        raise ValueError(f"encoder must be one of {ENCODERS}, got {encoder!r}")
    config, train_config = ldm_recipe(ae_config, profile, seed)
    text = dataclasses.replace(config.text, pooled=encoder == "pooled")
    return dataclasses.replace(config, text=text), train_config


def training_pairs(profile: Profile, seed: int = 0) -> tuple[torch.Tensor, list[str]]:
    """The training split's images (n 3 H W uint8) and captions: what every model here learns from."""
    train = load_shapes(profile.n_train, "train", seed=seed)
    return images_uint8(train), list(train["caption"])


def cached_latents(ldm: LatentDiffusion, images: torch.Tensor, work_dir: Path, seed: int = 0) -> torch.Tensor:
    """The latent cache z_0 = scale * E(x) of the training images (n c h w), encoded once per work_dir:
    E of 20k images takes minutes on two cores, and all three models train on the same z_0."""
    sha = read_manifest().get(ae_name("kl", 4), {}).get("sha256", "none")[:12]
    path = Path(work_dir) / f"latents-{sha}-n{len(images)}-seed{seed}.pt"
    if path.exists():
        return torch.load(path)
    latents = encode_images(ldm.autoencoder, images)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(latents, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)  # a half-written cache never looks finished
    return latents


def pretrained_clip_encoder(
    text_config, images: torch.Tensor, captions: list[str], run_dir: Path, steps: int | None = None, seed: int = 0
) -> tuple[TextEncoder, dict]:
    """The CLIP-like tau_theta: ``contrastive.pretrain_contrastive`` on the training pairs (InfoNCE on its
    pooled token), frozen. Cached in run_dir/contrastive.pt, so a resumed run does not pretrain again.
    Returns (tau_theta, {"pretrain_seconds", "steps", "loss", "accuracy"}): the seconds count in this
    model's budget, as CLIP's training is part of what Stable Diffusion's text side cost."""
    config = ContrastiveConfig(text=text_config, seed=seed, **({"steps": steps} if steps else {}))
    path = Path(run_dir) / "contrastive.pt"
    saved = torch.load(path) if path.exists() else None
    if saved is None or saved["config"] != repr(config):
        start = time.perf_counter()
        text_encoder, _, history = pretrain_contrastive(images, captions, config)
        last = history[-5:]  # the end of the run, averaged over a few logged steps
        info = {
            "pretrain_seconds": round(time.perf_counter() - start, 1),
            "steps": config.steps,
            "batch_size": config.batch_size,
            "loss": sum(h["loss"] for h in last) / len(last),
            "accuracy": sum(h["accuracy"] for h in last) / len(last),
        }
        saved = {"config": repr(config), "state": text_encoder.state_dict(), "info": info}
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(saved, path)
    text_encoder = TextEncoder(text_config)
    text_encoder.load_state_dict(saved["state"])
    return text_encoder.eval().requires_grad_(False), saved["info"]


def per_token_outputs(text_encoder: TextEncoder) -> TextEncoder:
    """The same tau_theta without its final mean: its per-token outputs, which a pooled encoder computes
    (and averages) but never hands to the UNet. What the token probe reads for the pooled model."""
    if not text_encoder.config.pooled:
        return text_encoder
    unpooled = TextEncoder(dataclasses.replace(text_encoder.config, pooled=False))
    unpooled.load_state_dict(text_encoder.state_dict())  # the same weights: pooling has no parameters
    return unpooled.eval()


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


def measure_model(ldm: LatentDiffusion, judge, n: int, steps: int, seed: int = 0) -> dict:
    """One point of a curve: the headline figures of ``ldm`` (``headline_metrics``: ``n`` test captions
    per set, DDIM, s = 3, read by the judge, Wilson intervals), the detector's reading beside them,
    the two readers' agreement, the judge's verdict per two-object caption and the seconds it took."""
    start = time.perf_counter()
    record, _ = headline_metrics(ldm, judge, n=n, steps=steps, guidance=GUIDANCE, seed=seed)
    figures = record["figures"]
    return {
        **figures,
        "single_learnt": figures["single"] >= LEARNT_SINGLE,
        "detector": {k: v for k, v in record["detector"].items() if not k.endswith("_ci")},
        "agreement": record["agreement"]["objects"],
        "n_per_set": n,
        "two_verdicts": record["two_verdicts"],  # "bound" / "swapped" / "other", for paired comparisons
        "eval_seconds": round(time.perf_counter() - start, 1),
    }


def train_encoder_model(
    encoder: str,
    profile: Profile,
    ae,
    pairs: tuple[torch.Tensor, list[str]],
    judge,
    work_dir: Path,
    n: int,
    points: int,
    seed: int = 0,
    progress: bool = True,
    contrastive_steps: int | None = None,
) -> tuple[LatentDiffusion, list[dict], dict]:
    """Train the LDM with tau_theta of kind ``encoder`` and measure it at ``points`` evenly spaced steps.
    State, curve (and for ``clip`` the contrastive pretraining) live in work_dir/<encoder>/; a finished
    point is read back, not measured again. Returns (model with its last EMA weights, curve, info)."""
    config, train_config = encoder_recipe(profile, encoder, ae.config, seed)
    train_config = dataclasses.replace(train_config, progress=progress)
    run_dir = Path(work_dir) / encoder
    ldm = fresh_ldm(config, ae, seed)  # every model starts from the same seeded eps_theta
    info: dict = {"encoder": encoder, "steps": train_config.steps, "pretrain_seconds": 0.0}
    if encoder == "clip":
        text_encoder, pretrain = pretrained_clip_encoder(config.text, *pairs, run_dir, contrastive_steps, seed)
        ldm = with_frozen_text_encoder(ldm, text_encoder)  # train_diffusion now trains eps_theta only
        info |= {"pretrain_seconds": pretrain["pretrain_seconds"], "contrastive": pretrain}
    latents = cached_latents(ldm, pairs[0], work_dir, seed)
    tokens = ldm.tokenizer(pairs[1])

    def measure(model: LatentDiffusion, step: int) -> dict:
        return measure_model(model, judge, n, profile.sample_steps, seed)

    at = progress_points(train_config.steps, points)
    _check_earlier_curve(run_dir, n, at)
    ldm, history, curve = train_with_curve(ldm, latents, tokens, train_config, run_dir, measure, at)
    info |= {"train_seconds": history[-1]["seconds"], "final_loss": history[-1]["loss"]}  # logged at the last step
    info["params"] = sum(p.numel() for p in ldm.unet.parameters()) + sum(
        p.numel() for p in ldm.text_encoder.parameters()
    )
    return ldm.eval(), curve, info


def _check_earlier_curve(run_dir: Path, n: int, points: list[int]) -> None:
    """Refuse to continue a curve that an earlier call measured otherwise: its rows would be read back as if
    they were this call's."""
    saved = Path(run_dir) / "curve.json"
    rows = json.loads(saved.read_text()) if saved.exists() else []
    other = [row["step"] for row in rows if row.get("n_per_set") != n or row["step"] not in points]
    if other:
        raise ValueError(
            f"{saved} holds points {other} measured with other settings (n per set or steps) than this call's "
            f"(n={n}, points {points}): pass another work_dir, or delete {run_dir} to start this model again"
        )


def attention_maps(models: dict[str, LatentDiffusion], judge, out_dir: Path, steps: int, seed: int = 0) -> dict:
    """Cross-attention per word for ``ATTENTION_CAPTION``, one sample per model from the same z_T
    (``sample_with_attention``): the maps of the finest attended resolution, averaged back to it
    (r x r per word, rounded), each word's weight on its own and on the other object where the judge
    sees both colours (``attention_on_objects``), and a PNG grid: one row per model, the sample then
    one map per word (white = the largest weight of that row; black where a model has no such word: the
    pooled model's one context token is read with weight 1 everywhere, so its only map is white)."""
    out, rows = {"caption": ATTENTION_CAPTION, "file": ATTENTION_GRID, "seed": seed}, []
    width = 1 + 1 + len(ATTENTION_CAPTION.split())  # the sample, <start>, the words
    for name, ldm in models.items():
        images, maps = sample_with_attention(ldm, [ATTENTION_CAPTION], steps, GUIDANCE, seed)
        r = max(maps)  # the finest resolution the UNet attends at
        m = maps[r][0]  # L H W, upsampled to the image
        words = ["<pooled>"] if ldm.config.text.pooled else ["<start>"] + ldm.tokenizer.words(ATTENTION_CAPTION)
        m = m[: len(words)]
        seen = classify_images(images, judge)[0]
        on_objects = (
            None
            if ldm.config.text.pooled
            else attention_on_objects(images[0], m, ATTENTION_CAPTION, seen, ldm.tokenizer)
        )
        native = F.adaptive_avg_pool2d(m, r)  # L r r: the maps at the resolution the UNet computed them
        out[name] = {
            "words": words,
            "resolution": r,
            "maps": [[[round(v, 3) for v in row] for row in word] for word in native.tolist()],
            "seen": describe(seen),
            "on_objects": on_objects,
        }
        grey = (m / m.max().clamp_min(1e-8))[:, None].expand(-1, 3, -1, -1)  # L 3 H W
        row = torch.zeros(width, *images.shape[1:])  # black where a pooled model has no word
        row[0], row[1 : 1 + len(words)] = images[0], grey
        rows.append(row)
    save_png_grid(torch.stack(rows), Path(out_dir) / ATTENTION_GRID, scale=2, frame=1)
    out["rows"] = list(models)
    return out


def probe_encoders(models: dict[str, LatentDiffusion], seed: int = 0, n_captions: int = N_PROBE) -> dict:
    """``contrastive.token_probe`` of each model's tau_theta on the captions of ``N_PROBE`` val images:
    does the output at a colour word know its colour, and the output at a shape word its bound colour?
    For the pooled model the per-token outputs before its mean (``per_token_outputs``)."""
    captions = list(load_shapes(n_captions, "val", seed=seed)["caption"])
    return {
        name: token_probe(per_token_outputs(ldm.text_encoder), ldm.tokenizer, captions, seed=seed)
        for name, ldm in models.items()
    }


def measure_remedy(
    ldm: LatentDiffusion, judge, config: AttentionGuidance | None, n: int, steps: int, split: str, seed: int = 0
) -> dict:
    """The two-object figures (presence, binding, swapped with intervals; ``headline_metrics`` on the
    "two" set only, the same noises as the curve's) of the sampler with attention guidance ``config``."""
    start = time.perf_counter()
    record, _ = headline_metrics(
        ldm,
        judge,
        n=n,
        steps=steps,
        guidance=GUIDANCE,
        seed=seed,
        sets=("two",),
        split=split,
        sample=lambda captions, s: generate(ldm, captions, config, steps, GUIDANCE, s),
    )
    seconds = time.perf_counter() - start
    return {
        **record["figures"],
        "config": None if config is None else dataclasses.asdict(config),
        "two_verdicts": record["two_verdicts"],
        "seconds_per_image": round(seconds / n, 3),
    }


def _cached(path: Path, compute) -> dict:
    """``compute()``, kept as JSON in ``path``: a resumed run reads it back instead."""
    if path.exists():
        return json.loads(path.read_text())
    result = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))
    return result


def remedies(
    ldm: LatentDiffusion, judge, baseline: dict, n: int, n_tune: int, steps: int, scales, work_dir: Path, seed: int = 0
) -> dict:
    """Attention guidance before/after on one model. For each loss of ``LOSSES`` the step size in ``scales``
    with the best binding on ``n_tune`` *validation* captions (ties: the smaller step; the test captions
    do not pick it), then that setting on the ``n`` test captions of the curve. ``baseline`` is the
    model's last curve point: the unguided sampler on the same captions and noises (the guided sampler
    with no guidance is ``ldm.generate`` exactly), so the rows can be compared caption by caption."""
    keep = ("presence", "binding", "swapped", "binding_ci", "seconds_per_image")

    def tune() -> dict:
        table = {"split": "val", "n": n_tune}
        for config in [None] + [AttentionGuidance(loss=loss, scale=scale) for loss in LOSSES for scale in scales]:
            result = measure_remedy(ldm, judge, config, n_tune, steps, "val", seed)
            label = "none" if config is None else f"{config.loss} scale {config.scale}"
            table[label] = {k: result[k] for k in keep}
        return table

    tuning = _cached(Path(work_dir) / f"remedies-tuning-n{n_tune}-scales{'-'.join(map(str, scales))}.json", tune)
    out = {"tuning": tuning, "none": {k: baseline[k] for k in ("presence", "binding", "swapped", "two_verdicts")}}
    for loss in LOSSES:
        best = max(scales, key=lambda s: (tuning[f"{loss} scale {s}"]["binding"], -s))  # ties: the smaller step
        config = AttentionGuidance(loss=loss, scale=best)
        path = Path(work_dir) / f"remedy-{loss}-{best}-n{n}.json"
        out[loss] = _cached(path, lambda c=config: measure_remedy(ldm, judge, c, n, steps, "test", seed))
    return out


def sample_grid(models: dict[str, LatentDiffusion], captions: list[str], out_dir: Path, steps: int, seed: int):
    """The first ``GRID_CAPTIONS`` two-object test captions, one row per model, the same z_T in a column."""
    images = [ldm.generate(captions, steps=steps, guidance=GUIDANCE, seed=seed) for ldm in models.values()]
    save_png_grid(torch.stack(images), Path(out_dir) / SAMPLE_GRID, scale=2)
    return {"file": SAMPLE_GRID, "rows": list(models), "captions": captions}


def run(
    profile: Profile,
    out_dir: Path = RESULTS_DIR,
    n: int | None = None,
    work_dir: Path = WORK_DIR,
    seed: int = 0,
    progress: bool = True,
    points: int = N_POINTS,
    contrastive_steps: int | None = None,
    n_tune: int = N_TUNE,
    scales: tuple[float, ...] = REMEDY_SCALES,
) -> dict:
    """The whole lesson-10 experiment; writes ``binding.json``, ``binding-attention.png`` and
    ``binding-samples.png`` to ``out_dir``. ``n`` captions per headline set (default: the profile's
    ``n_samples_eval``), ``points`` measured points per model, ``contrastive_steps`` of CLIP-like
    pretraining (default: ``ContrastiveConfig``'s). Resumable: see the module's docstring. In miniature
    (``Profile.miniature``) the points, the pretraining and the probes' captions are capped too, and the
    work is kept apart from a real run's (``<work_dir>/<profile>-miniature``)."""
    start = time.perf_counter()
    n = n or profile.n_samples_eval
    points = profile.cap_samples(points)
    contrastive_steps = profile.cap_steps(contrastive_steps or ContrastiveConfig.steps)
    run_name = f"{profile.name}-miniature" if profile.is_miniature else profile.name
    out_dir, work_dir = Path(out_dir), Path(work_dir) / run_name
    ae, judge = load_pretrained(ae_name("kl", 4)), load_pretrained(JUDGE)
    pairs = training_pairs(profile, seed)
    models, rows, encoders = {}, [], {}
    for encoder in ENCODERS:
        ldm, curve, info = train_encoder_model(
            encoder, profile, ae, pairs, judge, work_dir, n, points, seed, progress, contrastive_steps
        )
        models[encoder], encoders[encoder] = ldm, info
        rows += [{"encoder": encoder, "steps": row.pop("step"), **row} for row in map(dict, curve)]
    last = {row["encoder"]: row for row in rows}  # each encoder's last point
    # The remedy steers per-word attention maps: a pooled tau_theta hands the UNet one token, nothing to steer.
    steerable = [e for e in ENCODERS if not models[e].config.text.pooled]
    leaky = max(steerable, key=lambda e: last[e]["swapped"])  # the one that leaks most
    probes = probe_encoders(models, seed, profile.cap_samples(N_PROBE))
    attention = attention_maps(models, judge, out_dir, profile.sample_steps, seed)
    remedy = remedies(
        models[leaky], judge, last[leaky], n, min(n_tune, n), profile.sample_steps, scales, work_dir / leaky, seed
    )
    two = headline_captions(n, seed, sets=("two",))["two"][:GRID_CAPTIONS]
    results = {
        "sampler": {"sampler": "DDIM", "steps": profile.sample_steps, "eta": 0.0, "guidance": GUIDANCE, "seed": seed},
        "reader": "the judge (eval/judge.py), figures by eval.models.headline_metrics with 95% Wilson intervals",
        "n_per_set": n,
        "learnt_single": LEARNT_SINGLE,
        "rows": rows,
        "encoders": encoders,
        "token_probe": probes,
        "attention": attention,
        "remedies": {"encoder": leaky, "why": "the highest swapped at the last point of a per-token model", **remedy},
        "grid": sample_grid(models, two, out_dir, profile.sample_steps, seed),
    }
    recorded = sum((info["train_seconds"] or 0) + info["pretrain_seconds"] for info in encoders.values())
    recorded += sum(row["eval_seconds"] for row in rows)
    results["recorded_seconds"] = round(recorded, 1)  # training and curves, also those of earlier (resumed) calls
    results["seconds_this_call"] = round(time.perf_counter() - start, 1)
    save_results(NAME, results, out_dir, max(recorded, time.perf_counter() - start))
    return results
