"""Reference solutions of lesson 05's exercises (ldm_mini/lessons/exercises/lesson_05.py)."""

import torch

import ldm_mini
from ldm_mini.data import images_uint8, load_shapes
from ldm_mini.train import encode_images


def solution_1():
    s = ldm_mini.load_pretrained("shapes-kl-f4").schedule  # float64 arrays, t = 0..999
    lam = s.betas**2 / (2 * s.betas * s.alphas * (1 - s.alphas_cumprod))  # sigma_t^2 = beta_t
    return (lam[1] / lam[999]).item()


def solution_2():
    # the lesson's L_simple cell, with the v target: same z_0, eps, t and eps_theta, both losses
    ldm = ldm_mini.load_pretrained("shapes-kl-f4")
    s = ldm.schedule
    train = load_shapes(64, "train", seed=0)
    z0 = encode_images(ldm.autoencoder, images_uint8(train))
    context, mask = ldm.context(ldm.tokenizer(train["caption"]))
    t = torch.full((len(z0),), 500)
    eps = torch.randn(z0.shape, generator=torch.Generator().manual_seed(0))
    z_t = s.q_sample(z0, t, eps)
    with torch.no_grad():
        eps_theta = ldm.unet(z_t, t, context, context_mask=mask)
    x0_hat = s.predict_x0_from_eps(z_t, t, eps_theta)
    v, v_hat = s.v_from_eps_x0(eps, z0, t), s.v_from_eps_x0(eps_theta, x0_hat, t)
    return (((v_hat - v) ** 2).mean() / ((eps_theta - eps) ** 2).mean()).item()


def solution_3():
    # Prediction: "middle". The test: the shipped model's eps-MSE with and without the caption at three t.
    ldm = ldm_mini.load_pretrained("shapes-kl-f4")
    train = load_shapes(128, "train", seed=1)
    z0 = encode_images(ldm.autoencoder, images_uint8(train))
    eps = torch.randn(z0.shape, generator=torch.Generator().manual_seed(1))
    gain = {}
    with torch.no_grad():
        cond = ldm.context(ldm.tokenizer(train["caption"]))
        uncond = ldm.context(ldm.tokenizer([""] * len(z0)))
        for name, step in {"small": 50, "middle": 500, "large": 950}.items():
            t = torch.full((len(z0),), step)
            z_t = ldm.schedule.q_sample(z0, t, eps)
            mse = [((ldm.unet(z_t, t, c, context_mask=m) - eps) ** 2).mean() for c, m in (cond, uncond)]
            gain[name] = (mse[1] / mse[0]).item()
    return max(gain, key=gain.get)


def solution_4():
    # tau_theta's vector for "circle" in two captions with the same words, with and without its position embeddings
    import copy

    ldm = ldm_mini.load_pretrained("shapes-kl-f4")
    captions = ["a red circle and a blue square", "a red square and a blue circle"]
    tokens = ldm.tokenizer(captions)
    where = [ldm.tokenizer.words(c).index("circle") + 1 for c in captions]  # + 1: the start token comes first
    zeroed = copy.deepcopy(ldm.text_encoder)
    zeroed.pos_emb.data.zero_()
    sims = []
    for encoder in (ldm.text_encoder, zeroed):
        with torch.no_grad():
            context, _ = encoder(tokens)  # 2 L d
        sims.append(torch.nn.functional.cosine_similarity(context[0, where[0]], context[1, where[1]], dim=0).item())
    return tuple(sims)
