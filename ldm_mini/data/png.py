"""Images to PNG files: one writer for every grid the package saves (samples, progress, comparisons)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from einops import rearrange
from PIL import Image


def save_png_grid(rows: torch.Tensor, path: str | Path, scale: int = 1, frame: int = 0) -> Path:
    """Save a grid of images as one PNG: ``rows`` is (r b 3 h w), float in [0, 1] or uint8; row i of
    the file shows rows[i]. ``frame`` pixels of white go around each image; ``scale`` enlarges the
    whole grid by pixel repetition. Written atomically (a half-written PNG never replaces a good one)."""
    if rows.ndim != 5 or rows.shape[2] != 3:
        raise ValueError(f"rows must be (r, b, 3, h, w), got {tuple(rows.shape)}; stack single rows with images[None]")
    if rows.dtype != torch.uint8:
        rows = (rows.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
    if frame:
        rows = torch.nn.functional.pad(rows, (frame, frame, frame, frame), value=255)
    grid = rearrange(rows.cpu(), "r b c h w -> (r h) (b w) c").numpy()
    image = Image.fromarray(grid)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    image.save(tmp, optimize=True)
    tmp.replace(path)
    return path


def save_images(images: torch.Tensor, path: str | Path, ncols: int | None = None, scale: int = 4) -> Path:
    """Save images in [0, 1] (b 3 h w) side by side, ``ncols`` per row (black fills the last row)."""
    ncols = ncols or len(images)
    nrows = math.ceil(len(images) / ncols)
    images = images.detach().float().cpu().clamp(0, 1)
    pad = images.new_zeros((nrows * ncols - len(images), *images.shape[1:]))
    return save_png_grid(rearrange(torch.cat([images, pad]), "(r c) ch h w -> r c ch h w", c=ncols), path, scale=scale)
