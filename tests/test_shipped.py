"""The shipped checkpoints tell the paper's story: rate falls and distortion grows with f."""

import pytest
import torch

import ldm_mini
from ldm_mini.data import images_uint8, load_shapes
from ldm_mini.eval import evaluate_autoencoder
from ldm_mini.zoo import AE_FACTORS


@pytest.fixture(scope="module")
def val_images():
    return images_uint8(load_shapes(1000, "val", seed=0))[:200]


@pytest.mark.parametrize("reg", ["kl", "vq"])
def test_rate_falls_and_distortion_grows_with_f(reg, val_images):
    rows = [evaluate_autoencoder(ldm_mini.load_pretrained(f"ae-{reg}-f{f}"), val_images) for f in AE_FACTORS]
    rates = [r["bits_per_dim"] for r in rows]
    psnrs = [r["psnr"] for r in rows]
    assert all(a > b for a, b in zip(rates, rates[1:])), rates
    assert all(a > b for a, b in zip(psnrs, psnrs[1:])), psnrs


def test_quick_profile_targets_of_the_f4_autoencoders(val_images):
    assert evaluate_autoencoder(ldm_mini.load_pretrained("ae-kl-f4"), val_images)["psnr"] >= 30.0
    assert evaluate_autoencoder(ldm_mini.load_pretrained("ae-vq-f4"), val_images)["psnr"] >= 27.0


def test_shipped_files_stay_small():
    from ldm_mini.checkpoints import CHECKPOINT_DIR

    total = sum(p.stat().st_size for p in CHECKPOINT_DIR.iterdir())
    assert total < 40 * 2**20


def test_shipped_ldm_samples_the_same_images_every_time():
    ldm = ldm_mini.load_pretrained("shapes-kl-f4")
    a = ldm.generate(["a red circle", "a blue square above a green triangle"], steps=10, seed=0)
    b = ldm.generate(["a red circle", "a blue square above a green triangle"], steps=10, seed=0)
    assert torch.equal(a, b)


def test_the_shipped_judge_agrees_with_the_detector_and_the_readme_quotes_the_manifest():
    from pathlib import Path

    from ldm_mini.checkpoints import read_manifest

    manifest = read_manifest()
    judge, headline = manifest["judge"]["metrics"], manifest["shapes-kl-f4"]["headline"]
    assert judge["real_agree_objects"] >= 0.99 and judge["real_n"] >= 500  # issue 14's targets
    assert headline["agreement"]["objects"] >= 0.95 and headline["agreement"]["n"] >= 500
    assert manifest["shapes-kl-f4"]["metrics"] == headline["figures"]
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    figures = headline["figures"]
    for label, key in (("one object", "single"), ("bound right", "binding"), ("colours swapped", "swapped")):
        lo, hi = figures[f"{key}_ci"]
        quoted = f"{label} {100 * figures[key]:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"
        assert quoted in readme, f"README should say {quoted!r}, as the manifest does"


def test_the_readme_checkpoint_table_quotes_the_manifest():
    """Every autoencoder's PSNR and rFID*, the upscalers' PSNR and the pixel model's bound, as measured."""
    from pathlib import Path

    from ldm_mini.checkpoints import read_manifest

    manifest = read_manifest()
    rows = {
        line.split("`")[1]: line
        for line in (Path(__file__).resolve().parents[1] / "README.md").read_text().splitlines()
        if line.startswith("| `")
    }
    for name, entry in manifest.items():
        m = entry["metrics"]
        if entry["kind"] == "autoencoder":
            quoted = [f"PSNR {m['psnr']:.1f} dB", f"rFID* {m['rfid']:.2f}"]
        elif entry["kind"] == "superres":
            quoted = [f"PSNR {m['psnr']:.2f} dB", f"FD* {m['fd']:.2f}"]
        elif name == "shapes-pixel":
            quoted = [f"bound {m['bits_per_dim_bound_val64_S100']:.3f} bits/dim", f"| {entry['train']['steps']} (batch"]
        else:
            continue
        for text in quoted:
            assert text in rows[name], f"README's row of {name} should say {text!r}, as the manifest does"
