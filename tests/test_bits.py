"""Lesson 08 (where the bits go): the terms of the variational bound, their accumulation into a
rate, the split rule, and the slider's view function."""

import math

import pytest
import torch

from ldm_mini.diffusion import NoiseSchedule
from ldm_mini.eval.bound import (
    bits_spent,
    discretized_gaussian_nll,
    evaluate_bound,
    nats_to_bits_per_dim,
    normal_kl,
    prior_kl,
    respaced,
    step_terms,
)
from ldm_mini.experiments.bits import split_point
from ldm_mini.lessons.widgets import bits_view


@pytest.fixture(scope="module")
def ho():
    return NoiseSchedule.linear(T=1000, beta_start=1e-4, beta_end=0.02)


def _images(n=3, size=8, seed=0):
    """Images on the 8-bit grid, mapped to [-1, 1] as u / 127.5 - 1."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), generator=g).double() / 127.5 - 1


# ---------------------------------------------------------------- the terms, by hand


def test_normal_kl_hand_computed():
    zero = torch.zeros(1, dtype=torch.float64)
    # N(1, 1) || N(0, 1): (1 - 0)^2 / 2 = 0.5
    assert normal_kl(zero + 1, 0.0, zero, 0.0).item() == pytest.approx(0.5)
    # N(0, 1) || N(0, 4): 0.5 (log 4 - 0 + 1/4 - 1)
    assert normal_kl(zero, 0.0, zero, math.log(4)).item() == pytest.approx(0.5 * (math.log(4) + 0.25 - 1))
    # N(0.3, 0.5) || N(-0.2, 2): the general formula written out
    v1, v2, d = 0.5, 2.0, 0.5
    expected = 0.5 * (math.log(v2 / v1) + v1 / v2 + d * d / v2 - 1)
    assert normal_kl(zero + 0.3, math.log(v1), zero - 0.2, math.log(v2)).item() == pytest.approx(expected)
    # equal distributions cost nothing; the KL is never negative
    g = torch.Generator().manual_seed(1)
    m, lv = torch.randn(50, generator=g, dtype=torch.float64), torch.randn(50, generator=g, dtype=torch.float64)
    assert torch.allclose(normal_kl(m, lv, m, lv), torch.zeros(50, dtype=torch.float64), atol=1e-12)
    assert (normal_kl(m, lv, m.flip(0), lv.flip(0)) >= 0).all()


def test_discretized_gaussian_sums_to_one_over_the_grid_and_matches_the_cdf():
    grid = torch.arange(256, dtype=torch.float64) / 127.5 - 1  # every possible pixel value
    for mean, log_scale in ((0.1, math.log(0.01)), (-0.97, math.log(0.3)), (0.999, math.log(0.05))):
        p = torch.exp(-discretized_gaussian_nll(grid, torch.full_like(grid, mean), log_scale))
        assert p.sum().item() == pytest.approx(1.0, abs=1e-9)
    # an inner bin: P = Phi((x - m + h) / s) - Phi((x - m - h) / s), h = 1/255
    x, m, s = torch.tensor([128 / 127.5 - 1], dtype=torch.float64), 0.0, 0.02
    cdf = lambda v: 0.5 * (1 + math.erf(v / math.sqrt(2)))  # noqa: E731
    expected = -math.log(cdf((x.item() - m + 1 / 255) / s) - cdf((x.item() - m - 1 / 255) / s))
    assert discretized_gaussian_nll(x, torch.zeros_like(x), math.log(s)).item() == pytest.approx(expected)
    # the end bins reach to infinity: a mean far beyond +1 still gives x = +1 probability ~1
    top = torch.tensor([1.0], dtype=torch.float64)
    assert discretized_gaussian_nll(top, top + 5, math.log(0.01)).item() == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="same shape"):
        discretized_gaussian_nll(grid, grid[:3], 0.0)


def test_prior_term_closed_form(ho):
    a = ho.alphas_cumprod[-1].item()
    x0 = torch.zeros(2, 3, 4, 4, dtype=torch.float64)
    per_dim = 0.5 * (-math.log(1 - a) + (1 - a) - 1)  # KL(N(0, 1 - a) || N(0, 1))
    assert torch.allclose(prior_kl(x0, ho), torch.full((2,), 48 * per_dim, dtype=torch.float64))
    ones = torch.ones(1, 3, 4, 4, dtype=torch.float64)
    assert prior_kl(ones, ho).item() == pytest.approx(48 * (per_dim + 0.5 * a))  # + (sqrt(a) x0)^2 / 2


def test_nats_to_bits_per_dim():
    assert nats_to_bits_per_dim(torch.tensor(math.log(2) * 3072), 3072).item() == pytest.approx(1.0)


def test_respaced_keeps_alpha_bar_and_with_S_equal_T_is_the_schedule(ho):
    tau, sub = respaced(ho, 100)
    assert tau[0] == 0 and tau[-1] == ho.T - 1 and len(tau) == 100 and (tau.diff() > 0).all()
    assert torch.allclose(sub.alphas_cumprod, ho.alphas_cumprod[tau], rtol=1e-12)
    tau, sub = respaced(ho, ho.T)
    assert torch.equal(tau, torch.arange(ho.T)) and torch.allclose(sub.betas, ho.betas, rtol=1e-10)
    with pytest.raises(ValueError, match="between 2 and T"):
        respaced(ho, 1)


# ---------------------------------------------------------------- one step, and a perfect model


def test_step_kl_is_hos_weighted_eps_error(ho):
    """KL(q || p_theta) = beta^2 / (2 beta_tilde alpha (1 - alpha_bar)) ||eps - eps_theta||^2 (Ho et al. Eq. 12)."""
    tau, sub = respaced(ho, 50)
    k = 20
    t = int(tau[k])
    x0 = _images(2) * 0.5  # away from +-1, so the clip of x0_hat does not bite
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(2))
    delta = 0.01
    out = step_terms(lambda x_t, tt: noise.float() + delta, x0, t, k, ho, sub, noise)
    beta, alpha, a = sub.betas[k].item(), sub.alphas[k].item(), sub.alphas_cumprod[k].item()
    beta_tilde = sub.posterior_variance[k].item()
    expected = beta**2 / (2 * beta_tilde * alpha * (1 - a)) * delta**2 * x0[0].numel()
    assert torch.allclose(out["nats"], torch.full((2,), expected, dtype=torch.float64), rtol=1e-4)
    # distortion: x0_hat = x0 - sqrt(1 - a) / sqrt(a) delta, on the 0..255 scale
    rmse = math.sqrt(out["sq_err"][0].item() / x0[0].numel())
    assert rmse == pytest.approx(127.5 * math.sqrt(1 - a) / math.sqrt(a) * delta, rel=1e-4)
    assert out["x_t"].shape == x0.shape and out["x0_hat"].shape == x0.shape


def test_a_perfect_model_spends_no_bits_on_the_steps(ho):
    """An oracle that knows x_0 predicts the true noise: every L_t is 0, x0_hat = x_0, and only
    the prior and the decoder (whose width beta_1 is fixed) cost anything."""
    x0 = _images(3)

    def oracle(x_t, t):
        return ho.predict_eps_from_x0(x_t.double(), t, x0)

    result = evaluate_bound(oracle, x0, ho, steps=20, seed=0, keep=2)
    assert torch.allclose(result["step_bits"][1:], torch.zeros(19, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(result["distortion"], torch.zeros(20, dtype=torch.float64), atol=1e-3)
    sigma = math.sqrt(ho.betas[0].item())
    p_inner = math.erf(1 / 255 / sigma / math.sqrt(2))  # P(|N(0, sigma^2)| < half a bin)
    p_edge = 0.5 * (1 + p_inner)  # the end bins extend to infinity on one side
    edge = (x0.abs() == 1).double().mean().item()
    expected_decoder = -((1 - edge) * math.log(p_inner) + edge * math.log(p_edge)) / math.log(2)
    assert result["decoder_bits"] == pytest.approx(expected_decoder, rel=1e-4)
    assert result["total_bits"] == pytest.approx(result["prior_bits"] + expected_decoder, rel=1e-4)
    # the rate curve: only L_T until the very end
    assert torch.allclose(result["rate"], torch.full((20,), result["prior_bits"], dtype=torch.float64), atol=1e-6)


def test_bits_spent_accumulates_from_T_down():
    rate = bits_spent(0.1, torch.tensor([1.0, 2.0, 3.0]))
    assert torch.allclose(rate, torch.tensor([5.1, 3.1, 0.1], dtype=torch.float64))
    assert rate[0].item() + 1.0 == pytest.approx(6.1)  # the whole bound: R_0 + L_0
    with pytest.raises(ValueError, match="1-D"):
        bits_spent(0.0, torch.zeros(2, 2))


def test_evaluate_bound_shapes_and_sense(ho):
    x0 = _images(5)
    zero = lambda x_t, t: torch.zeros_like(x_t)  # noqa: E731  (a model that has learned nothing)
    r = evaluate_bound(zero, x0, ho, steps=10, seed=0, batch_size=2, keep=2)
    assert r["t"].shape == (10,) and r["step_bits"].shape == (10,) and r["rate"].shape == (10,)
    assert (
        r["distortion"].shape == (10,) and r["x_t"].shape == (10, 2, 3, 8, 8) and r["x0_hat"].shape == (10, 2, 3, 8, 8)
    )
    assert r["x0"].shape == (2, 3, 8, 8)
    assert (r["step_bits"] >= 0).all() and r["total_bits"] > r["prior_bits"] > 0
    assert r["total_bits"] == pytest.approx(r["rate"][0].item() + r["decoder_bits"])
    assert (r["rate"].diff() <= 0).all()  # bits only accumulate as t falls
    again = evaluate_bound(zero, x0, ho, steps=10, seed=0, batch_size=5, keep=2)  # batching does not matter
    assert again["total_bits"] == pytest.approx(r["total_bits"], rel=1e-9)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        evaluate_bound(zero, x0 * 2, ho, steps=10)
    with pytest.raises(ValueError, match="images"):
        evaluate_bound(zero, x0[0], ho, steps=10)


# ---------------------------------------------------------------- the split rule


def test_split_point_rule():
    t = torch.tensor([0, 250, 500, 750, 999])
    distortion = torch.tensor([1.0, 2.0, 10.0, 50.0, 100.0])
    rate = torch.tensor([9.0, 8.0, 3.0, 1.0, 0.5])
    s = split_point(t, rate, distortion, total_bits=10.0)
    # threshold = 1 + 0.1 (100 - 1) = 10.9: first reached (going down from T) at t = 500
    assert s["threshold"] == pytest.approx(10.9) and s["t"] == 500 and s["index"] == 2
    assert s["semantic_bits"] == pytest.approx(3.0) and s["perceptual_bits"] == pytest.approx(7.0)
    assert s["perceptual_share"] == pytest.approx(0.7)
    assert split_point(t, rate, distortion, 10.0, fraction=0.5)["t"] == 750  # threshold 50.5
    with pytest.raises(ValueError, match="fraction"):
        split_point(t, rate, distortion, 10.0, fraction=1.5)


# ---------------------------------------------------------------- the slider


def test_bits_view_snaps_to_evaluated_steps(ho):
    x0 = _images(3)
    zero = lambda x_t, t: torch.zeros_like(x_t)  # noqa: E731
    r = evaluate_bound(zero, x0, ho, steps=10, seed=0, keep=2)
    v = bits_view(r, 450, image=1)
    k = int((r["t"] - 450).abs().argmin())
    assert v["t"] == int(r["t"][k]) and v["index"] == k
    assert v["bits_spent"] == pytest.approx(r["rate"][k].item())
    assert v["share"] == pytest.approx(r["rate"][k].item() / r["total_bits"])
    assert torch.allclose(v["x_t_image"], ((r["x_t"][k, 1] + 1) / 2).clamp(0, 1))
    assert torch.allclose(v["x0_hat_image"], ((r["x0_hat"][k, 1] + 1) / 2).clamp(0, 1))
    assert v["x_t_image"].shape == (3, 8, 8) and 0 <= v["x0_hat_image"].min() and v["x0_hat_image"].max() <= 1
    assert bits_view(r, 999)["region"] == "semantic" and bits_view(r, 0)["region"] == "perceptual"
    assert bits_view(r, 0)["bits_spent"] == pytest.approx(r["total_bits"] - r["decoder_bits"])
    with pytest.raises(ValueError, match="outside"):
        bits_view(r, 1000)
    with pytest.raises(ValueError, match="only 2 images"):
        bits_view(r, 10, image=2)


# ---------------------------------------------------------------- the shipped pixel model


def test_shipped_pixel_model_is_a_sensible_likelihood_model():
    """shapes-pixel loads, is small, and its bound on a few test images lies between the decoder's
    floor and raw 8 bits/dim, far below what an untrained model pays."""
    from ldm_mini import load_pretrained
    from ldm_mini.checkpoints import CHECKPOINT_DIR, read_manifest
    from ldm_mini.data import images_uint8, load_shapes, to_model_range
    from ldm_mini.eval.bound import unconditional_eps

    if "shapes-pixel" not in read_manifest():
        pytest.skip("shapes-pixel not built: python -m ldm_mini pretrained --only shapes-pixel")
    model = load_pretrained("shapes-pixel")
    assert model.autoencoder is None and model.config.f == 1
    assert (CHECKPOINT_DIR / "shapes-pixel.safetensors").stat().st_size < 3.5e6
    x0 = to_model_range(images_uint8(load_shapes(8, "test", seed=0)))
    r = evaluate_bound(unconditional_eps(model), x0, model.schedule, steps=20, seed=0)
    floor = -math.log2(math.erf(1 / 255 / math.sqrt(model.schedule.betas[0].item()) / math.sqrt(2)))
    assert 0.5 * floor < r["total_bits"] < 8
    untrained = evaluate_bound(lambda x, t: torch.zeros_like(x), x0, model.schedule, steps=20, seed=0)
    assert r["total_bits"] < untrained["total_bits"] / 5
    assert r["distortion"][-1] > 5 * r["distortion"][0]  # the guess improves from t = T to t = 0


def test_plot_rate_distortion_log_axis_shows_the_semantic_region():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = torch.arange(0, 1000, 100)
    rate = torch.logspace(-0.3, -3.5, 10)  # bits spent so far fall with t (index 0 is t = 0)
    distortion = torch.linspace(0.5, 120.0, 10)
    results = {"rate": rate.tolist(), "distortion": distortion.tolist(), "total_bits": 2.5,
               "split": split_point(t, rate, distortion, total_bits=2.5)}
    from ldm_mini.experiments.bits import plot_rate_distortion

    fig = plot_rate_distortion(results, log_rate=True)
    ax = fig.axes[0]
    left, right = ax.get_xlim()
    assert ax.get_xscale() == "log" and 0 < left < rate.min().item() and right > 2.5
    # on the log axis the semantic band (up to the split's rate) spans a visible part of the width
    share = (math.log(results["split"]["rate"]) - math.log(left)) / (math.log(right) - math.log(left))
    assert share > 0.05, share
    plt.close(fig)
    fig = plot_rate_distortion(results)
    assert fig.axes[0].get_xscale() == "linear" and fig.axes[0].get_xlim()[0] == 0
    plt.close(fig)


def test_decoder_floor_is_the_mass_a_perfect_guess_leaves_outside_its_bin():
    """An interior pixel: a perfect x0_hat still puts only 2 Phi(h / sigma) - 1 of N(x_0, beta_1) in its
    bin (h half a bin); the end bins reach to infinity and cost less; a tiny beta_1 costs almost nothing."""
    from ldm_mini.experiments.bits import decoder_floor_bits

    half, beta_1 = 1 / 255, 1e-4
    interior = torch.full((1, 3, 2, 2), 128 / 127.5 - 1)  # grey level 128, far from the ends
    expected = -math.log2(2 * 0.5 * (1 + math.erf(half / math.sqrt(beta_1) / math.sqrt(2))) - 1)
    assert decoder_floor_bits(interior, beta_1) == pytest.approx(expected, rel=1e-9)
    white = torch.ones(1, 3, 2, 2)  # the top bin: half its Gaussian is inside already, the rest reaches +inf
    assert decoder_floor_bits(white, beta_1) < 0.5 * decoder_floor_bits(interior, beta_1)
    assert decoder_floor_bits(interior, 1e-9) < 1e-6
