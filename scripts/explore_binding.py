"""Binding vs training steps for one recipe of the text-to-image LDM (issue 14 exploration).

    nice -n 19 .venv/bin/python scripts/explore_binding.py --name baseline --steps 3000 \
        --eval-at 500 1000 1500 2000 2500 3000

Trains on the shipped ae-kl-f4 latents with the shipped recipe (``pretrained.ldm_recipe``,
``prepare_ldm_training``, ``train.train_diffusion``), changed only by the levers given as arguments.
At each step of ``--eval-at`` the EMA weights are measured as the shipped model is
(``eval.models.headline_metrics``: the headline caption sets, DDIM, guidance 3, fixed seeds, read by
the judge, with the rule-based detector's reading beside it); one JSON line per evaluation goes to
``--out``. The training state lives in ``--work/NAME/``: a killed run resumes from its last
checkpoint (every 250 steps) and skips the evaluations already in ``--out``.

Since issue 14 the recipe starts tau_theta's position embeddings at std 1.0; the runs named
``baseline`` and ``mix-and3`` in data/experiments/binding_levers.json are the recipe before it
(``--pos-init 0.02``).

Note the learning rate decays (cosine) over ``--steps``: step 1800 of a 3000-step run is not
the shipped 1800-step model.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from ldm_mini import checkpoints as ck
from ldm_mini.autoencoder import Autoencoder
from ldm_mini.config import get_profile, seed_everything
from ldm_mini.data import load_shapes
from ldm_mini.eval.models import headline_metrics
from ldm_mini.ldm import LatentDiffusion
from ldm_mini.train import train_diffusion
from ldm_mini.zoo import JUDGE, ae_name, ldm_recipe, load_pretrained, prepare_ldm_training

OUT = Path("/work/notes/binding_explore.jsonl")
WORK = Path("/work/runs_binding")


def recipe_configs(args, ae: Autoencoder):
    """The shipped recipe (pretrained.ldm_recipe) with the levers of ``args`` applied."""
    config, cfg = ldm_recipe(ae.config, get_profile("quick"), seed=args.seed, model_channels=args.model_channels)
    unet = dataclasses.replace(
        config.unet,
        attention_levels=tuple(args.attention_levels),
        context_dim=args.text_dim,
        transformer_depth=args.transformer_depth,
    )
    text = dataclasses.replace(config.text, dim=args.text_dim, n_layers=args.text_layers)
    config = dataclasses.replace(config, unet=unet, text=text, parameterization=args.param)
    cfg = dataclasses.replace(
        cfg, steps=args.steps, batch_size=args.batch, lr=args.lr, ema_decay=args.ema, progress=False
    )
    return config, cfg


def build(args):
    profile = get_profile("quick")
    path, _ = ck.verified_path(ae_name("kl", 4))
    ae = ck.load_model(Autoencoder, path)
    config, cfg = recipe_configs(args, ae)
    cache = args.work / f"latents-{ae_name('kl', 4)}-{ck.sha256(path)[:12]}-seed{args.seed}.pt"
    if cache.exists():  # E(x) of the 20k training images takes minutes on 2 busy cores: once per machine
        seed_everything(args.seed)  # as prepare_ldm_training does, so the weights start the same
        ldm = LatentDiffusion(config)
        ldm.autoencoder.load_state_dict(ae.state_dict())
        latents = torch.load(cache)
        tokens = ldm.tokenizer(load_shapes(profile.n_train, "train", seed=args.seed)["caption"])
    else:
        ldm, latents, tokens = prepare_ldm_training(config, ae, profile, seed=args.seed)
        torch.save(latents, cache)
    if args.two_repeat > 1:  # caption mix: every two-object ("and" + relation) example k times
        train = load_shapes(profile.n_train, "train", seed=args.seed)
        kinds = train["caption_kind"]
        wanted = {"two_and"} if args.two_kind == "and" else {"two_and", "two_relation"}
        two = torch.tensor([i for i, k in enumerate(kinds) if k in wanted])
        index = torch.cat([torch.arange(len(latents))] + [two] * (args.two_repeat - 1))
        latents, tokens = latents[index], tokens[index]
    if args.pos_init is not None:
        # tau_theta's position embeddings start at std 0.02 while the token embeddings are N(0, 1):
        # 30x smaller in the shipped model even after training, so "red" reads the same in either
        # phrase. This lever starts them at std pos_init instead (same seed for every run).
        g = torch.Generator().manual_seed(args.seed)
        ldm.text_encoder.pos_emb.data = torch.randn(ldm.text_encoder.pos_emb.shape, generator=g) * args.pos_init
    return ldm, latents, tokens, config, cfg


@torch.no_grad()
def evaluate(ldm, judge, n: int, steps: int) -> dict:
    """The headline figures (eval.models.headline_metrics: n captions per set, read by the judge), with
    the detector's reading beside them and the two readers' agreement."""
    record, _ = headline_metrics(ldm, judge, n=n, steps=steps, guidance=3.0, seed=0)
    out = {k: round(v, 4) if isinstance(v, float) else [round(x, 4) for x in v] for k, v in record["figures"].items()}
    out["detector"] = {k: round(v, 4) for k, v in record["detector"].items() if not k.endswith("_ci")}
    out["agreement"] = round(record["agreement"]["objects"], 4)
    out["n_per_set"] = n
    return out


def done_steps(name: str, out: Path) -> set[int]:
    if not out.exists():
        return set()
    return {r["step"] for r in map(json.loads, out.read_text().splitlines()) if r.get("name") == name}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--eval-at", type=int, nargs="+", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model-channels", type=int, default=64)
    p.add_argument("--attention-levels", type=int, nargs="+", default=[1, 2])
    p.add_argument("--transformer-depth", type=int, default=1)
    p.add_argument("--text-dim", type=int, default=64)
    p.add_argument("--text-layers", type=int, default=2)
    p.add_argument("--param", choices=("eps", "v"), default="eps")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--ema", type=float, default=0.995)
    p.add_argument("--two-repeat", type=int, default=1, help="caption mix: repeat two-object examples k times")
    p.add_argument(
        "--two-kind", choices=("and", "all"), default="all", help="which two-object examples --two-repeat repeats"
    )
    p.add_argument(
        "--pos-init", type=float, default=None, help="std of the position embeddings at init (recipe: 1.0)"
    )
    p.add_argument("--sample-steps", type=int, default=50, help="DDIM steps of the evaluation")
    p.add_argument("--n-eval", type=int, default=200, help="captions per headline set (eval.models.HEADLINE_SETS)")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--work", type=Path, default=WORK)
    args = p.parse_args()
    if sorted(args.eval_at) != args.eval_at or args.eval_at[-1] > args.steps:
        raise SystemExit("--eval-at must be increasing and <= --steps")
    # ONE thread: on 2 cores shared with other work at nice 19, two threads spin at their barriers while
    # the other is descheduled: 8.0 CPU s/step with 2 threads against 0.74 with 1 (measured, batch 64).
    torch.set_num_threads(1)
    run_dir = args.work / args.name
    run_dir.mkdir(parents=True, exist_ok=True)
    # what shapes the training (a resumed run must not change it); how it is measured may change
    measuring = ("out", "work", "eval_at", "name", "sample_steps", "n_eval", "n_two", "n_single")
    levers = {k: v for k, v in vars(args).items() if k not in measuring and not (k == "pos_init" and v is None)}
    saved = run_dir / "levers.json"
    if saved.exists():
        before = {k: v for k, v in json.loads(saved.read_text()).items() if k not in measuring}
        if before != json.loads(json.dumps(levers)):
            raise SystemExit(f"{run_dir} was started with other levers ({before}); use another --name")
    saved.write_text(json.dumps(levers))
    ldm, latents, tokens, config, cfg = build(args)
    params = sum(q.numel() for q in ldm.unet.parameters()) + sum(q.numel() for q in ldm.text_encoder.parameters())
    judge = load_pretrained(JUDGE)
    finished = done_steps(args.name, args.out)
    for step in args.eval_at:
        # Train up to `step` (resuming the saved state); train_diffusion then loads the EMA weights into
        # ldm for sampling. The next call resumes from the saved training weights, not the EMA.
        ldm, history = train_diffusion(ldm, latents, tokens, cfg, out_dir=run_dir, resume=True, stop_after=step)
        if step in finished:
            continue
        t0 = time.perf_counter()
        scores = evaluate(ldm, judge, args.n_eval, args.sample_steps)
        row = {
            "name": args.name,
            "step": step,
            "train_seconds": history[-1]["seconds"] if history else None,
            "eval_seconds": round(time.perf_counter() - t0, 1),
            "loss": history[-1]["loss"] if history else None,
            "params": params,
            "sampler": f"DDIM-{args.sample_steps}, guidance 3, EMA weights, read by the judge",
            **levers,
            **scores,
        }
        with args.out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(
            json.dumps(
                {
                    k: row[k]
                    for k in (
                        "name",
                        "step",
                        "train_seconds",
                        "eval_seconds",
                        "single",
                        "single_full",
                        "presence",
                        "binding",
                        "binding_ci",
                        "swapped",
                    )
                }
            ),
            flush=True,
        )
        torch.save(
            {k: v for k, v in ldm.state_dict().items() if not k.startswith("autoencoder.")}, run_dir / f"ema-{step}.pt"
        )  # the sampled weights, for grids later


if __name__ == "__main__":
    main()
