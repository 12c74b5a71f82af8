"""A 1-D Gaussian mixture whose noised densities are known in closed form, for checking the
guidance derivation of lesson 06 without a network.

Data: a class y ~ p(y) (``weights``), then z_0 | y ~ N(mu_y, std_y^2). The forward process
z_t = sqrt(alpha_bar_t) z_0 + sqrt(1 - alpha_bar_t) eps keeps each class Gaussian:

    z_t | y ~ N(sqrt(a) mu_y, a std_y^2 + 1 - a),   a = alpha_bar_t,
    p(z_t) = sum_y p(y) p(z_t | y),   p(y | z_t) = p(z_t | y) p(y) / p(z_t)   (Bayes' rule).

Everything is float64 and differentiable in z, so scores come from autograd.
"""

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ToyMixture:
    means: tuple[float, ...] = (-2.0, 0.5, 2.0)  # mu_y of each class
    stds: tuple[float, ...] = (0.3, 0.2, 0.5)  # std of z_0 within each class
    weights: tuple[float, ...] = (0.3, 0.5, 0.2)  # p(y), sums to 1

    def _params(self):
        mu = torch.tensor(self.means, dtype=torch.float64)
        var = torch.tensor(self.stds, dtype=torch.float64) ** 2
        return mu, var, torch.tensor(self.weights, dtype=torch.float64).log()

    def log_p_given_y(self, z: torch.Tensor, a: float) -> torch.Tensor:
        """log p(z_t | y) for every class: z (b,) -> (b, K), at noise level a = alpha_bar_t."""
        if not 0.0 < float(a) <= 1.0:
            raise ValueError(f"a = alpha_bar_t must lie in (0, 1], got {a}")
        mu, var, _ = self._params()
        a = float(a)
        var_t = a * var + 1.0 - a
        return -0.5 * (z[:, None] - math.sqrt(a) * mu) ** 2 / var_t - 0.5 * torch.log(2 * math.pi * var_t)

    def log_p(self, z: torch.Tensor, a: float) -> torch.Tensor:
        """log p(z_t) of the mixture: z (b,) -> (b,)."""
        return torch.logsumexp(self.log_p_given_y(z, a) + self._params()[2], dim=1)

    def log_p_y_given_z(self, z: torch.Tensor, a: float) -> torch.Tensor:
        """log p(y | z_t) by Bayes' rule, the "implicit classifier": z (b,) -> (b, K)."""
        return self.log_p_given_y(z, a) + self._params()[2] - self.log_p(z, a)[:, None]
