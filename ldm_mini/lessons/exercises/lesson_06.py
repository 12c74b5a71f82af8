"""Lesson 06 (sampling): checks of the three exercises. Reference solutions: solutions/lesson_06.py."""

import math

import torch

from ldm_mini.diffusion import NoiseSchedule
from ldm_mini.lessons.exercises import Verdict, close, judge, same_choice, unanswered
from ldm_mini.lessons.toy import ToyMixture
from ldm_mini.sampling import ddim_sigmas, ddim_step, ddim_timesteps

# the schedule of the shipped shapes-kl-f4 (docs/CONVENTIONS.md, Noise schedule)
SCHEDULE = NoiseSchedule.linear(T=1000, beta_start=0.00085, beta_end=0.012)


# ---------------------------------------------------------------------------- 1: computation
def _sigma_first_step_ddim10() -> float:
    tau = ddim_timesteps(SCHEDULE.T, 10)
    _, _, sigmas = ddim_sigmas(SCHEDULE, tau, eta=1.0)
    return sigmas[-1].item()  # the first step taken: from tau = 901 down to 801


def check_1(answer) -> Verdict:
    """sigma (eta = 1) of the first step of DDIM with S = 10: from t = 901 to t = 801."""
    name = "lesson 06, exercise 1"
    if answer is None:
        return unanswered(name, "put sigma of that step here, a float (a standard deviation, latent units)")
    truth = _sigma_first_step_ddim10()
    ddpm_one_step = math.sqrt(SCHEDULE.posterior_variance[901].item())
    if close(answer, ddpm_one_step, rel=1e-3):
        hint = ("that is DDPM's sqrt(beta_tilde_901), the noise of ONE step 901 -> 900; DDIM-10 jumps 100 steps "
                "at once: use alpha = alpha_bar_901 and alpha_prev = alpha_bar_801 in the sigma formula")
    elif close(answer, truth**2, rel=1e-3):
        hint = "that is sigma^2, a variance; the exercise asks for sigma, the standard deviation"
    else:
        hint = ("take alpha = alpha_bar[901], alpha_prev = alpha_bar[801] (schedule.alphas_cumprod) and "
                "sigma = eta sqrt((1 - alpha_prev) / (1 - alpha) (1 - alpha / alpha_prev)) with eta = 1")
    why = (f"sigma = {truth:.4f}, against sqrt(beta_tilde_901) = {ddpm_one_step:.4f} for a single DDPM step: "
           f"a jump of 100 steps re-draws {truth**2 / (1 - SCHEDULE.alphas_cumprod[801].item()):.0%} of the variance "
           "1 - alpha_prev as fresh noise")
    return judge(name, close(answer, truth, rel=1e-3), why, hint)


# ---------------------------------------------------------------------------- 2: code change
def _random_case(t: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    z0, eps, z = (torch.randn(64, 4, generator=g, dtype=torch.float64) for _ in range(3))
    zt = SCHEDULE.q_sample(z0, torch.full((64,), t), eps)
    eps_model = eps + 0.1 * torch.randn(64, 4, generator=g, dtype=torch.float64)  # an imperfect eps_theta
    return zt, eps_model, z


def check_2(answer) -> Verdict:
    """A function ddpm_step(schedule, z_t, eps, t, z) -> z_{t-1}, built on ddim_step."""
    name = "lesson 06, exercise 2"
    if answer is None:
        return unanswered(name, "put your function ddpm_step(schedule, z_t, eps, t, z) here "
                                "(a callable returning z_{t-1})")
    if not callable(answer):
        return judge(name, False, "",
                     "the answer is a function: def ddpm_step(schedule, z_t, eps, t, z): ... return z_prev")
    worst = 0.0
    for k, t in enumerate((1, 10, 500, 999)):
        zt, eps, z = _random_case(t, seed=k)
        tt = torch.full((len(zt),), t)
        x0_hat = SCHEDULE.predict_x0_from_eps(zt, tt, eps)
        mean, var = SCHEDULE.posterior_mean_variance(x0_hat, zt, tt)
        try:
            got = answer(SCHEDULE, zt, eps, t, z)
        except Exception as err:  # a learner's bug: say what broke instead of raising
            return judge(name, False, "", f"your function raised {type(err).__name__}: {err} (at t = {t})")
        if isinstance(got, tuple):  # ddim_step returns (z_prev, x0_hat): take z_prev
            got = got[0]
        if not isinstance(got, torch.Tensor) or got.shape != zt.shape:
            return judge(name, False, "",
                         "return z_{t-1}, a tensor shaped like z_t (ddim_step returns (z_prev, x0_hat))")
        worst = max(worst, (got - (mean + var.sqrt() * z)).abs().max().item())
    hint = ("not DDPM's step yet (max difference from the posterior sample "
            f"{worst:.2g}): DDPM goes from t to t - 1, so alpha = alpha_bar_t and alpha_prev = alpha_bar_(t-1), "
            "and its noise is sigma with eta = 1 (sigma^2 = beta_tilde_t); eta = 0 would be DDIM's deterministic step")
    return judge(name, worst < 1e-10, f"your DDIM step with eta = 1 on consecutive steps is DDPM's step "
                 f"(max difference {worst:.1e}), mean and noise both", hint)


def _wrong_step_eta0(schedule, z_t, eps, t, z):
    a, a_prev = schedule.alphas_cumprod[t], schedule.alphas_cumprod[t - 1]
    return ddim_step(z_t, eps, a, a_prev, 0.0)[0]


def _wrong_step_beta(schedule, z_t, eps, t, z):
    a, a_prev = schedule.alphas_cumprod[t], schedule.alphas_cumprod[t - 1]
    return ddim_step(z_t, eps, a, a_prev, schedule.betas[t].sqrt(), z)[0]  # DDPM's other variance choice, beta_t


# ---------------------------------------------------------------------------- 3: prediction
CHOICES_3 = ("at", "beyond", "toward")


def _guided_mode(y: int = 2, s: float = 5.0, t: int = 500) -> tuple[float, float]:
    """(argmax of p(z_t) p(y | z_t)^s, the class peak sqrt(a) mu_y) for the lesson's toy mixture."""
    toy, a = ToyMixture(), SCHEDULE.alphas_cumprod[t].item()
    z = torch.linspace(-6, 6, 120_001, dtype=torch.float64)
    log_guided = toy.log_p(z, a) + s * toy.log_p_y_given_z(z, a)[:, y]
    return z[log_guided.argmax()].item(), math.sqrt(a) * toy.means[y]


def check_3(answer) -> Verdict:
    """Where does p(z_t) p(y | z_t)^s peak for the rightmost class (y = 2), s = 5, t = 500?"""
    name = "lesson 06, exercise 3"
    if answer is None:
        return unanswered(name, f"write your prediction first, one of {CHOICES_3}")
    if not isinstance(answer, str) or answer.strip().lower() not in CHOICES_3:
        return judge(name, False, "", f"answer with one of {CHOICES_3}")
    mode, peak = _guided_mode()
    truth = "at" if abs(mode - peak) < 0.05 else ("beyond" if mode > peak else "toward")
    why = (f"the guided density peaks at z = {mode:.2f}, beyond the class's own peak sqrt(a) mu_2 = {peak:.2f}: "
           "p(y | z_t)^s keeps growing away from the other classes, so large s pushes samples past the typical "
           "member of the class (compare the s = 8 column of section 4)")
    hint = ("evaluate log p(z_t) + s log p(y | z_t) on a grid (toy.log_p, toy.log_p_y_given_z) and find its argmax; "
            "think of what p(y | z_t) does as z moves away from the other two classes")
    return judge(name, same_choice(answer, truth, CHOICES_3), why, hint)


WRONG = {
    1: [math.sqrt(SCHEDULE.posterior_variance[901].item()), _sigma_first_step_ddim10() ** 2, 0.0],
    2: [_wrong_step_eta0, _wrong_step_beta, 3.0],
    3: ["at", "toward"],
}
