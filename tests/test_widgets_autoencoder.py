"""The lesson-02 autoencoder panel: its view is pure tensors and numbers, checked here by hand."""

import math

import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from ldm_mini.autoencoder import Autoencoder, AutoencoderConfig
from ldm_mini.eval import psnr
from ldm_mini.lessons.cache import ModelCache
from ldm_mini.lessons.widgets import autoencoder_panel, autoencoder_view, draw_autoencoder_view


def tiny(f=4, reg="kl"):
    torch.manual_seed(0)
    return Autoencoder(AutoencoderConfig(f=f, reg=reg, base_channels=8, vq_codebook_size=16)).eval()


def images(b=3, size=16):
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (b, 3, size, size), generator=g, dtype=torch.uint8)


@pytest.mark.parametrize("reg", ["kl", "vq"])
def test_view_matches_the_model_and_the_metrics(reg):
    ae, x = tiny(4, reg), images()
    view = autoencoder_view(ae, x)
    x01 = x.float() / 255
    with torch.no_grad():
        z = ae.encode_latent(x01 * 2 - 1)
        rec = ((ae.decode(z) + 1) / 2).clamp(0, 1)
    assert view["latent_shape"] == (4, 4, 4) and (view["f"], view["reg"]) == (4, reg)
    torch.testing.assert_close(view["originals"], x01)
    torch.testing.assert_close(view["latents"], z)  # unscaled; VQ: before quantisation
    torch.testing.assert_close(view["reconstructions"], rec)
    torch.testing.assert_close(view["errors"], (x01 - rec).abs().mean(1))
    assert view["errors"].shape == (3, 16, 16)
    assert view["psnr"] == pytest.approx(psnr(x01, rec), abs=1e-4)
    assert view["psnr_per_image"].shape == (3,)
    if reg == "vq":  # h w log2(K) / (3 H W) = 4*4*4 / (3*16*16)
        assert view["bits_per_dim"] == pytest.approx(64 / 768)
    else:  # KL nats / ln 2 / (3 H W), batch mean
        with torch.no_grad():
            kl = ae.encode(x01 * 2 - 1).kl().mean().item()
        assert view["bits_per_dim"] == pytest.approx(kl / math.log(2) / 768, rel=1e-5)


def test_view_takes_float_images_and_restores_training_mode():
    ae, x = tiny(2, "kl").train(), images(2)
    view_u8 = autoencoder_view(ae, x)
    view_f = autoencoder_view(ae, x.float() / 255)
    assert ae.training
    assert view_f["latent_shape"] == (4, 8, 8)
    torch.testing.assert_close(view_f["reconstructions"], view_u8["reconstructions"])


def test_view_rejects_bad_images():
    ae = tiny()
    with pytest.raises(ValueError, match=r"batch shaped \(b, 3, H, W\).*x\[None\]"):
        autoencoder_view(ae, images(1)[0])
    with pytest.raises(ValueError, match=r"\[0, 1\].*to_image_range"):
        autoencoder_view(ae, images(1).float() / 127.5 - 1)


def test_draw_has_one_row_per_latent_channel():
    view = autoencoder_view(tiny(4, "vq"), images(3))
    fig = draw_autoencoder_view(view, "tiny")
    assert len(fig.axes) == (3 + 4) * 3
    assert "VQ-reg, f = 4" in fig._suptitle.get_text()
    matplotlib.pyplot.close(fig)


def test_model_cache_loads_each_model_once():
    calls = []

    def load(name):
        calls.append(name)
        return tiny(4, "kl")

    cache = ModelCache(["ae-kl-f4", "ae-vq-f4"], load)
    assert "ae-kl-f4" in cache and "ae-kl-f8" not in cache and len(cache) == 2
    assert cache["ae-kl-f4"] is cache["ae-kl-f4"]
    assert calls == ["ae-kl-f4"]
    with pytest.raises(KeyError, match="ae-kl-f8.*available"):
        cache["ae-kl-f8"]


def test_panel_redraws_on_a_control_and_caches_views(monkeypatch):
    import ldm_mini.lessons.widgets as widgets

    computed = []
    real_view = widgets.autoencoder_view
    monkeypatch.setattr(widgets, "autoencoder_view", lambda ae, x: computed.append(ae.config.f) or real_view(ae, x))
    monkeypatch.setattr(widgets.plt, "show", lambda: widgets.plt.close("all"))
    models = {"ae-kl-f2": tiny(2, "kl"), "ae-kl-f4": tiny(4, "kl")}
    panel = autoencoder_panel(models, images(2), f=4, reg="kl")
    f_picker, reg_picker, _ = panel.children
    assert list(f_picker.options) == [2, 4] and f_picker.value == 4
    assert computed == [4]
    f_picker.value = 2
    f_picker.value = 4  # cached: not computed again
    reg_picker.value = "vq"  # missing: a message, no error
    assert computed == [4, 2]
    with pytest.raises(ValueError, match="no autoencoder named"):
        autoencoder_panel({"something": tiny()}, images(2))
