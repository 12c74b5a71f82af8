"""Super-resolution by concatenation (ldm_mini/ldm.py, SuperResDiffusion): sizes, plumbing, training, errors."""

import pytest
import torch

from ldm_mini.autoencoder import AutoencoderConfig
from ldm_mini.ldm import SRConfig, SuperResDiffusion, bicubic_upsample, downsample, sr_unet_config
from ldm_mini.train import TrainConfig, sr_training_data, train_diffusion

TINY_AE = AutoencoderConfig(f=4, base_channels=8, latent_channels=4, attn_mid=False)


def tiny_unet(c: int):
    return sr_unet_config(c, model_channels=8)


def ldm_sr(**kw) -> SuperResDiffusion:
    torch.manual_seed(0)
    return SuperResDiffusion(SRConfig(autoencoder=TINY_AE, unet=tiny_unet(4), **kw))


def pixel_sr(**kw) -> SuperResDiffusion:
    torch.manual_seed(0)
    return SuperResDiffusion(SRConfig(autoencoder=None, unet=tiny_unet(3), **kw))


# ------------------------------------------------------------------ degradation and bicubic


def test_downsample_and_bicubic_sizes():
    hr = torch.rand(2, 3, 32, 32) * 2 - 1
    lr = downsample(hr)
    assert lr.shape == (2, 3, 8, 8)
    assert bicubic_upsample(lr).shape == (2, 3, 32, 32)
    assert downsample(torch.rand(1, 3, 64, 48), factor=4).shape == (1, 3, 16, 12)


def test_downsample_keeps_a_flat_image_and_averages():
    flat = torch.full((1, 3, 32, 32), 0.25)
    assert torch.allclose(downsample(flat), torch.full((1, 3, 8, 8), 0.25), atol=1e-6)
    assert torch.allclose(bicubic_upsample(torch.full((1, 3, 8, 8), -0.5)), torch.full((1, 3, 32, 32), -0.5), atol=1e-6)
    # a fine checkerboard (period 2 px) averages out to grey when shrunk with anti-aliasing
    board = (torch.arange(32)[:, None] + torch.arange(32)[None]) % 2 * 2.0 - 1.0
    lr = downsample(board.expand(1, 3, 32, 32))
    assert lr.abs().max() < 0.05


def test_downsample_clamps_to_the_value_range():
    hr = torch.zeros(1, 3, 32, 32)
    hr[..., 12:20, 12:20] = 1.0  # a sharp square: bicubic overshoots around it
    assert downsample(hr, value_range=(0.0, 1.0)).min() >= 0.0
    assert bicubic_upsample(downsample(hr, value_range=(0.0, 1.0)), value_range=(0.0, 1.0)).max() <= 1.0


@pytest.mark.parametrize("size", [30, 33, 34])
def test_size_not_divisible_by_4_is_a_clear_error(size):
    with pytest.raises(ValueError, match="not divisible by the factor 4"):
        downsample(torch.zeros(1, 3, size, 32))
    with pytest.raises(ValueError, match="image_size"):
        SRConfig(autoencoder=None, unet=tiny_unet(3), image_size=size)


def test_bad_ranks_are_errors():
    with pytest.raises(ValueError, match=r"\(b, c, H, W\)"):
        downsample(torch.zeros(3, 32, 32))
    with pytest.raises(ValueError, match=r"\(b, c, h, w\)"):
        bicubic_upsample(torch.zeros(3, 8, 8))


# ------------------------------------------------------------------ config checks


def test_config_refuses_a_wrong_unet():
    with pytest.raises(ValueError, match="latent's 4 channels"):
        SRConfig(autoencoder=TINY_AE, unet=tiny_unet(3))
    with pytest.raises(ValueError, match="concat_channels"):
        SRConfig(
            autoencoder=None,
            unet=sr_unet_config(3).__class__(in_channels=3, out_channels=3, use_context=False, concat_channels=0),
        )
    with pytest.raises(ValueError, match="use_context=False"):
        SRConfig(autoencoder=None, unet=sr_unet_config(3).__class__(in_channels=3, out_channels=3, concat_channels=3))


# ------------------------------------------------------------------ concatenation plumbing


def test_ldm_sr_concatenates_y_unchanged_at_latent_size():
    model = ldm_sr()
    assert model.latent_shape == (4, 8, 8)
    lr = torch.rand(2, 3, 8, 8) * 2 - 1
    assert torch.equal(model.condition(lr), lr)  # f = 4, x4: y already has the latent's size
    assert model.unet.conv_in.in_channels == 4 + 3


def test_pixel_sr_concatenates_the_bicubic_upsampled_y():
    model = pixel_sr()
    assert model.latent_shape == (3, 32, 32)
    lr = torch.rand(2, 3, 8, 8) * 2 - 1
    assert torch.allclose(model.condition(lr), bicubic_upsample(lr))
    assert model.unet.conv_in.in_channels == 3 + 3


def test_condition_rejects_a_wrong_low_resolution_size():
    with pytest.raises(ValueError, match=r"\(b, 3, 8, 8\).*downsample"):
        ldm_sr().condition(torch.zeros(2, 3, 16, 16))
    with pytest.raises(ValueError, match=r"\(b, 3, 8, 8\)"):
        pixel_sr().condition(torch.zeros(2, 1, 8, 8))


def test_a_fresh_model_predicts_zero_noise():
    for model in (ldm_sr(), pixel_sr()):
        c, h, w = model.latent_shape
        eps = model.eps(torch.randn(3, c, h, w), torch.tensor([0, 500, 999]), model.condition(torch.rand(3, 3, 8, 8)))
        assert eps.shape == (3, c, h, w)
        assert torch.count_nonzero(eps) == 0


def test_the_prediction_depends_on_the_low_resolution_image():
    model = pixel_sr()
    for p in model.unet.out.parameters():  # un-zero the last conv so the output can move
        torch.nn.init.normal_(p, std=0.1)
    z = torch.randn(1, 3, 32, 32)
    t = torch.tensor([10])
    a = model.eps(z, t, model.condition(torch.zeros(1, 3, 8, 8)))
    b = model.eps(z, t, model.condition(torch.ones(1, 3, 8, 8)))
    assert not torch.allclose(a, b)


def test_loss_of_a_fresh_model_is_the_noise_variance():
    model = ldm_sr()
    z0 = torch.randn(64, 4, 8, 8)
    loss = model.loss(z0, torch.rand(64, 3, 8, 8) * 2 - 1, torch.Generator().manual_seed(0))
    assert abs(loss.item() - 1.0) < 0.05  # predicts 0, so the loss is E[eps^2] = 1


def test_upscale_shapes_range_and_determinism():
    model = ldm_sr()
    lr = torch.rand(2, 3, 8, 8)
    a = model.upscale(lr, steps=3, seed=1)
    assert a.shape == (2, 3, 32, 32) and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, model.upscale(lr, steps=3, seed=1))
    assert model.upscale((lr * 255).to(torch.uint8), steps=2).shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model.upscale(lr * 2 - 1, steps=2)
    with pytest.raises(ValueError, match="steps"):
        model.upscale(lr, steps=0)


def test_training_data_and_training_runs():
    images = (torch.rand(16, 3, 32, 32) * 255).to(torch.uint8)
    for model in (ldm_sr(), pixel_sr()):
        targets, lr = sr_training_data(model, images)
        assert lr.shape == (16, 3, 8, 8) and lr.min() >= -1 and lr.max() <= 1
        expected = (16, 4, 8, 8) if model.autoencoder is not None else (16, 3, 32, 32)
        assert targets.shape == expected
        cfg = TrainConfig(steps=30, batch_size=8, lr=2e-3, warmup=2, log_every=5, progress=False)
        model, history = train_diffusion(model, targets, lr, cfg)
        assert len(history) == 6
        assert all(torch.isfinite(torch.tensor(h["loss"])) for h in history)
    with pytest.raises(ValueError, match="pair up"):
        train_diffusion(pixel_sr(), targets[:4], lr, cfg)
    with pytest.raises(ValueError, match=r"\(n, 3, 32, 32\)"):
        sr_training_data(pixel_sr(), images[:, :, :16])


def test_training_lowers_the_loss_on_a_fixed_batch():
    model = ldm_sr()
    z0 = torch.randn(8, 4, 8, 8)
    lr = torch.rand(8, 3, 8, 8) * 2 - 1

    def fixed_loss():
        with torch.no_grad():
            return model.loss(z0, lr, torch.Generator().manual_seed(123)).item()

    before = fixed_loss()
    cfg = TrainConfig(steps=60, batch_size=8, lr=3e-3, warmup=2, ema_decay=0.5, progress=False)
    model, _ = train_diffusion(model, z0, lr, cfg)
    after = fixed_loss()
    assert abs(before - 1.0) < 0.15  # a fresh model predicts 0: loss = mean(eps^2)
    assert after < 0.8 * before


# ------------------------------------------------------------------ the experiment, end to end, tiny


def test_experiment_runs_end_to_end_and_zoo_ships_loadable_models(tmp_path):
    from ldm_mini.checkpoints import CHECKPOINT_DIR
    from ldm_mini.config import Profile
    from ldm_mini.experiments import load_results
    from ldm_mini.experiments.superres import run
    from ldm_mini.zoo import SR_LDM, SR_PIXEL, SRBudget, build_superres, load_diffusion, load_pretrained

    profile = Profile(name="quick", n_train=64, n_eval=24)
    budget = SRBudget(steps=3, ldm_steps=5, batch_size=4, n_test=12, sample_steps=2, eval_batch=8)
    results = run(profile, out_dir=tmp_path, budget=budget)
    build_superres(profile, tmp_path, budget=budget, source_dir=CHECKPOINT_DIR)
    assert [r["method"] for r in results["table"]] == ["bicubic", "LDM SR", "pixel SR"]
    for row in results["table"]:  # 3 training steps: the diffusion models still output noise
        assert 0 < row["psnr"] < 60 and -1 <= row["ssim"] <= 1 and row["fd"] >= 0 and row["seconds_per_image"] > 0
        for key in ("psnr", "ssim", "fd", "kept_large"):  # every compared figure has its interval
            low, high = row[f"{key}_ci"]
            assert low <= row[key] + 1e-6 and row[key] <= high + 1e-6, (key, row)
        assert 1.0 <= row["is"] <= 18.0 and row["n_large"] + row["n_small"] > 0
    assert results["table"][0]["kept_large"] >= 0.5  # bicubic keeps most large objects readable
    assert results["fd_floor_ci"][0] <= results["fd_floor"] and 1.0 <= results["is_real"] <= 18.0
    assert results["table"][0]["psnr"] > 15  # bicubic needs no training
    assert load_results("superres", tmp_path)["results"]["budget"]["steps"] == 3
    assert results["training"]["LDM SR"]["steps"] == 5 and results["training"]["pixel SR"]["steps"] == 3
    assert (tmp_path / "superres.png").stat().st_size > 0
    # the shipped pair: fp16, small, and they upscale exactly like the models that were measured
    ldm_sr = load_diffusion(tmp_path / f"{SR_LDM}.safetensors", load_pretrained("ae-kl-f4"))
    pixel = load_diffusion(tmp_path / f"{SR_PIXEL}.safetensors")
    assert ldm_sr.autoencoder is not None and pixel.autoencoder is None
    assert sum((tmp_path / f"{n}.safetensors").stat().st_size for n in (SR_LDM, SR_PIXEL)) <= 3.5e6
    y = torch.rand(2, 3, 8, 8)
    assert ldm_sr.upscale(y, steps=2).shape == pixel.upscale(y, steps=2).shape == (2, 3, 32, 32)


# ------------------------------------------------------------------ the shipped pair (lesson 09)


def test_shipped_superres_models_load_are_small_and_deterministic():
    import ldm_mini
    from ldm_mini.checkpoints import CHECKPOINT_DIR, read_manifest

    manifest = read_manifest()
    files = [CHECKPOINT_DIR / manifest[name]["file"] for name in ("sr-ldm-f4", "sr-pixel")]
    assert sum(f.stat().st_size for f in files) <= 3.5e6
    # equal compute, not equal steps: the cheaper latent steps are more, the time about the same
    assert manifest["sr-ldm-f4"]["train"]["steps"] > manifest["sr-pixel"]["train"]["steps"]
    assert 0.5 < manifest["sr-ldm-f4"]["train_seconds"] / manifest["sr-pixel"]["train_seconds"] < 2
    assert manifest["sr-ldm-f4"]["train"]["batch_size"] == manifest["sr-pixel"]["train"]["batch_size"]
    ldm_sr, pixel = ldm_mini.load_pretrained("sr-ldm-f4"), ldm_mini.load_pretrained("sr-pixel")
    assert (
        type(ldm_sr).__name__ == "SuperResDiffusion"
        and ldm_sr.latent_shape == (4, 8, 8)
        and pixel.latent_shape == (3, 32, 32)
    )
    y = torch.rand(2, 3, 8, 8)
    assert torch.equal(ldm_sr.upscale(y, steps=3, seed=0), ldm_sr.upscale(y, steps=3, seed=0))


# ------------------------------------------------------------------ how the table is read (eval.models)


def _scene(c1, s1, size1, c2="none", s2="none", size2="none"):
    return {"colour1": c1, "shape1": s1, "size1": size1, "colour2": c2, "shape2": s2, "size2": size2}


def test_kept_objects_counts_each_true_object_by_size():
    from ldm_mini.eval.models import kept_objects

    truth = [_scene("red", "circle", "large", "blue", "square", "small"), _scene("green", "triangle", "small")]
    seen = [_scene("red", "circle", "large", "blue", "circle", "small"),  # the small square came out a circle
            _scene("green", "triangle", "large")]  # kept: size is not asked, only colour on shape
    assert kept_objects(truth, seen, "large") == (1, 1)
    assert kept_objects(truth, seen, "small") == (1, 2)


def test_bootstrap_interval_is_seeded_and_holds_the_point():
    from ldm_mini.eval.models import bootstrap_interval

    values = torch.arange(100, dtype=torch.float64)

    def stat(i):
        return values[i].mean().item()

    low, high = bootstrap_interval(stat, 100, point=values.mean().item())
    assert low < 49.5 < high and high - low < 20  # the mean of 0..99 is 49.5, its standard error about 2.9
    assert bootstrap_interval(stat, 100, point=49.5) == [low, high]  # the same resamples every call
