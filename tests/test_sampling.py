"""DDIM / DDPM samplers, classifier-free guidance, DDIM inversion, slerp (ldm_mini.sampling)."""

import math

import pytest
import torch

from ldm_mini.diffusion import NoiseSchedule
from ldm_mini.sampling import (
    cfg_model,
    ddim_invert,
    ddim_sample,
    ddim_sigmas,
    ddim_step,
    ddim_timesteps,
    ddpm_sample,
    guided_eps,
    slerp,
)


@pytest.fixture(scope="module")
def sd():
    return NoiseSchedule.linear(T=1000, beta_start=0.00085, beta_end=0.012)


def oracle(schedule, x0):
    """An eps model that knows x0: eps = (x_t - sqrt(a_t) x0) / sqrt(1 - a_t)."""
    return lambda x_t, t: schedule.predict_eps_from_x0(x_t, t, x0)


# ---------------------------------------------------------------------------- timesteps and sigmas
def test_ddim_timesteps_uniform_matches_reference():
    ts = ddim_timesteps(T=1000, steps=50)
    assert ts.dtype == torch.long
    assert ts.tolist() == list(range(1, 1000, 20))
    assert ts[0].item() == 1 and ts[-1].item() == 981 and len(ts) == 50


def test_ddim_timesteps_edge_cases():
    full = ddim_timesteps(T=1000, steps=1000)           # S = T must not index alpha_bar[1000]
    assert full.tolist() == list(range(1000))
    three = ddim_timesteps(T=1000, steps=3)             # S does not divide T: exactly S steps, all valid
    assert three.tolist() == [1, 334, 667]
    assert ddim_timesteps(T=10, steps=1).tolist() == [1]
    for T in (7, 10, 100):
        for S in range(1, T + 1):
            ts = ddim_timesteps(T, S)
            assert len(ts) == S and len(set(ts.tolist())) == S
            assert ts.min() >= 0 and ts.max() <= T - 1 and bool((ts[1:] > ts[:-1]).all())
    with pytest.raises(ValueError, match="cannot exceed the T training steps"):
        ddim_timesteps(T=1000, steps=1001)
    with pytest.raises(ValueError):
        ddim_timesteps(T=1000, steps=0)


def test_ddim_sigmas_pinned(sd):
    ts = ddim_timesteps(1000, 50)
    a, a_prev, sig = ddim_sigmas(sd, ts, eta=1.0)
    assert a[0].item() == pytest.approx(0.9982960, abs=1e-7)
    assert a_prev[0].item() == pytest.approx(0.99915, abs=1e-9)        # lands on alpha_bar_0, not on 1
    assert a_prev[1:].tolist() == a[:-1].tolist()
    assert sig[0].item() == pytest.approx(0.020648, abs=1e-6)
    assert sig[-1].item() == pytest.approx(0.454463, abs=1e-6)
    assert torch.allclose(ddim_sigmas(sd, ts, eta=0.5)[2], 0.5 * sig)
    assert ddim_sigmas(sd, ts, eta=0.0)[2].abs().max().item() == 0.0
    for eta in (-0.1, 1.5):
        with pytest.raises(ValueError, match="eta"):
            ddim_sigmas(sd, ts, eta)


def test_ddim_step_hand_value():
    x, eps = torch.tensor([2.0], dtype=torch.float64), torch.tensor([0.5], dtype=torch.float64)
    x_prev, x0_hat = ddim_step(x, eps, 0.25, 0.81, 0.1, z=torch.tensor([3.0], dtype=torch.float64))
    assert x0_hat.item() == pytest.approx((2.0 - math.sqrt(0.75) * 0.5) / 0.5)
    expected = 0.9 * x0_hat.item() + math.sqrt(1 - 0.81 - 0.01) * 0.5 + 0.1 * 3.0
    assert x_prev.item() == pytest.approx(expected)


# ---------------------------------------------------------------------------- DDIM sampling
def test_ddim_oracle_recovers_x0(sd):
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(2, 4, 3, 3, generator=g, dtype=torch.float64)
    x_T = torch.randn(2, 4, 3, 3, generator=g, dtype=torch.float64)
    x0_hats = []
    out = ddim_sample(oracle(sd, x0), x_T, sd, steps=50, eta=0.0, callback=lambda i, t, x, x0h: x0_hats.append(x0h))
    assert len(x0_hats) == 50
    for x0h in x0_hats:                                 # every step predicts x0 exactly
        assert torch.allclose(x0h, x0, atol=1e-5)
    # eta = 0 keeps the same noise along the path; the last step lands on alpha_bar_0 = 0.99915
    a_T, a_0 = sd.alphas_cumprod[981].item(), sd.alphas_cumprod[0].item()
    eps = (x_T - math.sqrt(a_T) * x0) / math.sqrt(1 - a_T)
    assert torch.allclose(out, math.sqrt(a_0) * x0 + math.sqrt(1 - a_0) * eps, atol=1e-5)
    # so the output is x0 up to the tiny residual noise sqrt(1 - alpha_bar_0) ~ 0.029
    assert (out - x0).abs().max().item() < 0.2


def test_ddim_oracle_float32_with_noise(sd):
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(2, 4, 4, 4, generator=g)
    x_T = torch.randn(2, 4, 4, 4, generator=g)
    x0_hats = []
    ddim_sample(oracle(sd, x0), x_T, sd, steps=20, eta=1.0, generator=torch.Generator().manual_seed(5),
                callback=lambda i, t, x, x0h: x0_hats.append(x0h))
    assert torch.allclose(x0_hats[-1], x0, atol=1e-4)
    assert x0_hats[-1].dtype == torch.float32


def test_ddim_deterministic_and_reproducible(sd):
    x_T = torch.randn(2, 4, 4, 4, generator=torch.Generator().manual_seed(0))

    def model(x, t):                                    # a smooth, t-dependent toy eps model
        return torch.tanh(x) * (t.float() / 1000).view(-1, 1, 1, 1)

    a = ddim_sample(model, x_T, sd, steps=10, eta=0.0)
    b = ddim_sample(model, x_T, sd, steps=10, eta=0.0, generator=torch.Generator().manual_seed(9))
    assert torch.equal(a, b)                            # eta = 0 draws no noise
    c = ddim_sample(model, x_T, sd, steps=10, eta=1.0, generator=torch.Generator().manual_seed(3))
    d = ddim_sample(model, x_T, sd, steps=10, eta=1.0, generator=torch.Generator().manual_seed(3))
    e = ddim_sample(model, x_T, sd, steps=10, eta=1.0, generator=torch.Generator().manual_seed(4))
    assert torch.equal(c, d) and not torch.allclose(c, e) and not torch.allclose(a, c)


def test_ddim_calls_model_with_descending_long_timesteps_and_intermediates(sd):
    calls = []

    def model(x, t):
        calls.append(t.clone())
        return torch.zeros_like(x)

    x_T = torch.ones(3, 1, 2, 2)
    out, inter = ddim_sample(model, x_T, sd, steps=5, return_intermediates=True)
    assert [c.tolist() for c in calls] == [[t] * 3 for t in (801, 601, 401, 201, 1)]
    assert all(c.dtype == torch.long for c in calls)
    assert inter["timesteps"] == [801, 601, 401, 201, 1] and len(inter["x_t"]) == len(inter["x0_hat"]) == 5
    assert torch.equal(inter["x_t"][0], x_T)
    # eps = 0: every step rescales by sqrt(a_prev / a), so x_0 = sqrt(alpha_bar_0 / alpha_bar_801) x_T
    ratio = math.sqrt(sd.alphas_cumprod[0].item() / sd.alphas_cumprod[801].item())
    assert torch.allclose(out, x_T * ratio, rtol=1e-5)


def test_ddim_runs_without_grad_and_rejects_bad_eta(sd):
    lin = torch.nn.Linear(2, 2)
    out = ddim_sample(lambda x, t: lin(x), torch.randn(1, 2), sd, steps=3)
    assert not out.requires_grad
    with pytest.raises(ValueError, match="eta"):
        ddim_sample(lambda x, t: x, torch.randn(1, 2), sd, eta=2.0)


# ---------------------------------------------------------------------------- DDIM inversion and slerp
def test_ddim_invert_zero_model_is_analytic_and_inverts(sd):
    x0 = torch.randn(2, 4, 2, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    zero = lambda x, t: torch.zeros_like(x)             # noqa: E731
    x_T = ddim_invert(zero, x0, sd, steps=50)
    ratio = math.sqrt(sd.alphas_cumprod[981].item() / sd.alphas_cumprod[0].item())
    assert torch.allclose(x_T, x0 * ratio, atol=1e-12)
    assert torch.allclose(ddim_sample(zero, x_T, sd, steps=50), x0, atol=1e-12)


def test_ddim_invert_then_sample_round_trip_smooth_model():
    s = NoiseSchedule.linear(T=1000)

    def model(x, t):                                    # eps that varies slowly along the path
        return 0.3 * torch.tanh(x)

    x0 = torch.randn(2, 4, 2, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    errors = {}
    for steps in (10, 100):
        x_T = ddim_invert(model, x0, s, steps=steps)
        assert (x_T - x0).abs().max().item() > 0.5       # it did travel
        errors[steps] = (ddim_sample(model, x_T, s, steps=steps) - x0).abs().max().item()
    # inversion is first-order accurate: the round trip improves ~linearly with the step count
    assert errors[100] < 0.06 and errors[100] < errors[10] / 3


def test_slerp():
    e1, e2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    assert torch.allclose(slerp(e1, e2, 0.5), torch.tensor([1.0, 1.0]) / math.sqrt(2))
    assert torch.allclose(slerp(e1, e2, 0.0), e1) and torch.allclose(slerp(e1, e2, 1.0), e2)
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(1, 4, 8, 8, generator=g), torch.randn(1, 4, 8, 8, generator=g)
    z2 = z2 * z1.norm() / z2.norm()
    mid = slerp(z1, z2, 0.3)
    assert mid.shape == z1.shape and mid.norm().item() == pytest.approx(z1.norm().item(), rel=1e-5)
    assert torch.allclose(slerp(e1, 2 * e1, 0.5), 1.5 * e1)    # parallel: falls back to lerp


# ---------------------------------------------------------------------------- DDPM
def test_ddpm_oracle_returns_x0_exactly():
    s = NoiseSchedule.linear(T=50)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(2, 3, 2, 2, generator=g, dtype=torch.float64)
    steps = []
    out = ddpm_sample(oracle(s, x0), torch.randn(2, 3, 2, 2, generator=g, dtype=torch.float64), s,
                      generator=torch.Generator().manual_seed(1), callback=lambda i, t, x, x0h: steps.append(t))
    assert steps == list(range(49, -1, -1))
    # at t = 0 the posterior mean is exactly x0_hat (coef1 = beta_0 / (1 - alpha_bar_0) = 1) with no noise
    assert torch.allclose(out, x0, atol=1e-8)


def test_ddpm_reproducible_and_clip():
    s = NoiseSchedule.linear(T=20)
    x_T = torch.randn(1, 2, 2, 2, generator=torch.Generator().manual_seed(0))
    model = lambda x, t: 0.5 * x                        # noqa: E731
    a = ddpm_sample(model, x_T, s, generator=torch.Generator().manual_seed(2))
    b = ddpm_sample(model, x_T, s, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b)
    big = lambda x, t: -10 * torch.ones_like(x)        # noqa: E731  predicts x0 far outside [-1, 1]
    clipped = ddpm_sample(big, x_T, s, generator=torch.Generator().manual_seed(2), clip_x0=True)
    assert clipped.abs().max().item() <= 1.0 + 1e-6


# ---------------------------------------------------------------------------- classifier-free guidance
class FakeCondModel:
    """eps = x * 0 + (mean of the context) per sample; counts calls and batch sizes."""

    def __init__(self):
        self.batches = []
        self.masks = []

    def __call__(self, x, t, context, context_mask=None):
        self.batches.append(x.shape[0])
        self.masks.append(context_mask)
        return torch.zeros_like(x) + context.mean(dim=(1, 2)).view(-1, 1, 1, 1)


def test_guided_eps_formula_and_single_batched_call():
    model = FakeCondModel()
    x, t = torch.randn(3, 4, 2, 2), torch.tensor([5, 5, 5])
    cond = torch.full((3, 2, 8), 2.0)
    uncond = torch.full((1, 2, 8), 0.5)                 # broadcast over the batch
    eps = guided_eps(model, x, t, cond, uncond, scale=3.0)
    assert model.batches == [6]                         # ONE call on [uncond; cond]
    assert torch.allclose(eps, torch.full_like(x, 0.5 + 3.0 * (2.0 - 0.5)))
    with pytest.raises(ValueError, match="guidance scale"):
        guided_eps(model, x, t, cond, uncond, scale=-1.0)


def test_guided_eps_concatenates_masks_uncond_first():
    model = FakeCondModel()
    x, t = torch.randn(2, 1, 2, 2), torch.tensor([1, 1])
    cm = torch.tensor([[True, False], [True, True]])
    guided_eps(model, x, t, torch.zeros(2, 2, 4), torch.zeros(1, 2, 4), 2.0, context_mask=cm)
    assert model.masks[0].tolist() == [[True, True], [True, True], [True, False], [True, True]]


def test_cfg_model_scales_and_sampling():
    model = FakeCondModel()
    cond, uncond = torch.full((1, 2, 8), 1.0), torch.full((1, 2, 8), -1.0)
    x, t = torch.zeros(2, 4, 2, 2), torch.tensor([3, 3])
    assert torch.allclose(cfg_model(model, cond, uncond, 1.0)(x, t), torch.full_like(x, 1.0))
    assert torch.allclose(cfg_model(model, cond, uncond, 0.0)(x, t), torch.full_like(x, -1.0))
    assert model.batches == [2, 2]                      # s = 1 and s = 0 skip the other half
    assert torch.allclose(cfg_model(model, cond, uncond, 2.5)(x, t), torch.full_like(x, -1.0 + 2.5 * 2.0))
    assert model.batches[-1] == 4
    with pytest.raises(ValueError, match="guidance scale"):
        cfg_model(model, cond, uncond, -0.5)
    s = NoiseSchedule.linear(T=100)
    model.batches.clear()
    out = ddim_sample(cfg_model(model, cond, uncond, 3.0), torch.randn(2, 4, 2, 2), s, steps=4)
    assert out.shape == (2, 4, 2, 2) and model.batches == [4] * 4
