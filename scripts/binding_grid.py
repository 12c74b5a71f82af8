"""A grid of two-object samples from one checkpoint of scripts/explore_binding.py, each framed by
the judge's verdict (green: bound right, red: swapped, grey: something missing or extra).

    .venv/bin/python scripts/binding_grid.py --name baseline --step 3000 --out /work/notes/binding_best_grid.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from explore_binding import WORK, recipe_configs
from PIL import Image

from ldm_mini import checkpoints as ck
from ldm_mini.autoencoder import Autoencoder
from ldm_mini.eval.judge import judge_flags
from ldm_mini.eval.models import headline_captions
from ldm_mini.eval.prompts import classify_images
from ldm_mini.ldm import LatentDiffusion
from ldm_mini.zoo import JUDGE, LDM_MAIN, ae_name, load_pretrained

FRAME = {"binding": (40, 170, 60), "swapped": (220, 40, 40), "other": (150, 150, 150)}


def load_run(run_dir: Path, step: int) -> LatentDiffusion:
    """The EMA weights that explore_binding.py sampled at ``step`` (ema-STEP.pt), on ae-kl-f4."""
    levers = argparse.Namespace(**json.loads((run_dir / "levers.json").read_text()))
    path, _ = ck.verified_path(ae_name("kl", 4))
    ae = ck.load_model(Autoencoder, path)
    config, _ = recipe_configs(levers, ae)
    ldm = LatentDiffusion(config)
    state = torch.load(run_dir / f"ema-{step}.pt")
    state.update({f"autoencoder.{k}": v for k, v in ae.state_dict().items()})
    ldm.load_state_dict(state)
    return ldm


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True, help="a run of explore_binding.py, or 'shipped' for shapes-kl-f4")
    p.add_argument("--step", type=int, default=0, help="which ema-STEP.pt of the run")
    p.add_argument("--n", type=int, default=48, help="captions: the first n of the headline's two-object set")
    p.add_argument("--cols", type=int, default=8)
    p.add_argument("--sample-steps", type=int, default=50)
    p.add_argument("--work", type=Path, default=WORK)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    torch.set_num_threads(1)  # see explore_binding.py: one thread on shared cores
    ldm = load_pretrained(LDM_MAIN) if args.name == "shipped" else load_run(args.work / args.name, args.step)
    captions = headline_captions(args.n)["two"]
    images = ldm.eval().generate(captions, steps=args.sample_steps, guidance=3.0, seed=20_000)
    tiles, counts = [], {k: 0 for k in FRAME}
    for caption, x, seen in zip(captions, images, classify_images(images, load_pretrained(JUDGE))):
        s = judge_flags(caption, seen)
        verdict = "binding" if s["binding"] else "swapped" if s["swapped"] else "other"
        counts[verdict] += 1
        tile = Image.fromarray((x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).resize(
            (96, 96), Image.NEAREST
        )
        framed = Image.new("RGB", (104, 104), FRAME[verdict])
        framed.paste(tile, (4, 4))
        tiles.append(framed)
    rows = -(-len(tiles) // args.cols)
    grid = Image.new("RGB", (args.cols * 104, rows * 104), (255, 255, 255))
    for i, tile in enumerate(tiles):
        grid.paste(tile, ((i % args.cols) * 104, (i // args.cols) * 104))
    grid.save(args.out)
    print(f"{args.name} step {args.step}, DDIM-{args.sample_steps}: {counts} of {len(tiles)}; captions row by row:")
    for r in range(rows):
        print(" | ".join(captions[r * args.cols : (r + 1) * args.cols]))


if __name__ == "__main__":
    main()
