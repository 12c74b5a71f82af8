import hashlib

import numpy as np
import pytest
import torch

from ldm_mini import data
from ldm_mini.data import (
    ATTRIBUTE_VALUES,
    ShapesConfig,
    attribute_labels,
    build_shapes,
    images_uint8,
    load_shapes,
    make_example,
    photo_crops,
)


def _pixels(example):
    return np.asarray(example["image"])


def test_same_seed_split_index_gives_same_pixels_and_caption():
    a, b = make_example(3, "train", 17), make_example(3, "train", 17)
    assert a["caption"] == b["caption"]
    np.testing.assert_array_equal(_pixels(a), _pixels(b))


def test_different_seed_gives_different_data():
    a, b = build_shapes(20, "train", seed=0), build_shapes(20, "train", seed=1)
    assert a["caption"] != b["caption"]


def test_image_size_and_range():
    for size in (32, 64):
        x = _pixels(make_example(0, "val", 0, ShapesConfig(image_size=size)))
        assert x.shape == (size, size, 3) and x.dtype == np.uint8


def test_splits_share_no_image():
    hashes = {}
    for split in ("train", "val", "test"):
        ds = build_shapes(300, split, seed=0)
        hashes[split] = {hashlib.sha1(np.asarray(img).tobytes()).hexdigest() for img in ds["image"]}
        assert len(hashes[split]) == 300  # no duplicate within a split either
    assert not hashes["train"] & hashes["val"]
    assert not hashes["train"] & hashes["test"]
    assert not hashes["val"] & hashes["test"]


def _expected_words(row):
    words = {row["colour1"], row["shape1"]}
    if row["n_objects"] == 2:
        words |= {row["colour2"], row["shape2"]}
    return words


def test_captions_agree_with_attributes():
    ds = build_shapes(400, "train", seed=5)
    for row in ds.remove_columns("image"):
        words = set(row["caption"].split())
        assert _expected_words(row) <= words, row
        if row["n_objects"] == 1:
            assert ("small" in words or "large" in words) == row["caption_kind"].startswith("size")
            if row["caption_kind"].startswith("size"):
                assert row["size1"] in words
            if row["caption_kind"].endswith("pos"):
                assert row["caption"].endswith(data.POSITION_PHRASE[row["pos1"]])
            assert row["shape2"] == "none"
        else:
            assert row["colour1"] != row["colour2"] and row["shape1"] != row["shape2"]
            assert {row["pos1"], row["pos2"]} in ({"left", "right"}, {"top", "bottom"})


def test_relation_captions_describe_the_layout():
    ds = build_shapes(400, "train", seed=1).filter(lambda r: r["caption_kind"] == "two_relation")
    assert len(ds) > 20
    for row in ds.remove_columns("image"):
        first = f"{row['colour1']} {row['shape1']}"
        leads = row["caption"].split()[1:3] == first.split()
        if row["relation"] in ("left of", "above"):
            assert leads and row["pos1"] in ("left", "top")
        else:  # "right of" / "below": the caption names object 2 first
            assert not leads


def test_objects_are_drawn_where_the_attributes_say():
    # The colour of object 1 must dominate the half of the image named by pos1.
    for i in range(60):
        row = make_example(0, "train", i)
        x = _pixels(row).astype(float)
        target = np.array(data.COLOURS[row["colour1"]], dtype=float)
        close = np.linalg.norm(x - target, axis=-1) < 60  # h w
        ys, xs = np.nonzero(close)
        assert len(xs) > 5, row["caption"]
        cx, cy = xs.mean() / 32, ys.mean() / 32
        expected = data.POSITIONS[row["pos1"]]
        assert abs(cx - expected[0]) < 0.12 and abs(cy - expected[1]) < 0.12, row["caption"]


def test_article_agrees_with_next_word():
    ds = build_shapes(300, "train", seed=2)
    for caption in ds["caption"]:
        words = caption.split()
        for article, nxt in zip(words, words[1:]):
            if article in ("a", "an"):
                assert (article == "an") == (nxt[0] in "aeiou"), caption


def test_attribute_labels_index_the_value_lists():
    ds = build_shapes(50, "val", seed=0)
    labels = attribute_labels(ds)
    assert set(labels) == set(ATTRIBUTE_VALUES)
    for name, values in ATTRIBUTE_VALUES.items():
        assert [values[i] for i in labels[name].tolist()] == ds[name]


def test_cache_roundtrip_and_rebuild(tmp_path):
    ds = load_shapes(40, "val", seed=0, cache_dir=tmp_path)
    x = images_uint8(ds)
    assert x.shape == (40, 3, 32, 32) and x.dtype == torch.uint8
    assert (tmp_path / "shapes-32px-seed0-val-40" / "pixels.npy").exists()
    again = load_shapes(40, "val", seed=0, cache_dir=tmp_path)
    assert torch.equal(images_uint8(again), x)
    # A corrupted cache is rebuilt, not a crash.
    folder = tmp_path / "shapes-32px-seed0-val-40"
    for f in folder.iterdir():
        f.unlink()
    (folder / "garbage.txt").write_text("not a dataset")
    rebuilt = load_shapes(40, "val", seed=0, cache_dir=tmp_path)
    assert rebuilt["caption"] == ds["caption"]


def test_a_split_drawn_by_two_processes_at_once_is_cached_once(tmp_path, monkeypatch):
    """Two lessons' kernels may draw the same split at the same time (tests/test_full_profile_miniature.py):
    the one that finishes second finds the folder there, reads it and drops its own copy."""
    from ldm_mini.data import shapes

    folder, real_build = tmp_path / "shapes-32px-seed0-val-12", shapes.build_shapes

    def build_while_another_process_finishes(*args, **kwargs):
        real_build(*args, **kwargs).save_to_disk(str(folder))  # the other process's cache, complete
        return real_build(*args, **kwargs)

    monkeypatch.setattr(shapes, "build_shapes", build_while_another_process_finishes)
    ds = load_shapes(12, "val", seed=0, cache_dir=tmp_path)
    assert ds["caption"] == real_build(12, "val", 0)["caption"]
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]  # no temporary copy left behind


def test_model_range_roundtrip():
    x = torch.tensor([0, 128, 255], dtype=torch.uint8)
    y = data.to_model_range(x)
    assert y.min() == -1 and y.max() == 1
    assert torch.allclose(data.to_image_range(y), x.float() / 255)


def test_unknown_split_is_refused():
    with pytest.raises(ValueError, match="unknown split"):
        make_example(0, "training", 0)


def test_photo_crops_are_deterministic_and_split_by_source():
    a, b = photo_crops(8, 32, "train", seed=0), photo_crops(8, 32, "train", seed=0)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (8, 32, 32, 3) and a.std() > 5
    assert not set(data.PHOTO_SOURCES["train"]) & set(data.PHOTO_SOURCES["val"])


def test_pixel_cache_of_a_subset_never_replaces_the_full_one(tmp_path):
    ds = load_shapes(30, "val", seed=0, cache_dir=tmp_path)
    subset = images_uint8(ds.select(range(5)))
    assert subset.shape[0] == 5
    full = images_uint8(load_shapes(30, "val", seed=0, cache_dir=tmp_path))
    assert full.shape[0] == 30 and torch.equal(full[:5], subset)
