"""Run by tests/test_distributed.py under torchrun: a tiny pixel-space LDM trained a few steps with train_diffusion.

Each rank writes its final weights and its loss history to OUT/rank{R}.pt; checkpoints go to
OUT/ckpt-rank{R}/ so the test can see which ranks wrote one.
"""

import sys
from pathlib import Path

import torch
from tiny import tiny_text, tiny_unet

from ldm_mini import distributed
from ldm_mini.ldm import LatentDiffusion, LDMConfig
from ldm_mini.train import TrainConfig, train_diffusion


def main(out: Path) -> None:
    distributed.setup()
    r = distributed.rank()
    torch.manual_seed(100 + r)  # different initial weights on purpose: DDP must copy rank 0's to all
    unet = tiny_unet(3, 16)
    ldm = LatentDiffusion(
        LDMConfig(autoencoder=None, unet=unet, text=tiny_text(16), image_size=8)
    )
    g = torch.Generator().manual_seed(0)  # the same data on every rank, as loading a dataset gives
    latents = torch.randn(32, 3, 8, 8, generator=g)
    tokens = ldm.tokenizer(["a red circle", "a blue square", "a green triangle", ""] * 8)
    cfg = TrainConfig(steps=4, batch_size=8, lr=1e-3, warmup=1, log_every=1, save_every=2, progress=False, seed=0)
    ldm, history = train_diffusion(ldm, latents, tokens, cfg, out_dir=out / f"ckpt-rank{r}")
    torch.save({"state": {k: v.clone() for k, v in ldm.state_dict().items()}, "losses": [h["loss"] for h in history],
                "world": distributed.world_size()}, out / f"rank{r}.pt")
    distributed.cleanup()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
