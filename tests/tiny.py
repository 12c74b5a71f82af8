"""The tiny configs the unit tests build models from, in one place (imported by the tests and by
ddp_worker.py, which torchrun starts as a script: plain functions, not pytest fixtures)."""

from ldm_mini.text import TextEncoderConfig
from ldm_mini.unet import UNetConfig


def tiny_unet(channels: int = 2, context_dim: int = 8) -> UNetConfig:
    """A two-level UNet with cross-attention at the lower level: 8 base channels, 2 heads."""
    return UNetConfig(
        in_channels=channels,
        out_channels=channels,
        model_channels=8,
        channel_mult=(1, 2),
        attention_levels=(1,),
        num_heads=2,
        context_dim=context_dim,
    )


def tiny_text(dim: int = 8) -> TextEncoderConfig:
    """tau_theta with one layer of two heads; its width must equal the UNet's context_dim."""
    return TextEncoderConfig(dim=dim, n_layers=1, n_heads=2)
