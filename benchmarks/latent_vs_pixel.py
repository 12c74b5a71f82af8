"""The paper's claim, measured: the same UNet in pixel space (f = 1) and on f = 4 and f = 8 latents.

The UNet is the shipped text-to-image recipe (zoo.ldm_recipe: 64 channels, mult (1, 2, 2),
attention at levels 1, 2 and the middle); only its input changes:
    f = 1: 32 x 32 x 3 pixels     f = 4: 8 x 8 x 4 latents     f = 8: 4 x 4 x 4 latents
Measured, all sides in one process and interleaved:
- training step time at batch 64 (loss, backward, clipping, AdamW, EMA: the step of train.train_diffusion);
- DDIM-50 sampling with guidance 3 (one batched [uncond; cond] call per step), decoder included,
  as images per second (ldm.generate, which is what a user calls);
- peak memory (resident set size) of a training step and of sampling, each in a fresh process.
Weights are random (speed does not depend on them); the autoencoders are the shipped ones.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

from ldm_mini.config import QUICK, seed_everything
from ldm_mini.ldm import LatentDiffusion
from ldm_mini.train import EMA
from ldm_mini.zoo import PROGRESS_CAPTIONS, ae_name, ldm_recipe, load_pretrained

from .common import compare, save

FACTORS = (1, 4, 8)
TRAIN_BATCH = 64
BIG_SAMPLE_BATCH = 64
SAMPLE_BATCH = 16  # images per generate() call (32 UNet inputs with guidance); small so that f = 1 fits the time budget
STEPS = 50
GUIDANCE = 3.0


def build(f: int) -> LatentDiffusion:
    """The LDM of the shipped recipe at factor f (f = 1: pixel space, no autoencoder)."""
    ae = None if f == 1 else load_pretrained(ae_name("kl", f))
    config, _ = ldm_recipe(None if ae is None else ae.config, QUICK)
    seed_everything(0)
    ldm = LatentDiffusion(config)
    if ae is not None:
        ldm.autoencoder.load_state_dict(ae.state_dict())
    return ldm


class TrainStep:
    """One optimiser step exactly as train.train_diffusion takes it, on a fixed cache of latents.
    (foreach=False: the per-parameter AdamW that train_diffusion used before; see speed_options.)"""

    def __init__(self, ldm: LatentDiffusion, batch: int = TRAIN_BATCH, seed: int = 0, foreach: bool = True):
        g = torch.Generator().manual_seed(seed)
        self.ldm, self.batch, self.generator = ldm, batch, g
        self.latents = torch.randn((4 * batch, *ldm.latent_shape), generator=g)   # stands in for E(x) * scale
        self.tokens = ldm.tokenizer([PROGRESS_CAPTIONS[i % len(PROGRESS_CAPTIONS)] for i in range(4 * batch)])
        self.trainable = nn.ModuleDict({"unet": ldm.unet, "text_encoder": ldm.text_encoder})
        self.ema = EMA(self.trainable, 0.995)
        self.optimizer = torch.optim.AdamW(self.trainable.parameters(), lr=1e-4, weight_decay=0.0, foreach=foreach)
        ldm.train()

    def __call__(self) -> float:
        index = torch.randint(len(self.latents), (self.batch,), generator=self.generator)
        loss = self.ldm.loss(self.latents[index], self.tokens[index], self.generator)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.trainable.parameters(), 1.0)
        self.optimizer.step()
        self.ema.update(self.trainable)
        return loss.item()


def sampler(ldm: LatentDiffusion, batch: int = SAMPLE_BATCH, steps: int = STEPS):
    captions = [PROGRESS_CAPTIONS[i % len(PROGRESS_CAPTIONS)] for i in range(batch)]
    return lambda: ldm.generate(captions, steps=steps, guidance=GUIDANCE, seed=0)


# ------------------------------------------------------------------ peak memory, one fresh process per case
def _rss_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (the peak) of this process, from /proc (Linux). Unlike getrusage's ru_maxrss,
    VmHWM starts afresh in a new program (ru_maxrss keeps the parent's peak across fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB -> MB
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_child(f: int, what: str) -> dict:
    """Resident memory before, and its peak during, one training step / one sampling run, in this fresh process."""
    ldm = build(f)
    fn = TrainStep(ldm) if what == "train" else sampler(ldm, steps=2)  # the peak of one DDIM step = the peak of 50
    before = _rss_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")   # reset the peak (VmHWM) to the current RSS
    fn()
    peak = _rss_mb("VmHWM")
    return {"before_mb": before, "peak_mb": peak, "delta_mb": peak - before}


def memory(f: int, what: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.latent_vs_pixel", "--memory-child", str(f), what],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ the benchmark
def run(train_repeats: int = 3, sample_repeats: int = 3) -> dict:
    models = {f: build(f) for f in FACTORS}
    results: dict = {
        "train_batch": TRAIN_BATCH,
        "sample_batch": SAMPLE_BATCH,
        "ddim_steps": STEPS,
        "guidance": GUIDANCE,
        "unet_params": models[4].unet.num_params(),
        "text_encoder_params": sum(p.numel() for p in models[4].text_encoder.parameters()),
        "latent_shapes": {f"f{f}": list(m.latent_shape) for f, m in models.items()},
    }

    train = compare({f"f{f}": TrainStep(m) for f, m in models.items()}, repeats=train_repeats)
    for m in models.values():
        m.eval()
    sample = compare({f"f{f}": sampler(m) for f, m in models.items()}, repeats=sample_repeats,
                     warm_fns={f"f{f}": sampler(m, steps=2) for f, m in models.items()})
    # latents pay off more at larger batches (small 8x8 and 4x4 maps use the cores poorly); f = 1 at
    # batch 64 would take ~5 min, and it already runs near the matmul peak (see flops), so only f = 4, 8
    big = compare(
        {f"f{f}": sampler(m, batch=BIG_SAMPLE_BATCH) for f, m in models.items() if f > 1},
        repeats=sample_repeats,
        warm_fns={f"f{f}": sampler(m, batch=BIG_SAMPLE_BATCH, steps=2) for f, m in models.items() if f > 1},
    )
    # the decoder's share of sampling time: D(z) alone on a batch of latents
    decode = {}
    for f, m in models.items():
        z = torch.randn(SAMPLE_BATCH, *m.latent_shape)
        decode[f"f{f}"] = compare({"d": lambda m=m, z=z: m.decode(z)}, repeats=5)["d"]["median_s"]

    for f in FACTORS:
        k = f"f{f}"
        results[k] = {
            "train_step_s": train[k]["median_s"], "train_times_s": train[k]["times_s"],
            "sample_s": sample[k]["median_s"], "sample_times_s": sample[k]["times_s"],
            "images_per_s": SAMPLE_BATCH / sample[k]["median_s"],
            "decoder_s": decode[k], "decoder_share": decode[k] / sample[k]["median_s"],
            "memory_train": memory(f, "train"), "memory_sample": memory(f, "sample"),
        }
        if k in big:
            results[k][f"images_per_s_b{BIG_SAMPLE_BATCH}"] = BIG_SAMPLE_BATCH / big[k]["median_s"]
    for f in FACTORS[1:]:
        k = f"f{f}"
        results[k]["train_speedup_vs_f1"] = results["f1"]["train_step_s"] / results[k]["train_step_s"]
        results[k]["sample_speedup_vs_f1"] = results[k]["images_per_s"] / results["f1"]["images_per_s"]
        results[k][f"sample_speedup_b{BIG_SAMPLE_BATCH}_vs_f1_b{SAMPLE_BATCH}"] = (
            results[k][f"images_per_s_b{BIG_SAMPLE_BATCH}"] / results["f1"]["images_per_s"]
        )
    results["targets"] = {"f4_sample_speedup_ge_15": results["f4"]["sample_speedup_vs_f1"] >= 15,
                          "f4_train_speedup_ge_10": results["f4"]["train_speedup_vs_f1"] >= 10,
                          "f8_faster_than_f4": results["f8"]["images_per_s"] > results["f4"]["images_per_s"]
                          and results["f8"]["train_step_s"] < results["f4"]["train_step_s"]}
    return results


def report(r: dict) -> str:
    lines = [
        f"{'':4} {'train step (b=64)':>18} {'x vs f1':>8} {'DDIM-50 img/s':>14} {'x vs f1':>8} {'decoder':>8} "
            f"{'peak MB train/sample':>21}"
    ]
    for f in FACTORS:
        x = r[f"f{f}"]
        lines.append(
            f"f={f:<2} {x['train_step_s']:>16.3f} s {x.get('train_speedup_vs_f1', 1.0):>8.1f} "
                f"{x['images_per_s']:>14.2f} "
            f"{x.get('sample_speedup_vs_f1', 1.0):>8.1f} {100 * x['decoder_share']:>7.1f}% "
            f"{x['memory_train']['delta_mb']:>10.0f} / {x['memory_sample']['delta_mb']:.0f}"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--memory-child", nargs=2, metavar=("F", "WHAT"), help=argparse.SUPPRESS)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--memory-only", action="store_true", help="re-measure only the peak memory, into the saved results")
    args = p.parse_args(argv)
    if args.memory_child:
        print(json.dumps(memory_child(int(args.memory_child[0]), args.memory_child[1])))
        return
    if args.memory_only:
        from .common import load
        record = load("latent_vs_pixel")
        r = record["results"]
        for f in FACTORS:
            r[f"f{f}"]["memory_train"], r[f"f{f}"]["memory_sample"] = memory(f, "train"), memory(f, "sample")
        save("latent_vs_pixel", r, record["seconds"])
        print(report(r))
        return
    start = time.perf_counter()
    r = run(args.repeats, args.repeats)
    save("latent_vs_pixel", r, time.perf_counter() - start)
    print(report(r))


if __name__ == "__main__":
    main()
