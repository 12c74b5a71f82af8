"""The benchmark harness on tiny inputs: it measures what it claims to, and the comparisons are fair."""

import pytest
import torch

from benchmarks.common import compare
from benchmarks.flops import category, count_flops


def test_compare_reports_medians_of_interleaved_repeats():
    calls = []
    r = compare({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=3, warmup=1)
    assert calls == ["a", "b"] + ["a", "b"] * 3          # warm-up, then interleaved
    assert set(r) == {"a", "b"} and len(r["a"]["times_s"]) == 3
    assert r["a"]["min_s"] <= r["a"]["median_s"] <= r["a"]["max_s"]
    calls.clear()
    compare({"a": lambda: calls.append("a")}, repeats=2, warm_fns={"a": lambda: calls.append("warm")})
    assert calls == ["warm", "a", "a"]


def test_flop_counter_counts_a_matmul_exactly():
    a, b = torch.randn(8, 16), torch.randn(16, 4)
    assert count_flops(lambda: a @ b) == 2 * 8 * 16 * 4


def test_profile_categories():
    assert category("aten::addmm").startswith("matmul")
    assert category("aten::native_group_norm").startswith("GroupNorm")
    assert category("aten::_foreach_lerp_").startswith("optimizer")


def test_train_step_matches_the_latent_shape_and_learns():
    from benchmarks.latent_vs_pixel import TrainStep, build

    ldm = build(8)
    assert ldm.latent_shape == (4, 4, 4)
    step = TrainStep(ldm, batch=4)
    before = [p.clone() for p in ldm.unet.parameters()]
    loss = step()
    assert loss > 0 and any(not torch.equal(p, q) for p, q in zip(before, ldm.unet.parameters()))


def test_diffusers_unet_is_matched_and_ddim_loops_agree():
    pytest.importorskip("diffusers")
    from benchmarks.vs_diffusers import ddim_benchmark, diffusers_unet
    from ldm_mini.config import QUICK
    from ldm_mini.unet import UNet
    from ldm_mini.zoo import ldm_recipe

    c = ldm_recipe(None, QUICK)[0].unet
    ours, theirs = UNet(c), diffusers_unet(c)
    n_ours, n_theirs = ours.num_params(), sum(p.numel() for p in theirs.parameters())
    assert abs(n_theirs / n_ours - 1) < 0.05
    r = ddim_benchmark(steps=20, repeats=1, shape=(2, 4, 8, 8))
    assert r["same_timesteps"] and r["agree_1e-5"]


def test_equal_batch_compares_both_sides_at_one_batch():
    from benchmarks import equal_batch

    r = equal_batch.run(repeats=1, factors=(1, 4), batch=2, steps=2)
    assert r["batch"] == 2 and r["ddim_steps"] == 2
    assert r["f1"]["images_per_s"] > 0 and r["f4"]["images_per_s"] > 0
    assert r["f4"]["sample_speedup_vs_f1"] == r["f4"]["images_per_s"] / r["f1"]["images_per_s"]
    assert "batch 2 for every f" in equal_batch.report(r)
