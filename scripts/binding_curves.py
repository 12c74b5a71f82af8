"""Print the curves in the JSON lines of scripts/explore_binding.py, one row per evaluation.

.venv/bin/python scripts/binding_curves.py [/work/notes/binding_explore.jsonl]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/notes/binding_explore.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    print(
        f"{'run':12s} {'step':>5s} {'train s':>8s}  single  full    presence  binding [95% CI]        swapped  sampler"
    )
    for r in sorted(rows, key=lambda r: (r["name"], r["step"])):
        lo, hi = r["binding_ci"]
        secs = f"{r['train_seconds']:.0f}" if r.get("train_seconds") is not None else "-"
        print(
            f"{r['name']:12s} {r['step']:5d} {secs:>8s}  "
            f"{r['single']:.3f}  {r['single_full']:.3f}  {r['presence']:.3f}     "
            f"{r['binding']:.3f} [{lo:.3f}, {hi:.3f}]  {r['swapped']:.3f}    {r['sampler']}"
        )


if __name__ == "__main__":
    main()
