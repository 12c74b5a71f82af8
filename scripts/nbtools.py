"""Small helpers shared by the notebook scripts: read percent-format sources, execute notebooks."""

from __future__ import annotations

import re
import time
from pathlib import Path
from queue import Empty

import nbformat
from nbclient.exceptions import CellExecutionError
from nbclient.util import run_sync
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


def _poll_in_slices(channel, slice_s: float = 0.5) -> None:
    """Make ``channel.get_msg(timeout)`` wait in short slices instead of one long wait.

    Why: with a large figure drawn inside an ipywidgets Output (the lessons' panels), nbclient
    sometimes misses the wake-up for the kernel's execute reply and sits idle until the cell's
    whole timeout has passed (30 minutes here), then carries on as if nothing happened (measured:
    the same panel cell took 7 s or 33 s with a 30 s timeout, at random; nbclient issue 312).
    A fresh short wait looks at the socket again, so a missed wake-up costs at most ``slice_s``.
    """
    get = channel.get_msg

    async def get_msg(timeout: float | None = None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = slice_s if deadline is None else max(0.0, min(slice_s, deadline - time.monotonic()))
            try:
                return await get(timeout=left)
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    channel.get_msg = get_msg


class _Executor(ExecutePreprocessor):
    """nbconvert's executor whose kernel client polls its channels in short slices (see above)."""

    async def async_start_new_kernel_client(self):
        kc = await super().async_start_new_kernel_client()
        _poll_in_slices(kc.shell_channel)
        _poll_in_slices(kc.iopub_channel)
        return kc

    start_new_kernel_client = run_sync(async_start_new_kernel_client)  # the base binds its own async method


class LessonFailed(RuntimeError):
    """A lesson stopped at one cell: which one, and the error it raised."""


def execute(
    nb: nbformat.NotebookNode,
    timeout: int = 1800,
    progress: str | None = None,
    every: float = 10.0,
    cwd: Path = NOTEBOOKS,
) -> float:
    """Run every cell of ``nb`` in place (in ``cwd``, notebooks/ by default); return the wall time in seconds.

    With ``progress`` (a label, e.g. the lesson's name), print "cell k of n, elapsed" when a code
    cell starts at least ``every`` seconds after the last such line, so a long lesson is not silent.
    A failing cell raises LessonFailed naming the cell (k of n), its first line and the error.
    The kernel's own log lines are silenced: a start-up warning ("running over TCP without
    encryption": the kernel only listens on localhost) and a KeyboardInterrupt logged when it is
    shut down; the cells' output is kept as it is, and a crash still raises here.
    """
    start = time.perf_counter()
    n_code = sum(cell.cell_type == "code" for cell in nb.cells)
    state = {"k": 0, "last": start, "source": ""}

    def on_cell_start(cell, cell_index):
        if cell.cell_type != "code":
            return
        state["k"] += 1
        state["source"] = next((line for line in cell.source.splitlines() if line.strip()), "")
        now = time.perf_counter()
        if progress and now - state["last"] >= every:
            print(f"  {progress}: cell {state['k']} of {n_code}, {now - start:.0f} s", flush=True)
            state["last"] = now

    client = _Executor(
        timeout=timeout,
        kernel_name="python3",
        extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
        on_cell_start=on_cell_start,
    )
    try:
        client.preprocess(nb, {"metadata": {"path": str(cwd)}})
    except CellExecutionError as error:
        what = f"{error.ename}: {error.evalue}".strip(": ")
        raise LessonFailed(f"code cell {state['k']} of {n_code} ({state['source'][:60]!r}) raised {what}") from error
    return time.perf_counter() - start
