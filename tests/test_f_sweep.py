"""Lesson 07's f sweep: the UNet per f, the score, and a tiny end-to-end run."""

import json

import pytest
import torch

from ldm_mini.config import Profile
from ldm_mini.experiments import f_sweep, load_results


@pytest.mark.parametrize("f, levels", [(1, 3), (2, 3), (4, 3), (8, 3), (16, 2)])
def test_unet_config_caps_levels_by_latent_size(f, levels):
    config = f_sweep.unet_config(f, 32, 4, 32)
    assert len(config.channel_mult) == levels
    assert config.model_channels == 32
    assert all(lvl < levels for lvl in config.attention_levels)
    assert 32 // f // config.downsample_factor >= 1  # never halved below 1 x 1


@pytest.mark.parametrize("f", [1, 4, 16])
def test_build_model_matches_latent_and_outputs_zero(f):
    ldm = f_sweep.build_model(f, f_sweep.FSweepConfig(model_channels=16))
    c, h, w = ldm.latent_shape
    assert (h, w) == (32 // f, 32 // f) and c == (3 if f == 1 else 4)
    assert (ldm.autoencoder is None) == (f == 1)
    z = torch.randn(2, c, h, w)
    eps = ldm.eps(z, torch.tensor([3, 500]), ldm.tokens(["a red circle", ""]))
    assert eps.shape == z.shape and torch.all(eps == 0)  # zero-initialised output


def test_prompt_score_weights_single_and_binding_by_count():
    acc = {"single": 0.5, "two_binding": 1.0, "n_single": 2, "n_two": 6}
    assert f_sweep.prompt_score(acc) == pytest.approx((1 + 6) / 8)
    assert f_sweep.prompt_score({"single": 1.0, "two_binding": float("nan"), "n_single": 3, "n_two": 0}) == 1.0


def test_tiny_sweep_writes_results(tmp_path):
    profile = Profile(n_train=128, n_eval=8)
    results = f_sweep.run(
        profile,
        out_dir=tmp_path,
        factors=(16, 1),
        model_channels=8,
        steps=4,
        batch_size=4,
        eval_every=2,
        n_eval=4,
        eval_ddim_steps=2,
        ddim_steps=(2, 4),
        n_throughput=2,
    )
    record = load_results("f_sweep", tmp_path)
    assert record["results"]["config"]["steps"] == 4
    for f in ("16", "1"):
        model = results["models"][f]
        assert [p["step"] for p in model["curve"]] == [2, 4]
        assert [r["ddim_steps"] for r in model["throughput"]] == [2, 4]
        assert all(r["images_per_s"] > 0 and 0 <= r["accuracy"] <= 1 for r in model["throughput"])
        assert (tmp_path / model["samples"]).exists()
    json.dumps(record)  # all of it is plain JSON


def test_samples_view_reads_the_grid(tmp_path):
    profile = Profile(n_train=128, n_eval=8)
    f_sweep.run(
        profile,
        out_dir=tmp_path,
        factors=(16,),
        model_channels=8,
        steps=2,
        batch_size=4,
        eval_every=1,
        n_eval=4,
        eval_ddim_steps=2,
        ddim_steps=(2,),
        n_throughput=2,
    )
    record = load_results("f_sweep", tmp_path)
    view = f_sweep.samples_view(record, 16, results_dir=tmp_path)
    assert view["grid"].shape == (2 * 32, 2 * 32 * len(f_sweep.SAMPLE_CAPTIONS), 3)
    assert "f = 16" in view["title"]
    with pytest.raises(ValueError, match="f=4 is not in these results"):
        f_sweep.samples_view(record, 4, results_dir=tmp_path)


def test_fd_floor_grows_as_sets_shrink():
    big, small = f_sweep.fd_floor(n=100, draws=3), f_sweep.fd_floor(n=50, draws=3)
    assert len(big["values"]) == 3 and big["sd"] >= 0
    # real against real is not 0 at these sizes (measured ~206 at n = 100, ~460 at n = 50) ...
    assert 100 < big["mean"] < 350, big
    # ... and halving the set roughly doubles it: the covariance noise grows as 1 / n
    assert small["mean"] > 1.5 * big["mean"], (small, big)


def test_reconstruction_score_is_a_ceiling_that_falls_with_f():
    good, coarse = f_sweep.reconstruction_score(4, n=40), f_sweep.reconstruction_score(16, n=40)
    assert good > 0.9, "ae-kl-f4 (30 dB) keeps what the classifier reads (1.00 on 100 images)"
    assert coarse < good - 0.2, "ae-kl-f16 (21.6 dB) loses about half the prompts (0.50 on 100 images)"
