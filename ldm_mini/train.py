"""Training loops: the autoencoder (stage 1) and every diffusion model (stage 2, ``train_diffusion``).

Both share one loop, ``run_training``, which does the chores a learner should never lose
work to: a progress bar, a loss history, periodic checkpoints written atomically, resume
from the last checkpoint (weights, optimiser moments, EMA, step and random state, so a
resumed run ends with the *same* weights as an uninterrupted one), and a hard stop on a
NaN or infinite loss that says at which step it happened and keeps the last good file.

Batches are drawn with replacement from a tensor held in memory, by a ``torch.Generator``
whose state is part of the checkpoint: that is what makes resuming exact.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from . import distributed
from .autoencoder import Autoencoder
from .checkpoints import load_training_state, save_training_state
from .data import to_model_range
from .ldm import downsample
from .losses import AutoencoderLoss, AutoencoderLossConfig


@dataclass
class TrainConfig:
    steps: int = 1_500  # optimiser steps
    batch_size: int = 64
    lr: float = 1e-3  # peak learning rate (Adam)
    warmup: int = 50  # linear warm-up steps
    lr_min_ratio: float = 0.1  # cosine decay ends at lr * lr_min_ratio (f >= 8 oscillates without decay)
    decay_steps: int | None = None  # the cosine decay spans these steps, then holds at the floor (None: all steps)
    ema_decay: float = 0.995  # short runs: 0.999 would lag far behind the weights
    seed: int = 0
    log_every: int = 25  # steps between history entries
    save_every: int = 250  # steps between checkpoints (when an out_dir is given)
    progress: bool = True  # show a tqdm bar


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class EMA(nn.Module):
    """An exponential moving average of a model's weights: theta_ema <- d theta_ema + (1 - d) theta.

    Sampling from the EMA weights gives smoother results than the last step's weights. The
    decay warms up as min(decay, (1 + n) / (10 + n)) so early averages are not dominated by
    the random initialisation.
    """

    def __init__(self, model: nn.Module, decay: float = 0.995):
        super().__init__()
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        n = self.updates.item()
        d = min(self.decay, (1 + n) / (10 + n))
        for ema_p, p in zip(self.model.parameters(), model.parameters()):
            ema_p.lerp_(p.detach(), 1 - d)
        for ema_b, b in zip(self.model.buffers(), model.buffers()):
            ema_b.copy_(b)


def lr_at(step: int, train_config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to lr * lr_min_ratio over ``decay_steps`` (default: all the
    steps), then held there. A fixed ``decay_steps`` makes the rate a function of the step alone, the
    same for runs of different lengths (lesson 07 compares its models at equal steps along the way)."""
    if step < train_config.warmup:
        return train_config.lr * (step + 1) / train_config.warmup
    decay_steps = train_config.decay_steps or train_config.steps
    progress = min(1.0, (step - train_config.warmup) / max(1, decay_steps - train_config.warmup))
    floor = train_config.lr_min_ratio
    return train_config.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def run_training(
    step_fn: Callable[[int, torch.Generator], dict],
    train_config: TrainConfig,
    *,
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    out_dir: str | Path | None = None,
    resume: bool = False,
    description: str = "training",
    stop_after: int | None = None,
    on_step: Callable[[int], None] | None = None,
) -> list[dict]:
    """Call ``step_fn(step, generator) -> logs`` for steps [start, train_config.steps); return the history.

    ``logs["loss"]`` must be the float loss of that step. Every ``log_every`` steps the logs
    are appended to the history; every ``save_every`` steps (and at the end) the full
    training state goes to ``out_dir/state.safetensors``. ``stop_after`` ends the call early
    (used by tests to simulate an interruption). ``on_step(steps_done)`` runs after every
    step (e.g. to draw samples as training goes on).
    """
    generator = torch.Generator().manual_seed(train_config.seed)
    state_path = Path(out_dir) / "state.safetensors" if out_dir else None
    start, history, elapsed_before = 0, [], 0.0
    if resume and state_path is not None and state_path.exists():
        start, extra = load_training_state(state_path, modules=modules, optimizers=optimizers, generator=generator)
        history, elapsed_before = extra.get("history", []), extra.get("seconds", 0.0)
    t0 = time.perf_counter()
    elapsed = lambda: elapsed_before + time.perf_counter() - t0  # noqa: E731  (training time across resumes)

    def save(step: int) -> None:
        if state_path is not None and distributed.is_main():  # one writer when several processes train
            save_training_state(
                state_path,
                modules=modules,
                optimizers=optimizers,
                step=step,
                generator=generator,
                extra={"history": history, "seconds": elapsed()},
            )

    end = train_config.steps if stop_after is None else min(train_config.steps, stop_after)
    bar = tqdm(
        range(start, end),
        desc=description,
        disable=not train_config.progress or not distributed.is_main(),
        initial=start,
        total=train_config.steps,
    )
    for step in bar:
        for optimizer in optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, train_config) * group.get("lr_scale", 1.0)
        logs = step_fn(step, generator)
        if not math.isfinite(logs["loss"]):
            where = (
                f"the last good checkpoint is {state_path}"
                if state_path and state_path.exists()
                else "no checkpoint was written"
            )
            raise TrainingDiverged(
                f"loss became {logs['loss']} at step {step}; {where}. Lower the learning rate (now {train_config.lr}) "
                    f"and resume."
            )
        if (step + 1) % train_config.log_every == 0 or step + 1 == train_config.steps:
            history.append(
                {"step": step + 1, "seconds": round(elapsed(), 2), **{k: round(v, 6) for k, v in logs.items()}}
            )
            bar.set_postfix(loss=f"{logs['loss']:.4f}")
        if on_step is not None:
            on_step(step + 1)
        if (step + 1) % train_config.save_every == 0 or step + 1 == end:
            save(step + 1)
    return history


# ---------------------------------------------------------------- stage 1: the autoencoder


def sample_batch(
    images_uint8: torch.Tensor, batch_size: int, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """A random batch (with replacement) in [-1, 1]: b 3 h w."""
    index = torch.randint(len(images_uint8), (batch_size,), generator=generator)
    return to_model_range(images_uint8[index].to(device))


def train_autoencoder(
    ae_config,
    images_uint8: torch.Tensor,
    train_config: TrainConfig | None = None,
    loss_config=None,
    feature_net: nn.Module | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    device: torch.device | str = "cpu",
    stop_after: int | None = None,
    on_step: Callable[[int], None] | None = None,
    init: dict[str, torch.Tensor] | None = None,
):
    """Train an ``Autoencoder(ae_config)`` on uint8 images (b 3 H W). Returns (model, history).
    ``init``: a state dict to start from instead of random weights (fine-tuning, e.g. lesson 07's
    64 px autoencoders start from the 32 px ones: convolutions do not care about the image size).

    The paper's recipe (Sec. 3.1): L1 reconstruction + perceptual loss (here in the features
    of our attribute classifier, since LPIPS weights cannot be downloaded) + a PatchGAN
    adversarial loss that starts after a warm-up, plus the small KL or VQ regulariser.
    """
    train_config = train_config or TrainConfig()
    torch.manual_seed(train_config.seed)
    device = torch.device(device)
    model = Autoencoder(ae_config).to(device)
    if init is not None:
        model.load_state_dict(init)
    loss_config = loss_config or AutoencoderLossConfig(disc_start=int(train_config.steps * 0.6))
    criterion = AutoencoderLoss(loss_config, feature_net).to(device)
    opt_ae = torch.optim.Adam(model.parameters(), lr=train_config.lr, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(criterion.discriminator.parameters(), lr=train_config.lr, betas=(0.5, 0.9))

    def step_fn(step: int, generator: torch.Generator) -> dict:
        x = sample_batch(images_uint8, train_config.batch_size, generator, device)
        x_rec, aux = model(x)
        loss, logs = criterion.generator_loss(x, x_rec, aux, step, last_layer=model.last_layer())
        opt_ae.zero_grad(set_to_none=True)
        loss.backward()
        opt_ae.step()
        if criterion.disc_active(step):
            d_loss, d_logs = criterion.discriminator_loss(x, x_rec, step)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            logs.update(d_logs)
        return logs

    model.train()
    history = run_training(
        step_fn, train_config, modules={"model": model, "discriminator": criterion.discriminator},
        optimizers={"ae": opt_ae, "disc": opt_d}, out_dir=out_dir, resume=resume,
        description=f"{ae_config.reg.upper()}-f{ae_config.f}", stop_after=stop_after, on_step=on_step,
    )
    model.eval()
    return model, history


@torch.no_grad()
def encode_images(ae, images_uint8: torch.Tensor, batch_size: int = 64, scaled: bool = True) -> torch.Tensor:
    """The latent cache: E(x) for every image, once (b c h w), times the latent scale.

    Encoding once and training the diffusion model on the cached latents is what makes
    latent diffusion cheap: the autoencoder never runs inside the diffusion training loop.
    """
    device = next(ae.parameters()).device
    chunks = []
    for i in range(0, len(images_uint8), batch_size):
        x = to_model_range(images_uint8[i : i + batch_size].to(device))
        chunks.append(ae.encode_latent(x).cpu())
    z = torch.cat(chunks)
    return z * ae.scale_factor.cpu() if scaled else z


# ---------------------------------------------------------------- stage 2: diffusion (every diffusion model)


def train_diffusion(
    model,
    targets: torch.Tensor,
    conditions: torch.Tensor,
    train_config: TrainConfig | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    stop_after: int | None = None,
    on_step: Callable[[int], None] | None = None,
    max_grad_norm: float = 1.0,
):
    """Train the trainable parts of a diffusion model (``model.trainable()``: eps_theta, and
    tau_theta for text unless ``LDMConfig.freeze_text``) on targets z_0 (n c h w) and their
    conditioning y (n ...), pair by pair. The autoencoder stays frozen. Returns (model with EMA weights, history).

    - ``LatentDiffusion``: targets = the latent cache (or pixels in [-1, 1]), y = caption tokens (n L);
    - ``SuperResDiffusion``: targets = the latent cache or uint8 pixels (converted per batch),
      y = the low-resolution images (n 3 s s); see ``sr_training_data``.

    One loop, optimiser, EMA and gradient clipping for every model, so models compared in a lesson
    differ only in what they are. Gradients are clipped to ``max_grad_norm``: a few noisy batches
    at high t can otherwise kick a small model far off course early in training.

    Under torchrun (see ldm_mini.distributed) the same call trains with DistributedDataParallel:
    each rank takes its share of the batch of train_config.batch_size, gradients are averaged across
    ranks, and only rank 0 writes checkpoints; the logged loss is rank 0's share."""
    train_config = train_config or TrainConfig(lr=5e-4)
    if len(targets) != len(conditions):
        raise ValueError(f"targets ({len(targets)}) and conditions ({len(conditions)}) must pair up one to one")
    torch.manual_seed(train_config.seed)
    device = model.device
    trainable = model.trainable()
    loss_fn, world = model.loss, distributed.world_size()
    if world > 1:
        if train_config.batch_size % world:
            raise ValueError(f"batch_size {train_config.batch_size} must split evenly over {world} processes")
        # DDP copies rank 0's weights to every rank, and hooks the gradient all-reduce onto a
        # module's forward: give it one that returns the loss
        loss_fn = nn.parallel.DistributedDataParallel(_LossModule(model))
    ema = EMA(trainable, train_config.ema_decay)
    # foreach=True: one call updates all parameters instead of a Python loop over them (torch's default on
    # GPUs); the same weights bit for bit (tests/test_speed.py). On this CPU the step time is the same
    # within noise (benchmarks/speed_options: x0.99 and x1.06 in two runs)
    optimizer = torch.optim.AdamW(trainable.parameters(), lr=train_config.lr, weight_decay=0.0, foreach=True)

    def step_fn(step: int, generator: torch.Generator) -> dict:
        index = torch.randint(len(targets), (train_config.batch_size,), generator=generator)
        g = generator
        if world > 1:  # this rank's share of the batch, and its own noise
            index, g = index[distributed.rank() :: world], distributed.rank_generator(generator)
        z0 = targets[index].to(device)
        if z0.dtype == torch.uint8:  # pixel targets kept as uint8: -> [-1, 1] per batch
            z0 = to_model_range(z0)
        loss = loss_fn(z0, conditions[index].to(device), g)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(trainable.parameters(), max_grad_norm)
        optimizer.step()
        ema.update(trainable)
        return {"loss": loss.item()}

    model.train()
    history = run_training(
        step_fn,
        train_config,
        modules={"trainable": trainable, "ema": ema},
        optimizers={"opt": optimizer},
        out_dir=out_dir,
        resume=resume,
        description=model.description(),
        stop_after=stop_after,
        on_step=on_step,
    )
    trainable.load_state_dict(ema.model.state_dict())  # sample with the smoother EMA weights
    model.eval()
    return model, history


class _LossModule(nn.Module):
    """forward(z0, y, generator) = model.loss(...), over the trainable parts only (eps_theta, tau_theta):
    what DistributedDataParallel wraps. The frozen autoencoder is left out (nothing to synchronise)."""

    def __init__(self, model):
        super().__init__()
        self.trainable = model.trainable()
        self._loss = model.loss  # a bound method: keeps the model out of this module's children

    def forward(self, z0: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self._loss(z0, y, generator)


def sr_training_data(model, images_uint8: torch.Tensor, batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """(targets, y) for training a ``SuperResDiffusion``: y = downsample(x) in [-1, 1] (n 3 s s), and the targets

    - LDM-SR: the latent cache z_0 = scale * E(x) (n 4 h w), encoded once (why LDMs train cheaply);
    - pixel SR: the images themselves, kept as uint8 (n 3 H W) and converted per batch."""
    H = model.config.image_size
    if images_uint8.ndim != 4 or images_uint8.shape[1:] != (3, H, H):
        raise ValueError(f"images must be (n, 3, {H}, {H}) uint8, got {tuple(images_uint8.shape)}")
    y_low = torch.cat(
        [
            downsample(to_model_range(images_uint8[i : i + 1000]), model.config.factor)
            for i in range(0, len(images_uint8), 1000)
        ]
    )
    targets = images_uint8 if model.autoencoder is None else encode_images(model.autoencoder, images_uint8, batch_size)
    return targets, y_low
