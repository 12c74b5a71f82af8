"""Crops of photographs that ship inside scikit-image (offline): lesson 01's natural images."""

from __future__ import annotations

import numpy as np
from PIL import Image

from .shapes import SPLITS

# Photographs that ship inside scikit-image and load offline (checked with 0.26; others
# would try to download). Split by *source* so no val crop comes from a train photo.
PHOTO_SOURCES = {
    "train": (
        "astronaut",
        "coffee",
        "rocket",
        "hubble_deep_field",
        "immunohistochemistry",
        "retina",
        "brick",
        "grass",
        "camera",
        "moon",
    ),
    "val": ("chelsea", "gravel", "coins"),
}


def photo(name: str, size: int | None = None) -> np.ndarray:
    """A bundled scikit-image photo as uint8 h w 3 (grey ones repeated to RGB), optionally
    resized so its shorter side is ``size``."""
    import skimage.data

    img = np.asarray(getattr(skimage.data, name)())
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    img = img[..., :3]
    if size is not None:
        pil = Image.fromarray(img)
        scale = size / min(pil.size)
        pil = pil.resize((max(size, round(pil.width * scale)), max(size, round(pil.height * scale))), Image.LANCZOS)
        img = np.asarray(pil)
    return img


def photo_crops(n: int, size: int = 32, split: str = "train", seed: int = 0, scale: int = 128) -> np.ndarray:
    """``n`` random size x size crops (uint8, n h w 3) of the bundled photos.

    Each photo is first shrunk so its shorter side is ``scale`` pixels, so a 32x32 crop
    shows a recognisable piece of texture rather than a flat patch of a 512x512 photo.
    """
    if split not in PHOTO_SOURCES:
        raise ValueError(f"photos have splits {tuple(PHOTO_SOURCES)}, not {split!r}")
    if size > scale:
        raise ValueError(f"crop size {size} is larger than the photo scale {scale}; raise scale")
    photos = [photo(name, scale) for name in PHOTO_SOURCES[split]]
    rng = np.random.default_rng([seed, SPLITS.index(split), 99])
    crops = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        img = photos[int(rng.integers(len(photos)))]
        y, x = int(rng.integers(img.shape[0] - size + 1)), int(rng.integers(img.shape[1] - size + 1))
        crops[i] = img[y : y + size, x : x + size]
    return crops
