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
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from einops import rearrange

from ..config import Profile
from ..data import COLOURS, load_shapes, parse_caption
from ..ldm import LatentDiffusion, _check_sampling_args
from ..metrics import _objects, classify_images, describe, judge_caption
from ..sampling import ddim_sigmas, ddim_step, ddim_timesteps
from ..unet import CrossAttention
from . import RESULTS_DIR, save_results

NAME = "binding"
WORK_DIR = Path("runs/binding")
SAMPLE_GRID = "binding-samples.png"
GRID_CAPTIONS = 8  # captions (columns) in the saved sample grid


# ---------------------------------------------------------------- captions and scores (pure)


def two_object_captions(n: int, split: str = "test", seed: int = 0) -> list[str]:
    """The first ``n`` two-object captions ("X and Y" and relations) of a split of the shapes."""
    pool = max(1_000, 4 * n)  # about half of all images hold two objects
    captions = [c for c in load_shapes(pool, split, seed=seed)["caption"] if parse_caption(c)["n_objects"] == 2]
    if len(captions) < n:
        raise ValueError(f"only {len(captions)} two-object captions among {pool} {split} images; ask for fewer than {n}")
    return captions[:n]


def caption_objects(caption: str) -> list[tuple[str, str]]:
    """The (colour, shape) pairs a two-object caption asks for, in the dataset's canonical order."""
    want = parse_caption(caption)
    if want["n_objects"] != 2:
        raise ValueError(f"binding needs a caption with two objects, e.g. 'a red circle and a blue square', got {caption!r}")
    return [(want["colour1"], want["shape1"]), (want["colour2"], want["shape2"])]


def score_binding(caption: str, seen: dict[str, str]) -> dict[str, bool]:
    """Score one image of a two-object caption from what the classifier ``seen`` in it.

    - ``presence``: each named colour and each named shape is somewhere in the image;
    - ``binding``: two objects, each (colour, shape) pair as the caption says (order and layout
      free: the attributes sit on the right objects);
    - ``swapped``: all named colours and shapes present on two objects, but paired wrongly
      (the caption's leakage: a blue circle and a red square for "a red circle and a blue square");
    - ``binding_layout``: ``binding``, and for relation captions the stated layout too (the
      ``two_binding`` of ``metrics.prompt_accuracy``, the number in the manifest).
    """
    wanted, got = caption_objects(caption), _objects(seen)
    colours, shapes = {c for c, _ in got}, {s for _, s in got}
    presence = all(c in colours and s in shapes for c, s in wanted)
    binding = len(got) == 2 and sorted(got) == sorted(wanted)
    return {
        "presence": presence,
        "binding": binding,
        "swapped": presence and len(got) == 2 and not binding,
        "binding_layout": bool(judge_caption(caption, seen)["two_binding"]),
    }


def binding_table(captions: list[str], seen: list[dict[str, str]]) -> dict:
    """Fractions of ``score_binding`` over captions, plus ``binding_given_presence``: of the images
    that hold every named part, the share assembled right. If colours were dealt to the two shapes
    at random it would be 1/2 (two ways to pair two colours with two shapes)."""
    if len(captions) != len(seen):
        raise ValueError(f"got {len(captions)} captions and {len(seen)} predictions: pass one per image")
    if not captions:
        raise ValueError("no captions to score")
    rows = [score_binding(c, s) for c, s in zip(captions, seen)]
    table = {k: sum(r[k] for r in rows) / len(rows) for k in ("binding", "presence", "swapped", "binding_layout")}
    present = sum(r["presence"] for r in rows)
    table["binding_given_presence"] = sum(r["binding"] for r in rows) / present if present else float("nan")
    table["n"] = len(rows)
    return table


# ---------------------------------------------------------------- the models compared


def variant_recipe(profile: Profile, pooled: bool, seed: int = 0):
    """The shipped LDM's recipe (``pretrained.ldm_recipe``), with per-token or pooled text."""
    from ..pretrained import ae_name, load_pretrained, ldm_recipe

    ae = load_pretrained(ae_name("kl", 4))
    config, cfg = ldm_recipe(ae.config, profile, seed)
    config = dataclasses.replace(config, text=dataclasses.replace(config.text, pooled=pooled))
    return ae, config, cfg


def train_variant(profile: Profile, pooled: bool, work_dir: Path = WORK_DIR, seed: int = 0, progress: bool = True) -> tuple[LatentDiffusion, dict]:
    """Train an LDM exactly as ``pretrained.build_ldm`` trains the shipped one, except for the
    ``pooled`` switch. The training state is kept in ``work_dir``; a finished run is reloaded
    instead of retrained. Returns (model, {"train_seconds", "steps", "final_loss"})."""
    from ..pretrained import prepare_ldm_training
    from ..train import train_ldm

    ae, config, cfg = variant_recipe(profile, pooled, seed)
    cfg = dataclasses.replace(cfg, progress=progress)
    ldm, latents, tokens = prepare_ldm_training(config, ae, profile, seed)
    out = Path(work_dir) / ("pooled" if pooled else "token") / profile.name
    ldm, history = train_ldm(ldm, latents, tokens, cfg, out_dir=out, resume=True)
    info = {"train_seconds": history[-1]["seconds"], "steps": cfg.steps, "final_loss": history[-1]["loss"], "pooled": pooled}
    return ldm.eval(), info


def per_token_model(profile: Profile, work_dir: Path = WORK_DIR, seed: int = 0, progress: bool = True) -> tuple[LatentDiffusion, dict]:
    """The per-token model: the shipped ``shapes-kl-f4`` when its recorded recipe is the one this
    profile would train (so the comparison with the pooled model is fair), else trained here."""
    from ..checkpoints import read_manifest
    from ..pretrained import LDM_MAIN, load_pretrained

    _, config, cfg = variant_recipe(profile, pooled=False, seed=seed)
    entry = read_manifest().get(LDM_MAIN, {})
    same = entry.get("config") == _jsonish(dataclasses.asdict(config)) and _same_training(entry.get("train") or {}, dataclasses.asdict(cfg))
    if same:
        return load_pretrained(LDM_MAIN), {"train_seconds": entry["train_seconds"], "steps": cfg.steps, "pooled": False, "shipped": LDM_MAIN}
    model, info = train_variant(profile, pooled=False, work_dir=work_dir, seed=seed, progress=progress)
    return model, {**info, "shipped": None}


def _same_training(a: dict, b: dict) -> bool:
    keys = ("steps", "batch_size", "lr", "warmup", "lr_min_ratio", "ema_decay", "seed")
    return all(a.get(k) == b.get(k) for k in keys)


def _jsonish(value):
    """dataclasses.asdict output as it reads back from JSON (tuples become lists)."""
    if isinstance(value, dict):
        return {k: _jsonish(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonish(v) for v in value]
    return value


# ---------------------------------------------------------------- cross-attention maps with gradients


def object_token_indices(tokenizer, caption: str) -> list[tuple[int, int]]:
    """For each object of a two-object caption, the positions (colour, shape) of its two words in
    the token sequence (position 0 is ``<start>``): "a red circle and a blue square" ->
    [(2, 3), (6, 7)]. Colours and shapes of the two objects always differ in our captions."""
    words = tokenizer.words(caption)
    return [(1 + words.index(colour), 1 + words.index(shape)) for colour, shape in caption_objects(caption)]


def attention_probs(attn: CrossAttention, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(Q K^T / sqrt(d)) of one cross-attention layer, averaged over heads, WITH gradients
    (``UNet.record_attention`` keeps detached copies): x (b, p, d) pixels, context (b, L, d_ctx)
    -> (b, p, L), each pixel's weights over the caption's tokens."""
    q = rearrange(attn.to_q(x), "b p (heads d) -> b heads p d", heads=attn.heads)
    k = rearrange(attn.to_k(context), "b l (heads d) -> b heads l d", heads=attn.heads)
    sim = torch.einsum("bhpd,bhld->bhpl", q, k) / math.sqrt(q.shape[-1])
    if mask is not None:
        sim = sim.masked_fill(~mask.bool()[:, None, None, :], float("-inf"))
    return sim.softmax(dim=-1).mean(1)


@contextmanager
def capture_attention(unet, resolution: int = 4):
    """Within this block, every forward pass of ``unet`` appends to the yielded list the
    cross-attention maps (b, p, L) of its layers that work at ``resolution`` x ``resolution``
    (p = resolution^2 pixels), computed with gradients so a loss on them can steer z_t."""
    found: list[torch.Tensor] = []

    def hook(module, args, kwargs, output):
        x = args[0]
        context = args[1] if len(args) > 1 else kwargs.get("context")
        mask = args[2] if len(args) > 2 else kwargs.get("mask")
        if x.shape[1] == resolution * resolution:
            found.append(attention_probs(module, x, context, mask))

    layers = [m for m in unet.modules() if isinstance(m, CrossAttention) and m.is_cross]
    handles = [m.register_forward_hook(hook, with_kwargs=True) for m in layers]
    try:
        yield found
    finally:
        for h in handles:
            h.remove()


def _pixel_distributions(maps: torch.Tensor) -> torch.Tensor:
    """(b, p, L) attention -> each token's map normalised to sum 1 over the p pixels: WHERE a word
    is read, whatever its total weight."""
    return maps / maps.sum(1, keepdim=True).clamp_min(1e-8)


def overlap(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """sum_p min(u[p], v[p]) of maps normalised over pixels: 1 when identical, 0 when disjoint."""
    return torch.minimum(u, v).sum(-1)


def bind_loss(maps: torch.Tensor, pairs: list[list[tuple[int, int]]]) -> torch.Tensor:
    """SynGen-style binding loss, one value per image: maps (b, p, L); pairs[i] = the (colour,
    shape) token positions of image i's two objects (``object_token_indices``).

    L = sum_k [o(c_k, s_j) + o(c_k, c_j) - o(c_k, s_k)], j = the other object: each colour word
    read where its own shape word is read, and away from the other object's words."""
    dist = rearrange(_pixel_distributions(maps), "b p l -> b l p")
    losses = []
    for i, ((c1, s1), (c2, s2)) in enumerate(pairs):
        d = dist[i]
        loss = 0.0
        for (c, s), (c_other, s_other) in (((c1, s1), (c2, s2)), ((c2, s2), (c1, s1))):
            loss = loss + overlap(d[c], d[s_other]) + overlap(d[c], d[c_other]) - overlap(d[c], d[s])
        losses.append(loss)
    return torch.stack(losses)


def excite_loss(maps: torch.Tensor, pairs: list[list[tuple[int, int]]]) -> torch.Tensor:
    """Attend-and-Excite's loss, one value per image: drop ``<start>``, renormalise each pixel's
    weights over the real words, and ask every attribute word for a strong peak:
    L = max_w (1 - max_p A_w[p]) over the colour and shape words w."""
    words = maps[:, :, 1:] / maps[:, :, 1:].sum(-1, keepdim=True).clamp_min(1e-8)  # b p L-1
    losses = []
    for i, objects in enumerate(pairs):
        idx = torch.tensor([w - 1 for pair in objects for w in pair])
        peaks = words[i][:, idx].max(0).values  # the strongest pixel of each attribute word
        losses.append((1 - peaks).max())
    return torch.stack(losses)


LOSSES = {"bind": bind_loss, "excite": excite_loss}


@dataclass
class AttentionGuidance:
    """Sampling-time attention guidance: before each of the first ``guided_steps`` DDIM steps,
    ``iterations`` gradient steps z_t <- z_t - scale * g / rms(g) with g = dL/dz_t, L one of
    ``LOSSES`` on the cross-attention maps at ``resolution`` x ``resolution``. The gradient is
    rescaled to unit root-mean-square so ``scale`` is a step in units of z_T's standard deviation
    (Attend-and-Excite uses a raw step size instead; our losses are on another scale)."""

    loss: str = "bind"  # "bind" or "excite"
    scale: float = 0.1
    guided_steps: int = 10  # of the S DDIM steps, the first (noisiest) ones, where the layout forms
    iterations: int = 1
    resolution: int = 4  # our UNet attends at 4x4 and 2x2; 4x4 is the finest

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {tuple(LOSSES)}, got {self.loss!r}")
        if self.scale < 0 or self.guided_steps < 0 or self.iterations < 1:
            raise ValueError("need scale >= 0, guided_steps >= 0 and iterations >= 1")


def guidance_step(unet, z_t: torch.Tensor, t: torch.Tensor, context: torch.Tensor, mask: torch.Tensor, pairs, config: AttentionGuidance) -> tuple[torch.Tensor, torch.Tensor]:
    """One gradient step on z_t (b c h w) against the attention loss. Returns (new z_t, loss (b,))
    with the loss measured before the step."""
    z = z_t.detach().requires_grad_(True)
    with torch.enable_grad(), capture_attention(unet, config.resolution) as found:
        unet(z, t, context, context_mask=mask)
        if not found:
            raise ValueError(f"the UNet has no cross-attention at {config.resolution}x{config.resolution}; pick a resolution it attends at")
        loss = LOSSES[config.loss](torch.stack(found).mean(0), pairs)  # mean over the layers
        (grad,) = torch.autograd.grad(loss.sum(), z)
    rms = grad.flatten(1).pow(2).mean(1).sqrt().clamp_min(1e-12)[:, None, None, None]
    return (z - config.scale * grad / rms).detach(), loss.detach()


@torch.no_grad()
def guided_sample_latents(ldm: LatentDiffusion, captions: list[str], config: AttentionGuidance | None = None, steps: int = 50, guidance: float = 3.0, seed: int = 0, trace: list | None = None) -> torch.Tensor:
    """DDIM (eta = 0) with classifier-free guidance, exactly as ``ldm.sample_latents`` (same seeded
    z_T), plus attention guidance on z_t in the first steps. ``config=None`` or ``scale=0`` gives
    the unguided sampler's result. ``trace`` (a list) receives the mean loss at each guided step."""
    _check_sampling_args(captions, steps, guidance, 0.0, ldm.config.T, "ddim")
    if ldm.config.text.pooled and config is not None and config.scale > 0:
        raise ValueError("attention guidance needs per-token context: a pooled text encoder gives the UNet one token, nothing to separate")
    pairs = [object_token_indices(ldm.tokenizer, c) for c in captions] if config is not None else None
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn((len(captions), *ldm.latent_shape), generator=generator).to(ldm.device)  # as sample_latents
    eps_model = ldm.guided_model(list(captions), guidance)
    context, mask = ldm.context(ldm.tokens(captions))
    timesteps = ddim_timesteps(ldm.config.T, steps)
    alphas, alphas_prev, sigmas = ddim_sigmas(ldm.schedule, timesteps, 0.0)
    for i, k in enumerate(reversed(range(len(timesteps)))):
        t = torch.full((z.shape[0],), int(timesteps[k]), dtype=torch.long, device=z.device)
        if config is not None and config.scale > 0 and i < config.guided_steps:
            for _ in range(config.iterations):
                z, loss = guidance_step(ldm.unet, z, t, context, mask, pairs, config)
                if trace is not None:
                    trace.append(loss.mean().item())
        z, _ = ddim_step(z, eps_model(z, t), alphas[k], alphas_prev[k], sigmas[k], None)
    return z


def generate(ldm: LatentDiffusion, captions: list[str], config: AttentionGuidance | None = None, steps: int = 50, guidance: float = 3.0, seed: int = 0, batch_size: int = 100) -> torch.Tensor:
    """Images (b 3 H W in [0, 1]) for the captions, with optional attention guidance; batches of
    ``batch_size`` captions get seeds seed, seed + batch_size, ... (as ``pretrained.evaluate_ldm``)."""
    ldm.eval()
    out = []
    for i in range(0, len(captions), batch_size):
        z0 = guided_sample_latents(ldm, captions[i : i + batch_size], config, steps, guidance, seed + i)
        out.append(((ldm.decode(z0) + 1) / 2).clamp(0, 1).cpu())
    return torch.cat(out)


# ---------------------------------------------------------------- reading attention where colours leak


def colour_mask(image: torch.Tensor, colour: str, tol: float = 70.0) -> torch.Tensor:
    """H W bool: the pixels of ``image`` (3 H W in [0, 1]) within ``tol`` (of 255) of a named colour."""
    rgb = torch.tensor(COLOURS[colour], dtype=torch.float32)[:, None, None]
    return (image * 255 - rgb).norm(dim=0) < tol


@torch.no_grad()
def sample_with_attention(ldm: LatentDiffusion, captions: list[str], steps: int = 50, guidance: float = 3.0, seed: int = 0) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """Generate one image per caption (as ``ldm.generate``) and keep its cross-attention maps,
    averaged over heads, over the layers of each resolution and over the DDIM steps, upsampled
    (bilinear) to the image. Returns (images b 3 H W in [0, 1], {resolution: maps b L H W})."""
    import torch.nn.functional as F

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
    images = ((ldm.decode(z0) + 1) / 2).clamp(0, 1).cpu()
    H = images.shape[-1]
    maps = {r: F.interpolate(rearrange(sums[r] / counts[r], "b h w l -> b l h w"), size=(H, H), mode="bilinear", align_corners=False).cpu() for r in sorted(sums, reverse=True)}
    return images, maps


def attention_on_objects(image: torch.Tensor, word_maps: torch.Tensor, caption: str, seen: dict[str, str], tokenizer) -> list[dict] | None:
    """Where each attribute word of a two-object caption was read, in an image whose objects the
    classifier ``seen`` as two objects in the caption's two colours. word_maps: (L, H, W) attention
    per token, upsampled to the image. For each word: its mean map value on the pixels of the drawn
    object that carries the word ("own": the object with that colour for a colour word, with that
    shape for a shape word) and on the other object. None if the image does not show both colours
    on two objects (then "own" is undefined)."""
    got = _objects(seen)
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
            rows.append({"word": word, "kind": kind, "own": m[masks[own_colour]].mean().item(), "other": m[masks[other_colour]].mean().item()})
    return rows


# ---------------------------------------------------------------- the experiment


REMEDY_SCALES = (0.01, 0.03, 0.1, 0.3)  # step sizes tried for each loss, on validation captions
N_TUNE = 96  # validation captions for choosing the step size (the test captions are not looked at)


def measure(ldm: LatentDiffusion, captions: list[str], classifier, config: AttentionGuidance | None = None, steps: int = 50, guidance: float = 3.0, seed: int = 0) -> tuple[dict, torch.Tensor]:
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


def tune_remedies(ldm: LatentDiffusion, classifier, steps: int = 50, seed: int = 0, n: int = N_TUNE, scales=REMEDY_SCALES) -> tuple[dict[str, AttentionGuidance], dict]:
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


def save_grid(rows: dict[str, torch.Tensor], path: Path, scale: int = 2) -> Path:
    """One row of images per model (each b 3 h w in [0, 1]) as one small PNG."""
    import numpy as np
    from PIL import Image

    grid = rearrange(torch.stack(list(rows.values())), "r b c h w -> (r h) (b w) c")
    grid = (grid * 255).round().to(torch.uint8).numpy().astype(np.uint8)
    image = Image.fromarray(grid)
    image.resize((image.width * scale, image.height * scale), Image.NEAREST).save(path)
    return path


def run(profile: Profile, out_dir: Path = RESULTS_DIR, n: int | None = None, work_dir: Path = WORK_DIR, seed: int = 0, progress: bool = True) -> dict:
    """The whole lesson-10 experiment; writes ``binding.json`` and ``binding-samples.png``."""
    from ..pretrained import CLASSIFIER, load_pretrained

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
    save_grid(grid, out_dir / SAMPLE_GRID)
    results = {
        "captions": {"split": "test", "n": len(captions), "n_and": sum(" and " in c for c in captions), "grid": captions[:GRID_CAPTIONS]},
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
