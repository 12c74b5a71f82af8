"""Exercises that check themselves: one module per lesson (``lesson_03`` for lesson 03), each with
one check function per exercise.

A check takes the learner's answer and returns a :class:`Verdict`: right or not, and on a wrong
answer a hint that points at the idea, not at the number. In a notebook the verdict prints itself:

    >>> from ldm_mini.lessons.exercises import lesson_03 as ex
    >>> ex.check_1(0.5)          # doctest: +SKIP
    not yet: exercise 1: ... (hint)

An answer of ``None`` (the notebooks ship with ``answer = None``) gives "not answered yet", never an
error, so every lesson runs to the end before the learner has done anything.

Reference solutions live outside the package, in ``solutions/lesson_NN.py`` (a student should not
find them by tab completion); ``tests/test_exercises.py`` runs every solution through its check,
and every known wrong answer listed in ``WRONG`` there must be rejected.
"""

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Verdict:
    """What a check says about one answer."""

    exercise: str  # e.g. "lesson 03, exercise 1"
    right: bool
    message: str  # on a right answer: why it is right; on a wrong one: a hint

    def __bool__(self) -> bool:
        return self.right

    def __str__(self) -> str:
        return f"{'right' if self.right else 'not yet'}: {self.exercise}: {self.message}"

    def __repr__(self) -> str:  # what a notebook cell shows
        return str(self)


def unanswered(exercise: str, what: str) -> Verdict:
    """The verdict for ``answer = None``: says what to put in."""
    return Verdict(exercise, False, f"not answered yet; {what}")


def judge(exercise: str, ok: bool, why: str, hint: str) -> Verdict:
    """``why`` explains a right answer, ``hint`` helps with a wrong one."""
    return Verdict(exercise, bool(ok), why if ok else hint)


def close(value, target: float, rel: float = 0.0, abs_: float = 0.0) -> bool:
    """Is a number (or a 1-element tensor) within ``rel * |target| + abs_`` of ``target``?

    Refuses what is not a number, so a check never passes on a wrong type by accident."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            return False
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    value = float(value)
    return math.isfinite(value) and abs(value - target) <= rel * abs(target) + abs_


def same_choice(answer, right: str, choices: tuple[str, ...]) -> bool:
    """For multiple-choice predictions: ``answer`` must be one of ``choices`` (case-insensitive)."""
    if not isinstance(answer, str):
        return False
    answer = answer.strip().lower()
    if answer not in {c.lower() for c in choices}:
        return False
    return answer == right.lower()
