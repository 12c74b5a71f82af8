"""What every benchmark shares: timing by medians of interleaved repeats, the machine, the results file.

Rules (so the numbers can be trusted):
- both sides of a comparison run in the same process, on the same inputs;
- each side is warmed up once (first calls allocate and pick kernels), then timed `repeats`
  times, the sides *interleaved* (A B A B ...) so a slow spell of the machine hits both;
- we report the median of the repeats (robust to one disturbed run) and the ratio of medians.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    """Where the numbers were measured: timings from another machine are not comparable."""
    cpu = platform.processor() or platform.machine()
    try:  # the model name is more telling than "x86_64"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }


def time_once(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(fns: dict[str, Callable[[], object]], repeats: int = 5, warmup: int = 1,
            warm_fns: dict[str, Callable[[], object]] | None = None) -> dict[str, dict]:
    """Time each fn `repeats` times, interleaved, after `warmup` untimed calls each.

    warm_fns: cheaper stand-ins to warm up with (e.g. 2 DDIM steps instead of 50), same keys.
    Returns {name: {"median_s", "min_s", "max_s", "times_s"}}.
    """
    for name, fn in fns.items():
        for _ in range(warmup):
            (warm_fns or fns)[name]()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(time_once(fn))
    return {name: {"median_s": statistics.median(ts), "min_s": min(ts), "max_s": max(ts), "times_s": ts}
            for name, ts in times.items()}


def save(name: str, results: dict, seconds: float) -> Path:
    """benchmarks/results/NAME.json with the machine, the wall time and the command."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    record = {"benchmark": name, "command": f"python -m benchmarks.{name}", "seconds": round(seconds, 1),
              "machine": machine(), "results": results}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return path


def load(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())
