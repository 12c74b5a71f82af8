"""`make bench`: every benchmark, one after another, then the plots and the summary table.

python -m benchmarks.run_all [--only latent_vs_pixel vs_diffusers flops speed_options] [--plots-only]
Results: benchmarks/results/NAME.json, latent_vs_pixel.png, vs_diffusers.png and summary.md.
Run it on an otherwise idle machine: anything else running makes every number slower.
"""

from __future__ import annotations

import argparse
import importlib
import time

from .common import RESULTS, load, save

BENCHMARKS = ("latent_vs_pixel", "vs_diffusers", "flops", "speed_options")


def plots() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = load("latent_vs_pixel")["results"]
    fs = ["f1", "f4", "f8"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    axes[0].bar(fs, [r[f]["train_step_s"] for f in fs], color="tab:blue")
    axes[0].set(yscale="log", ylabel="seconds per step (log)", title=f"training step, batch {r['train_batch']}")
    axes[1].bar(fs, [r[f]["images_per_s"] for f in fs], color="tab:green")
    axes[1].set(yscale="log", ylabel="images / s (log)", title=f"DDIM-{r['ddim_steps']} + guidance + decoder")
    for ax, key in ((axes[0], "train_speedup_vs_f1"), (axes[1], "sample_speedup_vs_f1")):
        ax.set_ylim(top=ax.get_ylim()[1] * 2)  # room for the labels
        for i, f in enumerate(fs[1:], start=1):
            ax.annotate(f"x{r[f][key]:.0f}", (i, ax.patches[i].get_height()), ha="center", va="bottom")
    fig.suptitle("the same UNet in pixel space (f=1) and on f=4, f=8 latents")
    fig.tight_layout()
    fig.savefig(RESULTS / "latent_vs_pixel.png", dpi=90)

    d = load("vs_diffusers")["results"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    names = ["ldm_mini", "diffusers"]
    for ax, key, title in (
        (axes[0], "forward", "forward, batch 64"),
        (axes[1], "forward_backward", "forward + backward, batch 64"),
    ):
        ax.bar(names, [1000 * d["unet"][key][n]["median_s"] for n in names], color=["tab:orange", "tab:gray"])
        ax.set(ylabel="ms", title=title)
    fig.suptitle(f"matched UNets ({d['unet']['params']['ldm_mini']:,} parameters), f = 4 latents")
    fig.tight_layout()
    fig.savefig(RESULTS / "vs_diffusers.png", dpi=90)
    plt.close("all")


def summary() -> str:
    """The README table, every number read from the result files."""
    lp, vd, fl, so = (load(n) for n in BENCHMARKS)
    m = lp["machine"]
    r = lp["results"]
    out = [
        f"Measured by `make bench` on {m['cpu']} ({m['cpu_count']} cores, {m['threads']} torch threads), torch "
            f"{m['torch']}, {m['date']}.",
        "",
        "| model | training step (batch 64) | vs f=1 | DDIM-50 + guidance + decoder | vs f=1 | peak memory "
            "train / sample |",
        "|---|---|---|---|---|---|",
    ]
    for f in ("f1", "f4", "f8"):
        x = r[f]
        out.append(
            f"| {f[0]}={f[1:]} ({'x'.join(map(str, r['latent_shapes'][f]))}) | {x['train_step_s']:.3f} s | "
                f"x{x.get('train_speedup_vs_f1', 1):.1f} "
            f"| {x['images_per_s']:.2f} img/s | x{x.get('sample_speedup_vs_f1', 1):.1f} "
            f"| +{x['memory_train']['delta_mb']:.0f} MB / +{x['memory_sample']['delta_mb']:.0f} MB |"
        )
    big = [k for k in r["f4"] if k.startswith("images_per_s_b")][0]
    fr = fl["results"]
    out += [
        "",
        f"DDIM-50 sampling at batch {big.rsplit('b', 1)[1]} (latents use the cores better in bigger batches): "
        f"f=4 {r['f4'][big]:.2f} img/s, f=8 {r['f8'][big]:.2f} img/s, i.e. "
            f"x{r['f4'][big] / r['f1']['images_per_s']:.1f} and "
        f"x{r['f8'][big] / r['f1']['images_per_s']:.1f} the f=1 rate at batch {r['sample_batch']}. "
        f"FLOPs per sampled image (torch.utils.flop_counter): f=1 "
            f"{fr['sample_flops_per_image']['f1'] / 1e9:.0f} GFLOP, "
        f"f=4 {fr['sample_flops_per_image']['f4'] / 1e9:.1f}, f=8 {fr['sample_flops_per_image']['f8'] / 1e9:.1f}: "
        f"at equal efficiency f=4 could be at most x{fr['sample_flops_ratio_f1_over_f4']:.1f} faster, f=8 "
            f"x{fr['sample_flops_ratio_f1_over_f8']:.1f}.",
    ]
    u, dd = vd["results"]["unet"], vd["results"]["ddim"]
    ms = lambda k, n: 1000 * u[k][n]["median_s"]  # noqa: E731
    out += [
        "",
        f"ldm_mini vs diffusers {vd['results']['diffusers']} (matched UNet, {u['params']['ldm_mini']:,} vs "
            f"{u['params']['diffusers']:,} parameters, f=4 latents, batch 64):",
        "",
        "| | ldm_mini | diffusers | ratio |",
        "|---|---|---|---|",
        f"| UNet forward | {ms('forward', 'ldm_mini'):.0f} ms | {ms('forward', 'diffusers'):.0f} ms | "
            f"{u['forward_ratio']:.2f} |",
        f"| UNet forward + backward | {ms('forward_backward', 'ldm_mini'):.0f} ms | "
            f"{ms('forward_backward', 'diffusers'):.0f} ms | {u['forward_backward_ratio']:.2f} |",
        f"| DDIM-50 loop overhead (trivial model) | {dd['overhead_per_step_ms']['ldm_mini']:.3f} ms/step | "
            f"{dd['overhead_per_step_ms']['diffusers']:.3f} ms/step | {dd['overhead_ratio']:.2f} |",
        "",
        f"The two DDIM loops agree: max |difference| {dd['max_abs_diff_same_alpha_bar']:.1e} with the same alpha_bar, "
        f"{dd['max_abs_diff_own_schedules']:.1e} ({dd['max_rel_diff_own_schedules']:.1e} relative) with each "
            f"library's own schedule (diffusers' betas are float32, ours float64).",
    ]
    f4 = fl["results"]["train"]["f4"]
    peak = fl["results"]["matmul"]["peak_flops_per_s"]
    cats = fl["results"]["profile_train_f4"]["categories"]
    out += [
        "",
        f"Machine limit: fp32 matmul peak {peak / 1e9:.0f} GFLOP/s; a training step at f=4 does "
            f"{f4['flops_per_step'] / 1e9:.1f} GFLOP "
        f"in {f4['step_s']:.3f} s = {f4['achieved_flops_per_s'] / 1e9:.1f} GFLOP/s = "
            f"{100 * f4['fraction_of_matmul_peak']:.0f}% of the peak "
        f"(f=1: {100 * fl['results']['train']['f1']['fraction_of_matmul_peak']:.0f}%, f=8: "
            f"{100 * fl['results']['train']['f8']['fraction_of_matmul_peak']:.0f}%). Training time by op "
                f"(torch.profiler, f=4): "
        + "; ".join(f"{k} {100 * v['share']:.0f}%" for k, v in cats.items())
        + ".",
    ]
    sp = so["results"]["speedup"]
    out += [
        "",
        "Speed options at f=4 (speed-up over the default): " + ", ".join(f"{k} x{v:.2f}" for k, v in sp.items()) + ".",
    ]
    return "\n".join(out) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", choices=BENCHMARKS, default=None)
    p.add_argument("--plots-only", action="store_true", help="redraw plots and summary from the saved results")
    args = p.parse_args(argv)
    if not args.plots_only:
        for name in args.only or BENCHMARKS:
            module = importlib.import_module(f".{name}", __package__)
            start = time.perf_counter()
            print(f"== {name}", flush=True)
            r = module.run()
            save(name, r, time.perf_counter() - start)
            print(module.report(r), flush=True)
    plots()
    text = summary()
    (RESULTS / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
