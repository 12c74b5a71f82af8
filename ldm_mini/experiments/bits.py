"""Lesson 08's experiment: where the bits go (the paper's Figure 2) for the shipped pixel model.

The bound and its terms are computed in ``eval/bound.py`` (where the formulas are explained);
this module runs them on ``shapes-pixel``, finds where the distortion has made most of its fall
(``split_point``), and writes ``data/experiments/bits.json``.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ..data import images_uint8, load_shapes, to_model_range
from ..eval.bound import discretized_gaussian_nll, evaluate_bound, nats_to_bits_per_dim, unconditional_eps
from ..eval.judge import scene_check
from ..eval.measures import wilson_interval
from ..zoo import JUDGE, load_pretrained
from . import RESULTS_DIR, save_results

NAME = "bits"
MODEL = "shapes-pixel"


def split_point(t, rate, distortion, total_bits: float, fraction: float = 0.9) -> dict:
    """Where semantic compression ends and perceptual compression begins, by a stated rule.

    Rule: walking the reverse process from t = T down, the split is the first step at which the
    distortion has made ``fraction`` (90%) of its whole fall, D(t) <= D_end + (1 - fraction)
    (D_start - D_end), with D_start at the noisiest step and D_end at the last step (t = 0).
    Above it (high t) is the semantic region: distortion falls a lot for few bits. Below it is
    the perceptual region: the remaining 10% of the fall, and every bit spent there.

    Returns the split's t, rate and distortion, and the bits/dim (and share of the total) spent
    in each region. The decoder's L_0 counts as perceptual.
    """
    t, rate, distortion = (torch.as_tensor(v, dtype=torch.float64) for v in (t, rate, distortion))
    if not (t.shape == rate.shape == distortion.shape) or t.ndim != 1 or len(t) < 2:
        raise ValueError("t, rate and distortion must be 1-D of one length >= 2, ascending in t")
    if not 0 < fraction < 1:
        raise ValueError(f"fraction={fraction} must lie in (0, 1), e.g. 0.9")
    d_start, d_end = distortion[-1].item(), distortion[0].item()
    threshold = d_end + (1 - fraction) * (d_start - d_end)
    below = (distortion <= threshold).nonzero().flatten()
    k = int(below.max())  # the noisiest step already under the threshold: the first one reached going down
    semantic = rate[k].item()
    return {
        "rule": f"first t (going from T down) with distortion <= D_end + {1 - fraction:.2f} (D_start - D_end)",
        "fraction": fraction,
        "t": int(t[k]),
        "index": k,
        "rate": semantic,
        "distortion": distortion[k].item(),
        "threshold": threshold,
        "semantic_bits": semantic,
        "perceptual_bits": total_bits - semantic,
        "perceptual_share": (total_bits - semantic) / total_bits,
    }


def curves(result: dict) -> dict:
    """The JSON-able part of ``evaluate_bound``'s result (no images)."""
    return {
        k: (v.tolist() if isinstance(v, torch.Tensor) else v)
        for k, v in result.items()
        if k not in ("x0", "x_t", "x0_hat")
    }


def decoder_floor_bits(x0: torch.Tensor, beta_1: float) -> float:
    """L_0 that even a perfect model pays, in bits/dim: its x0_hat is x_0 itself, and the decoder still
    spreads N(x_0, beta_1) over the grey-level bins, so each pixel's own bin holds only part of it."""
    log_scale = 0.5 * torch.log(torch.tensor(beta_1, dtype=torch.float64))
    nats = discretized_gaussian_nll(x0.double(), x0.double(), log_scale).flatten(1).sum(1)  # n
    return nats_to_bits_per_dim(nats, x0[0].numel()).mean().item()


def sample_scenes(ldm, n: int, steps: int, seed: int = 0) -> dict:
    """Does the unconditional model draw scenes of the dataset? ``eval.judge.scene_check`` on n samples
    (DDIM with ``steps``, no guidance): the share valid with its Wilson interval, and each failure's share."""
    samples = torch.cat(
        [ldm.generate([""] * min(100, n - i), steps=steps, guidance=1.0, seed=seed + i) for i in range(0, n, 100)]
    )
    check = scene_check(samples, load_pretrained(JUDGE))
    k = round(check["valid"] * n)
    return {
        "n": n,
        "valid": check["valid"],
        "valid_ci": list(wilson_interval(k, n)),
        "failing": check["failing"],
        "steps": steps,
    }


# ---------------------------------------------------------------- the experiment


def run(
    profile, out_dir: Path = RESULTS_DIR, n_images: int | None = None, steps: int | None = None, seed: int = 0
) -> dict:
    """Rate and distortion of the shipped pixel model on held-out test images; writes bits.json.

    Quick profile: 256 test images, S = 100 respaced steps. Full: 1000 images, S = 1000 (the
    training process itself). Also saves the rate-distortion figure as bits.png.
    """

    n_images = n_images or profile.cap_samples(256 if profile.name == "quick" else 1000)
    steps = steps or profile.cap_steps(100 if profile.name == "quick" else 1000)
    torch.manual_seed(seed)
    start = time.perf_counter()
    ldm = load_pretrained(MODEL)
    x0 = to_model_range(images_uint8(load_shapes(n_images, "test", seed=seed)))
    result = evaluate_bound(unconditional_eps(ldm), x0, ldm.schedule, steps=steps, seed=seed)
    split = split_point(result["t"], result["rate"], result["distortion"], result["total_bits"])
    # How loose is the respaced bound? The same images' bound with all T steps, on a subset.
    subset = x0[: profile.cap_samples(32)]
    fine = profile.cap_steps(ldm.config.T)  # all T steps (fewer in a miniature run)
    eps = unconditional_eps(ldm)
    respacing = {
        "n_images": len(subset),
        f"S={steps}": evaluate_bound(eps, subset, ldm.schedule, steps=steps, seed=seed)["total_bits"],
        f"S={fine}": evaluate_bound(eps, subset, ldm.schedule, steps=fine, seed=seed)["total_bits"],
    }
    scenes = sample_scenes(ldm, profile.cap_samples(200), profile.sample_steps, seed)
    seconds = time.perf_counter() - start
    results = {
        "model": MODEL,
        "schedule": {
            "kind": ldm.config.schedule,
            "T": ldm.config.T,
            "beta_start": ldm.config.beta_start,
            "beta_end": ldm.config.beta_end,
            "beta_1": ldm.schedule.betas[0].item(),
            "parameterization": ldm.config.parameterization,
        },
        **curves(result),
        "split": split,
        "decoder_floor_bits": decoder_floor_bits(x0, ldm.schedule.betas[0].item()),
        "respacing": respacing,
        "samples": scenes,
        "seconds_per_image": seconds / n_images,
    }
    out_dir = Path(out_dir)
    save_results(NAME, results, out_dir, seconds)
    fig = plot_rate_distortion(results)
    fig.savefig(out_dir / f"{NAME}.png", dpi=80)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return results


def plot_rate_distortion(results: dict, ax=None, log_rate: bool = False):
    """Distortion (RMSE, 0..255) against rate (bits/dim), the two regions shaded; returns the figure.

    ``log_rate``: the rate on a log axis, from L_T up. On the paper's linear axis the semantic
    region (0.017 of 2.18 bits/dim for the shipped model) is a sliver at the left edge; the log axis shows the
    curve's shape there (and stretches that region's look: read its share from the numbers)."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(5.2, 3.6))
    else:
        fig = ax.figure
    rate, distortion, split = results["rate"], results["distortion"], results["split"]
    total = results["total_bits"]
    start = min(rate) * 0.7 if log_rate else 0.0  # a log axis cannot start at 0: start just left of L_T
    ax.axvspan(start, split["rate"], color="tab:orange", alpha=0.15, label="semantic compression")
    ax.axvspan(split["rate"], total, color="tab:blue", alpha=0.12, label="perceptual compression")
    ax.plot(rate, distortion, color="black", lw=1.5)
    # the decoder step: x_0 received exactly
    ax.plot([rate[0], total], [distortion[0], 0.0], color="black", lw=1.0, ls=":")
    ax.plot([split["rate"]], [split["distortion"]], "o", color="tab:red")
    ax.annotate(
        f"t = {split['t']}", (split["rate"], split["distortion"]), textcoords="offset points", xytext=(8, 8), fontsize=8
    )
    ax.set_xlabel("rate (bits/dim spent so far" + (", log)" if log_rate else ")"))
    ax.set_ylabel("distortion (RMSE, 0..255)")
    if log_rate:
        ax.set_xscale("log")
        ax.set_xlim(start, total * 1.5)
    else:
        ax.set_xlim(0, total * 1.02)
    ax.set_ylim(0, None)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
