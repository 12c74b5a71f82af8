"""Latent vs pixel sampling at an equal, larger batch: f = 1 and f = 4 both at batch 64.

latent_vs_pixel.py compares sampling at batch 16, where the small 8 x 8 maps of f = 4 use the
2 cores poorly, and runs only the latent models at batch 64 (f = 1 takes minutes there). This
script pays those minutes once so that both sides run at the same batch of 64 images
(DDIM-50, guidance 3, decoder included), interleaved, medians of 3.

    python -m benchmarks.equal_batch        # about 5 minutes on 2 CPU cores
"""

import time

from benchmarks.common import compare, save
from benchmarks.latent_vs_pixel import build, sampler

BATCH = 64


def run(repeats: int = 3, factors: tuple[int, ...] = (1, 4), batch: int = BATCH, steps: int = 50) -> dict:
    models = {f: build(f) for f in factors}
    timed = compare({f"f{f}": sampler(m, batch=batch, steps=steps) for f, m in models.items()}, repeats=repeats,
                    warm_fns={f"f{f}": sampler(m, batch=batch, steps=2) for f, m in models.items()})
    results = {"batch": batch, "ddim_steps": steps, "guidance": 3.0}
    for f in factors:
        results[f"f{f}"] = {**timed[f"f{f}"], "images_per_s": batch / timed[f"f{f}"]["median_s"]}
    for f in factors[1:]:
        results[f"f{f}"]["sample_speedup_vs_f1"] = results[f"f{f}"]["images_per_s"] / results["f1"]["images_per_s"]
    return results


def report(r: dict) -> str:
    lines = [f"DDIM-{r['ddim_steps']} sampling with guidance and decoder, batch {r['batch']} for every f:"]
    for key, value in r.items():
        if key.startswith("f"):
            extra = f" (x{value['sample_speedup_vs_f1']:.1f} vs f=1)" if "sample_speedup_vs_f1" in value else ""
            lines.append(
                f"  {key}: {value['images_per_s']:.2f} images/s, median {value['median_s']:.2f} s per call{extra}"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    start = time.perf_counter()
    r = run()
    save("equal_batch", r, time.perf_counter() - start)
    print(report(r))
