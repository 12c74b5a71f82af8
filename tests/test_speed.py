"""Speed changes must not change the numbers."""

import torch
from tiny import tiny_text, tiny_unet

from ldm_mini.unet import UNet


def _train(foreach: bool) -> list[torch.Tensor]:
    torch.manual_seed(0)
    m = UNet(tiny_unet(3, 16))
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.0, foreach=foreach)
    g = torch.Generator().manual_seed(1)
    for _ in range(4):
        x, c = torch.randn(4, 3, 8, 8, generator=g), torch.randn(4, 5, 16, generator=g)
        loss = m(x, torch.randint(0, 1000, (4,), generator=g), c).square().mean() + 1e-3 * sum(
            p.square().sum() for p in m.parameters()
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
    return [p.detach().clone() for p in m.parameters()]


def test_adamw_foreach_gives_the_same_weights_as_the_per_parameter_loop():
    # train_diffusion uses AdamW(foreach=True) for speed; the weights must be bit-for-bit those of the default loop
    for a, b in zip(_train(False), _train(True)):
        assert torch.equal(a, b)


def test_train_diffusion_uses_foreach_adamw(monkeypatch):
    import ldm_mini.train as train

    seen = {}

    def spy(*args, **kwargs):
        seen.update(kwargs)
        raise StopIteration  # no need to train: we only want the optimiser's settings

    monkeypatch.setattr(train.torch.optim, "AdamW", spy)
    from ldm_mini.ldm import LatentDiffusion, LDMConfig

    unet = tiny_unet(3, 16)
    ldm = LatentDiffusion(
        LDMConfig(autoencoder=None, unet=unet, text=tiny_text(16), image_size=8)
    )
    try:
        train.train_diffusion(
            ldm,
            torch.randn(4, 3, 8, 8),
            ldm.tokenizer(["a red circle"] * 4),
            train.TrainConfig(steps=1, batch_size=2, progress=False),
        )
    except StopIteration:
        pass
    assert seen.get("foreach") is True
