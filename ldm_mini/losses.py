"""The autoencoder's training objective (paper Sec. 3.1, Appendix G).

    L_AE = L1(x, x~) + w_p * perceptual(x, x~) + lambda * adversarial(D_psi(x~)) + regulariser

The perceptual and the patch-based adversarial loss keep reconstructions sharp: L1 or L2
alone average plausible details into blur. This is a simplified `LPIPSWithDiscriminator`
of the reference code:

* LPIPS needs a downloaded VGG; here any small feature network trained on our own data
  (e.g. the attribute classifier of eval/classifier.py) supplies the features.
* The learned output log-variance of the reference is dropped.
* Losses are means per element (not sums per image), so the values read like an L1 error.
  The KL term is KL per image dimension, which keeps the reference's balance between
  reconstruction and kl_weight (reference: both summed per image).
"""

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------------------- perceptual loss


def normalize_channels(feat: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Unit-length feature vector at every position (b c h w), as LPIPS."""
    return feat / (feat.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


class PerceptualLoss(nn.Module):
    """LPIPS-style distance with a feature network of our own and no learned linear weights.

    d(x, y) = sum_layers mean_hw || n(F_l(x)) - n(F_l(y)) ||^2, where n() normalises each
    position's feature vector over channels (the "baseline" variant of the LPIPS paper).

    `feature_net` is any module with a `features(x) -> list[Tensor]` method, or whose call returns
    a list of feature maps (or one tensor). Its parameters are frozen and it stays in eval mode;
    x and y must be in the range it was trained on. `feature_net=None` disables the loss (0).
    """

    def __init__(self, feature_net: Optional[nn.Module] = None):
        super().__init__()
        self.feature_net = feature_net
        if feature_net is not None:
            feature_net.requires_grad_(False)
            feature_net.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        if self.feature_net is not None:
            self.feature_net.eval()  # frozen: no dropout, no batch-norm statistics updates
        return self

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        fn = getattr(self.feature_net, "features", self.feature_net)
        feats = fn(x)
        return [feats] if isinstance(feats, torch.Tensor) else list(feats)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-image distance, shape (b,)."""
        if self.feature_net is None:
            return x.new_zeros(x.shape[0])
        dist = x.new_zeros(x.shape[0])
        for fx, fy in zip(self.features(x), self.features(y)):
            diff = (normalize_channels(fx) - normalize_channels(fy)).pow(2).sum(dim=1)  # b h w
            dist = dist + diff.flatten(1).mean(dim=1)
        return dist


# ---------------------------------------------------------------------------- adversarial loss


class NLayerDiscriminator(nn.Module):
    """PatchGAN discriminator D_psi (Isola et al. 2017): one real/fake logit per image patch.

    Each output logit sees one patch of the input. With n_layers = 3 (the reference, made for
    256 px images) a logit sees 70 x 70 pixels; our default n_layers = 2 sees 34 x 34, and on a
    32 x 32 image gives a 6 x 6 map of logits.
    """

    def __init__(self, in_channels: int = 3, base_channels: int = 64, n_layers: int = 2):
        super().__init__()
        layers = [nn.Conv2d(in_channels, base_channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        ch = base_channels
        for n in range(1, n_layers + 1):
            stride = 2 if n < n_layers else 1  # the last hidden layer keeps the resolution
            ch_out = base_channels * min(2**n, 8)
            layers += [nn.Conv2d(ch, ch_out, 4, stride=stride, padding=1, bias=False),
                       nn.BatchNorm2d(ch_out), nn.LeakyReLU(0.2)]
            ch = ch_out
        layers.append(nn.Conv2d(ch, 1, 4, stride=1, padding=1))  # b 1 h' w' logits
        self.main = nn.Sequential(*layers)
        self.apply(init_weights)

    def forward(self, x):  # b 3 H W -> b 1 h' w'
        return self.main(x)


def init_weights(m: nn.Module) -> None:
    """DCGAN initialisation, as the reference: conv ~ N(0, 0.02), norm scale ~ N(1, 0.02)."""
    if isinstance(m, nn.Conv2d):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def hinge_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss: 0.5 * (mean relu(1 - D(x)) + mean relu(1 + D(x~)))."""
    return 0.5 * (F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean())


def generator_adv_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """The autoencoder's adversarial loss: -mean D(x~) (make reconstructions look real)."""
    return -logits_fake.mean()


def adaptive_weight(rec_loss: torch.Tensor, g_loss: torch.Tensor, last_layer: torch.Tensor,
                    max_weight: float = 1e4) -> torch.Tensor:
    """lambda = ||grad_L(rec_loss)|| / (||grad_L(g_loss)|| + 1e-4), L the decoder's last layer.

    Esser et al. (VQGAN, eq. 7): balances the two gradients where they meet, so the
    adversarial term neither vanishes nor swamps reconstruction. Clamped and detached.
    """
    rec_grad = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)[0]
    g_grad = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]
    weight = rec_grad.norm() / (g_grad.norm() + 1e-4)
    return weight.clamp(0.0, max_weight).detach()


# ---------------------------------------------------------------------------- the full loss


@dataclass
class AutoencoderLossConfig:
    perceptual_weight: float = 1.0  # w_p; ignored when no feature network is given
    kl_weight: float = 1e-6  # KL-reg strength (the paper's ~1e-6: a barely regularised latent)
    codebook_weight: float = 1.0  # weight of the VQ loss (VQ-reg)
    disc_start: int = 1000  # step at which the adversarial loss switches on (warm-up before)
    disc_weight: float = 0.5  # multiplies the adaptive weight (the reference's SD setting)
    disc_channels: int = 64  # PatchGAN base channels
    disc_layers: int = 2  # PatchGAN strided layers (see NLayerDiscriminator)
    in_channels: int = 3  # image channels


class AutoencoderLoss(nn.Module):
    """Generator (autoencoder) and discriminator losses with a warm-up for the discriminator.

    Train two optimisers: one on the autoencoder with `generator_loss`, one on
    `self.discriminator.parameters()` with `discriminator_loss` (skip it while
    `disc_active(step)` is False: the discriminator loss is then 0).
    """

    def __init__(self, config: Optional[AutoencoderLossConfig] = None, feature_net: Optional[nn.Module] = None):
        super().__init__()
        self.config = config or AutoencoderLossConfig()
        self.perceptual = PerceptualLoss(feature_net)
        self.discriminator = NLayerDiscriminator(self.config.in_channels, self.config.disc_channels,
                                                 self.config.disc_layers)

    def disc_active(self, step: int) -> bool:
        return step >= self.config.disc_start

    def generator_loss(self, x: torch.Tensor, x_rec: torch.Tensor, aux: dict, step: int,
                       last_layer: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, dict]:
        """Total autoencoder loss and a dict of floats to log.

        aux: the autoencoder's forward aux ("reg_loss", and "kl" for KL-reg).
        last_layer: the decoder's last weight for the adaptive weight (None: weight 1).
        """
        cfg = self.config
        l1 = (x - x_rec).abs().mean()
        perceptual = self.perceptual(x, x_rec).mean()
        rec_loss = l1 + cfg.perceptual_weight * perceptual
        reg_weight = cfg.kl_weight if "kl" in aux else cfg.codebook_weight
        loss = rec_loss + reg_weight * aux["reg_loss"]

        g_loss = torch.zeros((), device=x.device)
        d_weight = torch.zeros((), device=x.device)
        if self.disc_active(step):
            g_loss = generator_adv_loss(self.discriminator(x_rec))
            if last_layer is not None and torch.is_grad_enabled():
                d_weight = adaptive_weight(rec_loss, g_loss, last_layer)
            else:
                d_weight = torch.ones((), device=x.device)
            loss = loss + cfg.disc_weight * d_weight * g_loss

        logs = {"loss": loss.item(), "l1": l1.item(), "perceptual": perceptual.item(),
                "reg": aux["reg_loss"].item(), "g_loss": g_loss.item(), "d_weight": d_weight.item()}
        for key in ("usage", "perplexity"):
            if key in aux:
                logs[key] = float(aux[key])
        return loss, logs

    def discriminator_loss(self, x: torch.Tensor, x_rec: torch.Tensor, step: int) -> tuple[torch.Tensor, dict]:
        """Hinge loss of D_psi on real x and detached reconstructions; 0 before `disc_start`."""
        logits_real = self.discriminator(x.detach())
        logits_fake = self.discriminator(x_rec.detach())
        disc_factor = 1.0 if self.disc_active(step) else 0.0
        loss = disc_factor * hinge_d_loss(logits_real, logits_fake)
        logs = {"d_loss": loss.item(), "logits_real": logits_real.mean().item(),
                "logits_fake": logits_fake.mean().item()}
        return loss, logs
