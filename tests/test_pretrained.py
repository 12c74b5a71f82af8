"""The shipped-checkpoint pipeline end to end, on a toy profile (minutes of real training
are for `make pretrained`; here a few steps prove the plumbing)."""

import json

import pytest
import torch

from ldm_mini import checkpoints as ck
from ldm_mini.config import Profile
from ldm_mini.zoo import build_all, load_pretrained

TOY = Profile(
    name="quick", n_train=64, n_eval=32, classifier_steps=2, judge_steps=2, ae_steps=2, ldm_steps=2, batch_size=8,
    n_samples_eval=4,
)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    directory = tmp_path_factory.mktemp("checkpoints")
    build_all(
        TOY,
        only=["attribute-classifier", "judge", "ae-kl-f4", "ae-vq-f4", "shapes-kl-f4"],
        directory=directory,
        work_dir=None,
    )
    return directory


def test_manifest_records_what_was_built(shipped):
    manifest = json.loads((shipped / "manifest.json").read_text())
    assert set(manifest) == {"attribute-classifier", "judge", "ae-kl-f4", "ae-vq-f4", "shapes-kl-f4"}
    assert {"codebook_usage", "perplexity", "bits_per_dim_entropy"} <= set(manifest["ae-vq-f4"]["metrics"])
    ae = manifest["ae-kl-f4"]
    assert ae["config"]["f"] == 4 and ae["train"]["steps"] == 2
    assert {"psnr", "ssim", "rfid", "bits_per_dim", "scale_factor"} <= set(ae["metrics"])
    assert manifest["shapes-kl-f4"]["autoencoder"] == "ae-kl-f4"
    ldm = manifest["shapes-kl-f4"]
    assert ldm["metrics"] == ldm["headline"]["figures"] and {"binding", "binding_ci", "single"} <= set(ldm["metrics"])
    assert ldm["headline"]["agreement"]["n"] == 3 * TOY.n_samples_eval
    assert (shipped / ldm["headline"]["two_grid"]).exists()
    assert [row["step"] for row in ldm["curve"]] == [1, 2]  # accuracy along training (progress_points(2))
    assert all({"single", "binding", "binding_ci"} <= set(row) for row in ldm["curve"])
    assert {"real_agree_objects", "val_defects_acc_colour1"} <= set(manifest["judge"]["metrics"])
    for entry in manifest.values():
        assert entry["sha256"] == ck.sha256(shipped / entry["file"])


def test_load_pretrained_gives_working_models(shipped):
    ldm = load_pretrained("shapes-kl-f4", shipped)
    images = ldm.generate(["a red circle"], steps=2, seed=0)
    assert images.shape == (1, 3, 32, 32)
    ae = load_pretrained("ae-kl-f4", shipped)
    assert torch.equal(ldm.autoencoder.scale_factor, ae.scale_factor)
    assert ae.scale_factor.item() != 1.0  # measured on data


def test_ldm_file_does_not_duplicate_the_autoencoder(shipped):
    tensors = ck.load_tensors(shipped / "shapes-kl-f4.safetensors")
    assert not any(k.startswith("autoencoder.") for k in tensors)
    assert all(v.dtype == torch.float16 for v in tensors.values() if v.is_floating_point())


def test_a_changed_file_is_refused(shipped, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(shipped, copy)
    data = bytearray((copy / "ae-kl-f4.safetensors").read_bytes())
    data[-3] ^= 0x55
    (copy / "ae-kl-f4.safetensors").write_bytes(bytes(data))
    with pytest.raises(ck.CheckpointError, match="sha256"):
        load_pretrained("ae-kl-f4", copy)


def test_remeasure_reads_rfid_with_the_judge_and_keeps_the_record(shipped, tmp_path):
    import shutil

    from ldm_mini.data import images_uint8, load_shapes
    from ldm_mini.eval.models import evaluate_autoencoder
    from ldm_mini.zoo.build import remeasure_autoencoders

    copy = tmp_path / "copy"
    shutil.copytree(shipped, copy)
    before = json.loads((copy / "manifest.json").read_text())
    out = remeasure_autoencoders(TOY, copy, only=["ae-kl-f4"])
    after = json.loads((copy / "manifest.json").read_text())
    assert set(out) == {"ae-kl-f4"} and after["ae-vq-f4"] == before["ae-vq-f4"]
    val = images_uint8(load_shapes(TOY.n_eval, "val"))
    ae, judge = load_pretrained("ae-kl-f4", copy), load_pretrained("judge", copy)
    assert after["ae-kl-f4"]["metrics"]["rfid"] == pytest.approx(evaluate_autoencoder(ae, val, judge)["rfid"])
    assert after["ae-kl-f4"]["metrics"]["scale_factor"] == before["ae-kl-f4"]["metrics"]["scale_factor"]
    assert after["ae-kl-f4"]["train"] == before["ae-kl-f4"]["train"]
