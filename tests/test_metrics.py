import dataclasses
import math

import pytest
import torch

from ldm_mini import data
from ldm_mini.data import ATTRIBUTE_VALUES, build_shapes, parse_caption
from ldm_mini.eval import (
    PSNR_MAX,
    AttributeClassifier,
    AttributeClassifierConfig,
    frechet_distance,
    frechet_distance_from_features,
    judge_caption,
    prompt_accuracy,
    psnr,
    psnr_per_image,
    ssim,
    train_attribute_classifier,
)
from ldm_mini.eval.measures import inception_score_analogue


@pytest.fixture(scope="module")
def shapes():
    return build_shapes(300, "val", seed=0)


# ---------------------------------------------------------------------------- PSNR / SSIM


def test_psnr_of_identical_images_is_capped():
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert psnr(x, x) == PSNR_MAX == 100.0


def test_psnr_hand_case_uniform_error():
    # MSE = 0.1^2 = 0.01, so PSNR = 10 log10(1 / 0.01) = 20 dB
    x = torch.full((1, 3, 8, 8), 0.5)
    assert psnr(x, x + 0.1) == pytest.approx(20.0, abs=1e-4)
    # error 0.01 -> 40 dB; the batch mean is the mean of the per-image values
    y = torch.cat([x + 0.1, x + 0.01])
    assert psnr_per_image(torch.cat([x, x]), y).tolist() == pytest.approx([20.0, 40.0], abs=1e-3)
    assert psnr(torch.cat([x, x]), y) == pytest.approx(30.0, abs=1e-3)


def test_psnr_accepts_uint8_and_rejects_model_range():
    x = torch.full((1, 3, 4, 4), 100, dtype=torch.uint8)
    assert psnr(x, x + 10) == pytest.approx(10 * math.log10(255**2 / 100), abs=1e-3)
    with pytest.raises(ValueError, match="to_image_range"):
        psnr(torch.full((1, 3, 4, 4), -0.5), torch.zeros(1, 3, 4, 4))


def test_ssim_identical_is_one_and_noise_lowers_it():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 32, 32, generator=g)
    assert ssim(x, x) == pytest.approx(1.0, abs=1e-6)
    assert ssim(x, (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(0, 1)) < 0.9


# ---------------------------------------------------------------------------- Frechet distance


def test_frechet_identical_sets_is_zero():
    a = torch.randn(500, 6, generator=torch.Generator().manual_seed(0))
    assert frechet_distance_from_features(a, a) == pytest.approx(0.0, abs=1e-8)


def test_frechet_shifted_and_scaled_gaussian_closed_form():
    a = torch.randn(2000, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    a = a - a.mean(0)  # mean exactly 0, so 2a keeps the mean and only the shift moves it
    shift = torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=torch.float64)
    # Same covariance: only the means differ, d^2 = ||shift||^2 = 5.25 exactly.
    assert frechet_distance_from_features(a, a + shift) == pytest.approx(5.25, abs=1e-6)
    # b = 2a + shift has covariance 4S, so sqrt(S 4S) = 2S and the trace term is
    # Tr(S + 4S - 4S) = Tr(S): d^2 = ||shift||^2 + Tr(S).
    trace_s = torch.cov(a.T).trace().item()
    assert frechet_distance_from_features(a, 2 * a + shift) == pytest.approx(5.25 + trace_s, rel=1e-6)


def test_frechet_distance_in_classifier_space():
    torch.manual_seed(0)
    clf = AttributeClassifier()
    g = torch.Generator().manual_seed(0)
    real = torch.rand(64, 3, 32, 32, generator=g)
    assert frechet_distance(real, real.clone(), clf) == pytest.approx(0.0, abs=1e-4)
    assert frechet_distance(real, real * 0.3, clf) > 1e-2  # darker images move the features


def test_frechet_needs_two_images():
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance_from_features(torch.zeros(1, 3), torch.zeros(5, 3))


# ---------------------------------------------------------------------------- parse_caption


def test_parse_caption_agrees_with_dataset_columns(shapes):
    for row in shapes:
        got = parse_caption(row["caption"])
        assert got["n_objects"] == row["n_objects"]
        assert got["relation"] == row["relation"]
        if row["caption_kind"] == "two_and":
            # "a and b" does not say which is left: compare as a set of (colour, shape) pairs
            assert {(got["colour1"], got["shape1"]), (got["colour2"], got["shape2"])} == {
                (row["colour1"], row["shape1"]),
                (row["colour2"], row["shape2"]),
            }
            assert got["pos1"] is None and got["pos2"] is None
            continue
        for key in ATTRIBUTE_VALUES:
            if got[key] is not None:
                assert got[key] == row[key], (row["caption"], key)
        kind = row["caption_kind"]
        if row["n_objects"] == 1:
            assert (got["size1"] is not None) == kind.startswith("size")
            assert (got["pos1"] is not None) == kind.endswith("pos")


def test_parse_caption_canonical_order():
    got = parse_caption("a blue square to the right of a red circle")
    assert (got["colour1"], got["shape1"], got["pos1"]) == ("red", "circle", "left")
    assert (got["colour2"], got["shape2"], got["pos2"]) == ("blue", "square", "right")
    got = parse_caption("an orange triangle below a green circle")
    assert (got["colour1"], got["shape1"], got["pos1"]) == ("green", "circle", "top")


@pytest.mark.parametrize(
    "caption",
    ["", "a red", "a big red circle", "a red circle near a blue square", "a red circle and a blue square please"],
)
def test_parse_caption_rejects_bad_captions(caption):
    with pytest.raises(ValueError, match="cannot parse caption"):
        parse_caption(caption)


# ---------------------------------------------------------------------------- prompt accuracy


class FakeClassifier:
    """Returns given attribute rows, in order, instead of looking at the images."""

    def __init__(self, rows):
        self.rows, self.i = list(rows), 0

    def predict(self, x):
        rows = self.rows[self.i : self.i + x.shape[0]]
        self.i += x.shape[0]
        return {name: [r[name] for r in rows] for name in ATTRIBUTE_VALUES}


def _rows(ds):
    return [{name: row[name] for name in ATTRIBUTE_VALUES} for row in ds]


def _run(ds, rows, batch_size=64):
    images = torch.zeros(len(rows), 3, 32, 32, dtype=torch.uint8)
    return prompt_accuracy(ds["caption"], images, FakeClassifier(rows), batch_size=batch_size)


def test_prompt_accuracy_true_labels_score_one(shapes):
    result = _run(shapes, _rows(shapes))
    assert result["n_single"] + result["n_two"] == 300 and result["n_single"] > 100 and result["n_two"] > 100
    for metric in ("single", "single_full", "two_binding", "two_presence"):
        assert result[metric] == 1.0, metric
    assert result["two_swapped"] == 0.0
    assert len(result["per_caption"]) == 300


def test_prompt_accuracy_wrong_colour_scores_zero(shapes):
    rows = _rows(shapes)
    for r in rows:  # object 1 gets a colour that no object in the image has
        r["colour1"] = next(c for c in data.COLOURS if c not in (r["colour1"], r["colour2"]))
    result = _run(shapes, rows)
    assert result["single"] == result["single_full"] == result["two_binding"] == result["two_presence"] == 0.0


def test_prompt_accuracy_swapped_colours_is_a_binding_error(shapes):
    rows = _rows(shapes)
    for r in rows:
        if r["shape2"] != "none":
            r["colour1"], r["colour2"] = r["colour2"], r["colour1"]
    result = _run(shapes, rows)
    assert result["two_binding"] == 0.0
    assert result["two_presence"] == 1.0 and result["two_swapped"] == 1.0
    assert result["single"] == 1.0  # one-object images are untouched


def test_judge_caption_rules():
    one = {
        "shape1": "circle",
        "colour1": "red",
        "size1": "small",
        "pos1": "left",
        "shape2": "none",
        "colour2": "none",
        "size2": "none",
        "pos2": "none",
    }
    assert judge_caption("a red circle", one) == {"single": True, "single_full": True}
    assert judge_caption("a large red circle", one) == {"single": True, "single_full": False}
    assert judge_caption("a red circle at the top", one) == {"single": True, "single_full": False}
    # the classifier saw one object for a two-object caption: no binding, not all present
    assert judge_caption("a red circle and a blue square", one) == {
        "two_binding": False,
        "two_presence": False,
        "two_swapped": False,
    }
    # an extra object makes a one-object caption wrong
    extra = {**one, "shape2": "square", "colour2": "blue", "size2": "small", "pos2": "right"}
    assert judge_caption("a red circle", extra)["single"] is False
    # the right pairs, but stacked vertically: "to the left of" is not respected
    stacked = {**extra, "pos1": "top", "pos2": "bottom"}
    assert judge_caption("a red circle to the left of a blue square", extra)["two_binding"] is True
    assert judge_caption("a blue square to the right of a red circle", extra)["two_binding"] is True
    assert judge_caption("a red circle to the left of a blue square", stacked) == {
        "two_binding": False,
        "two_presence": True,
        "two_swapped": False,
    }
    assert judge_caption("a red circle above a blue square", stacked)["two_binding"] is True
    # "and": any order, any layout
    assert judge_caption("a blue square and a red circle", stacked)["two_binding"] is True


def test_prompt_accuracy_checks_counts():
    with pytest.raises(ValueError, match="one caption per image"):
        prompt_accuracy(["a red circle"], torch.zeros(2, 3, 32, 32), FakeClassifier([]))


# ---------------------------------------------------------------------------- classifier


def test_classifier_shapes_and_rebuild_from_config():
    torch.manual_seed(0)
    clf = AttributeClassifier()
    x = torch.rand(5, 3, 32, 32) * 2 - 1
    logits = clf(x)
    assert list(logits) == list(ATTRIBUTE_VALUES)
    assert {name: tuple(v.shape) for name, v in logits.items()} == {
        name: (5, len(vals)) for name, vals in ATTRIBUTE_VALUES.items()
    }
    assert [tuple(f.shape) for f in clf.features(x)] == [(5, 16, 32, 32), (5, 32, 16, 16), (5, 64, 8, 8)]
    assert clf.embed(x).shape == (5, clf.config.hidden)
    pred = clf.predict(x)
    assert all(len(pred[n]) == 5 and set(pred[n]) <= set(ATTRIBUTE_VALUES[n]) for n in ATTRIBUTE_VALUES)
    assert 100_000 <= sum(p.numel() for p in clf.parameters()) <= 300_000
    # a checkpoint stores the config as JSON (tuples become lists) plus the state_dict
    config = AttributeClassifierConfig(
        **{k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(clf.config).items()}
    )
    twin = AttributeClassifier(config)
    twin.load_state_dict(clf.state_dict())
    torch.testing.assert_close(twin(x)["colour1"], logits["colour1"])
    # any image size works: the head pools to a fixed 4x4 grid
    assert clf(torch.zeros(2, 3, 64, 64))["shape1"].shape == (2, 3)


def test_train_a_few_steps_is_deterministic_and_checks_inputs(shapes):
    small = shapes.select(range(32))
    images, labels = data.images_uint8(small), data.attribute_labels(small)
    assert images.shape[0] == 32
    a = train_attribute_classifier(images, labels, steps=2, batch_size=8, progress=False)
    b = train_attribute_classifier(images, labels, steps=2, batch_size=8, progress=False)
    assert not a.training
    torch.testing.assert_close(a.heads["shape1"].weight, b.heads["shape1"].weight)
    with pytest.raises(ValueError, match="same dataset"):
        train_attribute_classifier(images[:10], labels, steps=1, progress=False)
    with pytest.raises(ValueError, match="uint8"):
        train_attribute_classifier(images.float(), labels, steps=1, progress=False)


class ObjectReader(torch.nn.Module):
    """A stand-in reader whose first-object logits are given: one row of (colour1, shape1) per image."""

    def __init__(self, colour_logits, shape_logits):
        super().__init__()
        self.colour, self.shape = colour_logits, shape_logits
        self.dummy = torch.nn.Parameter(torch.zeros(1))  # so the reader has a device

    def forward(self, x):
        return {"colour1": self.colour[: len(x)], "shape1": self.shape[: len(x)]}


def test_inception_score_analogue_bounds_and_hand_case():
    """IS = exp E KL(p(y|x) || p(y)): 1 when every image is read the same, the number of classes when
    the reading is certain and the classes equally frequent."""
    n, big = 180, 30.0
    images = torch.zeros(n, 3, 8, 8, dtype=torch.uint8)
    same = ObjectReader(torch.zeros(n, 6), torch.zeros(n, 3))  # the same (uniform) reading for every image
    assert inception_score_analogue(images, same, splits=1)["mean"] == pytest.approx(1.0, abs=1e-5)
    k = torch.arange(n)
    certain = ObjectReader(big * torch.eye(6)[k % 6], big * torch.eye(3)[(k // 6) % 3])  # each of 18 classes 10x
    result = inception_score_analogue(images, certain, splits=1)
    assert result["mean"] == pytest.approx(18.0, rel=1e-3) and result["n"] == n and result["splits"] == 1
    with pytest.raises(ValueError):
        inception_score_analogue(torch.full((4, 3, 8, 8), 2.0), same)  # not in [0, 1]
