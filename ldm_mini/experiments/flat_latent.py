"""Lesson 02's control experiment: the same E and D trunks with a *flat* 1D latent instead of a 2D one."""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from ..autoencoder import AutoencoderConfig, Decoder, Encoder


class FlatLatentAutoencoder(nn.Module):
    """A control experiment for lesson 02: the same E and D trunks, but a *flat* 1D latent.

        x (b 3 H W) --E trunk--> (b C h w) --flatten, Linear--> z (b n)
          --Linear, reshape--> (b C h w) --D trunk--> x~ (b 3 H W)

    with n = c * h * w, exactly as many latent numbers as `Autoencoder`'s 2D z (b c h w)
    (f = 4, c = 4 on 32 x 32 images: n = 4 * 8 * 8 = 256). C is the trunk's width at the
    lowest resolution. The two Linear layers replace E's last convolution and D's first one.

    What changes is *structure*, not size: a convolution reuses one small kernel at every
    position, so the 2D latent keeps where things are for free. A Linear layer has a separate
    weight for every (position, channel) pair, so the flat model must learn the image layout
    from data, position by position. It has no regulariser (train it with L1, or L1 +
    perceptual); its twin for a fair comparison is an `Autoencoder` run without sampling
    (`sample_posterior=False`) and without the KL term.
    """

    def __init__(self, config: AutoencoderConfig, image_size: int = 32):
        super().__init__()
        if image_size % config.f:
            raise ValueError(f"image_size={image_size} is not divisible by f={config.f}; use a multiple of {config.f}")
        self.config, self.image_size = config, image_size
        c, h = config.latent_channels, image_size // config.f
        trunk = config.base_channels * config.channel_mult[-1]  # C: channels at the lowest resolution
        self.trunk_shape = (trunk, h, h)
        self.latent_dim = c * h * h  # n, the same count as the 2D latent's c * h * w
        self.encoder = Encoder(config, out_channels=trunk)
        self.encoder.conv_out = nn.Identity()  # E ends in norm + SiLU; the Linear below takes over
        self.to_latent = nn.Linear(trunk * h * h, self.latent_dim)  # (C h w) -> n
        self.from_latent = nn.Linear(self.latent_dim, trunk * h * h)  # n -> (C h w)
        self.decoder = Decoder(config)
        self.decoder.conv_in = nn.Identity()  # D starts from the reshaped Linear output

    def check_image(self, x: torch.Tensor) -> None:
        s, ch = self.image_size, self.config.in_channels
        if x.ndim != 4 or tuple(x.shape[1:]) != (ch, s, s):
            raise ValueError(f"expected images shaped (b, {ch}, {s}, {s}), got shape {tuple(x.shape)}; a flat "
                             f"latent fixes the image size: build FlatLatentAutoencoder(config, image_size=...)")

    def encode_latent(self, x: torch.Tensor) -> torch.Tensor:
        """z = E(x), a flat vector per image: b 3 H W -> b n."""
        self.check_image(x)
        return self.to_latent(self.encoder(x).flatten(1))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """x~ = D(z): b n -> b 3 H W."""
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"expected latents shaped (b, {self.latent_dim}), got shape {tuple(z.shape)}")
        h = rearrange(self.from_latent(z), "b (c h w) -> b c h w", c=self.trunk_shape[0], h=self.trunk_shape[1])
        return self.decoder(h)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Reconstruct x; returns (x_rec, {"z": z, "reg_loss": 0}) like `Autoencoder`."""
        z = self.encode_latent(x)
        return self.decode(z), {"z": z, "reg_loss": z.new_zeros(())}
