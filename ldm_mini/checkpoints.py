"""Saving and loading models safely: safetensors files, atomic writes, config checks.

Why safetensors and not ``torch.save``: a pickle can run arbitrary code when loaded, and a
classroom downloads and swaps checkpoints. A safetensors file holds only tensors and a
string-to-string metadata table, so we keep each model's dataclass config there as JSON
and rebuild the model from it.

Why atomic: a training run interrupted while writing (Ctrl-C, a closed laptop) must never
leave a half-written file under the real name. We write to ``name.tmp`` and rename, which
the operating system does in one step.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import typing
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "data" / "checkpoints"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: corrupted, or made for another model or config."""


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically: an interrupted write leaves the previous file whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # atomic on POSIX and Windows
    return path


def atomic_save(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write ``tensors`` to ``path`` as safetensors, atomically (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    save_file(tensors, str(tmp), metadata=metadata or {})
    os.replace(tmp, path)  # atomic on POSIX and Windows
    return path


def read_metadata(path: str | Path) -> dict[str, str]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(
            f"cannot read checkpoint {path}: {error}. The file is corrupted or not a safetensors file; retrain "
                f"or restore it."
        ) from error


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(
            f"cannot read checkpoint {path}: {error}. The file is corrupted or not a safetensors file; retrain "
                f"or restore it."
        ) from error


def config_to_json(config) -> str:
    return json.dumps(dataclasses.asdict(config), sort_keys=True)


def config_from_json(cls, text: str | dict):
    """Rebuild a dataclass config, nested configs included; JSON turns tuples into lists,
    so turn them back."""
    values = json.loads(text) if isinstance(text, str) else dict(text)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - fields
    if unknown:
        raise CheckpointError(
            f"checkpoint config has fields {sorted(unknown)} that {cls.__name__} does not know; it was made by "
                f"another version"
        )
    hints = typing.get_type_hints(cls)
    for name, value in values.items():
        nested = _dataclass_in(hints.get(name))
        if nested is not None and isinstance(value, dict):
            values[name] = config_from_json(nested, value)
        elif isinstance(value, list):
            values[name] = tuple(value)
    return cls(**values)


def _dataclass_in(hint):
    """The dataclass in a type hint such as `UNetConfig` or `AutoencoderConfig | None`."""
    for candidate in (hint, *typing.get_args(hint)):
        if dataclasses.is_dataclass(candidate):
            return candidate
    return None


def save_model(model: nn.Module, path: str | Path, *, half: bool = False, extra: dict | None = None) -> Path:
    """Save ``model`` (which has a dataclass ``model.config``) with its config as metadata.

    ``half=True`` stores floating-point weights in fp16: half the size, for shipped files.
    """
    tensors = {k: (v.half() if half and v.is_floating_point() else v) for k, v in model.state_dict().items()}
    metadata = {"class": type(model).__name__, "config": config_to_json(model.config)}
    if extra:
        metadata["extra"] = json.dumps(extra, sort_keys=True)
    return atomic_save(tensors, path, metadata)


def load_model(cls, path: str | Path, *, expected_config=None, device: torch.device | str = "cpu") -> nn.Module:
    """Rebuild ``cls(config)`` from a checkpoint written by ``save_model``.

    Refuses, with a message that says what differs, a checkpoint of another class or, when
    ``expected_config`` is given, of another config.
    """
    meta = read_metadata(path)
    if meta.get("class") != cls.__name__:
        raise CheckpointError(f"{path} holds a {meta.get('class', 'unknown model')}, not a {cls.__name__}")
    config_cls = type(expected_config) if expected_config is not None else _config_class(cls)
    config = config_from_json(config_cls, meta["config"])
    if expected_config is not None and config != expected_config:
        diff = {
            k: (v, getattr(expected_config, k))
            for k, v in dataclasses.asdict(config).items()
            if getattr(expected_config, k) != v
            and not (isinstance(v, (list, tuple)) and tuple(v) == tuple(getattr(expected_config, k)))
        }
        raise CheckpointError(
            f"{path} was trained with another config; differences (checkpoint, expected): {diff}. Load it "
                f"without expected_config, or retrain."
        )
    model = cls(config)
    state = load_tensors(path)
    reference = model.state_dict()
    state = {k: v.to(reference[k].dtype) if k in reference else v for k, v in state.items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise CheckpointError(f"{path} does not fit {cls.__name__}({config}): {error}") from error
    return model.to(device)


def _config_class(cls):
    import inspect

    hints = inspect.signature(cls.__init__).parameters
    annotation = hints["config"].annotation if "config" in hints else None
    if isinstance(annotation, str):  # from __future__ import annotations
        module = inspect.getmodule(cls)
        annotation = getattr(module, annotation.split(" ")[0].split("|")[0].strip())
    if not dataclasses.is_dataclass(annotation):
        raise TypeError(f"{cls.__name__}.__init__ must take `config: SomeConfig`")
    return annotation


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------- shipped checkpoints


def read_manifest(directory: Path = CHECKPOINT_DIR) -> dict:
    path = directory / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {}


def write_manifest_entry(name: str, entry: dict, directory: Path = CHECKPOINT_DIR) -> None:
    """Add or replace one entry of ``manifest.json`` (written atomically too)."""
    manifest = read_manifest(directory)
    manifest[name] = entry
    atomic_write_text(directory / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def verified_path(name: str, directory: Path = CHECKPOINT_DIR) -> tuple[Path, dict]:
    """The file of shipped checkpoint ``name``, after checking its sha256 against the manifest."""
    manifest = read_manifest(directory)
    if name not in manifest:
        raise CheckpointError(
            f"no shipped checkpoint called {name!r}; available: {sorted(manifest)}. Rebuild them with `make "
                f"pretrained`."
        )
    entry = manifest[name]
    path = directory / entry["file"]
    if not path.exists():
        raise CheckpointError(f"{path} is missing; rebuild it with `make pretrained`")
    if sha256(path) != entry["sha256"]:
        raise CheckpointError(
            f"{path} does not match the sha256 in manifest.json: the file is corrupted or was changed. Restore "
                f"it (git checkout) or rebuild it with `make pretrained`."
        )
    return path, entry


# ---------------------------------------------------------------- training state (resume)


def save_training_state(
    path: str | Path,
    *,
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    step: int,
    generator: torch.Generator,
    extra: dict | None = None,
) -> Path:
    """Everything a run needs to continue exactly where it stopped, in one safetensors file:
    the weights of each module (model, EMA copy, discriminator...), each optimiser's moments,
    the step, the data-order generator and torch's global RNG."""
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        tensors.update({f"{name}/{k}": v for k, v in module.state_dict().items()})
    groups = {}
    for name, optimizer in optimizers.items():
        state = optimizer.state_dict()
        for index, slots in state["state"].items():
            for key, value in slots.items():
                tensors[f"optim.{name}/{index}/{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
        groups[name] = state["param_groups"]
    tensors["rng/generator"] = generator.get_state()
    tensors["rng/torch"] = torch.get_rng_state()
    metadata = {"step": str(step), "param_groups": json.dumps(groups), "extra": json.dumps(extra or {})}
    return atomic_save(tensors, path, metadata)


def load_training_state(
    path: str | Path,
    *,
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    generator: torch.Generator,
) -> tuple[int, dict]:
    """Restore what ``save_training_state`` wrote, in place. Returns (step, extra)."""
    meta, tensors = read_metadata(path), load_tensors(path)
    for name, module in modules.items():
        prefix = f"{name}/"
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(state)
        except RuntimeError as error:
            raise CheckpointError(f"{path} was saved for another {name} configuration: {error}") from error
    groups = json.loads(meta["param_groups"])
    for name, optimizer in optimizers.items():
        state: dict[int, dict] = {}
        for key, value in tensors.items():
            if key.startswith(f"optim.{name}/"):
                _, index, slot = key.split("/")
                state.setdefault(int(index), {})[slot] = value
        optimizer.load_state_dict({"state": state, "param_groups": groups[name]})
    generator.set_state(tensors["rng/generator"])
    torch.set_rng_state(tensors["rng/torch"])
    return int(meta["step"]), json.loads(meta.get("extra", "{}"))
