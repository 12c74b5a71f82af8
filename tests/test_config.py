import pytest
import torch

from ldm_mini.config import get_profile, pick_device, seed_everything


def test_device_choice_on_this_machine(monkeypatch):
    monkeypatch.delenv("LDM_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert pick_device().type == expected
    assert pick_device("cpu").type == "cpu"
    monkeypatch.setenv("LDM_DEVICE", "cpu")
    assert pick_device().type == "cpu"


def test_profile_defaults_follow_the_device(monkeypatch):
    monkeypatch.delenv("LDM_PROFILE", raising=False)
    monkeypatch.delenv("PROFILE", raising=False)
    assert get_profile(device=torch.device("cpu")).name == "quick"
    assert get_profile(device=torch.device("cuda")).name == "full"
    assert get_profile("full").ae_steps > get_profile("quick").ae_steps
    monkeypatch.setenv("LDM_PROFILE", "full")
    assert get_profile(device=torch.device("cpu")).name == "full"


def test_unknown_profile_is_refused():
    with pytest.raises(ValueError, match="quick"):
        get_profile("fast")


def test_seed_everything_repeats_draws():
    g = seed_everything(7)
    a = (torch.randn(3), torch.randn(2, generator=g))
    g = seed_everything(7)
    b = (torch.randn(3), torch.randn(2, generator=g))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_no_hardcoded_cuda_calls():
    from pathlib import Path

    for path in Path(__file__).resolve().parent.parent.joinpath("ldm_mini").glob("*.py"):
        assert ".cuda()" not in path.read_text(), f"{path.name} calls .cuda(); use .to(device)"


def test_miniature_keeps_the_profile_and_caps_every_count(monkeypatch):
    from ldm_mini.config import FULL, QUICK

    monkeypatch.delenv("LDM_MINIATURE", raising=False)
    assert not get_profile("full").is_miniature and get_profile("full").cap_steps(20_000) == 20_000
    monkeypatch.setenv("LDM_MINIATURE", "1")
    mini = get_profile("full")
    assert mini.name == "full" and mini.is_miniature and mini.image_size == FULL.image_size
    assert mini.ldm_steps <= 2 and mini.sample_steps <= 2 and mini.n_train < QUICK.n_train
    assert mini.cap_steps(20_000) == mini.max_steps and mini.cap_steps(1) == 1
    assert mini.cap_samples(2_000) == mini.max_samples
    monkeypatch.setenv("LDM_MINIATURE", "0")
    assert get_profile("full") == FULL


def test_a_miniature_run_does_not_overwrite_the_shipped_results(monkeypatch, tmp_path):
    from ldm_mini.experiments import SHIPPED_RESULTS_DIR, save_results

    monkeypatch.setenv("LDM_MINIATURE", "1")
    with pytest.raises(RuntimeError, match="LDM_RESULTS_DIR"):
        save_results("anything", {}, SHIPPED_RESULTS_DIR)
    assert save_results("anything", {}, tmp_path).exists()
