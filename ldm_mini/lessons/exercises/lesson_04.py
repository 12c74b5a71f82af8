"""Lesson 04 (the UNet and cross-attention): three exercises on the shipped model's denoiser.

1. (computation) the parameters of one cross-attention layer, counted by hand;
2. (code change) how many parameters cross-attention at 8 x 8 (``attention_levels=(0, 1, 2)``) adds;
3. (prediction) which parameters of a freshly built UNet get a gradient on the first training step.

Every truth is computed here from the shipped configuration (``load_pretrained("shapes-kl-f4")``
stores it in ``data/checkpoints/manifest.json``): no number is copied from the lesson.
"""

import dataclasses
from functools import lru_cache

import torch

from . import Verdict, close, judge, same_choice, unanswered

LESSON = "lesson 04"


def _n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@lru_cache(maxsize=1)
def _shipped_config():
    """The UNetConfig of the shipped text-to-image model, read from the manifest (no weights loaded)."""
    from ...checkpoints import read_manifest
    from ...unet import UNetConfig

    unet = dict(read_manifest()["shapes-kl-f4"]["config"]["unet"])
    return UNetConfig(**unet)


# ------------------------------------------------------------------------------------------ 1


def cross_attention_params() -> int:
    """Parameters of one cross-attention layer at level 1 (4 x 4) of the shipped UNet."""
    from ...unet import CrossAttention

    cfg = _shipped_config()
    width = cfg.model_channels * cfg.channel_mult[1]
    return _n_params(CrossAttention(width, cfg.context_dim, heads=cfg.num_heads))


def check_1(answer) -> Verdict:
    """answer: int, the parameter count of the cross-attention ``attn2`` in ``down[2]``."""
    ex = f"{LESSON}, exercise 1"
    if answer is None:
        return unanswered(ex, "put the parameter count of one cross-attention layer at 4 x 4 (an int)")
    truth = cross_attention_params()
    cfg = _shipped_config()
    c, d = cfg.model_channels * cfg.channel_mult[1], cfg.context_dim
    ok = close(answer, truth, abs_=0.5)
    return judge(
        ex, ok,
        f"{truth:,} = W_Q ({c} -> {c}) + W_K and W_V ({d} -> {c} each: they read the {d}-wide tokens tau_theta(y)) "
        f"+ to_out ({c} -> {c}, {c} x {c} weights and a bias of {c}). "
        "The heads split the width, they add no parameters.",
        "list the four linear maps of Eq. 3 in `CrossAttention.__init__`: which of them read the image features "
        f"(width c = {c}) and which the text tokens (width d_tau = {d})? Which of them has a bias? "
        "Heads only reshape: they add no weights.",
    )


# ------------------------------------------------------------------------------------------ 2


def added_by_attention_at_8x8() -> int:
    """Parameters that attention_levels=(0, 1, 2) adds to the shipped UNet."""
    from ...unet import UNet

    cfg = _shipped_config()
    wider = dataclasses.replace(cfg, attention_levels=tuple(sorted({0, *cfg.attention_levels})))
    torch.manual_seed(0)  # the count does not depend on it; keeps the global generator's use explicit
    return _n_params(UNet(wider)) - _n_params(UNet(cfg))


def check_2(answer) -> Verdict:
    """answer: int, how many parameters the UNet gains with attention_levels=(0, 1, 2)."""
    ex = f"{LESSON}, exercise 2"
    if answer is None:
        return unanswered(ex, "put the number of parameters added (an int: the new UNet's count minus the shipped "
                              "one's)")
    truth = added_by_attention_at_8x8()
    ok = close(answer, truth, abs_=0.5)
    return judge(
        ex, ok,
        f"{truth:,} more parameters: level 0 gets a SpatialTransformer in each of its 3 blocks (1 going down, "
        "2 going up), each a self-attention, a cross-attention and a GEGLU feed-forward at width 64. About 4% "
        "more parameters, but attention at 8 x 8 compares 64 pixels with each other, 16 times the pairs of 4 x 4.",
        "build the UNet twice, `UNet(unet.config)` and "
        "`UNet(dataclasses.replace(unet.config, attention_levels=(0, 1, 2)))`, "
        "and subtract their parameter counts (the difference, not the new total). Level 0 has one block going "
        "down and two going up: each gets a SpatialTransformer.",
    )


# ------------------------------------------------------------------------------------------ 3

CHOICES_3 = ("all", "zero-initialised", "final conv")


def parameters_with_gradient(seed: int = 0) -> tuple[list[str], int]:
    """One MSE loss and backward pass through a fresh UNet with the shipped configuration: the
    names of the parameters whose gradient is not exactly 0, and the number of parameter tensors."""
    from ...unet import UNet

    cfg = _shipped_config()
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    fresh = UNet(cfg)
    z_t = torch.randn(4, cfg.in_channels, 8, 8, generator=g)
    t = torch.randint(0, 1000, (4,), generator=g)
    context = torch.randn(4, 16, cfg.context_dim, generator=g)
    eps = torch.randn(4, cfg.out_channels, 8, 8, generator=g)
    loss = ((fresh(z_t, t, context) - eps) ** 2).mean()
    loss.backward()
    names = [n for n, p in fresh.named_parameters() if p.grad is not None and p.grad.abs().max() > 0]
    return names, len(list(fresh.parameters()))


def check_3(answer) -> Verdict:
    """answer: one of "all", "zero-initialised", "final conv" (the prediction), then tested."""
    ex = f"{LESSON}, exercise 3"
    if answer is None:
        return unanswered(ex, f"write your prediction as one of {CHOICES_3}, then run the check: it runs the test")
    if not isinstance(answer, str) or answer.strip().lower() not in CHOICES_3:
        return Verdict(ex, False, f"answer with one of {CHOICES_3}")
    names, total = parameters_with_gradient()
    final_only = all(n.startswith("out.") for n in names) and len(names) == 2
    right = "final conv" if final_only else ("all" if len(names) == total else "zero-initialised")
    measured = f"measured: {len(names)} of {total} parameter tensors got a non-zero gradient ({', '.join(names[:4])})"
    return judge(
        ex, same_choice(answer, right, CHOICES_3),
        f"{measured}. The final conv's weight gradient is its input (not 0) times dL/d eps_theta; every layer before "
        "it receives dL/d(its output) only through the final conv's weights, which are 0, so its gradient is 0. "
        "After the first update the final conv is no longer 0: from the second step the gradient flows back "
        "along the residual connections (x + 0), past every zero-initialised layer.",
        f"{measured}. Follow the chain rule backwards from the loss: what does the final conv hand back to the "
        "layer before it, when its weights are all 0? A zero-initialised layer's *own* weight gradient is its "
        "input times the gradient arriving from above: is anything arriving?",
    )


WRONG = {
    1: [49_152, 65_664, 65_536, "49280"],  # no bias in to_out; K and V from c instead of d_tau; both; a string
    2: [6_875_268, 91_456, 0],  # the new total; one SpatialTransformer only; nothing
    3: ["all", "zero-initialised", "the final conv"],  # the last is not one of the offered choices
}
