"""Where the bits go (the paper's Figure 2, after Ho et al. 2020, Fig. 5): rate against distortion
along the reverse process of a pixel-space diffusion model.

A diffusion model is a likelihood model. Its variational bound on -log p(x_0) is a sum of terms,
one per reverse step (Ho et al. 2020, Eq. 5):

    L = L_T + sum_{t>1} L_{t-1} + L_0
    L_T     = KL( q(x_T | x_0) || N(0, I) )                          the prior term
    L_{t-1} = KL( q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t) )  one reverse step
    L_0     = -log p_theta(x_0 | x_1)                                 the discretised decoder

Read as a *code* (progressive lossy compression, Ho et al. Sec. 4.3): a sender who shares the
model with a receiver sends x_T, then x_{T-1}, ..., and each step costs L_{t-1} nats on average.
After the receiver holds x_t, it has paid the *rate*

    R(t) = L_T + sum_{s >= t} L_s        (in bits/dim: nats / ln 2 / (3 H W))

and its best guess of the image is x0_hat(x_t) = (x_t - sqrt(1 - alpha_bar_t) eps_theta) / sqrt(alpha_bar_t),
whose error is the *distortion* D(t) = RMSE(x_0, x0_hat(x_t)) on the 0..255 scale. Plotting D
against R shows where the bits go: the first few bits (high t) take the distortion from "any
image" down to "this image's content" (semantic compression), and most of the rest (low t) are
spent on detail the eye cannot see (perceptual compression). That is the paper's argument for
letting an autoencoder drop the imperceptible part first.

Conventions: x_0 in [-1, 1] as x = u / 127.5 - 1 for 8-bit u, so one grey level is a bin of width
2/255. p_theta(x_{t-1} | x_t) = N(mu_theta, beta_tilde_t I) with the posterior variance beta_tilde_t
(fixed, not learned) and mu_theta the posterior mean at x0_hat clipped to [-1, 1]; the decoder's
variance is beta_1. The bound is evaluated on a *respaced* S-step sub-process (default S = 100)
of the T = 1000 training steps, as Nichol & Dhariwal (2021) do: alpha_bar at the kept steps is
unchanged, each kept step's beta is 1 - alpha_bar_t / alpha_bar_prev. That is still a valid bound
on -log p for the S-step model; it is looser than the T-step bound, not tighter.

The experiment (``experiments/bits.py``) runs it on the shipped pixel model ``shapes-pixel``
(``python -m ldm_mini pretrained --only shapes-pixel`` trains it) and writes ``data/experiments/bits.json``.
"""

from __future__ import annotations

import math

import torch

from ..diffusion import NoiseSchedule

# ---------------------------------------------------------------- the terms of the bound


def normal_kl(mean1: torch.Tensor, logvar1: torch.Tensor, mean2: torch.Tensor, logvar2: torch.Tensor) -> torch.Tensor:
    """KL( N(mean1, e^logvar1) || N(mean2, e^logvar2) ) per element, in nats:

        0.5 * ( logvar2 - logvar1 + e^(logvar1 - logvar2) + (mean1 - mean2)^2 e^-logvar2 - 1 )

    All arguments broadcast. With equal variances it is (mean1 - mean2)^2 / (2 var): a model
    whose mean matches the posterior's pays nothing for that step.
    """
    logvar1, logvar2 = torch.as_tensor(logvar1, dtype=mean1.dtype), torch.as_tensor(logvar2, dtype=mean1.dtype)
    return 0.5 * (logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2) - 1.0)


def discretized_gaussian_nll(
    x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor, bins: int = 256
) -> torch.Tensor:
    """-log P(x) per element, in nats, where P is N(mean, e^(2 log_scale)) integrated over x's bin.

    x lies on the grid of an 8-bit image mapped to [-1, 1] (bin width 2 / (bins - 1)); the two end
    bins stretch to -inf and +inf, so the probabilities over all bins sum to 1 (Ho et al. Eq. 13).
    """
    if x.shape != mean.shape:
        raise ValueError(f"x {tuple(x.shape)} and mean {tuple(mean.shape)} must have the same shape")
    half = 1.0 / (bins - 1)  # half a bin
    inv_scale = torch.exp(-torch.as_tensor(log_scale, dtype=x.dtype))
    upper = torch.special.ndtr((x - mean + half) * inv_scale)
    lower = torch.special.ndtr((x - mean - half) * inv_scale)
    upper = torch.where(x > 1 - half, torch.ones_like(upper), upper)  # the top bin reaches +inf
    lower = torch.where(x < -1 + half, torch.zeros_like(lower), lower)  # the bottom bin reaches -inf
    return -torch.log((upper - lower).clamp(min=1e-12))


def nats_to_bits_per_dim(nats_per_sample: torch.Tensor, dims: int) -> torch.Tensor:
    """nats per sample -> bits per dimension: / ln 2 / (number of dimensions, 3 H W)."""
    return nats_per_sample / math.log(2) / dims


def respaced(schedule: NoiseSchedule, steps: int) -> tuple[torch.Tensor, NoiseSchedule]:
    """S = ``steps`` of the T training timesteps, evenly spaced from 0 to T - 1 (ascending), and
    the S-step schedule with the same alpha_bar at those steps.

    Its beta_k = 1 - alpha_bar[tau_k] / alpha_bar[tau_{k-1}] (and beta_0 = 1 - alpha_bar[tau_0]),
    so its posterior q(x_{tau_{k-1}} | x_{tau_k}, x_0) is the true one of the coarser process.
    With steps = T it is the training schedule itself.
    """
    T = schedule.T
    if not 2 <= steps <= T:
        raise ValueError(f"steps={steps}: choose between 2 and T={T} reverse steps to evaluate the bound on")
    tau = torch.linspace(0, T - 1, steps, dtype=torch.float64).round().long()  # 0, ..., T - 1
    a = schedule.alphas_cumprod[tau]
    a_prev = torch.cat([torch.ones(1, dtype=torch.float64), a[:-1]])
    return tau, NoiseSchedule(1.0 - a / a_prev)


def prior_kl(x0: torch.Tensor, schedule: NoiseSchedule) -> torch.Tensor:
    """L_T = KL( q(x_T | x_0) || N(0, I) ) summed over each sample's dimensions, nats, shape (b,).

    q(x_T | x_0) = N(sqrt(alpha_bar_T) x_0, (1 - alpha_bar_T) I): tiny once alpha_bar_T ~ 0.
    """
    a = schedule.alphas_cumprod[-1].item()
    kl = normal_kl(math.sqrt(a) * x0.double(), math.log(1 - a), torch.zeros_like(x0, dtype=torch.float64), 0.0)
    return kl.flatten(1).sum(1)


@torch.no_grad()
def step_terms(
    eps_model, x0: torch.Tensor, t: int, k: int, schedule: NoiseSchedule, sub: NoiseSchedule, noise: torch.Tensor
) -> dict:
    """One reverse step of the respaced process, at training timestep t = tau_k.

    x0: images (b 3 H W) in [-1, 1]; eps_model(x_t, t) -> eps. Returns, per sample (shape (b,)):
    ``nats``: L_{k} = KL(q || p_theta) for k >= 1, or the decoder's L_0 = -log p(x_0 | x_{tau_0})
    for k = 0; ``sq_err``: the summed squared error of x0_hat on the 0..255 scale; plus x_t and
    x0_hat (b 3 H W) themselves.
    """
    b = x0.shape[0]
    x0 = x0.double()
    tt = torch.full((b,), t, dtype=torch.long)
    x_t = schedule.q_sample(x0, tt, noise.double())  # x_t ~ q(x_t | x_0), alpha_bar of the training step t
    eps = eps_model(x_t.float(), tt.to(x_t.device)).double()
    x0_hat = schedule.predict_x0_from_eps(x_t, tt, eps).clamp(-1, 1)  # the receiver's best guess of x_0
    kk = torch.full((b,), k, dtype=torch.long)
    if k == 0:  # decoder: N(mu_theta, beta_1) over each grey-level bin; mu_theta = x0_hat at the first step
        mean, _ = sub.posterior_mean_variance(x0_hat, x_t, kk)
        nats = discretized_gaussian_nll(x0, mean, 0.5 * math.log(sub.betas[0].item()))
    else:  # same variance on both sides, so the KL is the squared gap of the means / (2 beta_tilde)
        mean_q, var = sub.posterior_mean_variance(x0, x_t, kk)
        mean_p, _ = sub.posterior_mean_variance(x0_hat, x_t, kk)
        logvar = var.log()
        nats = normal_kl(mean_q, logvar, mean_p, logvar)
    sq_err = ((x0_hat - x0) * 127.5).pow(2).flatten(1).sum(1)
    return {"nats": nats.flatten(1).sum(1), "sq_err": sq_err, "x_t": x_t.float(), "x0_hat": x0_hat.float()}


def bits_spent(prior_bits: float, step_bits: torch.Tensor) -> torch.Tensor:
    """The rate R after reaching each step of the reverse process: R_k = L_T + sum_{j > k} L_j.

    step_bits[k] is the cost of leaving step k (k = 0 is the decoder's L_0), ordered by ascending
    t. The reverse process pays L_T first, then L_{S-1}, ..., so R at the last (noisiest) step is
    L_T alone and R_0 + step_bits[0] is the whole bound.
    """
    step_bits = torch.as_tensor(step_bits, dtype=torch.float64)
    if step_bits.ndim != 1:
        raise ValueError(f"step_bits must be 1-D (one cost per step), got shape {tuple(step_bits.shape)}")
    after = torch.flip(torch.cumsum(torch.flip(step_bits, [0]), 0), [0]) - step_bits  # sum_{j > k} step_bits[j]
    return prior_bits + after


@torch.no_grad()
def evaluate_bound(
    eps_model,
    x0: torch.Tensor,
    schedule: NoiseSchedule,
    steps: int = 100,
    seed: int = 0,
    batch_size: int = 64,
    keep: int = 4,
) -> dict:
    """The variational bound and the rate-distortion curve of ``eps_model`` on images x0 (n 3 H W, [-1, 1]).

    Every term is a one-sample Monte-Carlo estimate: x_t ~ q(x_t | x_0) with fresh noise for each
    step and image (seeded). Returns tensors over the S respaced steps, ascending in t:
    ``t``, ``step_bits`` (bits/dim of L_k, the decoder at k = 0), ``rate`` (bits spent on arriving
    at x_t, see ``bits_spent``), ``distortion`` (RMSE of x0_hat on 0..255), and the scalars
    ``prior_bits``, ``decoder_bits``, ``total_bits`` (the bound, bits/dim). ``x_t`` and ``x0_hat``
    (S keep 3 H W) hold the first ``keep`` images at every step (``x0``: those images), for the
    pictures and the slider.
    """
    if x0.ndim != 4 or x0.shape[1] != 3:
        raise ValueError(f"x0 must be images (n, 3, H, W) in [-1, 1], got shape {tuple(x0.shape)}")
    if float(x0.min()) < -1 or float(x0.max()) > 1:
        raise ValueError("x0 must lie in [-1, 1] (x = u / 127.5 - 1 for 8-bit u)")
    tau, sub = respaced(schedule, steps)
    n, dims = x0.shape[0], x0[0].numel()
    generator = torch.Generator().manual_seed(seed)
    nats = torch.zeros(steps, dtype=torch.float64)
    sq_err = torch.zeros(steps, dtype=torch.float64)
    kept_x_t, kept_x0_hat = [], []
    for k in range(steps):  # each step sees every image once, in batches
        for i in range(0, n, batch_size):
            batch = x0[i : i + batch_size]
            noise = torch.randn(batch.shape, generator=generator)
            out = step_terms(eps_model, batch, int(tau[k]), k, schedule, sub, noise)
            nats[k] += out["nats"].sum()
            sq_err[k] += out["sq_err"].sum()
            if i == 0:
                kept_x_t.append(out["x_t"][:keep])
                kept_x0_hat.append(out["x0_hat"][:keep])
    step_bits = nats_to_bits_per_dim(nats / n, dims)
    prior_bits = nats_to_bits_per_dim(prior_kl(x0, schedule).mean(), dims).item()
    rate = bits_spent(prior_bits, step_bits)
    return {
        "t": tau,
        "steps": steps,
        "n_images": n,
        "step_bits": step_bits,
        "rate": rate,
        "distortion": (sq_err / (n * dims)).sqrt(),
        "prior_bits": prior_bits,
        "decoder_bits": step_bits[0].item(),
        "total_bits": prior_bits + step_bits.sum().item(),
        "x0": x0[:keep].float(),
        "x_t": torch.stack(kept_x_t),
        "x0_hat": torch.stack(kept_x0_hat),
    }


def unconditional_eps(ldm):
    """eps_theta(x_t, t) of a pixel-space LatentDiffusion trained on empty captions only."""
    context, mask = ldm.context(ldm.tokens([""]))

    def eps_model(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        b = x_t.shape[0]
        return ldm.to_eps(x_t, t, ldm.unet(x_t, t, context.expand(b, -1, -1), context_mask=mask.expand(b, -1)))

    return eps_model
