"""Rebuild notebooks/NN_*.ipynb from notebooks/src/NN_*.py and execute them in place.

A lesson split in two is NN_* and NNb_* (02_autoencoder, 02b_latent_space): the glob takes both,
and "02_" sorts before "02b_", so they run in order.

The .py sources are what authors edit and review; the .ipynb files, with their outputs,
are what learners open and what nbval checks. Usage:
    python scripts/build_notebooks.py            # all lessons
    python scripts/build_notebooks.py 00 03      # only lessons whose name starts so
"""

import sys

import nbformat
from nbtools import NOTEBOOKS, execute, read_percent_source

for src in sorted((NOTEBOOKS / "src").glob("[0-9][0-9]*_*.py")):
    if len(sys.argv) > 1 and not any(src.name.startswith(p) for p in sys.argv[1:]):
        continue
    nb = read_percent_source(src)
    seconds = execute(nb, progress=src.stem)
    nbformat.write(nb, NOTEBOOKS / (src.stem + ".ipynb"))
    print(f"{src.stem}: executed in {seconds:.0f} s")
