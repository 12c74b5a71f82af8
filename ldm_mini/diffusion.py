"""The forward process q(z_t | z_0) and the training objective of the latent diffusion model.

Stage 2 of the paper trains eps_theta on latents z = E(x) of the frozen autoencoder:

    L_LDM = E_{z_0, eps ~ N(0, I), t} || eps - eps_theta(z_t, t, tau_theta(y)) ||^2     (paper, Eq. 4)
    z_t   = sqrt(alpha_bar_t) z_0 + sqrt(1 - alpha_bar_t) eps

Eq. 2 is the same without the caption y, Eq. 1 the same on pixels: Ho et al.'s L_simple, the
variational bound with its weights dropped (lesson 05 derives it). Nothing here knows about
images or latents: every function works on any tensor x of shape (b, ...) with one timestep t
per sample. Timesteps run from 0 (almost clean) to T - 1 (almost
pure noise), as in the reference code.

Schedules are kept in float64 on the CPU (the tiny alpha_bar_t near t = T lose digits in
float32, and MPS has no float64); each lookup gathers in float64 and then casts to the dtype
and device of the data.
"""

import math

import torch
import torch.nn.functional as F

__all__ = ["NoiseSchedule", "diffusion_loss"]


class NoiseSchedule:
    """The variance schedule beta_1..beta_T and everything derived from it.

    Attributes (float64 tensors of shape (T,), on the CPU):
        betas                          beta_t
        alphas                         alpha_t = 1 - beta_t
        alphas_cumprod                 alpha_bar_t = prod_{s <= t} alpha_s
        alphas_cumprod_prev            alpha_bar_{t-1}, with alpha_bar_{-1} = 1
        sqrt_alphas_cumprod            sqrt(alpha_bar_t): how much signal is left
        sqrt_one_minus_alphas_cumprod  sqrt(1 - alpha_bar_t): how much noise there is
        posterior_variance             variance of q(z_{t-1} | z_t, z_0) (DDPM, Ho et al. Eq. 7)
        posterior_mean_coef1/2         its mean = coef1 * z_0 + coef2 * z_t
    """

    def __init__(self, betas: torch.Tensor):
        betas = torch.as_tensor(betas, dtype=torch.float64).detach().cpu()
        if betas.ndim != 1 or len(betas) < 1:
            raise ValueError(f"betas must be a 1-D tensor of length T >= 1, got shape {tuple(betas.shape)}")
        if not bool(((betas > 0) & (betas <= 1)).all()):
            raise ValueError("every beta_t must lie in (0, 1]; check beta_start / beta_end")
        self.betas = betas
        self.alphas = 1.0 - betas
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)
        self.alphas_cumprod_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod[:-1]])
        self.sqrt_alphas_cumprod = self.alphas_cumprod.sqrt()
        self.sqrt_one_minus_alphas_cumprod = (1.0 - self.alphas_cumprod).sqrt()
        # q(z_{t-1} | z_t, z_0) = N(coef1 z_0 + coef2 z_t, beta_tilde_t I)   (Ho et al. 2020, Eq. 6-7)
        one_minus = 1.0 - self.alphas_cumprod
        self.posterior_variance = betas * (1.0 - self.alphas_cumprod_prev) / one_minus
        self.posterior_mean_coef1 = betas * self.alphas_cumprod_prev.sqrt() / one_minus
        self.posterior_mean_coef2 = (1.0 - self.alphas_cumprod_prev) * self.alphas.sqrt() / one_minus

    # ----------------------------------------------------------------- constructors
    @classmethod
    def linear(cls, T: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012) -> "NoiseSchedule":
        """LDM's "linear" schedule, which is linear in sqrt(beta) (the Stable Diffusion range by default).

        betas = linspace(sqrt(beta_start), sqrt(beta_end), T) ** 2, in float64.
        """
        if T < 1:
            raise ValueError(f"T must be >= 1, got {T}")
        betas = torch.linspace(math.sqrt(beta_start), math.sqrt(beta_end), T, dtype=torch.float64) ** 2
        return cls(betas)

    @classmethod
    def cosine(cls, T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> "NoiseSchedule":
        """Cosine schedule of Nichol & Dhariwal (2021): alpha_bar(t) = cos^2(((t/T + s)/(1 + s)) pi/2) / (same at 0).

        beta_t = 1 - alpha_bar((t+1)/T) / alpha_bar(t/T), clipped at max_beta so the last step
        is not a division by ~0.
        """
        if T < 1:
            raise ValueError(f"T must be >= 1, got {T}")
        steps = torch.arange(T + 1, dtype=torch.float64) / T
        f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        betas = (1.0 - f[1:] / f[:-1]).clamp(max=max_beta)
        return cls(betas)

    @property
    def T(self) -> int:
        """Number of training timesteps."""
        return len(self.betas)

    def __repr__(self) -> str:
        a = self.alphas_cumprod
        return f"NoiseSchedule(T={self.T}, alpha_bar_0={a[0].item():.6g}, alpha_bar_T-1={a[-1].item():.6g})"

    # ----------------------------------------------------------------- lookups
    def _check_t(self, t: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t)
        if t.dtype.is_floating_point or t.ndim != 1:
            raise ValueError(f"t must be a LongTensor of shape (b,), got dtype {t.dtype} and shape {tuple(t.shape)}")
        t = t.cpu()
        if len(t) and (int(t.min()) < 0 or int(t.max()) >= self.T):
            raise IndexError(f"timesteps must lie in [0, {self.T - 1}], got [{int(t.min())}, {int(t.max())}]")
        return t

    def _gather(self, arr: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """arr[t] in float64, then cast to x's dtype/device and shaped (b, 1, 1, ...) to broadcast over x."""
        t = self._check_t(t)
        if len(t) != x.shape[0]:
            raise ValueError(f"need one timestep per sample: t has {len(t)}, x has batch {x.shape[0]}")
        out = arr[t].to(device=x.device, dtype=x.dtype)
        return out.reshape(len(t), *([1] * (x.ndim - 1)))

    def snr(self, t: torch.Tensor) -> torch.Tensor:
        """Signal-to-noise ratio alpha_bar_t / (1 - alpha_bar_t), float64, shape (b,)."""
        a = self.alphas_cumprod[self._check_t(t)]
        return a / (1.0 - a)

    # ----------------------------------------------------------------- forward process
    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Sample z_t ~ q(z_t | z_0): sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise. Output dtype = x0's."""
        if noise is None:
            noise = torch.randn_like(x0)
        if noise.shape != x0.shape:
            raise ValueError(f"noise shape {tuple(noise.shape)} must equal x0 shape {tuple(x0.shape)}")
        return (self._gather(self.sqrt_alphas_cumprod, t, x0) * x0
                + self._gather(self.sqrt_one_minus_alphas_cumprod, t, x0) * noise)

    # ----------------------------------------------------------------- parameterisations
    # With x_t = sqrt(a) x0 + sqrt(1-a) eps, any one of (x0, eps, v) and x_t determines the others.
    def predict_x0_from_eps(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """x0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)."""
        return ((x_t - self._gather(self.sqrt_one_minus_alphas_cumprod, t, x_t) * eps)
                / self._gather(self.sqrt_alphas_cumprod, t, x_t))

    def predict_eps_from_x0(self, x_t: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """eps = (x_t - sqrt(alpha_bar_t) x0) / sqrt(1 - alpha_bar_t)."""
        return ((x_t - self._gather(self.sqrt_alphas_cumprod, t, x_t) * x0)
                / self._gather(self.sqrt_one_minus_alphas_cumprod, t, x_t))

    def v_from_eps_x0(self, eps: torch.Tensor, x0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Velocity v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x0 (Salimans & Ho 2022)."""
        return (self._gather(self.sqrt_alphas_cumprod, t, x0) * eps
                - self._gather(self.sqrt_one_minus_alphas_cumprod, t, x0) * x0)

    def eps_from_v(self, x_t: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """eps = sqrt(alpha_bar_t) v + sqrt(1 - alpha_bar_t) x_t."""
        return (self._gather(self.sqrt_alphas_cumprod, t, x_t) * v
                + self._gather(self.sqrt_one_minus_alphas_cumprod, t, x_t) * x_t)

    def x0_from_v(self, x_t: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """x0 = sqrt(alpha_bar_t) x_t - sqrt(1 - alpha_bar_t) v."""
        return (self._gather(self.sqrt_alphas_cumprod, t, x_t) * x_t
                - self._gather(self.sqrt_one_minus_alphas_cumprod, t, x_t) * v)

    def posterior_mean_variance(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor):
        """Mean and variance of q(x_{t-1} | x_t, x_0), the DDPM reverse-step target.

        Returns (mean like x_t, variance of shape (b, 1, 1, ...)); the variance is 0 at t = 0.
        """
        mean = (self._gather(self.posterior_mean_coef1, t, x_t) * x0
                + self._gather(self.posterior_mean_coef2, t, x_t) * x_t)
        return mean, self._gather(self.posterior_variance, t, x_t)


def diffusion_loss(model_fn, x0: torch.Tensor, schedule: NoiseSchedule, context: torch.Tensor | None = None,
                   parameterization: str = "eps", generator: torch.Generator | None = None,
                   **model_kwargs) -> torch.Tensor:
    """One Monte-Carlo sample of L_LDM (paper, Eq. 2; Eq. 4 with a context): MSE between the model's
    prediction and its target.

    t ~ Uniform{0, ..., T-1} and eps ~ N(0, I), one per sample; z_t = q_sample(x0, t, eps).
    model_fn(z_t, t, context, **model_kwargs) -> prediction (called without context when it is None);
    parameterization "eps" regresses the noise, "v" the velocity sqrt(a) eps - sqrt(1-a) x0.
    Extra keyword arguments (e.g. context_mask=..., concat=...) go to model_fn.
    """
    if parameterization not in ("eps", "v"):
        raise ValueError(f"parameterization must be 'eps' or 'v', got {parameterization!r}")
    b = x0.shape[0]
    rng_device = generator.device if generator is not None else x0.device
    t = torch.randint(0, schedule.T, (b,), generator=generator, device=rng_device).to(x0.device)
    noise = torch.randn(x0.shape, generator=generator, device=rng_device, dtype=x0.dtype).to(x0.device)
    x_t = schedule.q_sample(x0, t, noise)
    args = (x_t, t) if context is None else (x_t, t, context)
    pred = model_fn(*args, **model_kwargs)
    target = noise if parameterization == "eps" else schedule.v_from_eps_x0(noise, x0, t)
    if pred.shape != target.shape:
        raise ValueError(f"model output shape {tuple(pred.shape)} must match x0 shape {tuple(target.shape)}")
    return F.mse_loss(pred.float(), target.float())
