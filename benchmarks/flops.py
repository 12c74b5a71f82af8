"""The machine's limit: how much of this CPU's fp32 matmul speed does a training step use, and where the rest goes.

- Peak: the best median FLOP/s of a square fp32 matmul (2 n^3 FLOPs) over a few sizes, measured here.
- Work: the FLOPs of one training step (forward + backward of tau_theta and the UNet), counted by
  torch.utils.flop_counter (it counts matmuls, convolutions and attention; elementwise ops, norms and
  the optimiser are free in its eyes, which is exactly why they show up as "lost" time).
- Achieved: FLOPs / median step time, as a fraction of the peak.
- Where the time goes: torch.profiler over a few training steps and a short sampling run, the ops
  grouped into matmul/conv/attention (the counted work) and the rest.
"""

from __future__ import annotations

import time

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from .common import compare, save
from .latent_vs_pixel import TrainStep, build, sampler

# ops whose work FlopCounterMode counts (forward and backward kernels as the CPU profiler names them)
COMPUTE = (
    "mm",
    "addmm",
    "bmm",
    "baddbmm",
    "matmul",
    "linear",
    "conv",
    "convolution",
    "scaled_dot_product",
    "flash_attention",
)
NORM = ("norm",)
OPTIM = ("_foreach", "adam", "lerp", "clip")


def matmul_peak(sizes=(512, 1024, 2048), repeats: int = 5) -> dict:
    out = {}
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        t = compare({"mm": lambda: torch.mm(a, b)}, repeats=repeats)["mm"]["median_s"]
        out[str(n)] = 2 * n**3 / t
    return {"flops_per_s_by_size": out, "peak_flops_per_s": max(out.values())}


def count_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def category(name: str) -> str:
    n = name.lower()
    if any(k in n for k in OPTIM):
        return "optimizer + EMA + clipping"
    if any(k in n for k in NORM):
        return "GroupNorm / LayerNorm"
    if any(k in n for k in COMPUTE):
        return "matmul / conv / attention (counted FLOPs)"
    if n.startswith("aten::") and any(
        k in n
        for k in (
            "add",
            "mul",
            "sub",
            "div",
            "silu",
            "gelu",
            "softmax",
            "cat",
            "copy",
            "fill",
            "zero",
            "where",
            "pow",
            "sqrt",
            "neg",
            "mse",
            "sum",
            "mean",
            "exp",
            "cos",
            "sin",
        )
    ):
        return "elementwise / copies / reductions"
    return "other (python, autograd glue, allocation)"


def profile_table(fn, steps: int, top: int = 15) -> dict:
    """Self CPU time per op over `steps` calls of fn, the top ops and the totals per category."""
    fn()  # warm-up outside the profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            fn()
        wall = time.perf_counter() - start
    events = [(e.key, e.self_cpu_time_total / 1e6, e.count) for e in prof.key_averages()]
    total = sum(s for _, s, _ in events)
    events.sort(key=lambda e: -e[1])
    cats: dict[str, float] = {}
    for key, s, _ in events:
        cats[category(key)] = cats.get(category(key), 0.0) + s
    return {
        "wall_s_profiled": wall,
        "self_cpu_total_s": total,
        "top_ops": [{"op": k, "self_s": s, "share": s / total, "calls": c} for k, s, c in events[:top]],
        "categories": {k: {"self_s": v, "share": v / total} for k, v in sorted(cats.items(), key=lambda kv: -kv[1])},
    }


def run(repeats: int = 3) -> dict:
    peak = matmul_peak()
    results = {"matmul": peak, "train": {}}
    steps = {}
    for f in (1, 4, 8):
        step = TrainStep(build(f))
        flops = count_flops(step)
        steps[f"f{f}"] = step
        results["train"][f"f{f}"] = {"flops_per_step": flops}
    times = compare(steps, repeats=repeats)
    for k, r in results["train"].items():
        r["step_s"] = times[k]["median_s"]
        r["achieved_flops_per_s"] = r["flops_per_step"] / r["step_s"]
        r["fraction_of_matmul_peak"] = r["achieved_flops_per_s"] / peak["peak_flops_per_s"]
    results["train"]["flops_ratio_f1_over_f4"] = (
        results["train"]["f1"]["flops_per_step"] / results["train"]["f4"]["flops_per_step"]
    )
    # the work of sampling one image (DDIM-50 with guidance: 100 UNet inputs, + tau_theta and the decoder):
    # the speed-up latents could give if every model used the cores equally well
    per_image = {k: count_flops(sampler(s.ldm.eval(), batch=2, steps=50)) / 2 for k, s in steps.items()}
    results["sample_flops_per_image"] = per_image
    results["sample_flops_ratio_f1_over_f4"] = per_image["f1"] / per_image["f4"]
    results["sample_flops_ratio_f1_over_f8"] = per_image["f1"] / per_image["f8"]
    for s in steps.values():
        s.ldm.train()
    results["profile_train_f4"] = profile_table(steps["f4"], steps=3)
    ldm = steps["f4"].ldm.eval()
    results["profile_sample_f4"] = profile_table(sampler(ldm, batch=8, steps=10), steps=2)
    return results


def report(r: dict) -> str:
    lines = [f"fp32 matmul peak: {r['matmul']['peak_flops_per_s'] / 1e9:.1f} GFLOP/s "
             + ", ".join(f"n={n}: {v / 1e9:.1f}" for n, v in r["matmul"]["flops_per_s_by_size"].items())]
    for f in ("f1", "f4", "f8"):
        x = r["train"][f]
        lines.append(
            f"train step {f} (b=64): {x['flops_per_step'] / 1e9:.1f} GFLOP in {x['step_s']:.3f} s = "
            f"{x['achieved_flops_per_s'] / 1e9:.1f} GFLOP/s = {100 * x['fraction_of_matmul_peak']:.0f}% of the "
                f"matmul peak"
        )
    lines.append(
        "DDIM-50 sampling FLOPs per image: "
        + ", ".join(f"{k} {v / 1e9:.1f} GFLOP" for k, v in r["sample_flops_per_image"].items())
        + f"; f1/f4 = {r['sample_flops_ratio_f1_over_f4']:.1f}, f1/f8 = {r['sample_flops_ratio_f1_over_f8']:.1f}"
    )
    for name in ("profile_train_f4", "profile_sample_f4"):
        lines.append(f"{name}: " + "; ".join(f"{k} {100 * v['share']:.0f}%" for k, v in r[name]["categories"].items()))
        lines += [f"   {o['op']:<45} {100 * o['share']:5.1f}%  x{o['calls']}" for o in r[name]["top_ops"][:8]]
    return "\n".join(lines)


def main() -> None:
    start = time.perf_counter()
    r = run()
    save("flops", r, time.perf_counter() - start)
    print(report(r))


if __name__ == "__main__":
    main()
