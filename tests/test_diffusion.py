"""Noise schedules, q_sample, parameterisation conversions, training loss (ldm_mini.diffusion)."""

import math

import pytest
import torch

from ldm_mini.diffusion import NoiseSchedule, diffusion_loss


@pytest.fixture(scope="module")
def sd():
    return NoiseSchedule.linear(T=1000, beta_start=0.00085, beta_end=0.012)


def test_linear_schedule_pinned_values(sd):
    # numbers from the reference code (Stable Diffusion betas), docs/CONVENTIONS.md, "Noise schedule"
    assert sd.T == 1000
    assert sd.alphas_cumprod.dtype == torch.float64 and sd.alphas_cumprod.shape == (1000,)
    assert sd.alphas_cumprod[0].item() == pytest.approx(0.99915, abs=1e-6)
    assert sd.alphas_cumprod[999].sqrt().item() == pytest.approx(0.068265, abs=1e-6)
    # sqrt-linear: sqrt(beta) is evenly spaced from sqrt(0.00085) to sqrt(0.012)
    assert sd.betas[0].item() == pytest.approx(0.00085, rel=1e-12)
    assert sd.betas[-1].item() == pytest.approx(0.012, rel=1e-12)
    step = (math.sqrt(0.012) - math.sqrt(0.00085)) / 999
    assert sd.betas[500].sqrt().item() == pytest.approx(math.sqrt(0.00085) + 500 * step, rel=1e-12)
    assert bool((sd.alphas_cumprod[1:] < sd.alphas_cumprod[:-1]).all())


def test_cosine_schedule_hand_values():
    s = NoiseSchedule.cosine(T=1000, s=0.008)

    def f(t):
        return math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2

    assert s.alphas_cumprod[0].item() == pytest.approx(f(1) / f(0), rel=1e-12)
    assert s.alphas_cumprod[499].item() == pytest.approx(f(500) / f(0), rel=1e-9)
    assert s.betas.max().item() == pytest.approx(0.999)     # f(T) = cos^2(pi/2) ~ 0: clipped
    assert s.betas[-1].item() == pytest.approx(0.999)


def test_posterior_variance_and_snr_hand_values(sd):
    b, a = sd.betas, sd.alphas_cumprod
    assert sd.posterior_variance[0].item() == 0.0
    expected = (b[1] * (1 - a[0]) / (1 - a[1])).item()
    assert sd.posterior_variance[1].item() == pytest.approx(expected, rel=1e-12)
    t = torch.tensor([0, 999])
    snr = sd.snr(t)
    assert snr[0].item() == pytest.approx(0.99915 / 0.00085, rel=1e-9)
    assert snr[1].item() == pytest.approx(0.068265**2 / (1 - 0.068265**2), rel=1e-4)


def test_bad_betas_and_timesteps_raise(sd):
    with pytest.raises(ValueError):
        NoiseSchedule(torch.tensor([0.1, 0.0]))
    with pytest.raises(IndexError):
        sd.q_sample(torch.zeros(1, 2), torch.tensor([1000]), torch.zeros(1, 2))
    with pytest.raises(ValueError):
        sd.q_sample(torch.zeros(1, 2), torch.tensor([1.0]), torch.zeros(1, 2))


def test_q_sample_formula_and_dtype(sd):
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(3, 4, 2, 2, generator=g)
    noise = torch.randn(3, 4, 2, 2, generator=g)
    t = torch.tensor([0, 500, 999])
    x_t = sd.q_sample(x0, t, noise)
    assert x_t.dtype == torch.float32 and x_t.shape == x0.shape
    for i, ti in enumerate(t.tolist()):
        a = sd.alphas_cumprod[ti].item()
        assert torch.allclose(x_t[i], math.sqrt(a) * x0[i] + math.sqrt(1 - a) * noise[i], atol=1e-6)
    # float64 in, float64 out
    assert sd.q_sample(x0.double(), t, noise.double()).dtype == torch.float64


def test_posterior_mean_hand_value(sd):
    x0, x_t = torch.full((1, 1), 2.0, dtype=torch.float64), torch.full((1, 1), -1.0, dtype=torch.float64)
    t = torch.tensor([10])
    b, a, a_prev = sd.betas[10].item(), sd.alphas_cumprod[10].item(), sd.alphas_cumprod[9].item()
    mean, var = sd.posterior_mean_variance(x0, x_t, t)
    expected = (math.sqrt(a_prev) * b * 2.0 + math.sqrt(1 - b) * (1 - a_prev) * -1.0) / (1 - a)
    assert mean.item() == pytest.approx(expected, rel=1e-12)
    assert var.item() == pytest.approx(b * (1 - a_prev) / (1 - a), rel=1e-12)


def test_conversions_round_trip(sd):
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(4, 3, 5, generator=g, dtype=torch.float64)
    eps = torch.randn(4, 3, 5, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 1, 500, 999])
    x_t = sd.q_sample(x0, t, eps)
    assert torch.allclose(sd.predict_x0_from_eps(x_t, t, eps), x0, atol=1e-9)
    assert torch.allclose(sd.predict_eps_from_x0(x_t, t, x0), eps, atol=1e-9)
    v = sd.v_from_eps_x0(eps, x0, t)
    a = sd.alphas_cumprod[t].view(-1, 1, 1)
    assert torch.allclose(v, a.sqrt() * eps - (1 - a).sqrt() * x0, atol=1e-12)
    assert torch.allclose(sd.eps_from_v(x_t, t, v), eps, atol=1e-9)
    assert torch.allclose(sd.x0_from_v(x_t, t, v), x0, atol=1e-9)


def test_diffusion_loss_eps_and_v():
    s = NoiseSchedule.linear(T=100)
    x0 = torch.randn(8, 4, 2, 2, generator=torch.Generator().manual_seed(2))
    seen = {}

    def zero_model(x_t, t):
        seen["t"] = t
        return torch.zeros_like(x_t)

    # a model predicting 0 pays E[eps^2]: the loss equals the mean square of the noise it drew
    loss = diffusion_loss(zero_model, x0, s, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    t = torch.randint(0, 100, (8,), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    assert torch.equal(seen["t"], t)
    assert loss.item() == pytest.approx(noise.pow(2).mean().item(), rel=1e-6)

    # a perfect v model (one that knows x0 and the noise) has zero v-loss, and a non-zero eps-loss
    def oracle_v(x_t, t, context):
        assert context == "caption"
        eps = s.predict_eps_from_x0(x_t, t, x0)
        return s.v_from_eps_x0(eps, x0, t)

    loss_v = diffusion_loss(oracle_v, x0, s, context="caption", parameterization="v",
                            generator=torch.Generator().manual_seed(4))
    loss_eps = diffusion_loss(oracle_v, x0, s, context="caption", generator=torch.Generator().manual_seed(4))
    assert loss_v.item() < 1e-10 and loss_eps.item() > 1e-3
    with pytest.raises(ValueError, match="parameterization"):
        diffusion_loss(zero_model, x0, s, parameterization="x0")


def test_diffusion_loss_passes_model_kwargs_and_backprops():
    s = NoiseSchedule.linear(T=50)
    w = torch.zeros(1, requires_grad=True)

    def model(x_t, t, context, context_mask=None):
        assert context_mask is not None
        return w * x_t

    loss = diffusion_loss(model, torch.randn(2, 3), s, context=torch.zeros(2, 1, 1), context_mask=torch.ones(2, 1))
    loss.backward()
    assert w.grad is not None and w.grad.item() != 0.0
