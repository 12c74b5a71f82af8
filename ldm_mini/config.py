"""Run-wide settings: the profile, the device and the seed.

Each model keeps its own dataclass config next to its code (``AutoencoderConfig`` in
``autoencoder.py``, ``UNetConfig`` in ``unet.py``), as nanoGPT keeps ``GPTConfig`` beside
``GPT``. This module only holds what every lesson shares:

- a *profile*: "quick" runs every lesson on a 2-core laptop CPU in minutes, "full" trains
  bigger models for longer on a GPU;
- the device: cuda > mps > cpu, chosen once, and every tensor follows it;
- ``seed_everything`` so a lesson prints the same numbers on every run.

A profile can also be run *in miniature* (``Profile.miniature()``, or ``LDM_MINIATURE=1`` in the
environment): the same code path, the same models and configs, with every count capped, so a CPU
runs the "full" profile's lessons in minutes to check that nothing in them breaks before a GPU
spends hours on it. Its numbers mean nothing.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, replace

import numpy as np
import torch

PROFILES = ("quick", "full")


@dataclass(frozen=True)
class Profile:
    """How big and how long. The lessons read these numbers instead of hard-coding them."""

    name: str = "quick"
    n_train: int = 20_000  # captioned shapes in the training split
    n_eval: int = 1_000  # val/test images used for metrics
    image_size: int = 32  # H = W of the shapes images
    classifier_steps: int = 400  # attribute classifier optimiser steps (300 reached >= 99.9% here)
    judge_steps: int = 800  # the judge's optimiser steps (it learns through defects: more steps than the classifier)
    ae_steps: int = 700  # autoencoder optimiser steps (~4 min each at f = 4 on 2 cores)
    ldm_steps: int = 3_000  # latent diffusion optimiser steps (12.4 min on 2 cores; binding still rose at 2500)
    batch_size: int = 64
    sample_steps: int = 50  # DDIM steps S when sampling
    n_samples_eval: int = 200  # samples drawn to measure prompt accuracy, per caption set of the headline metrics
    # Set by ``miniature()`` only (None: no cap): the most optimiser or sampling steps, and the most
    # samples, that code may use where it sets its own counts instead of reading them above (an
    # experiment's own budget, a lesson's live demo). Such code asks ``cap_steps`` / ``cap_samples``.
    max_steps: int | None = None
    max_samples: int | None = None

    @property
    def is_miniature(self) -> bool:
        return self.max_steps is not None

    def cap_steps(self, n: int) -> int:
        """``n`` optimiser or sampling steps, or fewer in a miniature profile."""
        return n if self.max_steps is None else min(n, self.max_steps)

    def cap_samples(self, n: int) -> int:
        """``n`` samples (images, captions, test points), or fewer in a miniature profile."""
        return n if self.max_samples is None else min(n, self.max_samples)

    def miniature(self) -> Profile:
        """This profile's code path with every count capped: a smoke test, not a result.

        The name stays, so every ``profile.name == "full"`` branch is taken and builds the same
        models; only how long they train and how much they sample and measure shrinks."""
        return replace(
            self,
            n_train=256,  # lesson 05 reads 256 training latents
            n_eval=64,
            classifier_steps=2,
            judge_steps=2,
            ae_steps=2,
            ldm_steps=2,
            batch_size=8,
            sample_steps=2,  # DDIM steps
            n_samples_eval=4,
            max_steps=2,
            max_samples=8,
        )


QUICK = Profile()
FULL = Profile(
    name="full",
    n_train=60_000,
    n_eval=5_000,
    image_size=32,
    classifier_steps=3_000,
    judge_steps=4_000,
    ae_steps=20_000,
    ldm_steps=50_000,
    batch_size=128,
    sample_steps=50,
    n_samples_eval=2_000,
)


def pick_device(prefer: str | None = None) -> torch.device:
    """The fastest device present: cuda > mps > cpu, unless ``prefer`` names one.

    ``LDM_DEVICE=cpu`` in the environment forces a device for a whole run.
    """
    prefer = prefer or os.environ.get("LDM_DEVICE")
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def miniature_requested() -> bool:
    """Whether $LDM_MINIATURE asks for every profile in miniature (``Profile.miniature``)."""
    return os.environ.get("LDM_MINIATURE", "").strip().lower() not in ("", "0", "false", "no")


def get_profile(name: str | None = None, device: torch.device | None = None) -> Profile:
    """The profile called ``name``; by default $LDM_PROFILE, else "full" on a GPU, "quick" on a CPU.
    In miniature (``Profile.miniature``) when $LDM_MINIATURE is set (to anything but 0 / false / no)."""
    name = name or os.environ.get("LDM_PROFILE") or os.environ.get("PROFILE")
    if not name:
        device = device or pick_device()
        name = "full" if device.type == "cuda" else "quick"
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: choose one of {PROFILES}")
    profile = QUICK if name == "quick" else FULL
    return profile.miniature() if miniature_requested() else profile


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch; return a torch.Generator seeded the same way.

    On the CPU this makes a whole lesson repeat bit for bit (same thread count assumed).
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
