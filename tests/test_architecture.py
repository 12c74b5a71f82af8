"""The package's layering (docs/CONVENTIONS.md, "Layers"): no import cycle, and imports flow one way.

The import graph is read with ``ast`` from every module of ``ldm_mini``, function-level imports
included (a lazy import is still a dependency), so it needs no imports of the package itself.
"""

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ldm_mini"

# rank of each layer: a module may import modules of its own rank or lower, never higher
LAYERS = {"data": 0, "core": 1, "eval": 2, "zoo": 3, "experiments": 4, "cli": 5, "lessons": 6}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def resolve(name: str, known: dict[str, Path]) -> str | None:
    """The module of ``known`` that ``name`` (a module or a name inside one) refers to."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            module = node.module or ""
            if node.level:
                module = f"{base}.{module}" if module else base
            submodules = [f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in known]
            # `from . import x` imports the module x; `from .x import y` imports x (y is a name in it)
            targets = submodules if len(submodules) == len(node.names) else [module, *submodules]
        else:
            continue
        for target in targets:
            if target.startswith("ldm_mini"):
                resolved = resolve(target, known)
                if resolved and resolved != name:
                    found.add(resolved)
    return found


@functools.cache
def import_graph() -> dict[str, set[str]]:
    """module -> the ldm_mini modules it imports (a package's __init__ counts as a module)."""
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (depth-first search, three colours)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def layer(name: str) -> str:
    parts = name.split(".")
    if len(parts) == 1 or parts[1] in ("cli", "__main__"):
        return "cli"  # the package itself (load_pretrained) and the command line sit on top
    return parts[1] if parts[1] in LAYERS else "core"


def test_the_graph_is_read():
    graph = import_graph()
    assert "ldm_mini.ldm" in graph["ldm_mini.train"]
    assert "ldm_mini.zoo.store" in graph["ldm_mini.zoo.build"]
    assert "ldm_mini.zoo" in graph["ldm_mini"]  # a function-level import counts
    assert "ldm_mini.data.captions" in graph["ldm_mini.data.shapes"]


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("name", sorted(modules()))
def test_imports_flow_one_way(name):
    """core <- eval <- zoo <- experiments <- cli; data is the bottom; lessons may import anything,
    nothing imports lessons."""
    graph = import_graph()
    mine = LAYERS[layer(name)]
    upward = [m for m in graph[name] if LAYERS[layer(m)] > mine]
    assert not upward, f"{name} ({layer(name)}) imports from a higher layer: {upward}; move the shared code down"
