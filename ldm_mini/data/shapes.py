"""Captioned shapes: drawn, never downloaded (the grammar is in ``captions.py``).

Everything is a pure function of ``(seed, split, index)``: the same call draws the same pixels
on any machine. ``load_shapes`` caches a drawn split in data/cache/ as a Hugging Face dataset;
``images_uint8`` turns it into a uint8 tensor (b 3 H W); ``to_model_range`` and
``to_image_range`` convert between the two value ranges used everywhere.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset, Features, Value, load_from_disk
from datasets import Image as ImageFeature
from datasets.utils.logging import disable_progress_bar
from PIL import Image, ImageDraw

from .captions import (
    ATTRIBUTE_VALUES,
    COLOURS,
    POSITION_PHRASE,
    POSITIONS,
    RELATION_PHRASE,
    SHAPES,
    SINGLE_KINDS,
    SIZES,
)

SPLITS = ("train", "val", "test")



@dataclass
class ShapesConfig:
    """How the captioned shapes are drawn."""

    image_size: int = 32  # H = W; 32 by default, 64 also works
    p_two: float = 0.5  # share of images with two objects
    supersample: int = 2  # draw at 2x and shrink, for smooth anti-aliased edges
    jitter: float = 0.05  # random shift of an object's centre, fraction of the side
    colour_jitter: int = 12  # +- per RGB channel, so no two images are exactly alike


@dataclass
class Scene:
    """The attributes of one image; the same fields become the dataset's columns."""

    caption: str
    caption_kind: str
    n_objects: int
    shape1: str
    colour1: str
    size1: str
    pos1: str
    shape2: str = "none"
    colour2: str = "none"
    size2: str = "none"
    pos2: str = "none"
    relation: str = ""


# ---------------------------------------------------------------------------- scenes


def _rng(seed: int, split: str, index: int) -> np.random.Generator:
    # One independent stream per (seed, split, index): splits can never share a draw.
    return np.random.default_rng([seed, SPLITS.index(split), index])


def _pick(rng: np.random.Generator, options) -> str:
    options = tuple(options)
    return options[int(rng.integers(len(options)))]


def _object_phrase(colour: str, shape: str, size: str | None = None) -> str:
    words = f"{size} {colour} {shape}" if size else f"{colour} {shape}"
    return ("an " if words[0] in "aeiou" else "a ") + words


def sample_scene(rng: np.random.Generator, config: ShapesConfig | None = None) -> Scene:
    """Draw the attributes of one image and its caption."""
    config = config or ShapesConfig()
    if rng.random() >= config.p_two:
        return _single_scene(rng)
    return _two_scene(rng)


def _single_scene(rng: np.random.Generator) -> Scene:
    shape, colour = _pick(rng, SHAPES), _pick(rng, COLOURS)
    size, pos = _pick(rng, SIZES), _pick(rng, POSITIONS)
    kind = _pick(rng, SINGLE_KINDS)
    caption = _object_phrase(colour, shape, size if kind.startswith("size") else None)
    if kind.endswith("pos"):
        caption += " " + POSITION_PHRASE[pos]
    return Scene(caption, kind, 1, shape, colour, size, pos)


def _two_scene(rng: np.random.Generator) -> Scene:
    # Two different shapes in two different colours, so "which colour went where" is
    # always a well-posed question (lesson 10 on attribute binding needs this).
    shapes = rng.permutation(len(SHAPES))[:2]
    colours = rng.permutation(len(COLOURS))[:2]
    (s1, s2), (c1, c2) = [SHAPES[i] for i in shapes], [tuple(COLOURS)[i] for i in colours]
    z1, z2 = _pick(rng, SIZES), _pick(rng, SIZES)
    horizontal = rng.random() < 0.5
    p1, p2 = ("left", "right") if horizontal else ("top", "bottom")
    first, second = _object_phrase(c1, s1), _object_phrase(c2, s2)
    if rng.random() < 0.5:  # "a and b", mentioned in either order
        relation, kind = "and", "two_and"
        caption = f"{first} and {second}" if rng.random() < 0.5 else f"{second} and {first}"
    else:
        kind = "two_relation"
        flipped = rng.random() < 0.5  # describe object 2 first: "b to the right of a"
        if horizontal:
            relation = "right of" if flipped else "left of"
        else:
            relation = "below" if flipped else "above"
        a, b = (second, first) if flipped else (first, second)
        caption = f"{a} {RELATION_PHRASE[relation]} {b}"
    return Scene(caption, kind, 2, s1, c1, z1, p1, s2, c2, z2, p2, relation)


# ---------------------------------------------------------------------------- drawing


def _jittered_colour(rng: np.random.Generator, name: str, amount: int) -> tuple[int, int, int]:
    rgb = np.array(COLOURS[name]) + rng.integers(-amount, amount + 1, size=3)
    return tuple(int(v) for v in np.clip(rgb, 0, 255))


def _draw_object(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, d: float, fill) -> None:
    r = d / 2
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "square":
        s = r * 0.9  # a square looks bigger than a circle of the same width
        draw.rectangle([cx - s, cy - s, cx + s, cy + s], fill=fill)
    else:  # an upright triangle whose bounding box is the object's box
        draw.polygon([(cx, cy - r), (cx - r, cy + r * 0.85), (cx + r, cy + r * 0.85)], fill=fill)


def _centre(rng: np.random.Generator, scene: Scene, which: int, config: ShapesConfig) -> tuple[float, float]:
    pos = scene.pos1 if which == 1 else scene.pos2
    x, y = POSITIONS[pos]
    if scene.n_objects == 2:
        # Two objects sit in the two halves; jitter only across the split, so they never touch.
        along, across = rng.uniform(-0.01, 0.01), rng.uniform(-config.jitter, config.jitter)
        x, y = (x + along, y + across) if pos in ("left", "right") else (x + across, y + along)
    else:
        x, y = x + rng.uniform(-config.jitter, config.jitter), y + rng.uniform(-config.jitter, config.jitter)
    return x, y


def render_scene(rng: np.random.Generator, scene: Scene, config: ShapesConfig | None = None) -> Image.Image:
    """Draw ``scene`` as an RGB image of ``config.image_size`` pixels a side."""
    config = config or ShapesConfig()
    big = config.image_size * config.supersample
    background = tuple(int(v) for v in 240 + rng.integers(-10, 11, size=3))
    img = Image.new("RGB", (big, big), background)
    draw = ImageDraw.Draw(img)
    objects = [(1, scene.shape1, scene.colour1, scene.size1)]
    if scene.n_objects == 2:
        objects.append((2, scene.shape2, scene.colour2, scene.size2))
    for which, shape, colour, size in objects:
        x, y = _centre(rng, scene, which, config)
        fill = _jittered_colour(rng, colour, config.colour_jitter)
        _draw_object(draw, shape, x * big, y * big, SIZES[size] * big, fill)
    return img.resize((config.image_size, config.image_size), Image.BOX)


def make_example(seed: int, split: str, index: int, config: ShapesConfig | None = None) -> dict:
    """One example (image + caption + attributes), a pure function of (seed, split, index)."""
    config = config or ShapesConfig()
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: choose one of {SPLITS}")
    rng = _rng(seed, split, index)
    scene = sample_scene(rng, config)
    return {"image": render_scene(rng, scene, config), **asdict(scene)}


# ---------------------------------------------------------------------------- datasets

disable_progress_bar()  # our datasets build in seconds; the bars would only clutter the lessons
CACHE_DIR = Path(__file__).resolve().parents[2] / "data" / "cache"


def _features(image_size: int):
    columns = {
        "image": ImageFeature(),
        "caption": Value("string"),
        "caption_kind": Value("string"),
        "n_objects": Value("int8"),
    }
    columns.update({name: Value("string") for name in ATTRIBUTE_VALUES})
    columns["relation"] = Value("string")
    return Features(columns)


def build_shapes(n: int, split: str = "train", seed: int = 0, config: ShapesConfig | None = None):
    """Draw ``n`` captioned shapes as a Hugging Face ``datasets.Dataset`` (no caching)."""
    config = config or ShapesConfig()
    rows = [make_example(seed, split, i, config) for i in range(n)]
    columns = {key: [row[key] for row in rows] for key in rows[0]} if rows else {}
    return Dataset.from_dict(columns, features=_features(config.image_size))


def load_shapes(
    n: int = 20_000, split: str = "train", seed: int = 0, image_size: int = 32, cache_dir: Path | str | None = CACHE_DIR
):
    """The captioned shapes, built once and cached under ``data/cache/`` (git-ignored).

    A missing or unreadable cache is simply rebuilt. ``cache_dir=None`` skips the cache.
    """
    config = ShapesConfig(image_size=image_size)
    if cache_dir is None:
        return build_shapes(n, split, seed, config)
    path = Path(cache_dir) / f"shapes-{image_size}px-seed{seed}-{split}-{n}"
    if path.exists():
        try:
            return load_from_disk(str(path))
        except Exception:  # a half-written or foreign folder: draw it again
            pass
    ds = build_shapes(n, split, seed, config)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")  # one per process: two may draw the same split at once
    ds.save_to_disk(str(tmp))
    try:
        tmp.rename(path)  # atomic: a crash never leaves a half-written cache under the real name
    except OSError:  # the folder is there: another process finished first, or it is unreadable
        try:
            ds = load_from_disk(str(path))
            shutil.rmtree(tmp)
            return ds
        except Exception:
            shutil.rmtree(path)
            tmp.rename(path)
    return load_from_disk(str(path))


def images_uint8(ds) -> torch.Tensor:
    """All images of ``ds`` as one uint8 tensor, b 3 h w (compact: 20k images are 61 MB).

    Decoding 20k PNGs takes seconds, so a cached dataset keeps the decoded pixels in a
    ``pixels.npy`` beside it and reuses them.
    """
    cached = _pixels_path(ds)
    pixels = np.load(cached) if cached is not None and cached.exists() else None
    if pixels is None or len(pixels) != len(ds):
        pixels = np.stack(ds.with_format("numpy")["image"])  # b h w 3
        if cached is not None:
            tmp = cached.with_name(f"pixels.tmp{os.getpid()}.npy")  # one per process, as in load_shapes
            np.save(tmp, pixels)
            tmp.replace(cached)
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()


def _pixels_path(ds) -> Path | None:
    # A dataset loaded from our cache knows its folder through its arrow files. A subset
    # (ds.select, ds.shuffle) shares those files but not their rows: it gets no pixel cache.
    files = getattr(ds, "cache_files", None)
    if not files or getattr(ds, "_indices", None) is not None:
        return None
    folder = Path(files[0]["filename"]).parent
    return folder / "pixels.npy" if folder.name.startswith("shapes-") else None


def to_model_range(x_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], the range the autoencoder sees."""
    return x_uint8.float() / 127.5 - 1.0


def to_image_range(x: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> float [0, 1] (clamped), for plotting and metrics."""
    return ((x + 1.0) / 2.0).clamp(0.0, 1.0)


def attribute_labels(ds) -> dict[str, torch.Tensor]:
    """Each attribute column as integer class labels (indices into ATTRIBUTE_VALUES)."""
    labels = {}
    for name, values in ATTRIBUTE_VALUES.items():
        index = {v: i for i, v in enumerate(values)}
        labels[name] = torch.tensor([index[v] for v in ds[name]], dtype=torch.long)
    return labels
