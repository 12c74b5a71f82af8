"""The main job: run every lesson headless, in order, and report each one's wall time.

Executed copies and HTML pages go to --out (default build/lessons/). The profile comes from
$PROFILE ("quick" or "full"); left empty, a GPU machine runs "full" and a CPU "quick".
"""

import argparse
import os
import sys
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from nbtools import NOTEBOOKS, execute

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--out", default="build/lessons")
parser.add_argument("--only", nargs="*", default=None, help="lesson number prefixes, e.g. 00 03")
args = parser.parse_args()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
if os.environ.get("PROFILE"):
    os.environ["LDM_PROFILE"] = os.environ["PROFILE"]

rows, failed = [], False
for path in sorted(NOTEBOOKS.glob("[0-9][0-9]*_*.ipynb")):
    if args.only and not any(path.name.startswith(p) for p in args.only):
        continue
    nb = nbformat.read(path, as_version=4)
    print(f"running {path.name} ...", flush=True)
    try:
        seconds, status = execute(nb, progress=path.stem), "ok"
    except Exception as error:  # keep going: one broken lesson should not hide the others
        seconds, status, failed = float("nan"), f"FAILED: {str(error).splitlines()[0][:160]}", True
        print(f"  {path.stem} FAILED: {str(error).splitlines()[0]}", flush=True)
    nbformat.write(nb, out / path.name)
    (out / path.with_suffix(".html").name).write_text(HTMLExporter().from_notebook_node(nb)[0])
    rows.append((path.stem, seconds, status))

print(f"\n{'lesson':<40} {'wall time':>10}  status")
for name, seconds, status in rows:
    print(f"{name:<40} {seconds:>9.0f}s  {status}")
total = sum(s for _, s, _ in rows if s == s)
print(f"{'total':<40} {total:>9.0f}s")
print(f"executed notebooks and HTML in {out}/")
sys.exit(1 if failed else 0)
