"""The toy mixture of lesson 06 (ldm_mini/lessons/toy.py): densities that integrate to 1, a
classifier whose probabilities sum to 1, and the closed forms at the two ends of the schedule."""

import math

import pytest
import torch

from ldm_mini.lessons.toy import ToyMixture

GRID = torch.linspace(-12, 12, 240_001, dtype=torch.float64)
DZ = (GRID[1] - GRID[0]).item()


@pytest.mark.parametrize("a", [0.999, 0.5, 0.01])
def test_densities_integrate_to_one(a):
    toy = ToyMixture()
    assert toy.log_p(GRID, a).exp().sum().item() * DZ == pytest.approx(1.0, abs=1e-9)
    per_class = toy.log_p_given_y(GRID, a).exp().sum(0) * DZ
    torch.testing.assert_close(per_class, torch.ones(3, dtype=torch.float64), atol=1e-9, rtol=0)


def test_classifier_sums_to_one_and_follows_the_prior_at_full_noise():
    toy = ToyMixture()
    z = torch.linspace(-3, 3, 7, dtype=torch.float64)
    torch.testing.assert_close(toy.log_p_y_given_z(z, 0.3).exp().sum(1), torch.ones(7, dtype=torch.float64))
    # at a -> 0 every class gives N(0, 1): z_t says nothing about y, so p(y | z_t) = p(y)
    prior = torch.tensor(toy.weights, dtype=torch.float64).expand(7, 3)
    torch.testing.assert_close(toy.log_p_y_given_z(z, 1e-16).exp(), prior, atol=1e-7, rtol=0)


def test_class_density_by_hand():
    # class 1 at a = 0.5: N(sqrt(0.5) * 0.5, 0.5 * 0.04 + 0.5) evaluated at z = 0
    var = 0.5 * 0.2**2 + 0.5
    by_hand = -0.5 * (math.sqrt(0.5) * 0.5) ** 2 / var - 0.5 * math.log(2 * math.pi * var)
    got = ToyMixture().log_p_given_y(torch.zeros(1, dtype=torch.float64), 0.5)[0, 1].item()
    assert got == pytest.approx(by_hand, abs=1e-12)


def test_bad_noise_level_is_refused():
    with pytest.raises(ValueError, match="alpha_bar"):
        ToyMixture().log_p(torch.zeros(1, dtype=torch.float64), 0.0)
