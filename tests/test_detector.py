"""The rule-based detector (ldm_mini/eval/detector.py) on scenes drawn by the data module."""

import numpy as np
import pytest
import torch

from ldm_mini.data import Scene, ShapesConfig, build_shapes, images_uint8, render_scene
from ldm_mini.eval.detector import as_attributes, detect, score_caption


def draw(*objects, relation="and", seed=0) -> np.ndarray:
    """A 32 x 32 uint8 scene (h w 3) of one or two (shape, colour, size, pos) objects."""
    (s1, c1, z1, p1), rest = objects[0], objects[1:]
    extra = (
        {"shape2": rest[0][0], "colour2": rest[0][1], "size2": rest[0][2], "pos2": rest[0][3], "relation": relation}
        if rest
        else {}
    )
    kind = "two_and" if rest else "colour_shape"
    scene = Scene("", kind, len(objects), s1, c1, z1, p1, **extra)
    return np.asarray(render_scene(np.random.default_rng(seed), scene, ShapesConfig()))


@pytest.mark.parametrize("shape", ["circle", "square", "triangle"])
@pytest.mark.parametrize("size", ["small", "large"])
def test_single_object_attributes(shape, size):
    for pos in ("left", "right", "top", "bottom", "middle"):
        (obj,) = detect(draw((shape, "orange", size, pos)))
        assert (obj.shape, obj.colour, obj.size, obj.pos) == (shape, "orange", size, pos)


def test_every_colour():
    for colour in ("red", "green", "blue", "yellow", "purple", "orange"):
        (obj,) = detect(draw(("circle", colour, "small", "middle")))
        assert obj.colour == colour


def test_swapped_colours_score_binding_false():
    caption = "a red circle and a blue square"
    right = detect(draw(("circle", "red", "large", "left"), ("square", "blue", "small", "right")))
    swapped = detect(draw(("circle", "blue", "large", "left"), ("square", "red", "small", "right")))
    assert score_caption(caption, right) == {
        "presence": True,
        "binding": True,
        "swapped": False,
        "binding_layout": True,
    }
    assert score_caption(caption, swapped) == {
        "presence": True,
        "binding": False,
        "swapped": True,
        "binding_layout": False,
    }


def test_relation_layout_is_checked():
    image = detect(
        draw(("triangle", "green", "large", "top"), ("circle", "purple", "large", "bottom"), relation="above")
    )
    assert score_caption("a green triangle above a purple circle", image)["binding_layout"]
    wrong = score_caption("a purple circle above a green triangle", image)
    assert wrong["binding"] and not wrong["binding_layout"]


def test_missing_object_is_not_present():
    only_one = detect(draw(("circle", "red", "large", "left")))
    assert score_caption("a red circle and a blue square", only_one) == {
        "presence": False,
        "binding": False,
        "swapped": False,
        "binding_layout": False,
    }


def test_single_caption_checks_size_and_position():
    objects = detect(draw(("square", "yellow", "small", "left")))
    assert score_caption("a small yellow square on the left", objects) == {"single": True, "single_full": True}
    assert score_caption("a large yellow square", objects) == {"single": True, "single_full": False}
    assert score_caption("a yellow circle", objects) == {"single": False, "single_full": False}


def test_blank_image_finds_nothing():
    blank = np.full((32, 32, 3), 240, dtype=np.uint8)
    assert detect(blank) == []
    assert not score_caption("a red circle", [])["single"]


def test_float_and_channel_first_inputs_agree():
    image = draw(("triangle", "blue", "large", "right"))
    as_float = torch.from_numpy(image.copy()).permute(2, 0, 1).float() / 255  # 3 h w in [0, 1]
    assert [(o.shape, o.colour) for o in detect(as_float)] == [(o.shape, o.colour) for o in detect(image)]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        detect(as_float * 2)
    with pytest.raises(ValueError, match="one RGB image"):
        detect(np.zeros((32, 32), dtype=np.uint8))


def test_agrees_with_ground_truth_on_real_images():
    ds = build_shapes(300, "test", seed=1)
    fields = ("n_objects", "shape1", "colour1", "size1", "pos1", "shape2", "colour2", "size2", "pos2")
    rows = ds.remove_columns("image").to_list()
    agree = [all(as_attributes(detect(x))[f] == row[f] for f in fields) for x, row in zip(images_uint8(ds), rows)]
    assert np.mean(agree) >= 0.99


def test_one_pixel_gap_joins_pieces_of_one_colour_but_touching_colours_split():
    image = np.full((32, 32, 3), 240, dtype=np.uint8)
    image[10:16, 8:12] = (220, 40, 40)  # two red pieces with a 1-pixel gap: one (broken) object
    image[10:16, 13:17] = (220, 40, 40)
    assert len(detect(image)) == 1
    image[16:22, 8:17] = (45, 80, 225)  # a blue block touching them: a second object
    assert sorted(o.colour for o in detect(image)) == ["blue", "red"]
