"""Reference solutions of lesson 10's exercises (attribute binding). Try them first."""

import math


def sign_test(k, n):
    """Two-sided exact sign test (as in the lesson)."""
    return min(1.0, 2 * sum(math.comb(n, j) for j in range(min(k, n - k) + 1)) / 2**n)


def solution_1():
    """Walk k up from half of the pooled model's complete images until the two-sided test says p < 0.05."""
    from ldm_mini.experiments import load_results

    rows = load_results("binding")["results"]["rows"]
    verdicts = [r for r in rows if r["encoder"] == "pooled"][-1]["two_verdicts"]
    complete = verdicts.count("bound") + verdicts.count("swapped")  # 197
    k = complete // 2 + 1
    while sign_test(k, complete) >= 0.05:
        k += 1
    return k


def solution_2():
    """Section 3's count on the 2 x 2 maps instead of the 4 x 4 ones."""
    import ldm_mini
    from ldm_mini.eval import classify_images, prompts
    from ldm_mini.experiments import binding

    ldm = ldm_mini.load_pretrained("shapes-kl-f4")
    judge = ldm_mini.load_pretrained("judge")  # the lesson's reader of generated images
    captions = prompts.two_object_captions(48, "test", seed=0)
    images, maps = binding.sample_with_attention(ldm, captions, steps=50, guidance=3.0, seed=0)
    seen = classify_images(images, judge)
    m2 = maps[min(maps)]  # the 2 x 2 layers (the change)
    wins = []
    for i, (caption, s) in enumerate(zip(captions, seen)):
        v = prompts.score_binding(caption, s)
        rows = binding.attention_on_objects(images[i], m2[i], caption, s, ldm.tokenizer)
        if rows is not None and (v["binding"] or v["swapped"]):
            wins += [r["own"] > r["other"] for r in rows if r["kind"] == "colour"]
    return sum(wins) / len(wins)


def solution_3():
    """The paired sign test of the CLIP-like against the per-token model on the step-750 rows."""
    from ldm_mini.experiments import load_results

    rows = load_results("binding")["results"]["rows"]
    at_750 = {r["encoder"]: r for r in rows if r["steps"] == 750}
    clip, token = ([v == "bound" for v in at_750[e]["two_verdicts"]] for e in ("clip", "token"))
    k = sum(c and not t for c, t in zip(clip, token))  # the CLIP-like model alone binds
    m = sum(t and not c for c, t in zip(clip, token))  # the per-token model alone binds
    return sign_test(k, k + m)
