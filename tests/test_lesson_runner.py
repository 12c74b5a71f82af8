"""The lesson runner (scripts/nbtools.py): progress inside a lesson, the failing cell named, a quiet kernel."""

import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from nbtools import LessonFailed, execute  # noqa: E402


def notebook(*sources: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# a lesson")])
    nb.cells += [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def test_failing_cell_is_named_and_kernel_is_quiet(capfd):
    nb = notebook("x = 1", "# divide by nothing\ny = x / 0", "z = 3")
    with pytest.raises(LessonFailed, match=r"code cell 2 of 3 \('# divide by nothing'\) raised ZeroDivisionError"):
        execute(nb, progress="demo", every=0.0)
    out, err = capfd.readouterr()
    assert "demo: cell 1 of 3" in out and "demo: cell 2 of 3" in out
    assert "demo: cell 3 of 3" not in out  # stopped at the failing cell
    assert "without encryption" not in out + err


def test_outputs_are_kept():
    nb = notebook("print('hello')")
    seconds = execute(nb)
    assert seconds > 0
    assert nb.cells[1].outputs[0]["text"] == "hello\n"
