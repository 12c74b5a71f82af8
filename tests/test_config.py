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
