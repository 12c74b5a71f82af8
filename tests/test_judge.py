"""The judge of generated images (eval/judge.py), its agreement with the rule-based detector, the
headline figures (eval/models.py) and the Wilson interval."""

import math

import pytest
import torch
from tiny import tiny_unet

from ldm_mini.autoencoder import AutoencoderConfig
from ldm_mini.data import ATTRIBUTE_VALUES, attribute_labels, build_shapes, images_uint8, parse_caption, to_model_range
from ldm_mini.eval import HEADLINE_SETS, Judge, JudgeConfig, headline_captions, judge_vs_detector, wilson_interval
from ldm_mini.eval.classifier import AttributeClassifier, fit_attributes
from ldm_mini.eval.detector import detect
from ldm_mini.eval.judge import add_defects, blur, judge_flags, scene_check, train_judge
from ldm_mini.eval.models import headline_figures, headline_metrics
from ldm_mini.ldm import LatentDiffusion, LDMConfig
from ldm_mini.text import TextEncoderConfig


@pytest.fixture(scope="module")
def shapes():
    return build_shapes(60, "test", seed=0)


class TruthJudge:
    """A stand-in judge that 'sees' the dataset's own labels (optionally with colours swapped)."""

    def __init__(self, rows, swap=False):
        self.rows, self.swap, self.seen = rows, swap, 0

    def predict(self, x):
        rows = self.rows[self.seen : self.seen + x.shape[0]]
        self.seen += x.shape[0]
        out = {name: [r[name] for r in rows] for name in ATTRIBUTE_VALUES}
        if self.swap:  # the binding failure: colours on the wrong shapes
            for i, r in enumerate(rows):
                if r["n_objects"] == 2 and r["colour1"] != r["colour2"]:
                    out["colour1"][i], out["colour2"][i] = r["colour2"], r["colour1"]
        return out


def test_judge_is_another_network_with_the_classifiers_heads():
    judge, classifier = Judge(), AttributeClassifier()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    logits = judge(x)
    assert {k: v.shape for k, v in logits.items()} == {k: (2, len(v)) for k, v in ATTRIBUTE_VALUES.items()}
    assert set(judge.predict(x)) == set(ATTRIBUTE_VALUES)
    assert judge.embed(x).shape == (2, JudgeConfig().hidden)
    assert type(judge.net[0][0]) is torch.nn.Conv2d and judge.net[0][0].kernel_size == (5, 5)
    assert sum(p.numel() for p in judge.parameters()) != sum(p.numel() for p in classifier.parameters())
    assert judge.training  # predict() must not leave it in eval mode
    judge.predict(x)
    assert judge.training


def test_blur_keeps_flat_images_and_sigma_zero_is_identity():
    x = torch.rand(3, 3, 16, 16)
    assert torch.allclose(blur(x, torch.zeros(3)), x, atol=1e-6)
    flat = torch.full((2, 3, 8, 8), 0.3)
    assert torch.allclose(blur(flat, torch.tensor([0.5, 1.2])), flat, atol=1e-6)
    blurred = blur(x, torch.tensor([0.0, 1.0, 1.0]))
    assert torch.allclose(blurred[0], x[0], atol=1e-6) and blurred[1].std() < x[1].std()


def test_defects_are_seeded_in_range_and_keep_what_the_detector_reads(shapes):
    x = to_model_range(images_uint8(shapes))
    a = add_defects(x, torch.Generator().manual_seed(0))
    b = add_defects(x, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == x.shape
    assert a.min() >= -1 and a.max() <= 1 and (a - x).abs().mean() > 0.01
    # No label changes: the detector, which never saw the defects, still reads the same objects.
    same = sum(
        sorted((o.colour, o.shape) for o in detect(u)) == sorted((o.colour, o.shape) for o in detect(v))
        for u, v in zip(images_uint8(shapes), ((a + 1) * 127.5).round().to(torch.uint8))
    )
    assert same >= 0.9 * len(shapes), f"the defects changed what the detector reads in {len(shapes) - same} images"


def test_fit_attributes_refuses_mismatched_labels(shapes):
    labels = attribute_labels(shapes)
    with pytest.raises(ValueError, match="uint8"):
        fit_attributes(Judge(), images_uint8(shapes).float(), labels, 1, 4, 1e-3, 0, progress=False)
    with pytest.raises(ValueError, match="same dataset"):
        short = {k: v[:-1] for k, v in labels.items()}
        fit_attributes(Judge(), images_uint8(shapes), short, 1, 4, 1e-3, 0, progress=False)


def test_train_judge_is_seeded_and_returns_eval_mode(shapes):
    images, labels = images_uint8(shapes), attribute_labels(shapes)
    a = train_judge(images, labels, steps=3, batch_size=8, seed=1, progress=False)
    b = train_judge(images, labels, steps=3, batch_size=8, seed=1, progress=False)
    assert not a.training
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_judge_vs_detector_agrees_with_the_truth_and_catches_swaps(shapes):
    rows = shapes.remove_columns("image").to_list()
    images, captions = images_uint8(shapes), shapes["caption"]
    same = judge_vs_detector(TruthJudge(rows), images, captions)
    assert same["objects"] == 1.0 and same["verdict"] == 1.0 and same["disagree"] == [] and same["n"] == len(rows)
    swapped = judge_vs_detector(TruthJudge(rows, swap=True), images, captions)
    n_swapped = sum(r["n_objects"] == 2 and r["colour1"] != r["colour2"] and r["shape1"] != r["shape2"] for r in rows)
    assert n_swapped > 0
    assert len(swapped["disagree"]) == n_swapped and round(swapped["objects"] * len(rows)) == len(rows) - n_swapped
    first = swapped["disagree"][0]
    assert set(first) == {"index", "caption", "judge", "detector"} and first["judge"] != first["detector"]
    with pytest.raises(ValueError, match="one caption per image"):
        judge_vs_detector(TruthJudge(rows), images, captions[:-1])


def test_judge_flags_use_the_detectors_names():
    seen = {"colour1": "red", "shape1": "circle", "size1": "small", "pos1": "left",
            "colour2": "blue", "shape2": "square", "size2": "small", "pos2": "right"}  # fmt: skip
    assert judge_flags("a blue circle and a red square", seen) == {"presence": True, "binding": False, "swapped": True}
    assert judge_flags("a red circle and a blue square", seen) == {"presence": True, "binding": True, "swapped": False}
    one = {**seen, "shape2": "none", "colour2": "none", "size2": "none", "pos2": "none"}
    assert judge_flags("a red circle", one) == {"single": True, "single_full": True}


def test_wilson_interval():
    lo, hi = wilson_interval(200, 200)
    assert hi == 1.0 and 0.98 < lo < 0.982
    lo, hi = wilson_interval(100, 200)
    assert math.isclose(lo + hi, 1.0) and 0.43 < lo < 0.432  # symmetric around 1/2
    a, b = wilson_interval(30, 200), wilson_interval(170, 200)
    assert math.isclose(a[0], 1 - b[1]) and math.isclose(a[1], 1 - b[0])
    with pytest.raises(ValueError, match="0 <= k <= n"):
        wilson_interval(5, 4)


def test_headline_captions_one_set_per_metric():
    sets = headline_captions(12)
    assert set(sets) == set(HEADLINE_SETS) and all(len(c) == 12 for c in sets.values())
    assert all(parse_caption(c)["n_objects"] == 1 and parse_caption(c)["size1"] is None for c in sets["single"])
    assert all(parse_caption(c)["pos1"] is not None and parse_caption(c)["size1"] for c in sets["single_full"])
    assert all(parse_caption(c)["relation"] == "and" for c in sets["two"])
    assert headline_captions(12) == sets


def test_headline_figures_fractions_and_intervals():
    flags = {
        "single": [{"single": True}] * 3 + [{"single": False}],
        "single_full": [{"single": True, "single_full": True}, {"single": True, "single_full": False}],
        "two": [{"presence": True, "binding": True, "swapped": False},
                {"presence": True, "binding": False, "swapped": True}],  # fmt: skip
    }
    out = headline_figures(flags)
    assert out["single"] == 0.75 and out["single_full"] == 0.5 and out["binding"] == 0.5 and out["presence"] == 1.0
    assert out["single_ci"] == list(wilson_interval(3, 4)) and out["swapped_ci"][0] < 0.5 < out["swapped_ci"][1]


def _tiny_ldm() -> LatentDiffusion:
    torch.manual_seed(0)
    ae = AutoencoderConfig(f=2, reg="kl", base_channels=8, latent_channels=2, attn_mid=False)
    text = TextEncoderConfig(dim=8, n_layers=1, n_heads=2)
    return LatentDiffusion(LDMConfig(autoencoder=ae, unet=tiny_unet(), text=text, image_size=16))


def test_headline_metrics_on_a_tiny_model():
    ldm = _tiny_ldm().eval()
    record, images = headline_metrics(ldm, Judge(), n=2, steps=2)
    assert {k: v.shape for k, v in images.items()} == {k: (2, 3, 16, 16) for k in HEADLINE_SETS}
    assert set(record["figures"]) == set(record["detector"]) >= {"single", "binding", "binding_ci", "swapped"}
    assert record["agreement"]["n"] == 6 and 0 <= record["agreement"]["objects"] <= 1
    assert record["sets"]["two"]["kind"] == "two_and"
    assert len(record["two_verdicts"]) == 2 and set(record["two_verdicts"]) <= {"bound", "swapped", "other"}


def test_progress_points_are_evenly_spaced_and_end_at_the_last_step():
    from ldm_mini.zoo.build import progress_points

    assert progress_points(1800) == [300, 600, 900, 1200, 1500, 1800]
    assert progress_points(2) == [1, 2] and progress_points(1) == [1]


def test_headline_metrics_on_some_sets_with_another_sampler_keeps_each_sets_noises():
    """``sets`` measures only the named sets, each with the noises it gets in the full measurement, and
    ``sample`` replaces ``ldm.generate`` (a guided sampler): the remedies of lesson 10 are read this way."""
    ldm = _tiny_ldm().eval()
    _, every = headline_metrics(ldm, Judge(), n=2, steps=2)
    seeds = []

    def sample(captions, seed):
        seeds.append(seed)
        return ldm.generate(captions, steps=2, seed=seed)

    record, images = headline_metrics(ldm, Judge(), n=2, steps=2, sets=("two",), sample=sample)
    assert list(images) == ["two"] and seeds == [20_000]  # the third set of HEADLINE_SETS: seed + 10_000 * 2
    assert torch.equal(images["two"], every["two"])
    assert set(record["figures"]) == {"presence", "presence_ci", "binding", "binding_ci", "swapped", "swapped_ci"}
    val = headline_captions(2, split="val", sets=("two",))["two"]
    assert val != headline_captions(2, sets=("two",))["two"]
    with pytest.raises(ValueError, match="unknown caption sets"):
        headline_captions(2, sets=("three",))


def test_train_with_curve_measures_each_point_once_and_resumes(tmp_path):
    from ldm_mini.train import TrainConfig
    from ldm_mini.zoo import train_with_curve

    ldm = _tiny_ldm()
    latents, tokens = torch.randn(8, 2, 8, 8), ldm.tokens(["a red circle", "a blue square"] * 4)
    config = TrainConfig(steps=4, batch_size=2, lr=1e-3, warmup=1, log_every=1, progress=False)
    measured = []

    def measure(m, step):
        measured.append(step)
        return {"weight": m.unet.out[-1].weight.abs().sum().item()}

    _, history, curve = train_with_curve(ldm, latents, tokens, config, tmp_path, measure, [2, 4])
    assert measured == [2, 4] and [row["step"] for row in curve] == [2, 4] and history[-1]["step"] == 4
    assert all(row["train_seconds"] > 0 and row["loss"] > 0 for row in curve)
    _, _, again = train_with_curve(_tiny_ldm(), latents, tokens, config, tmp_path, measure, [2, 4])
    assert measured == [2, 4] and again == curve  # read back from tmp_path/curve.json, nothing measured twice
    # stopped after the first point (a killed run), then continued: the same curve as without the stop
    train_with_curve(_tiny_ldm(), latents, tokens, config, tmp_path / "killed", measure, [2])
    _, _, resumed = train_with_curve(_tiny_ldm(), latents, tokens, config, tmp_path / "killed", measure, [2, 4])
    assert measured == [2, 4, 2, 4]
    assert [row["weight"] for row in resumed] == [row["weight"] for row in curve]  # resume == uninterrupted


def test_scene_check_passes_real_scenes_and_names_each_failure(shapes):
    """Real scenes are valid; a dark, tinted, noisy or empty background, or a reader that sees other
    objects than the detector, each fails with its own reason."""
    rows = shapes.remove_columns("image").to_list()
    images = images_uint8(shapes).float() / 255  # b 3 32 32 in [0, 1]
    real = scene_check(images, TruthJudge(rows))
    assert real["valid"] == 1.0 and real["n"] == len(rows) and set(real["reasons"]) == {""}
    dark = images * 0.6  # the whole scene darker: the background too
    assert scene_check(dark, TruthJudge(rows))["failing"]["dark"] == 1.0
    tinted = images.clone()
    tinted[:, 0] = tinted[:, 0] * 0.7  # less red everywhere: a cyan cast
    assert scene_check(tinted, TruthJudge(rows))["failing"]["tinted"] == 1.0
    noisy = (images + 0.15 * torch.randn(images.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    assert scene_check(noisy, TruthJudge(rows))["failing"]["noisy"] == 1.0
    empty = torch.full_like(images, 0.94)  # background only
    result = scene_check(empty, TruthJudge(rows))
    assert result["valid"] == 0.0 and result["failing"]["objects"] == 1.0 and result["reasons"][0] == "0 objects"
    swapped = scene_check(images, TruthJudge(rows, swap=True))  # the judge reads other pairs than the detector
    n_swapped = sum(r["n_objects"] == 2 and r["colour1"] != r["colour2"] and r["shape1"] != r["shape2"] for r in rows)
    assert swapped["failing"]["readers disagree"] == pytest.approx(n_swapped / len(rows)) and n_swapped > 0
