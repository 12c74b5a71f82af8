"""Figures the lessons share: image grids with captions, cross-attention maps per word, and the LDM pipeline diagram."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from einops import rearrange
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch


def to_numpy_images(images) -> np.ndarray:
    """uint8 (b 3 h w), float [0, 1] (b 3 h w) or numpy (b h w 3) -> float numpy b h w 3 in [0, 1]."""
    if isinstance(images, torch.Tensor):
        x = images.detach().cpu()
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float().clamp(0, 1)
        return rearrange(x, "b c h w -> b h w c").numpy()
    x = np.asarray(images)
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x


def show_grid(images, titles=None, ncols: int = 8, scale: float = 1.4, fontsize: int = 8, suptitle: str | None = None):
    """Images in a grid, each with an optional (wrapped) title. Returns the figure."""
    x = to_numpy_images(images)
    nrows = int(np.ceil(len(x) / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(ncols * scale, nrows * scale * (1.35 if titles else 1.0)), squeeze=False
    )
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(x):
            ax.imshow(x[i], interpolation="nearest")
            if titles is not None:
                ax.set_title(wrap(titles[i], 18), fontsize=fontsize)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def wrap(text: str, width: int) -> str:
    """Break ``text`` into lines of at most ``width`` characters, at spaces."""
    lines, line = [], ""
    for word in str(text).split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join(lines + [line])


def _box(ax, xy, text, colour, w=1.5, h=0.7):
    x, y = xy
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.05", fc=colour, ec="black", lw=1))
    ax.text(x, y, text, ha="center", va="center", fontsize=9)


def _arrow(ax, a, b, label=None):
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=14, lw=1.2, color="black"))
    if label:
        ax.text((a[0] + b[0]) / 2, (a[1] + b[1]) / 2 + 0.22, label, ha="center", fontsize=8, color="dimgray")


def pipeline_figure():
    """The paper's Figure 3 in miniature: pixel space, latent space and conditioning."""
    fig, ax = plt.subplots(figsize=(11, 4.2))
    ax.set_xlim(0, 13.5)
    ax.set_ylim(0, 5)
    ax.axis("off")
    pixel, latent, cond = "#fde2c8", "#d7e8fb", "#e3f4d7"
    ax.add_patch(FancyBboxPatch((0.1, 0.2), 2.2, 4.5, boxstyle="round,pad=0.05", fc="#fff6ee", ec="none"))
    ax.text(1.2, 4.5, "pixel space", ha="center", fontsize=9, style="italic")
    ax.add_patch(FancyBboxPatch((2.6, 0.2), 8.2, 4.5, boxstyle="round,pad=0.05", fc="#f1f7ff", ec="none"))
    ax.text(6.7, 4.5, "latent space (h = H/f, w = W/f)", ha="center", fontsize=9, style="italic")
    _box(ax, (1.2, 3.5), "image x\nH x W x 3", pixel)
    _box(ax, (3.6, 3.5), "encoder E", latent)
    _box(ax, (5.6, 3.5), "z_0 = scale * E(x)\nh x w x c", latent)
    _box(ax, (8.3, 3.5), "z_T ~ N(0, I)", latent)
    _arrow(ax, (1.95, 3.5), (2.85, 3.5))
    _arrow(ax, (4.35, 3.5), (4.85, 3.5))
    _arrow(ax, (6.35, 3.5), (7.55, 3.5), "q(z_t | z_0)")
    _box(ax, (8.3, 1.9), "UNet eps_theta\n(z_t, t, tau_theta(y))", latent, w=2.2, h=0.9)
    _arrow(ax, (8.3, 3.15), (8.3, 2.35), "")
    ax.text(8.45, 2.75, "denoise T -> 0\n(DDPM / DDIM)", fontsize=8, color="dimgray")
    _box(ax, (5.6, 0.9), "z_0 (denoised)", latent)
    _arrow(ax, (7.2, 1.7), (6.35, 1.05))
    _box(ax, (3.6, 0.9), "decoder D", latent)
    _arrow(ax, (4.85, 0.9), (4.35, 0.9))
    _box(ax, (1.2, 0.9), "image x~\n= D(z_0)", pixel)
    _arrow(ax, (2.85, 0.9), (1.95, 0.9))
    _box(ax, (12.2, 3.5), 'caption y\n"a red circle"', cond, w=2.0)
    _box(ax, (12.2, 1.9), "text encoder\ntau_theta", cond, w=2.0)
    _arrow(ax, (12.2, 3.15), (12.2, 2.25))
    _arrow(ax, (11.2, 1.9), (9.4, 1.9), "cross-attention\n(K, V)")
    ax.set_title("Latent diffusion: compress once with (E, D), then learn to generate in the small latent space")
    fig.tight_layout()
    return fig


def show_word_maps(image: torch.Tensor, maps: dict, words: list[str], title: str):
    """Where each token is read (lessons 04 and 10): the image (3 h w in [0, 1]), then one panel
    per token and resolution, the token's cross-attention map (stretched to its own range; bright =
    read here) over a grey copy of the image, with its mean weight. ``maps`` is {resolution r:
    (len(words), r, r) maps}, one row of panels per resolution.

    Each panel's mean weight is written *under* it and the token over the top row, and the figure
    uses matplotlib's constrained layout, which reserves room for every label: no text is drawn
    over an image (tight_layout left the second row's labels on the first row's images)."""
    grey = image.mean(0)
    fig, axes = plt.subplots(
        len(maps), len(words) + 1, figsize=(1.5 * (len(words) + 1), 1.7 * len(maps) + 0.5), squeeze=False,
        layout="constrained",
    )
    for row, (r, m) in enumerate(maps.items()):
        axes[row, 0].imshow(image.permute(1, 2, 0).numpy())
        axes[row, 0].set_ylabel(f"{r}x{r} layers", fontsize=9)
        for j, word in enumerate(words):
            ax = axes[row, j + 1]
            ax.imshow(grey.numpy(), cmap="gray", vmin=0, vmax=1)
            ax.imshow(m[j].numpy(), cmap="inferno", alpha=0.7)
            ax.set_xlabel(f"mean {m[j].mean():.2f}", fontsize=8, labelpad=2)
            if row == 0:
                ax.set_title(word, fontsize=9)
    axes[0, 0].set_title("image", fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    return fig
