"""Reference solutions of lesson 07's exercises (try them first)."""

from ldm_mini.experiments import f_sweep, load_results

LEARNT = 0.90


def solution_1():
    # each 32 px model's first point at or above the bar, its training seconds; the least of them
    models = load_results("f_sweep")["results"]["sizes"]["32"]["models"]
    return min(next(p["seconds"] for p in m["points"] if p["single"] >= LEARNT) for m in models.values()
               if any(p["single"] >= LEARNT for p in m["points"]))


def solution_2():
    return f_sweep.fd_floor(n=200)["fd"]


def solution_3():
    # written down before running: 16 numbers keep a large shape and its colour, not every small one
    return "0.3 to 0.9"
