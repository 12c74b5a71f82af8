"""Lesson 07's f sweep: the models per f, how the judge reads them, resuming, and the lesson's readers."""

import json
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from ldm_mini.config import QUICK
from ldm_mini.data import images_uint8, load_shapes
from ldm_mini.experiments import f_sweep, load_results
from ldm_mini.zoo import JUDGE, ae_name, load_pretrained


@pytest.fixture(scope="module")
def judge():
    return load_pretrained(JUDGE)


@pytest.mark.parametrize("size, f, levels", [(32, 2, 3), (32, 4, 3), (32, 16, 2), (64, 16, 3)])
def test_build_model_halves_the_latent_at_most_down_to_1x1(size, f, levels):
    sweep = f_sweep.FSweepConfig(image_size=size)
    ldm = f_sweep.build_model(f, load_pretrained(ae_name("kl", f)), sweep)
    assert ldm.latent_shape == (4, size // f, size // f)
    assert len(ldm.config.unet.channel_mult) == levels
    assert size // f // ldm.config.unet.downsample_factor >= 1


def test_pixel_space_model_has_no_autoencoder():
    ldm = f_sweep.build_model(1, None, f_sweep.FSweepConfig())
    assert ldm.autoencoder is None and ldm.latent_shape == (3, 32, 32)


def test_judge_size_box_filters_64px_and_keeps_32px():
    x = torch.rand(2, 3, 64, 64)
    assert torch.allclose(f_sweep.judge_size(x), F.avg_pool2d(x, 2))
    y = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    assert torch.equal(f_sweep.judge_size(y), y.float() / 255)


@pytest.mark.parametrize("size", [32, 64])
def test_real_images_read_as_learnt_and_near_the_fd_floor(judge, size):
    """Held-out images against their own captions: what a perfect model would score. At 64 px too,
    which checks that the judge (trained at 32 px) reads the box-filtered 64 px images."""
    test, val = (load_shapes(200, split, image_size=size) for split in ("test", "val"))
    reference = f_sweep.embed_images(f_sweep.judge_size(images_uint8(test)), judge)
    read = f_sweep.read_samples(images_uint8(val), val["caption"], reference, judge)
    assert read["n"] == 200 and read["single"] >= 0.95 and read["accuracy"] >= 0.9, read
    assert read["fd_ci"][0] <= read["fd"] <= read["fd_ci"][1]
    noise = torch.rand(200, 3, size, size)  # not a scene at all: far from the real images
    far = f_sweep.read_samples(noise, val["caption"], reference, judge)
    assert far["single"] < 0.1 and far["fd"] > 10 * read["fd"], (far, read)


def test_overlap_and_ties():
    assert f_sweep.overlap([0.1, 0.3], [0.25, 0.5]) and not f_sweep.overlap([0.1, 0.2], [0.3, 0.4])
    points = {
        2: {"single": 0.50, "single_ci": [0.45, 0.55], "fd": 9.0, "fd_ci": [8.0, 10.0]},
        4: {"single": 0.96, "single_ci": [0.94, 0.98], "fd": 1.0, "fd_ci": [0.8, 1.3]},
        8: {"single": 0.93, "single_ci": [0.90, 0.95], "fd": 1.2, "fd_ci": [1.1, 1.6]},
    }
    assert f_sweep.best_and_ties(points, "single") == (4, [4, 8])
    assert f_sweep.best_and_ties(points, "fd") == (4, [4, 8])
    points[8]["fd_ci"] = [1.4, 1.6]
    assert f_sweep.best_and_ties(points, "fd") == (4, [4])


SWEEP_CONFIGS = f_sweep.sweep_configs  # the real one, before a test patches it


def _tiny_sweeps(profile):  # batches of 2: f = 1's timing at 64 px costs seconds per step at 8
    return [replace(s, factors=(16,), n_train=64, batch_size=2, ae_batch_size=2) for s in SWEEP_CONFIGS(profile)]


def test_tiny_sweep_writes_both_sizes_and_resumes(tmp_path, monkeypatch):
    profile = QUICK.miniature()
    monkeypatch.setattr(f_sweep, "sweep_configs", _tiny_sweeps)
    work = tmp_path / "work"
    monkeypatch.setattr(f_sweep.tempfile, "mkdtemp", lambda prefix: str(work))  # keep the miniature's folder
    results = f_sweep.run(profile, out_dir=tmp_path)
    record = load_results("f_sweep", tmp_path)
    json.dumps(record)  # all of it is plain JSON
    for size in ("32", "64"):
        r = record["results"]["sizes"][size]
        model = r["models"]["16"]
        assert [p["step"] for p in model["points"]] == model["plan"]["stops"] == [1, 2]
        steps_point, time_point = f_sweep.budget_point(r, 16, "steps"), f_sweep.budget_point(r, 16, "time")
        assert steps_point["step"] == r["config"]["steps"] == 2 and time_point["step"] == 1  # 0 s: the first point
        assert all(0 <= row["single"] <= 1 and row["images_per_s"] > 0 for row in model["throughput"])
        assert (tmp_path / model["samples"]).exists() and "16" in r["ceiling"] and r["real"]["single"] > 0.5
    assert (work / "ae-kl-f16-64px.safetensors").exists()  # fine-tuned once, at 64 px only
    assert not (work / "ae-kl-f16-32px.safetensors").exists()

    # a run killed after its first point: the second point is measured again, from the saved state, the same
    progress = work / "64px-f16" / "progress.json"
    saved = json.loads(progress.read_text())
    json.dumps(saved)
    lost = saved["points"].pop()
    del saved["done"]
    del saved["config"]["guidance"]  # as if written before that setting existed: read as its default (3.0)
    progress.write_text(json.dumps(saved))
    again = f_sweep.run(profile, out_dir=tmp_path)
    redone = again["sizes"]["64"]["models"]["16"]["points"][-1]
    assert redone["single"] == lost["single"] and redone["fd"] == pytest.approx(lost["fd"], rel=1e-4)
    assert again["sizes"]["32"]["models"]["16"]["points"] == results["sizes"]["32"]["models"]["16"]["points"]

    # a folder from a run with other settings is refused, not silently mixed in
    monkeypatch.setattr(f_sweep, "sweep_configs", lambda p: [replace(s, seed=1) for s in _tiny_sweeps(p)])
    with pytest.raises(ValueError, match="other settings"):
        f_sweep.run(profile, out_dir=tmp_path)


def test_samples_view_and_budget_point_name_what_is_missing():
    record = load_results("f_sweep")
    sizes = record["results"]["sizes"]
    size, f = next(iter(sizes)), next(iter(next(iter(sizes.values()))["models"]))
    view = f_sweep.samples_view(record, int(size), int(f))
    assert view["grid"].ndim == 3 and f"f = {f}" in view["title"]
    with pytest.raises(ValueError, match="128 px is not in these results"):
        f_sweep.samples_view(record, 128, 4)
    with pytest.raises(ValueError, match="f=3 is not in these results"):
        f_sweep.samples_view(record, int(size), 3)
    with pytest.raises(ValueError, match="budget must be"):
        f_sweep.budget_point(sizes[size], int(f), "flops")


def test_fd_floor_is_small_and_rises_as_sets_shrink(judge):
    big, small = f_sweep.fd_floor(n=400, judge=judge), f_sweep.fd_floor(n=100, judge=judge)
    assert big["fd_ci"][0] <= big["fd"] <= big["fd_ci"][1]
    assert small["fd"] > 1.5 * big["fd"], (small, big)  # the covariance noise grows as sets shrink


def test_reconstruction_score_is_a_ceiling_that_falls_with_f(judge):
    good, coarse = f_sweep.reconstruction_score(4, judge=judge), f_sweep.reconstruction_score(16, judge=judge)
    assert good > 0.9 and coarse < good, (good, coarse)
