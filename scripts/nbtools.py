"""Small helpers shared by the notebook scripts: read percent-format sources, execute notebooks."""

from __future__ import annotations

import re
import time
from pathlib import Path

import nbformat
from nbconvert.preprocessors import ExecutePreprocessor

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
CELL = re.compile(r"^# %%( \[markdown\])?\s*$", re.M)


def read_percent_source(path: Path) -> nbformat.NotebookNode:
    """A `# %%` / `# %% [markdown]` script -> a notebook (no outputs)."""
    text = path.read_text()
    marks = list(CELL.finditer(text))
    cells = []
    for mark, nxt in zip(marks, marks[1:] + [None]):
        body = text[mark.end() : nxt.start() if nxt else len(text)].strip("\n")
        if mark.group(1):  # markdown: drop the leading "# " of each line
            lines = [line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.splitlines()]
            cells.append(nbformat.v4.new_markdown_cell("\n".join(lines)))
        else:
            cells.append(nbformat.v4.new_code_cell(body))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def execute(nb: nbformat.NotebookNode, timeout: int = 1800) -> float:
    """Run every cell of ``nb`` in place (cwd = notebooks/); return the wall time in seconds."""
    start = time.perf_counter()
    ExecutePreprocessor(timeout=timeout, kernel_name="python3").preprocess(nb, {"metadata": {"path": str(NOTEBOOKS)}})
    return time.perf_counter() - start
