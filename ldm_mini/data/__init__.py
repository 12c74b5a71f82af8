"""Built-in data: captioned shapes (drawn, never downloaded) and crops of bundled photos.

- ``captions``: the caption grammar (shapes, colours, sizes, positions, relations) and ``parse_caption``;
- ``shapes``: drawing scenes, the cached datasets, uint8 tensors and value-range conversions;
- ``photos``: crops of scikit-image's bundled photographs (lesson 01);
- ``png``: one writer for image grids as PNG files.

The public names are re-exported here: ``from ldm_mini.data import load_shapes, parse_caption``.
This package imports nothing else from ``ldm_mini``: it is the bottom layer (docs/CONVENTIONS.md, "Layers").
"""

from .captions import (
    ATTRIBUTE_VALUES,
    CAPTION_KINDS,
    COLOURS,
    POSITION_PHRASE,
    POSITIONS,
    RELATION_PHRASE,
    RELATIONS,
    SHAPES,
    SINGLE_KINDS,
    SIZES,
    caption_objects,
    parse_caption,
)
from .photos import PHOTO_SOURCES, photo, photo_crops
from .png import save_images, save_png_grid
from .shapes import (
    CACHE_DIR,
    SPLITS,
    Scene,
    ShapesConfig,
    attribute_labels,
    build_shapes,
    images_uint8,
    load_shapes,
    make_example,
    render_scene,
    sample_scene,
    to_image_range,
    to_model_range,
)

__all__ = [
    "ATTRIBUTE_VALUES", "CAPTION_KINDS", "COLOURS", "POSITION_PHRASE", "POSITIONS", "RELATION_PHRASE", "RELATIONS",
    "SHAPES", "SINGLE_KINDS", "SIZES", "parse_caption", "caption_objects", "PHOTO_SOURCES", "photo", "photo_crops",
    "CACHE_DIR",
    "SPLITS", "Scene", "ShapesConfig", "attribute_labels", "build_shapes", "images_uint8", "load_shapes",
    "make_example", "render_scene", "sample_scene", "to_image_range", "to_model_range", "save_images", "save_png_grid",
]
