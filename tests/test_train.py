import dataclasses

import pytest
import torch
from tiny import tiny_text, tiny_unet
from torch import nn

from ldm_mini.autoencoder import AutoencoderConfig
from ldm_mini.train import EMA, TrainConfig, TrainingDiverged, lr_at, run_training, train_autoencoder

TINY_AE = AutoencoderConfig(f=2, reg="kl", base_channels=8, latent_channels=2, attn_mid=False)


def _images(n=32, size=16):
    from ldm_mini.data import ShapesConfig, build_shapes, images_uint8

    return images_uint8(build_shapes(n, "train", seed=0, config=ShapesConfig(image_size=size)))


def _cfg(steps=6, **kw):
    return TrainConfig(steps=steps, batch_size=4, lr=1e-3, warmup=2, log_every=1, save_every=2, progress=False, **kw)


@pytest.mark.parametrize("reg", ["kl", "vq"])
def test_interrupted_and_resumed_run_matches_an_uninterrupted_one(tmp_path, reg):
    ae_config = AutoencoderConfig(
        f=2, reg=reg, base_channels=8, latent_channels=2, attn_mid=False, vq_codebook_size=8, vq_restart_after=1
    )
    cfg = _cfg(steps=6)
    from ldm_mini.losses import AutoencoderLossConfig

    loss_cfg = AutoencoderLossConfig(disc_start=2, disc_channels=8)  # the discriminator joins mid-run
    full, history_full = train_autoencoder(ae_config, _images(), cfg, loss_cfg, out_dir=tmp_path / "a")
    train_autoencoder(ae_config, _images(), cfg, loss_cfg, out_dir=tmp_path / "b", stop_after=3)  # "interrupted"
    resumed, history_resumed = train_autoencoder(
        ae_config, _images(), cfg, loss_cfg, out_dir=tmp_path / "b", resume=True
    )
    for (name, p), p2 in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(p, p2), name
    assert [h["loss"] for h in history_full] == [h["loss"] for h in history_resumed]


def test_nan_loss_stops_with_the_step_and_keeps_the_last_checkpoint(tmp_path):
    model = nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def step_fn(step, generator):
        return {"loss": float("nan") if step == 4 else 1.0}

    with pytest.raises(TrainingDiverged, match="at step 4.*state.safetensors"):
        run_training(step_fn, _cfg(steps=10), modules={"model": model}, optimizers={"opt": opt}, out_dir=tmp_path)
    assert (tmp_path / "state.safetensors").exists()


def test_learning_rate_warms_up_then_decays_to_the_floor():
    cfg = TrainConfig(steps=100, lr=1.0, warmup=10, lr_min_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(10, cfg) == pytest.approx(1.0)
    assert lr_at(99, cfg) == pytest.approx(0.1, abs=1e-3)
    assert all(lr_at(s, cfg) >= lr_at(s + 1, cfg) for s in range(10, 99))


def test_learning_rate_with_decay_steps_is_a_function_of_the_step_alone():
    short, long = (TrainConfig(steps=n, lr=1.0, warmup=10, lr_min_ratio=0.1, decay_steps=100) for n in (100, 400))
    assert all(lr_at(s, short) == lr_at(s, long) for s in range(100))
    assert lr_at(99, long) == pytest.approx(0.1, abs=1e-3)
    assert all(lr_at(s, long) == pytest.approx(0.1) for s in range(100, 400))  # held at the floor


def test_ema_tracks_the_weights_with_warmup():
    model = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(model.weight)
    ema = EMA(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)  # first update: d = min(0.9, 2/11)
    assert ema.model.weight.item() == pytest.approx(1 - 2 / 11)
    for _ in range(200):
        ema.update(model)
    assert ema.model.weight.item() == pytest.approx(1.0, abs=1e-6)


def test_autoencoder_loss_goes_down_on_a_tiny_run():
    images = _images(16, 16)
    _, history = train_autoencoder(TINY_AE, images, _cfg(steps=30, lr_min_ratio=1.0))
    first, last = history[0]["l1"], min(h["l1"] for h in history[-5:])
    assert last < 0.8 * first


def test_autoencoder_fine_tunes_from_given_weights():
    images = _images(16, 16)
    start, _ = train_autoencoder(TINY_AE, images, _cfg(steps=30, lr_min_ratio=1.0))
    slow = dataclasses.replace(_cfg(steps=2), lr=1e-6)  # two steps that barely move the weights
    tuned, history = train_autoencoder(TINY_AE, images, slow, init=start.state_dict())
    fresh, fresh_history = train_autoencoder(TINY_AE, images, slow)
    assert history[-1]["l1"] < 0.8 * fresh_history[-1]["l1"]  # it started where the first run ended
    w = "encoder.conv_in.weight"
    assert torch.allclose(tuned.state_dict()[w], start.state_dict()[w], atol=1e-4)


def _tiny_ldm():
    from ldm_mini.ldm import LatentDiffusion, LDMConfig

    config = LDMConfig(
        autoencoder=TINY_AE,
        unet=tiny_unet(),
        text=tiny_text(),
        image_size=16,
    )
    torch.manual_seed(0)
    return LatentDiffusion(config)


def test_ldm_training_resumes_exactly_and_learns(tmp_path):
    from ldm_mini.train import train_diffusion

    g = torch.Generator().manual_seed(0)
    latents = torch.randn(16, 2, 8, 8, generator=g)
    tokens = _tiny_ldm().tokens(["a red circle"] * 8 + ["a blue square above a red circle"] * 8)
    cfg = _cfg(steps=6)
    full, h1 = train_diffusion(_tiny_ldm(), latents, tokens, cfg, out_dir=tmp_path / "a")
    train_diffusion(_tiny_ldm(), latents, tokens, cfg, out_dir=tmp_path / "b", stop_after=4)
    resumed, h2 = train_diffusion(_tiny_ldm(), latents, tokens, cfg, out_dir=tmp_path / "b", resume=True)
    assert [h["loss"] for h in h1] == [h["loss"] for h in h2]
    for (name, p), p2 in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(p, p2), name
    images = resumed.generate(["a red circle"], steps=3, seed=0)
    assert images.shape == (1, 3, 16, 16) and 0 <= images.min() and images.max() <= 1
