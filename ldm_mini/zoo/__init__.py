"""The shipped checkpoints: their recipes, building them (``make pretrained``), saving and loading.

- ``recipes``: the config and training budget of every shipped model;
- ``store``: ``save_diffusion`` / ``load_diffusion`` and ``load_pretrained`` (sha256-checked);
- ``build``: ``build_all`` and one ``build_*`` per model, in dependency order.
"""

from .build import (
    build_all,
    build_autoencoder,
    build_classifier,
    build_judge,
    build_ldm,
    build_pixel,
    build_superres,
    fresh_ldm,
    prepare_ldm_training,
    progress_points,
    ship_superres,
    train_superres_pair,
    train_with_curve,
)
from .recipes import (
    AE_FACTORS,
    AE_REGS,
    CLASSIFIER,
    JUDGE,
    LDM_MAIN,
    PIXEL,
    PIXEL_STEPS,
    PROGRESS_CAPTIONS,
    SR_LDM,
    SR_PIXEL,
    SUPERRES,
    SRBudget,
    ae_name,
    ae_recipe,
    ldm_recipe,
    pixel_recipe,
    sr_budget,
    sr_recipe,
)
from .store import load_diffusion, load_pretrained, save_diffusion

__all__ = [
    "build_all", "build_autoencoder", "build_classifier", "build_judge", "build_ldm", "build_pixel", "build_superres",
    "fresh_ldm", "prepare_ldm_training", "progress_points", "ship_superres", "train_superres_pair", "train_with_curve",
    "AE_FACTORS", "AE_REGS", "CLASSIFIER", "JUDGE", "LDM_MAIN", "PIXEL", "PIXEL_STEPS", "PROGRESS_CAPTIONS", "SR_LDM",
    "SR_PIXEL", "SUPERRES", "SRBudget", "ae_name", "ae_recipe", "ldm_recipe", "pixel_recipe", "sr_budget", "sr_recipe",
    "load_diffusion", "load_pretrained", "save_diffusion",
]
