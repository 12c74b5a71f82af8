"""Reverse process: turning noise z_T into a latent z_0 with a trained eps_theta.

- DDPM ancestral sampling (Ho et al. 2020): all T steps, each one a draw from q(z_{t-1} | z_t, z0_hat).
- DDIM (Song et al. 2021): S << T steps on a subsequence tau of the timesteps; eta = 0 is a
  deterministic map from z_T to z_0 (which we can also run backwards: DDIM inversion), eta = 1
  injects DDPM-like noise.
- Classifier-free guidance (Ho & Salimans 2021): eps = eps_u + s (eps_c - eps_u).

Every sampler takes `eps_model(x_t, t) -> eps`, with t a LongTensor of shape (b,). Any callable
works: a UNet wrapped by `cfg_model`, a lambda, or a learner's own model. The numbers follow the
paper's reference code (ldm/models/diffusion/ddim.py); tests pin them.
"""

import math

import torch

from ldm_mini.diffusion import NoiseSchedule

__all__ = [
    "ddim_timesteps", "ddim_sigmas", "ddim_step", "ddim_sample", "ddim_invert", "ddpm_sample",
    "guided_eps", "cfg_model", "slerp", "check_sampling_args",
]


# ---------------------------------------------------------------------------- DDIM
def ddim_timesteps(T: int = 1000, steps: int = 50) -> torch.Tensor:
    """The DDIM subsequence tau (ascending LongTensor of length `steps`), "uniform" spacing.

    As the reference code: c = T // S and tau = range(0, T, c) + 1, so T=1000, S=50 gives
    [1, 21, 41, ..., 981]. Two edge cases the reference gets wrong, handled here:
    - when S does not divide T, range(0, T, c) has more than S entries (S=3: [0, 333, 666, 999]),
      so we keep the first S (diffusers' "leading" spacing with steps_offset=1 does the same);
    - for S = T (c = 1) the +1 would index alpha_bar[T], past the end: we drop the shift and use
      every timestep 0 .. T-1. (For S < T the largest index, (S-1) c + 1, is always <= T - 1.)
    """
    if steps < 1:
        raise ValueError(f"DDIM needs at least 1 step, got steps={steps}")
    if steps > T:
        raise ValueError(f"DDIM steps (S) cannot exceed the T training steps: got S={steps}, T={T}")
    c = T // steps
    shift = 0 if steps == T else 1
    return torch.arange(steps, dtype=torch.long) * c + shift


def ddim_sigmas(schedule: NoiseSchedule, timesteps: torch.Tensor, eta: float):
    """(alphas, alphas_prev, sigmas), float64 tensors of shape (S,), for the DDIM subsequence `timesteps`.

    alpha_i = alpha_bar[tau_i]; alpha_prev_i = alpha_bar[tau_{i-1}], with alpha_bar_0 for i = 0 (the
    last step lands on alpha_bar_0, not on 1); sigma_i = eta sqrt((1 - a_prev)/(1 - a) (1 - a/a_prev))
    (DDIM paper, Eq. 16: eta = 1 is DDPM's posterior standard deviation).
    """
    _check_eta(eta)
    abar = schedule.alphas_cumprod
    timesteps = torch.as_tensor(timesteps, dtype=torch.long).cpu()
    alphas = abar[timesteps]
    alphas_prev = torch.cat([abar[:1], abar[timesteps[:-1]]])
    sigmas = eta * ((1 - alphas_prev) / (1 - alphas) * (1 - alphas / alphas_prev)).sqrt()
    return alphas, alphas_prev, sigmas


def ddim_step(x_t: torch.Tensor, eps: torch.Tensor, alpha: float, alpha_prev: float,
              sigma: float = 0.0, z: torch.Tensor | None = None):
    """One DDIM update (DDIM paper, Eq. 12). Returns (x_prev, x0_hat).

    x0_hat = (x_t - sqrt(1 - a) eps) / sqrt(a)                          "predicted x0"
    x_prev = sqrt(a_prev) x0_hat + sqrt(1 - a_prev - sigma^2) eps + sigma z
    """
    alpha, alpha_prev, sigma = float(alpha), float(alpha_prev), float(sigma)
    x0_hat = (x_t - math.sqrt(1.0 - alpha) * eps) / math.sqrt(alpha)
    dir_xt = math.sqrt(max(1.0 - alpha_prev - sigma**2, 0.0)) * eps    # "direction pointing to x_t"
    x_prev = math.sqrt(alpha_prev) * x0_hat + dir_xt
    if sigma > 0:
        if z is None:
            raise ValueError("sigma > 0 needs the noise z")
        x_prev = x_prev + sigma * z
    return x_prev, x0_hat


def ddim_sample(eps_model, x_T: torch.Tensor, schedule: NoiseSchedule, steps: int = 50, eta: float = 0.0,
                generator: torch.Generator | None = None, callback=None, return_intermediates: bool = False,
                guide=None):
    """DDIM sampling from x_T ~ N(0, I) down the subsequence tau (last timestep first). Returns x_0.

    eta = 0: deterministic; eta > 0: fresh noise z at each step, drawn from `generator` so runs are
    reproducible. `callback(i, t, x_t, x0_hat)` sees the input x_t of step i (i = 0 is the noisiest)
    and its predicted x0. With return_intermediates=True returns (x_0, {"timesteps", "x_t", "x0_hat"}).
    `guide(i, t, x_t) -> x_t` (t: LongTensor (b,)) may move x_t before step i's model call: the
    hook through which sampling-time guidance (``guidance.py``) steers the loop without copying it.
    Runs under torch.no_grad() (not inference_mode, so the model may be a learner's module).
    """
    timesteps = ddim_timesteps(schedule.T, steps)
    alphas, alphas_prev, sigmas = ddim_sigmas(schedule, timesteps, eta)
    record = {"timesteps": [], "x_t": [], "x0_hat": []}
    x = x_T
    with torch.no_grad():
        for i, k in enumerate(reversed(range(len(timesteps)))):
            t = torch.full((x.shape[0],), int(timesteps[k]), dtype=torch.long, device=x.device)
            if guide is not None:
                x = guide(i, t, x)
            eps = eps_model(x, t)
            z = _randn_like(x, generator) if sigmas[k] > 0 else None
            x_next, x0_hat = ddim_step(x, eps, alphas[k], alphas_prev[k], sigmas[k], z)
            if callback is not None:
                callback(i, int(timesteps[k]), x, x0_hat)
            if return_intermediates:
                record["timesteps"].append(int(timesteps[k]))
                record["x_t"].append(x)
                record["x0_hat"].append(x0_hat)
            x = x_next
    return (x, record) if return_intermediates else x


def ddim_invert(eps_model, x0: torch.Tensor, schedule: NoiseSchedule, steps: int = 50, callback=None) -> torch.Tensor:
    """DDIM inversion: run the eta = 0 update upward, x_0 -> x_T, so that ddim_sample(x_T) ~ x_0.

    The step alpha_prev -> alpha uses eps_theta(x, tau_i), evaluated at the *lower* noise level (the
    exact eps at the upper level is unknown): inversion is exact when eps_theta changes slowly along
    the path, approximate otherwise. x0 is taken to sit at alpha_bar_0, where ddim_sample ends.
    Used to find the noises of two images and interpolate between them (see `slerp`).
    """
    timesteps = ddim_timesteps(schedule.T, steps)
    alphas, alphas_prev, _ = ddim_sigmas(schedule, timesteps, 0.0)
    x = x0
    with torch.no_grad():
        for i in range(len(timesteps)):
            t = torch.full((x.shape[0],), int(timesteps[i]), dtype=torch.long, device=x.device)
            eps = eps_model(x, t)
            # the DDIM update with the roles of alpha and alpha_prev swapped
            x_next, x0_hat = ddim_step(x, eps, alphas_prev[i], alphas[i])
            if callback is not None:
                callback(i, int(timesteps[i]), x, x0_hat)
            x = x_next
    return x


# ---------------------------------------------------------------------------- DDPM
def ddpm_sample(eps_model, x_T: torch.Tensor, schedule: NoiseSchedule, generator: torch.Generator | None = None,
                callback=None, clip_x0: bool = False) -> torch.Tensor:
    """DDPM ancestral sampling over all T steps: x_{t-1} ~ q(x_{t-1} | x_t, x0_hat) (Ho et al. 2020, Alg. 2).

    x0_hat comes from eps_theta; clip_x0=True clamps it to [-1, 1] (meant for pixels, so off by
    default: latents are not bounded). No noise is added at the last step (t = 0).
    `callback(i, t, x_t, x0_hat)` as in ddim_sample.
    """
    x = x_T
    with torch.no_grad():
        for i, step in enumerate(reversed(range(schedule.T))):
            t = torch.full((x.shape[0],), step, dtype=torch.long, device=x.device)
            x0_hat = schedule.predict_x0_from_eps(x, t, eps_model(x, t))
            if clip_x0:
                x0_hat = x0_hat.clamp(-1, 1)
            mean, var = schedule.posterior_mean_variance(x0_hat, x, t)
            if callback is not None:
                callback(i, step, x, x0_hat)
            if step > 0:
                x = mean + var.sqrt() * _randn_like(x, generator)
            else:
                x = mean
    return x


# ---------------------------------------------------------------------------- classifier-free guidance
def guided_eps(eps_model_ctx, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor,
               uncond_context: torch.Tensor, scale: float, context_mask: torch.Tensor | None = None,
               uncond_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Classifier-free guidance: eps = eps_u + s (eps_c - eps_u), from ONE batched model call.

    eps_model_ctx(x, t, context[, context_mask=...]) is a conditional model, e.g. the UNet.
    The call runs on the batch [uncond; cond] of size 2b (one forward pass is faster than two).
    uncond_context is tau_theta of the empty caption: shape (b, n, d) or (1, n, d) (broadcast).
    s = 0 gives the unconditional model, s = 1 the conditional one, s > 1 pushes further along
    the caption's direction (sharper, less diverse samples).
    """
    _check_scale(scale)
    b = x.shape[0]
    uncond_context = _expand_batch(uncond_context, b, "uncond_context")
    context = _expand_batch(context, b, "context")
    if uncond_context.shape[1:] != context.shape[1:]:
        raise ValueError(f"uncond_context {tuple(uncond_context.shape)} and context {tuple(context.shape)} must "
                         "have the same token count and width: pad both captions to the same length")
    kwargs = {}
    if context_mask is not None or uncond_mask is not None:
        n = context.shape[1]
        full = torch.ones(b, n, dtype=torch.bool, device=x.device)
        cm = full if context_mask is None else _expand_batch(context_mask.bool(), b, "context_mask")
        um = full if uncond_mask is None else _expand_batch(uncond_mask.bool(), b, "uncond_mask")
        kwargs["context_mask"] = torch.cat([um, cm])
    eps = eps_model_ctx(torch.cat([x, x]), torch.cat([t, t]), torch.cat([uncond_context, context]), **kwargs)
    eps_u, eps_c = eps.chunk(2)
    return eps_u + scale * (eps_c - eps_u)


def cfg_model(unet, context: torch.Tensor, uncond_context: torch.Tensor, scale: float,
              context_mask: torch.Tensor | None = None, uncond_mask: torch.Tensor | None = None):
    """Wrap a conditional model into `eps_model(x, t)` with guidance scale s, ready for ddim_sample.

    s = 1 calls only the conditional half and s = 0 only the unconditional one (half the work).
    """
    _check_scale(scale)

    def call(x, t, ctx, mask):
        return unet(x, t, ctx) if mask is None else unet(x, t, ctx, context_mask=mask)

    def eps_model(x, t):
        b = x.shape[0]
        if scale == 1:
            mask = None if context_mask is None else _expand_batch(context_mask, b, "context_mask")
            return call(x, t, _expand_batch(context, b, "context"), mask)
        if scale == 0:
            mask = None if uncond_mask is None else _expand_batch(uncond_mask, b, "uncond_mask")
            return call(x, t, _expand_batch(uncond_context, b, "uncond_context"), mask)
        return guided_eps(unet, x, t, context, uncond_context, scale, context_mask, uncond_mask)

    return eps_model


# ---------------------------------------------------------------------------- interpolation
def slerp(z1: torch.Tensor, z2: torch.Tensor, alpha: float) -> torch.Tensor:
    """Spherical interpolation between two noises (each tensor treated as one long vector).

    Gaussian noise in high dimension lives near a sphere of radius sqrt(dim); a straight line
    between two noises passes inside it (lower norm -> washed-out samples), the great circle does not.
    alpha = 0 gives z1, alpha = 1 gives z2. Falls back to linear interpolation for (anti)parallel inputs.
    """
    if z1.shape != z2.shape:
        raise ValueError(f"slerp needs equal shapes, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    a, b = z1.double().flatten(), z2.double().flatten()
    cos = torch.dot(a, b) / (a.norm() * b.norm())
    theta = torch.arccos(cos.clamp(-1.0, 1.0))
    if torch.sin(theta) < 1e-6:
        out = (1 - alpha) * a + alpha * b
    else:
        out = (torch.sin((1 - alpha) * theta) * a + torch.sin(alpha * theta) * b) / torch.sin(theta)
    return out.reshape(z1.shape).to(z1.dtype)


# ---------------------------------------------------------------------------- helpers
def check_sampling_args(
    steps: int, T: int, eta: float = 0.0, guidance: float | None = None, sampler: str = "ddim"
) -> None:
    """One place for the checks every sampler entry point makes, with errors that say the fix."""
    if sampler not in ("ddim", "ddpm"):
        raise ValueError(f"sampler must be 'ddim' or 'ddpm', got {sampler!r}")
    if not 1 <= steps <= T:
        raise ValueError(f"steps={steps}: DDIM takes between 1 and T={T} steps (the model was trained with T={T})")
    if guidance is not None and guidance < 0:
        raise ValueError(
            f"guidance={guidance} must be >= 0 (0: unconditional, 1: conditional, > 1: guided; 3 is a good start)"
        )
    if not 0 <= eta <= 1:
        raise ValueError(f"eta={eta} must be in [0, 1] (0: deterministic DDIM, 1: DDPM-like noise)")


def _check_eta(eta: float) -> None:
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must lie in [0, 1] (0 = deterministic DDIM, 1 = DDPM-like noise), got {eta}")


def _check_scale(scale: float) -> None:
    if scale < 0:
        raise ValueError(f"guidance scale must be >= 0 (0 = unconditional, 1 = conditional, >1 = guided), got {scale}")


def _expand_batch(x: torch.Tensor, b: int, name: str) -> torch.Tensor:
    if x.shape[0] == b:
        return x
    if x.shape[0] == 1:
        return x.expand(b, *x.shape[1:])
    raise ValueError(f"{name} has batch {x.shape[0]}; expected {b} (or 1, to broadcast)")


def _randn_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Gaussian noise like x, drawn from `generator` (on the generator's device, then moved)."""
    device = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)
