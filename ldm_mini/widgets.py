"""The interactive panels of the lessons.

Each panel is two parts: a *view* function that computes everything the panel shows from
its controls (plain tensors and numbers, unit-tested without a browser), and a thin
ipywidgets wrapper that draws the view in an Output widget and redraws it when a control
moves. Headless runs (nbval, `make lessons`) draw each panel once with its defaults.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from .metrics import psnr
from .rate import bits_per_dim_dct, dct_truncate

# ---------------------------------------------------------------- lesson 01: the rate slider


def rate_view(image: torch.Tensor, keep: int) -> dict:
    """Compress ``image`` (3 H W in [0, 1]) by keeping keep x keep DCT coefficients per channel.

    Returns the reconstruction, the absolute error map (H W, mean over channels), its rate in
    bits/dim and its PSNR in dB.
    """
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be (3, H, W) in [0, 1], got shape {tuple(image.shape)}")
    H, W = image.shape[-2:]
    rec = dct_truncate(image.double(), keep).float().clamp(0, 1)
    return {
        "reconstruction": rec,
        "error": (rec - image).abs().mean(0),
        "bits_per_dim": bits_per_dim_dct(keep, H, W),
        "psnr": psnr(image[None], rec[None]),
    }


def draw_rate_view(image: torch.Tensor, view: dict, title: str = ""):
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.3))
    axes[0].imshow(image.permute(1, 2, 0).numpy(), interpolation="nearest")
    axes[0].set_title(f"original\n8 bits/dim {title}", fontsize=9)
    axes[1].imshow(view["reconstruction"].permute(1, 2, 0).numpy(), interpolation="nearest")
    axes[1].set_title(f"kept: {view['bits_per_dim']:.3f} bits/dim\nPSNR {view['psnr']:.1f} dB", fontsize=9)
    axes[2].imshow(view["error"].numpy(), cmap="magma", vmin=0, vmax=0.5, interpolation="nearest")
    axes[2].set_title("|error| (what was thrown away)", fontsize=9)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return fig


def rate_panel(images: dict[str, torch.Tensor], keep: int = 8):
    """A slider for the number of kept DCT frequencies and a picker for the image."""
    import ipywidgets as w
    from IPython.display import display

    names = list(images)
    size = images[names[0]].shape[-1]
    slider = w.IntSlider(value=keep, min=1, max=size, description="keep k x k", continuous_update=False)
    picker = w.Dropdown(options=names, value=names[0], description="image")
    out = w.Output()

    def redraw(*_):
        image = images[picker.value]
        view = rate_view(image, slider.value)
        with out:
            out.clear_output(wait=True)
            draw_rate_view(image, view)
            plt.show()

    slider.observe(redraw, names="value")
    picker.observe(redraw, names="value")
    redraw()
    panel = w.VBox([w.HBox([picker, slider]), out])
    display(panel)
    return panel
