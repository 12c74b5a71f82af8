"""Every exercise's reference solution passes its check, and every known wrong answer is rejected
(ldm_mini/lessons/exercises/, solutions/). A check that accepted anything would fail here."""

import importlib
import importlib.util
import inspect
import pkgutil
from pathlib import Path

import pytest

import ldm_mini.lessons.exercises as exercises_pkg
from ldm_mini.lessons.exercises import Verdict

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"


def lesson_modules():
    for info in pkgutil.iter_modules(exercises_pkg.__path__):
        if info.name.startswith("lesson_"):
            yield importlib.import_module(f"{exercises_pkg.__name__}.{info.name}")


def checks(module):
    """{exercise number: check function} of one lesson's module."""
    return {int(name.split("_")[1]): fn for name, fn in inspect.getmembers(module, inspect.isfunction)
            if name.startswith("check_") and name.split("_")[1].isdigit() and fn.__module__ == module.__name__}


def solution_module(lesson_module):
    name = lesson_module.__name__.rsplit(".", 1)[1]
    path = SOLUTIONS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"solutions_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CASES = [(m, k) for m in lesson_modules() for k in sorted(checks(m))]
IDS = [f"{m.__name__.rsplit('.', 1)[1]}-ex{k}" for m, k in CASES]


def test_every_lesson_with_exercises_has_at_least_three():
    for module in lesson_modules():
        assert len(checks(module)) >= 3, f"{module.__name__} has {len(checks(module))} exercises; each lesson has >= 3"


@pytest.mark.parametrize("module,k", CASES, ids=IDS)
def test_reference_solution_passes(module, k):
    solve = getattr(solution_module(module), f"solution_{k}")
    verdict = checks(module)[k](solve())
    assert isinstance(verdict, Verdict)
    assert verdict.right, str(verdict)


@pytest.mark.parametrize("module,k", CASES, ids=IDS)
def test_wrong_answers_are_rejected(module, k):
    wrong = getattr(module, "WRONG", {}).get(k, [])
    assert wrong, f"{module.__name__} lists no wrong answer for exercise {k} (WRONG[{k}])"
    for answer in wrong:
        verdict = checks(module)[k](answer)
        assert not verdict.right, f"exercise {k} accepted the wrong answer {answer!r}"
        assert verdict.message, "a wrong answer gets a hint"


@pytest.mark.parametrize("module,k", CASES, ids=IDS)
def test_unanswered_is_not_an_error(module, k):
    verdict = checks(module)[k](None)
    assert not verdict.right and "not answered" in verdict.message


def test_every_lesson_has_an_exercise_module_and_calls_its_checks():
    """Each notebook source (notebooks/src/NN*_name.py) has lesson_NN in the package, and calls every check."""
    sources = sorted((SOLUTIONS.parent / "notebooks" / "src").glob("[0-9][0-9]*_*.py"))
    modules = {m.__name__.rsplit(".", 1)[1]: m for m in lesson_modules()}
    assert sources
    for src in sources:
        name = "lesson_" + src.name.split("_")[0]
        assert name in modules, f"{src.name} has no exercises module ldm_mini/lessons/exercises/{name}.py"
        text = src.read_text()
        for k in checks(modules[name]):
            assert f"check_{k}(" in text, f"{src.name} never calls check_{k}"
