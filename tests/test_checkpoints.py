from dataclasses import dataclass

import pytest
import torch
from torch import nn

from ldm_mini import checkpoints as ck


@dataclass
class TinyConfig:
    width: int = 4
    mult: tuple = (1, 2)


class Tiny(nn.Module):
    def __init__(self, config: TinyConfig):
        super().__init__()
        self.config = config
        self.lin = nn.Linear(config.width, config.width * config.mult[-1])


def test_save_load_roundtrip_restores_config_and_weights(tmp_path):
    torch.manual_seed(0)
    model = Tiny(TinyConfig(width=3, mult=(1, 4)))
    path = ck.save_model(model, tmp_path / "m.safetensors")
    loaded = ck.load_model(Tiny, path)
    assert loaded.config == model.config  # tuples survive JSON
    assert torch.equal(loaded.lin.weight, model.lin.weight)
    assert not (tmp_path / "m.safetensors.tmp").exists()


def test_half_precision_files_are_smaller_and_load_as_float32(tmp_path):
    model = Tiny(TinyConfig(width=64))
    full = ck.save_model(model, tmp_path / "full.safetensors")
    half = ck.save_model(model, tmp_path / "half.safetensors", half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded = ck.load_model(Tiny, half)
    assert loaded.lin.weight.dtype == torch.float32
    assert torch.allclose(loaded.lin.weight, model.lin.weight, atol=1e-3)


def test_other_config_is_refused_with_the_difference(tmp_path):
    path = ck.save_model(Tiny(TinyConfig(width=3)), tmp_path / "m.safetensors")
    with pytest.raises(ck.CheckpointError, match="width"):
        ck.load_model(Tiny, path, expected_config=TinyConfig(width=5))


def test_other_class_is_refused(tmp_path):
    class Other(Tiny):
        pass

    path = ck.save_model(Tiny(TinyConfig()), tmp_path / "m.safetensors")
    with pytest.raises(ck.CheckpointError, match="holds a Tiny"):
        ck.load_model(Other, path)


def test_corrupted_file_gives_a_clear_error(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(b"this is not a checkpoint at all")
    with pytest.raises(ck.CheckpointError, match="corrupted"):
        ck.load_model(Tiny, path)


def test_manifest_hash_check(tmp_path):
    path = ck.save_model(Tiny(TinyConfig()), tmp_path / "m.safetensors")
    ck.write_manifest_entry("tiny", {"file": path.name, "sha256": ck.sha256(path)}, tmp_path)
    assert ck.verified_path("tiny", tmp_path)[0] == path
    with pytest.raises(ck.CheckpointError, match="no shipped checkpoint called 'huge'"):
        ck.verified_path("huge", tmp_path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ck.CheckpointError, match="sha256"):
        ck.verified_path("tiny", tmp_path)


def test_training_state_roundtrip(tmp_path):
    torch.manual_seed(0)
    model = Tiny(TinyConfig())
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(3)
    for _ in range(3):
        opt.zero_grad()
        model.lin(torch.randn(2, 4, generator=gen)).pow(2).sum().backward()
        opt.step()
    ck.save_training_state(
        tmp_path / "s.safetensors",
        modules={"model": model},
        optimizers={"opt": opt},
        step=3,
        generator=gen,
        extra={"loss": 1.5},
    )
    expected_next = torch.randn(
        2, generator=gen.clone_state() if hasattr(gen, "clone_state") else torch.Generator().set_state(gen.get_state())
    )

    model2 = Tiny(TinyConfig())
    opt2 = torch.optim.Adam(model2.parameters(), lr=1e-2)
    gen2 = torch.Generator()
    step, extra = ck.load_training_state(
        tmp_path / "s.safetensors", modules={"model": model2}, optimizers={"opt": opt2}, generator=gen2
    )
    assert step == 3 and extra == {"loss": 1.5}
    assert torch.equal(model2.lin.weight, model.lin.weight)
    assert torch.equal(torch.randn(2, generator=gen2), expected_next)
    for p, p2 in zip(model.parameters(), model2.parameters()):
        assert torch.equal(opt.state[p]["exp_avg_sq"], opt2.state[p2]["exp_avg_sq"])
