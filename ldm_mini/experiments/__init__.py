"""The paper's experiments at mini scale (lessons 07-10), one module each:

- ``f_sweep``   (lesson 07): LDMs at f = 2-16 on 32 px and 64 px images, equal steps and equal time (Figs. 6, 7)
- ``bits``      (lesson 08): where a pixel-space diffusion model spends its bits (Fig. 2)
- ``superres``  (lesson 09): x4 super-resolution by concatenation vs bicubic and a pixel model (Tab. 5)
- ``binding``   (lesson 10): attribute binding with per-token, pooled and CLIP-like tau_theta, and a remedy

Each module has a ``run(profile, out_dir=RESULTS_DIR, ...) -> dict`` that does the whole
experiment and writes ``data/experiments/<name>.json`` (plus small PNGs) through
``save_results``; ``$LDM_RESULTS_DIR`` moves ``RESULTS_DIR`` elsewhere (a copy of the shipped
results, say), for the lessons too. A run in miniature (``config.Profile.miniature``) refuses to
write over the shipped results: its numbers mean nothing. ``python -m ldm_mini experiment <name>``
runs one; the lessons read the shipped results in the quick profile (the experiments take longer
than a lesson may) and run the cheap parts live.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch

from ..checkpoints import atomic_write_text
from ..config import miniature_requested

SHIPPED_RESULTS_DIR = Path(__file__).resolve().parent.parent.parent / "data" / "experiments"
RESULTS_DIR = Path(os.environ.get("LDM_RESULTS_DIR") or SHIPPED_RESULTS_DIR)


def machine() -> dict:
    """Where a result was measured: numbers from another machine are not comparable."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
    }


def save_results(
    name: str, results: dict, out_dir: Path = RESULTS_DIR, seconds: float | None = None, command: str | None = None
) -> Path:
    """Write ``results`` (JSON-able) to ``out_dir/name.json`` atomically, with the machine,
    the date, the wall time and the command that reproduces them (by default the experiment's)."""
    out_dir = Path(out_dir)
    if miniature_requested() and out_dir.resolve() == SHIPPED_RESULTS_DIR:
        raise RuntimeError(
            f"a run in miniature ($LDM_MINIATURE) must not overwrite the shipped results in {out_dir}: "
            "set $LDM_RESULTS_DIR to a scratch folder (a copy of data/experiments)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "experiment": name,
        "command": command or f"python -m ldm_mini experiment {name}",
        "date": time.strftime("%Y-%m-%d"),
        "seconds": None if seconds is None else round(seconds, 1),
        "machine": machine(),
        "results": results,
    }
    return atomic_write_text(out_dir / f"{name}.json", json.dumps(record, indent=1, default=_jsonable) + "\n")


def load_results(name: str, out_dir: Path = RESULTS_DIR) -> dict:
    """The record written by ``save_results`` (keys: experiment, command, date, seconds,
    machine, results). A clear error when the experiment has not been run."""
    path = Path(out_dir) / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(
            f"no results for experiment {name!r} at {path}; run `python -m ldm_mini experiment {name}` first"
        )
    return json.loads(path.read_text())


def _jsonable(value):
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in results JSON")
