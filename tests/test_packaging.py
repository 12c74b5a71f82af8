"""The project's own files agree with each other."""

import re
from pathlib import Path

import nbformat
import tomllib

ROOT = Path(__file__).resolve().parent.parent


def _name(req: str) -> str:
    return re.split(r"[<>=!~ ;\[]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [r for reqs in project["optional-dependencies"].values() for r in reqs]
    wanted = {_name(r) for r in project["dependencies"] + extras}
    env = (ROOT / "environment.yml").read_text()
    pip_lines = re.findall(r"^\s+- ([A-Za-z0-9_.\-\[\]]+[^\n#]*)$", env.split("- pip:")[1], re.M)
    listed = {_name(line) for line in pip_lines}
    assert listed == wanted


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    head = readme[:1500]
    assert "make lessons" in head and "make test" in head
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_notebook_matches_its_source():
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    from nbtools import read_percent_source

    sources = sorted((ROOT / "notebooks" / "src").glob("[0-9][0-9]*_*.py"))
    assert sources
    for src in sources:
        built = nbformat.read(ROOT / "notebooks" / (src.stem + ".ipynb"), as_version=4)
        fresh = read_percent_source(src)
        assert [c.source for c in built.cells] == [c.source for c in fresh.cells], f"rebuild {src.stem}: make notebooks"
        for cell in built.cells:
            if cell.cell_type == "code":
                assert not any(o.get("output_type") == "error" for o in cell.outputs), f"{src.stem} has an error output"
