"""Reference solutions of lesson 06's exercises (checked by ldm_mini/lessons/exercises/lesson_06.py)."""

import torch

from ldm_mini.diffusion import NoiseSchedule
from ldm_mini.lessons.toy import ToyMixture
from ldm_mini.sampling import ddim_sigmas, ddim_step, ddim_timesteps

schedule = NoiseSchedule.linear(T=1000, beta_start=0.00085, beta_end=0.012)  # = ldm.schedule


def solution_1():
    # DDIM-10 visits tau = 1, 101, ..., 901; the first step goes from 901 down to 801
    tau = ddim_timesteps(schedule.T, 10)
    alphas, alphas_prev, sigmas = ddim_sigmas(schedule, tau, eta=1.0)
    assert tau[-1] == 901 and alphas_prev[-1] == schedule.alphas_cumprod[801]
    return sigmas[-1].item()


def solution_2():
    def ddpm_step(schedule, z_t, eps, t, z):
        a, a_prev = schedule.alphas_cumprod[t], schedule.alphas_cumprod[t - 1]
        sigma = ((1 - a_prev) / (1 - a) * (1 - a / a_prev)).sqrt()  # eta = 1
        z_prev, _ = ddim_step(z_t, eps, a, a_prev, sigma, z)
        return z_prev

    return ddpm_step


def solution_3():
    toy, a, y, s = ToyMixture(), schedule.alphas_cumprod[500].item(), 2, 5.0
    z = torch.linspace(-6, 6, 120_001, dtype=torch.float64)
    mode = z[(toy.log_p(z, a) + s * toy.log_p_y_given_z(z, a)[:, y]).argmax()].item()
    peak = a**0.5 * toy.means[y]
    return "beyond" if mode > peak + 0.05 else ("toward" if mode < peak - 0.05 else "at")
