"""Lesson 05 (training the latent diffusion model): four exercises on the objective and the recipe.

1. (computation) how unevenly the variational bound weighs its KL terms, with sigma_t^2 = beta_t;
2. (code change) the loss of the shipped eps-model read as a v-prediction loss, at t = 500;
3. (prediction) at which noise level the caption helps the shipped model most;
4. (computation) why tau_theta needs its position embeddings to bind colours to shapes.

Each truth is computed here from the package: the noise schedule of the shipped model's config
(exercise 1 and 2, closed form) and the shipped model itself (exercises 3 and 4, a few forward passes).
"""

from functools import lru_cache

import torch

from . import Verdict, close, judge, same_choice, unanswered

LESSON = "lesson 05"


@lru_cache(maxsize=1)
def _schedule():
    """The noise schedule of the shipped text-to-image model (its config in the manifest)."""
    from ...checkpoints import read_manifest
    from ...diffusion import NoiseSchedule

    cfg = read_manifest()["shapes-kl-f4"]["config"]
    if cfg["schedule"] != "linear":
        raise ValueError(f"lesson 05's exercises assume the linear schedule, the manifest says {cfg['schedule']!r}")
    return NoiseSchedule.linear(cfg["T"], cfg["beta_start"], cfg["beta_end"])


def bound_weight(t: torch.Tensor, variance: str = "posterior") -> torch.Tensor:
    """lambda_t = beta_t^2 / (2 sigma_t^2 alpha_t (1 - alpha_bar_t)), the weight of ||eps - eps_theta||^2 in
    the bound's KL term L_{t-1}; sigma_t^2 = the posterior variance beta_tilde_t or beta_t (Ho et al.'s two choices)."""
    s = _schedule()
    t = torch.as_tensor(t)
    var = s.posterior_variance[t] if variance == "posterior" else s.betas[t]
    return s.betas[t] ** 2 / (2 * var * s.alphas[t] * (1 - s.alphas_cumprod[t]))


# ------------------------------------------------------------------------------------------ 1


def check_1(answer) -> Verdict:
    """answer: float, lambda_1 / lambda_999 with sigma_t^2 = beta_t."""
    ex = f"{LESSON}, exercise 1"
    if answer is None:
        return unanswered(ex, "put lambda_1 / lambda_999 with sigma_t^2 = beta_t (a float, no unit)")
    w1, w999 = bound_weight(1, "beta").item(), bound_weight(999, "beta").item()
    truth = w1 / w999
    posterior = (bound_weight(1) / bound_weight(999)).item()
    return judge(
        ex, close(answer, truth, rel=0.01),
        f"lambda_1 / lambda_999 = {w1:.4f} / {w999:.5f} = {truth:.1f}: with sigma_t^2 = beta_t the weight is "
        f"beta_t / (2 alpha_t (1 - alpha_bar_t)), about 1/4 at t = 1 (1 - alpha_bar_1 is about 2 beta_1); with the "
        f"posterior variance the ratio is about twice as large ({posterior:.1f}). Either way the bound weighs the "
        "least noisy terms "
        "tens of times more than the noisy ones; L_simple weighs them all the same.",
        "write lambda_t = beta_t^2 / (2 sigma_t^2 alpha_t (1 - alpha_bar_t)) with sigma_t^2 = beta_t (not the "
        "posterior variance the lesson plotted), index the schedule's float64 arrays at t = 1 and t = 999 "
        "(0-based, as in the code), and divide the first by the second.",
    )


# ------------------------------------------------------------------------------------------ 2

T_2 = 500


def check_2(answer) -> Verdict:
    """answer: float, MSE(v_hat, v) / MSE(eps_theta, eps) for the shipped eps-model at t = 500."""
    ex = f"{LESSON}, exercise 2"
    if answer is None:
        return unanswered(ex, "put MSE(v_hat, v) / MSE(eps_theta, eps) at t = 500 (a float, no unit)")
    a = _schedule().alphas_cumprod[T_2].item()
    truth = 1 / a
    return judge(
        ex, close(answer, truth, rel=0.01),
        f"{truth:.3f} = 1 / alpha_bar_{T_2} (alpha_bar_{T_2} = {a:.4f}), for any model and any sample: with "
        "x0_hat = (z_t - sqrt(1 - alpha_bar_t) eps_theta) / sqrt(alpha_bar_t), v_hat - v = (eps_theta - eps) / "
        "sqrt(alpha_bar_t). A v-loss is an eps-loss weighted by 1 / alpha_bar_t = 1 + 1 / SNR(t): the two loss "
        "curves differ by a weight that grows with the noise, so their numbers cannot be compared directly.",
        "compute both targets from the same z_0, eps, t = 500 and the same eps_theta: v = "
        "schedule.v_from_eps_x0(eps, z0, t), and v_hat from eps_theta and x0_hat = schedule.predict_x0_from_eps"
        "(z_t, t, eps_theta). Divide the v-MSE by the eps-MSE (not the other way round); "
        "then write v_hat - v in terms of eps_theta - eps to see why the ratio is the same for every sample.",
    )


# ------------------------------------------------------------------------------------------ 3

CHOICES_3 = ("small", "middle", "large")
T_3 = {"small": 50, "middle": 500, "large": 950}


@lru_cache(maxsize=1)
def caption_gain(n: int = 128, seed: int = 0) -> dict[str, float]:
    """MSE(eps_theta with the empty caption) / MSE(eps_theta with the caption) of the shipped model,
    on the first n training latents, at t = 50, 500 and 950 (same z_0, eps and t for both)."""
    import ldm_mini

    from ...data import images_uint8, load_shapes
    from ...train import encode_images

    ldm = ldm_mini.load_pretrained("shapes-kl-f4")
    train = load_shapes(n, "train", seed=seed)
    gain = {}
    with torch.no_grad():
        z0 = encode_images(ldm.autoencoder, images_uint8(train))
        context, mask = ldm.context(ldm.tokenizer(train["caption"]))
        empty, empty_mask = ldm.context(ldm.tokenizer([""] * n))
        eps = torch.randn(z0.shape, generator=torch.Generator().manual_seed(seed))
        for name, step in T_3.items():
            t = torch.full((n,), step)
            z_t = ldm.schedule.q_sample(z0, t, eps)
            with_caption = ((ldm.unet(z_t, t, context, context_mask=mask) - eps) ** 2).mean()
            without = ((ldm.unet(z_t, t, empty, context_mask=empty_mask) - eps) ** 2).mean()
            gain[name] = (without / with_caption).item()
    return gain


def check_3(answer) -> Verdict:
    """answer: one of "small", "middle", "large": where the caption lowers the eps-MSE the most."""
    ex = f"{LESSON}, exercise 3"
    if answer is None:
        return unanswered(ex, f"write your prediction as one of {CHOICES_3} (t = 50, 500, 950), "
                              "then run the check: it runs the test")
    if not isinstance(answer, str) or answer.strip().lower() not in CHOICES_3:
        return Verdict(ex, False, f"answer with one of {CHOICES_3}")
    gain = caption_gain()
    right = max(gain, key=gain.get)
    measured = "measured MSE without / with the caption: " + ", ".join(
        f"t = {T_3[k]}: {v:.2f}" for k, v in gain.items())
    return judge(
        ex, same_choice(answer, right, CHOICES_3),
        f"{measured}. At t = 50 the image is almost clean: the hard part is the faint noise itself, which no caption "
        "predicts. At t = 950 z_t is almost all noise and eps is almost z_t / sqrt(1 - alpha_bar_t): easy without "
        "a caption. In between, knowing what and where the objects are is what separates noise from signal.",
        f"{measured}. Think about what eps_theta must separate at each level: at t = 50 the noise is a faint "
        "layer over a clear image; at t = 950 z_t is nearly eps itself. Where does knowing the caption tell "
        "you something about the noise that z_t alone does not?",
    )


# ------------------------------------------------------------------------------------------ 4

CAPTIONS_4 = ("a red circle and a blue square", "a red square and a blue circle")  # the same words, other pairs


@lru_cache(maxsize=4)
def word_similarity(word: str = "circle") -> tuple[float, float]:
    """Cosine similarity of tau_theta's output vector for ``word`` in the two captions of CAPTIONS_4: with the
    shipped model's position embeddings, and with them set to zero (on a copy)."""
    import copy

    import ldm_mini

    ldm = ldm_mini.load_pretrained("shapes-kl-f4")
    tokens = ldm.tokenizer(list(CAPTIONS_4))  # 2 L
    where = [(row == ldm.tokenizer.index[word]).nonzero().item() for row in tokens]  # its place in each caption
    encoder = copy.deepcopy(ldm.text_encoder)
    sims = []
    with torch.no_grad():
        for zero_positions in (False, True):
            if zero_positions:
                encoder.pos_emb.zero_()
            context, _ = encoder(tokens)  # 2 L d
            sims.append(torch.nn.functional.cosine_similarity(context[0, where[0]], context[1, where[1]], dim=0).item())
    return sims[0], sims[1]


def check_4(answer) -> Verdict:
    """answer: ("circle": cos with the shipped positions, cos with the positions set to zero), two floats."""
    ex = f"{LESSON}, exercise 4"
    if answer is None:
        return unanswered(ex, "put (cosine with the shipped positions, cosine with the positions zeroed), two floats")
    try:
        with_pos, without_pos = (float(a) for a in answer)
    except (TypeError, ValueError):
        return Verdict(ex, False, "answer with a pair of two floats: (with positions, positions zeroed)")
    truth_with, truth_without = word_similarity("circle")
    red_with, _ = word_similarity("red")
    return judge(
        ex, close(with_pos, truth_with, abs_=0.01) and close(without_pos, truth_without, abs_=1e-4),
        f"'circle' with the positions: {truth_with:.3f}; zeroed: {truth_without:.6f}. Without positions "
        "self-attention cannot see word order: both captions are the same bag of words, every word gets exactly "
        "the same vector in both, and no UNet could draw them differently. With positions, 'circle' right after "
        "'red' (place 3) and 'circle' after 'blue' (place 7) are different vectors, so cross-attention can tell "
        f"which shape sits next to which colour word. ('red' itself, at place 2 in both, barely changes: "
        f"{red_with:.4f}.) The old recipe started the positions at std 0.02, 50x smaller than the words: close "
        "to a bag of words, and section 6's lever curves show what that cost in binding.",
        "encode both captions with shipped.text_encoder (shipped.tokenizer first) and take the output vector of "
        "'circle' in each: it stands at a different place in each caption (find it with "
        "shipped.tokenizer.words, plus 1 for the start token). Compare the two with "
        "torch.nn.functional.cosine_similarity; then zero pos_emb on a copy (copy.deepcopy) and compare again. "
        "Answer (with, without), in that order.",
    )


WRONG = {
    1: [82.5, 1 / 41.1, 1.0],  # the posterior variance's ratio (the plotted one); inverted; no weighting
    2: [0.2763, 1.3819, 1.0],  # alpha_bar_500 (inverted); 1 / (1 - alpha_bar_500); "the same loss"
    3: ["small", "large"],
    4: [(1.0, 1.0), (0.9998, 1.0), (1.0, 0.4926), "0.49"],  # no change; the word "red"; swapped pair; not a pair
}
