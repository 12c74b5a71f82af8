"""Built-in data: captioned shapes (drawn, never downloaded) and crops of bundled photos.

Captioned shapes
----------------
Each image x holds one or two flat objects on a light background. Every object has a
shape, a colour, a size and a position, and the caption y describes them in plain English
from a small grammar:

    "a red circle"                              (size and position left open)
    "a small blue square on the left"
    "a red circle above a green triangle"       (two objects, spatial relation)
    "a yellow square and a purple circle"       (two objects, no relation: used for binding)

The attributes are stored beside the caption as columns, so the attribute classifier in
``metrics.py`` can check whether a generated image matches its prompt. Everything is a
pure function of ``(seed, split, index)``: the same call draws the same pixels on any
machine.

Objects in two-object images are stored in *canonical order*: object 1 is the one on the
left (horizontal layout) or at the top (vertical layout). A caption may mention them in
either order ("a blue square to the right of a red circle").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset, Features, Value, load_from_disk
from datasets import Image as ImageFeature
from datasets.utils.logging import disable_progress_bar
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")
COLOURS = {  # name -> RGB; saturated and far apart, so a 32x32 image shows them clearly
    "red": (220, 40, 40),
    "green": (40, 165, 60),
    "blue": (45, 80, 225),
    "yellow": (235, 200, 25),
    "purple": (140, 55, 185),
    "orange": (245, 125, 20),
}
SIZES = {"small": 0.25, "large": 0.42}  # object diameter as a fraction of the image side
POSITIONS = {  # centre of a single object, as a fraction of (width, height)
    "left": (0.27, 0.5),
    "right": (0.73, 0.5),
    "top": (0.5, 0.27),
    "bottom": (0.5, 0.73),
    "middle": (0.5, 0.5),
}
POSITION_PHRASE = {
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
    "middle": "in the middle",
}
RELATIONS = ("left of", "right of", "above", "below", "and")
RELATION_PHRASE = {"left of": "to the left of", "right of": "to the right of", "above": "above", "below": "below"}
SINGLE_KINDS = ("colour_shape", "size_colour_shape", "colour_shape_pos", "size_colour_shape_pos")
CAPTION_KINDS = SINGLE_KINDS + ("two_relation", "two_and")
SPLITS = ("train", "val", "test")

# Every categorical column with its possible values; "none" marks a missing second object.
ATTRIBUTE_VALUES = {
    "shape1": SHAPES,
    "colour1": tuple(COLOURS),
    "size1": tuple(SIZES),
    "pos1": tuple(POSITIONS),
    "shape2": ("none",) + SHAPES,
    "colour2": ("none",) + tuple(COLOURS),
    "size2": ("none",) + tuple(SIZES),
    "pos2": ("none",) + tuple(POSITIONS),
}


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


def sample_scene(rng: np.random.Generator, config: ShapesConfig = ShapesConfig()) -> Scene:
    """Draw the attributes of one image and its caption."""
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


def render_scene(rng: np.random.Generator, scene: Scene, config: ShapesConfig = ShapesConfig()) -> Image.Image:
    """Draw ``scene`` as an RGB image of ``config.image_size`` pixels a side."""
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


def make_example(seed: int, split: str, index: int, config: ShapesConfig = ShapesConfig()) -> dict:
    """One example (image + caption + attributes), a pure function of (seed, split, index)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: choose one of {SPLITS}")
    rng = _rng(seed, split, index)
    scene = sample_scene(rng, config)
    return {"image": render_scene(rng, scene, config), **asdict(scene)}


# ---------------------------------------------------------------------------- datasets

disable_progress_bar()  # our datasets build in seconds; the bars would only clutter the lessons
CACHE_DIR = Path(__file__).resolve().parent.parent / "data" / "cache"


def _features(image_size: int):
    columns = {"image": ImageFeature(), "caption": Value("string"), "caption_kind": Value("string"), "n_objects": Value("int8")}
    columns.update({name: Value("string") for name in ATTRIBUTE_VALUES})
    columns["relation"] = Value("string")
    return Features(columns)


def build_shapes(n: int, split: str = "train", seed: int = 0, config: ShapesConfig = ShapesConfig()):
    """Draw ``n`` captioned shapes as a Hugging Face ``datasets.Dataset`` (no caching)."""
    rows = [make_example(seed, split, i, config) for i in range(n)]
    columns = {key: [row[key] for row in rows] for key in rows[0]} if rows else {}
    return Dataset.from_dict(columns, features=_features(config.image_size))


def load_shapes(n: int = 20_000, split: str = "train", seed: int = 0, image_size: int = 32, cache_dir: Path | str | None = CACHE_DIR):
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
    tmp = path.with_name(path.name + ".tmp")
    ds.save_to_disk(str(tmp))
    if path.exists():
        import shutil

        shutil.rmtree(path)
    tmp.rename(path)  # atomic: a crash never leaves a half-written cache under the real name
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
            tmp = cached.with_name("pixels.tmp.npy")
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


# ---------------------------------------------------------------------------- photos

# Photographs that ship inside scikit-image and load offline (checked with 0.26; others
# would try to download). Split by *source* so no val crop comes from a train photo.
PHOTO_SOURCES = {
    "train": ("astronaut", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina", "brick", "grass", "camera", "moon"),
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


# ---------------------------------------------------------------------------- parsing captions


def parse_caption(caption: str) -> dict:
    """What a caption asks for: the inverse of the caption grammar above.

    Returns the attribute columns of a ``Scene`` (``n_objects``, ``shape1`` ... ``pos2``,
    ``relation``), where ``None`` means "the caption leaves this open":

    - one object ("a small red circle on the left"): ``shape1``, ``colour1``, and ``size1`` /
      ``pos1`` only if the caption mentions them; object 2 is ``"none"`` (the caption asks
      for one object), ``relation`` is ``""``.
    - two objects with a relation ("a blue square to the right of a red circle"): the
      relation fixes the *canonical order* of the dataset, object 1 = left / top, so this
      gives ``colour1="red", shape1="circle", pos1="left"`` and object 2 the blue square
      on the right. ``relation`` is the caption's own word ("right of"), as in the columns.
    - two objects joined by "and": objects in the order mentioned, positions ``None``
      (either order matches the image).

    Sizes are never stated for two objects, so ``size1``/``size2`` are ``None`` there.
    An unparseable caption raises ``ValueError``.
    """
    words = caption.lower().replace(",", " ").split()
    first, i = _parse_object(words, 0, caption)
    rest = " ".join(words[i:])
    if rest == "" or rest in POSITION_PHRASE.values():  # one object
        pos = next((p for p, phrase in POSITION_PHRASE.items() if phrase == rest), None)
        return {"n_objects": 1, **_numbered(first, 1), "pos1": pos, **_numbered(_NO_OBJECT, 2), "pos2": "none", "relation": ""}
    for relation in RELATIONS:  # two objects: "<object> <relation phrase> <object>"
        phrase = RELATION_PHRASE.get(relation, relation).split()
        if words[i : i + len(phrase)] == phrase:
            second, j = _parse_object(words, i + len(phrase), caption)
            if j != len(words):
                raise ValueError(f"cannot parse caption {caption!r}: unexpected words {' '.join(words[j:])!r} after the second object")
            return _two_objects(first, second, relation)
    raise ValueError(
        f"cannot parse caption {caption!r}: after {' '.join(words[:i])!r} expected nothing, a position "
        f"({', '.join(POSITION_PHRASE.values())}) or a relation ({', '.join(RELATION_PHRASE.values())}, and) "
        "followed by a second object, e.g. 'a red circle above a blue square'"
    )


_NO_OBJECT = {"shape": "none", "colour": "none", "size": "none"}


def _parse_object(words: list[str], i: int, caption: str) -> tuple[dict, int]:
    """'a [size] colour shape' starting at words[i] -> ({shape, colour, size}, index after it)."""
    start = i
    if i < len(words) and words[i] in ("a", "an"):
        i += 1
    size = words[i] if i < len(words) and words[i] in SIZES else None
    i += size is not None
    if i + 2 > len(words) or words[i] not in COLOURS or words[i + 1] not in SHAPES:
        raise ValueError(
            f"cannot parse caption {caption!r}: expected an object '[a] [size] colour shape' at "
            f"{' '.join(words[start:]) or 'the end'!r}; sizes {tuple(SIZES)}, colours {tuple(COLOURS)}, shapes {SHAPES}"
        )
    return {"shape": words[i + 1], "colour": words[i], "size": size}, i + 2


def _numbered(obj: dict, k: int) -> dict:
    return {f"shape{k}": obj["shape"], f"colour{k}": obj["colour"], f"size{k}": obj["size"]}


def _two_objects(a: dict, b: dict, relation: str) -> dict:
    # "a left of b" and "a above b" name object 1 first; "right of" and "below" name it second.
    if relation == "and":
        positions = (None, None)
    else:
        if relation in ("right of", "below"):
            a, b = b, a
        positions = ("left", "right") if relation in ("left of", "right of") else ("top", "bottom")
    return {"n_objects": 2, **_numbered(a, 1), "pos1": positions[0], **_numbered(b, 2), "pos2": positions[1], "relation": relation}
