"""Reference solutions of lesson 07's exercises (try them first)."""

from ldm_mini.experiments import f_sweep, load_results


def solution_1():
    # training time of each measured point: step x seconds per step; keep those within 60 s
    models = load_results("f_sweep")["results"]["models"]
    return min(
        p["fd"] for m in models.values() for p in m["curve"] if p["step"] * m["seconds_per_step"] <= 60
    )


def solution_2():
    # the floor cell of section 3 with N_FLOOR = 50 instead of 100
    return f_sweep.fd_floor(n=50)["mean"]


def solution_3():
    # written down before running: a 2 x 2 x 4 latent keeps large shapes but not all small ones
    return "0.3 to 0.9"
