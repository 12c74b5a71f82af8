"""The shipped checkpoints on disk: saving a diffusion model, the manifest, and ``load_pretrained``."""

from __future__ import annotations

from pathlib import Path

import torch

from .. import checkpoints as ck
from ..autoencoder import Autoencoder
from ..eval.classifier import AttributeClassifier
from ..eval.judge import Judge
from ..ldm import DiffusionModel, LatentDiffusion, LDMConfig, SRConfig, SuperResDiffusion

DIFFUSION_CLASSES = {
    "LatentDiffusion": (LatentDiffusion, LDMConfig),
    "SuperResDiffusion": (SuperResDiffusion, SRConfig),
}


def save_diffusion(model: DiffusionModel, path: Path) -> Path:
    """Save eps_theta (and tau_theta for text models) in fp16, without the autoencoder: it has its
    own file and is reused. The class and config go into the file's metadata."""
    tensors = {
        k: v.half() if v.is_floating_point() else v
        for k, v in model.state_dict().items()
        if not k.startswith("autoencoder.")
    }
    return ck.atomic_save(tensors, path, {"class": type(model).__name__, "config": ck.config_to_json(model.config)})


def load_diffusion(
    path: str | Path, autoencoder: Autoencoder | None = None, expected: type | None = None
) -> DiffusionModel:
    """Rebuild a LatentDiffusion or SuperResDiffusion from a file written by ``save_diffusion``, with
    its autoencoder (None in pixel space). Refuses an autoencoder of another config, and a file of
    another class than ``expected`` (when given)."""
    meta = ck.read_metadata(path)
    name = meta.get("class")
    if name not in DIFFUSION_CLASSES or (expected is not None and name != expected.__name__):
        want = expected.__name__ if expected is not None else " or ".join(DIFFUSION_CLASSES)
        raise ck.CheckpointError(f"{path} holds a {name or 'unknown model'}, not a {want}")
    cls, config_cls = DIFFUSION_CLASSES[name]
    config = ck.config_from_json(config_cls, meta["config"])
    model = cls(config)
    state = ck.load_tensors(path)
    if config.autoencoder is not None:
        if autoencoder is None or autoencoder.config != config.autoencoder:
            raise ck.CheckpointError(
                f"{path} was trained on the latents of an autoencoder with config {config.autoencoder}; pass "
                    f"that autoencoder"
            )
        state.update({f"autoencoder.{k}": v for k, v in autoencoder.state_dict().items()})
    reference = model.state_dict()
    model.load_state_dict({k: v.to(reference[k].dtype) for k, v in state.items()})
    return model.eval()


def load_pretrained(name: str, directory: Path = ck.CHECKPOINT_DIR, device: torch.device | str = "cpu"):
    """A shipped checkpoint, after checking its sha256: an AttributeClassifier, the Judge, an Autoencoder,
    a LatentDiffusion or a SuperResDiffusion (with its autoencoder), in eval mode, in float32."""
    path, entry = ck.verified_path(name, directory)
    kind = entry["kind"]
    if kind == "classifier":
        model = ck.load_model(AttributeClassifier, path)
    elif kind == "judge":
        model = ck.load_model(Judge, path)
    elif kind == "autoencoder":
        model = ck.load_model(Autoencoder, path)
    elif kind in ("ldm", "superres"):
        ae = load_pretrained(entry["autoencoder"], directory) if entry.get("autoencoder") else None
        model = load_diffusion(path, ae)
    else:
        raise ck.CheckpointError(f"manifest entry {name!r} has an unknown kind {kind!r}")
    return model.to(device).eval()
