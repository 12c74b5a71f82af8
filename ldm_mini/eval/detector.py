"""A rule-based detector for the captioned shapes: no network, nothing trained.

The attribute classifier of ``metrics.py`` judges generated images, but it is also the
perceptual loss the autoencoders were trained against, so a second opinion must come from
something no model ever saw. This one reads an image the way the scenes are drawn in
``data.py``: flat objects in six saturated colours on a light grey background.

1. **Background**: the median colour of the 1-pixel border (objects never reach the border).
2. **Coverage** alpha of each pixel: how far it has moved from the background towards the
   nearest palette colour, in [0, 1]. Anti-aliased edges get fractional alpha.
3. **Objects**: connected blobs (8-connectivity, bridging 1-pixel gaps) of pixels with alpha >= 0.5; a blob in which
   two palette colours each hold a quarter is two touching objects and is split by colour;
   tiny blobs (fewer than ``min_area`` pixels) are noise, not objects.
4. Per blob:
   - **colour**: the palette colour nearest to the mean colour of its well-covered pixels;
   - **shape**: a triangle narrows upwards: the mean width of its top third of rows is under
     half that of its bottom third (its *taper*), where circles and squares have ~1. A square
     then differs from a circle by how much of its bounding box it fills, area / (width *
     height) with soft (alpha-weighted) extents (square ~0.9-1, its corners rounded by the
     decoder in generated images; circle pi/4 ~ 0.78), plus a quarter of the coverage of the
     box's corner pixels (a square fills them, a circle leaves them empty);
   - **size**: the larger side of the soft bounding box (small ~8 px, large ~13 px at 32 px);
   - **position**: the centre of the soft bounding box, named by the nearest of the five
     single-object positions (one object) or by the layout of the pair (two objects).

``score_caption`` then says whether a detection satisfies a caption, with the same
definitions as ``metrics.judge_caption`` and ``experiments.binding.score_binding``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from ldm_mini.data import COLOURS, POSITIONS, parse_caption

PALETTE = np.array(list(COLOURS.values()), dtype=np.float64)  # 6 x 3, RGB in [0, 255]
PALETTE_NAMES = tuple(COLOURS)


@dataclass
class DetectorConfig:
    """Thresholds of the detector, calibrated on the drawn test images (see module docstring)."""

    min_area: float = 6.0  # blobs of fewer pixels (soft area) are specks, not objects
    alpha_on: float = 0.5  # a pixel belongs to an object when it covers at least half of it
    core_alpha: float = 0.8  # pixels at least this covered set the blob's colour (edges are blends)
    # Shape thresholds sit between the ranges measured on drawn test images, on their ae-kl-f4
    # reconstructions (the decoder rounds corners, as in every generated image) and on 200 samples of
    # shapes-kl-f4 labelled by the attribute classifier:
    taper_below: float = 0.55  # taper: triangle 0.17-0.44 | circle 0.65-1.56 | square 0.71-1.49
    # squareness = fill + corners / 4: circle 0.67-0.93 | square 0.95-1.31 (fill alone overlaps:
    # drawn circles reach 0.84, generated squares start at 0.83; so do the corners alone)
    square_above: float = 0.94
    large_above: float = 10.0  # soft box side in pixels at 32 px: small 7.0-8.5, large 11.6-14.1 (scales with H)


@dataclass
class DetectedObject:
    colour: str
    shape: str
    size: str
    pos: str  # one object: left/right/top/bottom/middle; two: left/right or top/bottom
    area: float  # soft area in pixels
    fill: float  # area / soft bounding box
    centre: tuple[float, float]  # (x, y) as a fraction of the image side
    box: tuple[float, float]  # soft (width, height) in pixels
    taper: float = 1.0  # top-third width / bottom-third width (see _taper)
    corners: float = 0.0  # mean coverage of the four corner pixels of its box (see _corners)


def to_uint8_hwc(image) -> np.ndarray:
    """One image as uint8 h w 3: accepts float [0, 1] or uint8, as 3 h w (torch) or h w 3."""
    x = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if x.ndim != 3 or 3 not in (x.shape[0], x.shape[-1]):
        raise ValueError(f"expected one RGB image (3 h w or h w 3), got shape {x.shape}; pass images one at a time")
    if x.shape[0] == 3 and x.shape[-1] != 3:
        x = x.transpose(1, 2, 0)  # c h w -> h w c
    if x.dtype == np.uint8:
        return x
    if x.min() < -1e-3 or x.max() > 1 + 1e-3:
        raise ValueError(
            f"float images must be in [0, 1], got [{x.min():.3f}, {x.max():.3f}]; use data.to_image_range first"
        )
    return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)


def coverage(img: np.ndarray, background: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel (h w): alpha in [0, 1], the share of the way from the background to the nearest
    palette colour, and the index of that colour. img h w 3 float, background (3,)."""
    d = img - background  # h w 3
    targets = PALETTE - background  # 6 3
    # Project each pixel on each background->colour segment; keep the colour that explains it best.
    t = np.clip(np.einsum("hwc,kc->hwk", d, targets) / (targets**2).sum(1), 0, 1)  # h w 6
    residual = np.linalg.norm(d[:, :, None, :] - t[..., None] * targets, axis=-1)  # h w 6
    best = residual.argmin(-1)
    alpha = np.take_along_axis(t, best[..., None], -1)[..., 0]
    return alpha, best


def detect(image, config: DetectorConfig = DetectorConfig()) -> list[DetectedObject]:
    """The objects of one image (float [0, 1] or uint8; 3 h w or h w 3), largest first."""
    img = to_uint8_hwc(image).astype(np.float64)
    H, W = img.shape[:2]
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    background = np.median(border, axis=0)
    alpha, nearest = coverage(img, background)
    on = alpha >= config.alpha_on
    # Group pixels across 1-pixel gaps (a small generated triangle can come out in two pieces);
    # two objects that a gap this narrow joins are separated again by colour below.
    labels, n = ndimage.label(ndimage.binary_dilation(on, structure=np.ones((3, 3))), structure=np.ones((3, 3)))
    objects = []
    for k in range(1, n + 1):
        for blob in _split_by_colour((labels == k) & on, nearest, config.min_area * (H / 32) ** 2):
            grown = ndimage.binary_dilation(blob, structure=np.ones((3, 3)))  # take in the soft edge
            own = nearest == np.bincount(nearest[blob]).argmax()  # not the edge of a touching neighbour
            a = np.where(grown & (own | blob), alpha, 0.0)
            area = a.sum()
            if area >= config.min_area * (H / 32) ** 2:
                objects.append(_describe_blob(img, a, blob, area, config, H, W))
    objects.sort(key=lambda o: -o.area)
    _name_positions(objects)
    return objects


def _split_by_colour(blob: np.ndarray, nearest: np.ndarray, min_area: float) -> list[np.ndarray]:
    """Two touching objects form one blob; split it by nearest palette colour when two colours
    each hold a quarter of it and at least ``min_area`` pixels. A blob of one colour with a few
    off-colour pixels (a blurry generated object) stays whole."""
    counts = np.bincount(nearest[blob], minlength=len(PALETTE))
    big = [c for c in np.argsort(-counts) if counts[c] >= max(min_area, 0.25 * blob.sum())]
    if len(big) < 2:
        return [blob]
    return [blob & (nearest == c) for c in big]


def _describe_blob(
    img, a: np.ndarray, blob: np.ndarray, area: float, config: DetectorConfig, H: int, W: int
) -> DetectedObject:
    cols, rows = a.max(0), a.max(1)  # soft profile of the blob along x and along y
    width, height = cols.sum(), rows.sum()
    cx = (cols * np.arange(W)).sum() / width + 0.5
    cy = (rows * np.arange(H)).sum() / height + 0.5
    fill = area / (width * height)
    taper = _taper(a, rows)
    corners = _corners(a, cols, rows)
    core = blob & (a >= config.core_alpha)
    pixels = img[core] if core.sum() >= 3 else img[blob]
    colour = PALETTE_NAMES[int(np.linalg.norm(PALETTE - pixels.mean(0), axis=1).argmin())]
    if taper < config.taper_below:
        shape = "triangle"
    elif fill + corners / 4 > config.square_above:
        shape = "square"
    else:
        shape = "circle"
    size = "large" if max(width, height) > config.large_above * H / 32 else "small"
    return DetectedObject(
        colour,
        shape,
        size,
        "",
        float(area),
        float(fill),
        (cx / W, cy / H),
        (float(width), float(height)),
        float(taper),
        float(corners),
    )


def _corners(a: np.ndarray, cols: np.ndarray, rows: np.ndarray) -> float:
    """Mean coverage of the 2 x 2 pixels at each corner of the blob's box (columns and rows it
    covers at least half): a square fills its corners, a circle leaves them empty."""
    xs, ys = np.flatnonzero(cols >= 0.5), np.flatnonzero(rows >= 0.5)
    x0, x1, y0, y1 = xs[0], xs[-1] + 1, ys[0], ys[-1] + 1
    xe, ye = max(x1 - 2, 0), max(y1 - 2, 0)  # a box 1 pixel wide (a speck in a noisy sample) has no 2x2 corner
    patches = [
        a[y0 : y0 + 2, x0 : x0 + 2],
        a[y0 : y0 + 2, xe:x1],
        a[ye:y1, x0 : x0 + 2],
        a[ye:y1, xe:x1],
    ]
    return float(np.mean([p.mean() for p in patches]))


def _taper(a: np.ndarray, rows: np.ndarray) -> float:
    """Mean width of the blob's top third of rows over that of its bottom third: the upright
    triangle ~0.2-0.5, a circle or a square ~1."""
    widths = a.sum(1)[rows >= 0.5]  # soft width of each row the blob covers
    third = max(1, len(widths) // 3)
    return widths[:third].mean() / max(widths[-third:].mean(), 1e-6)


def _name_positions(objects: list[DetectedObject]) -> None:
    if len(objects) == 1:
        o = objects[0]
        o.pos = min(
            POSITIONS, key=lambda p: (POSITIONS[p][0] - o.centre[0]) ** 2 + (POSITIONS[p][1] - o.centre[1]) ** 2
        )
    elif len(objects) == 2:
        a, b = objects
        dx, dy = b.centre[0] - a.centre[0], b.centre[1] - a.centre[1]
        if abs(dx) >= abs(dy):
            a.pos, b.pos = ("left", "right") if dx > 0 else ("right", "left")
        else:
            a.pos, b.pos = ("top", "bottom") if dy > 0 else ("bottom", "top")
    # three or more objects: positions stay "" (no caption asks for three)


def as_attributes(objects: list[DetectedObject]) -> dict[str, str]:
    """A detection as the dataset's attribute columns (object 1 = left / top), for comparing with
    the ground truth. Three or more objects cannot be written so: raises ValueError."""
    if not 1 <= len(objects) <= 2:
        raise ValueError(f"the attribute columns hold one or two objects, the detector found {len(objects)}")
    objs = sorted(objects, key=lambda o: o.pos in ("right", "bottom"))  # canonical order
    attrs = {"n_objects": len(objs)}
    for k in (1, 2):
        o = objs[k - 1] if k <= len(objs) else None
        for field in ("shape", "colour", "size", "pos"):
            attrs[f"{field}{k}"] = getattr(o, field) if o else "none"
    return attrs


def score_caption(caption: str, objects: list[DetectedObject]) -> dict[str, bool]:
    """Does the detection satisfy the caption? The metrics that apply to it:

    - one object: ``single`` = exactly one object, of the named shape and colour;
      ``single_full`` = ``single`` and the size and position too, where the caption states them.
    - two objects: ``presence`` = both named colours and both named shapes are somewhere among
      the objects; ``binding`` = exactly two objects and they are the two named (colour, shape)
      pairs (in any order and layout); ``swapped`` = presence on exactly two objects, paired
      wrongly (a blue circle and a red square for "a red circle and a blue square");
      ``binding_layout`` = ``binding`` and, for a relation caption, the stated layout as well.
    """
    want = parse_caption(caption)
    got = [(o.colour, o.shape) for o in objects]
    if want["n_objects"] == 1:
        single = len(got) == 1 and got[0] == (want["colour1"], want["shape1"])
        stated = [k for k in ("size", "pos") if want[f"{k}1"] is not None]
        full = single and all(getattr(objects[0], k) == want[f"{k}1"] for k in stated)
        return {"single": single, "single_full": full}
    wanted = [(want["colour1"], want["shape1"]), (want["colour2"], want["shape2"])]
    colours, shapes = {c for c, _ in got}, {s for _, s in got}
    presence = all(c in colours and s in shapes for c, s in wanted)
    binding = len(got) == 2 and sorted(got) == sorted(wanted)
    layout = binding
    if binding and want["relation"] != "and":
        by_pair = {(o.colour, o.shape): o.pos for o in objects}
        layout = by_pair[wanted[0]] == want["pos1"] and by_pair[wanted[1]] == want["pos2"]
    return {
        "presence": presence,
        "binding": binding,
        "swapped": presence and len(got) == 2 and not binding,
        "binding_layout": layout,
    }


def detect_batch(images, config: DetectorConfig = DetectorConfig()) -> list[list[DetectedObject]]:
    """``detect`` for each image of a batch (b 3 h w float [0, 1] or uint8, or b h w 3)."""
    return [detect(image, config) for image in images]
