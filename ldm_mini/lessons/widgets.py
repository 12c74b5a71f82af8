"""The interactive panels of the lessons.

Each panel is two parts: a *view* function that computes everything the panel shows from
its controls (plain tensors and numbers, unit-tested without a browser), and a thin
ipywidgets wrapper that draws the view in an Output widget and redraws it when a control
moves. Headless runs (nbval, `make lessons`) draw each panel once with its defaults.
"""

from __future__ import annotations

import time

import ipywidgets as w
import matplotlib.pyplot as plt
import torch
from IPython.display import display

from ..data import to_image_range
from ..eval.measures import psnr, psnr_per_image
from ..experiments.bits import split_point
from ..layers import eval_mode
from ..rate import bits_per_dim_dct, bits_per_dim_kl, bits_per_dim_vq, dct_truncate
from .plotting import show_grid

# ---------------------------------------------------------------- lesson 01: the rate slider


def rate_view(image: torch.Tensor, keep: int) -> dict:
    """Compress ``image`` (3 H W in [0, 1]) by keeping keep x keep DCT coefficients per channel.

    Returns the reconstruction, the absolute error map (H W, mean over channels), its rate in
    bits/dim and its PSNR in dB.
    """
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be (3, H, W) in [0, 1], got shape {tuple(image.shape)}")
    H, W = image.shape[-2:]
    rec = dct_truncate(image.double(), keep).float().clamp(0, 1)
    return {
        "reconstruction": rec,
        "error": (rec - image).abs().mean(0),
        "bits_per_dim": bits_per_dim_dct(keep, H, W),
        "psnr": psnr(image[None], rec[None]),
    }


def draw_rate_view(image: torch.Tensor, view: dict, title: str = ""):
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.3))
    axes[0].imshow(image.permute(1, 2, 0).numpy(), interpolation="nearest")
    axes[0].set_title(f"original\n8 bits/dim {title}", fontsize=9)
    axes[1].imshow(view["reconstruction"].permute(1, 2, 0).numpy(), interpolation="nearest")
    axes[1].set_title(f"kept: {view['bits_per_dim']:.3f} bits/dim\nPSNR {view['psnr']:.1f} dB", fontsize=9)
    axes[2].imshow(view["error"].numpy(), cmap="magma", vmin=0, vmax=0.5, interpolation="nearest")
    axes[2].set_title("|error| (what was thrown away)", fontsize=9)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return fig


def rate_panel(images: dict[str, torch.Tensor], keep: int = 8):
    """A slider for the number of kept DCT frequencies and a picker for the image."""
    names = list(images)
    size = images[names[0]].shape[-1]
    # Wide: k runs over 1..size (128 for the photo), and the interesting part is the first few tens.
    slider = w.IntSlider(value=keep, min=1, max=size, description="keep k x k", continuous_update=False,
                         layout=w.Layout(width="480px"))
    picker = w.Dropdown(options=names, value=names[0], description="image")
    def draw():
        image = images[picker.value]
        view = rate_view(image, slider.value)
        draw_rate_view(image, view)
        # The same numbers as text: easy to copy into a table, and what the browser test reads.
        k = slider.value
        print(f"{picker.value}: keep {k} x {k}, rate {view['bits_per_dim']:.4f} bits/dim, PSNR {view['psnr']:.2f} dB")

    return live_panel([picker, slider], draw)


def live_panel(controls: list, draw) -> w.VBox:
    """Show ``controls`` above an output area that ``draw()`` fills with a figure, and redraw
    it (replacing, not stacking, the figure) whenever any control's value changes."""
    out = w.Output()

    def redraw(*_):
        with out:
            out.clear_output(wait=True)
            draw()
            plt.show()

    for control in controls:
        control.observe(redraw, names="value")
    redraw()
    panel = w.VBox([w.HBox(controls), out])
    display(panel)
    return panel


# ---------------------------------------------------------------- lesson 02: the autoencoder explorer


@torch.no_grad()
def autoencoder_view(ae, images: torch.Tensor) -> dict:
    """Everything the autoencoder panel shows for one autoencoder and a few images.

    ``images``: uint8 (b 3 H W) or float in [0, 1]. Returns
      originals, reconstructions  b 3 H W in [0, 1]; x~ = D(E(x)) (KL-reg: the posterior mean)
      errors                      b H W, |x - x~| averaged over the colour channels
      latents                     b c h w, the latent z the diffusion model would see (unscaled;
                                  VQ-reg: before quantisation, as in the paper)
      psnr_per_image, psnr        dB, per image and the batch mean
      bits_per_dim                KL-reg: KL / ln 2 / (3 H W) of these images;
                                  VQ-reg: the upper bound h w log2(K) / (3 H W)
      f, reg, latent_shape        the model's f, regulariser and (c, h, w)
    """

    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(
            f"images must be a batch shaped (b, 3, H, W), got shape {tuple(images.shape)}; add a batch "
                f"dimension with x[None]"
        )
    x01 = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    if x01.min() < 0 or x01.max() > 1:
        raise ValueError("float images must be in [0, 1]; for model-range images in [-1, 1] use data.to_image_range(x)")
    device = next(ae.parameters()).device
    x = (x01 * 2.0 - 1.0).to(device)  # the model range [-1, 1]
    with eval_mode(ae):
        x_rec, aux = ae(x, sample_posterior=False)
    rec = to_image_range(x_rec).cpu()
    H, W = x.shape[-2:]
    c, h, w = ae.latent_shape(H, W)
    if ae.config.reg == "kl":
        bits = bits_per_dim_kl(aux["kl"].cpu(), H, W)
    else:
        bits = bits_per_dim_vq(h, w, ae.config.vq_codebook_size, H, W)
    per_image = psnr_per_image(x01, rec)
    return {
        "originals": x01,
        "reconstructions": rec,
        "errors": (x01 - rec).abs().mean(1),
        "latents": aux["z"].cpu(),
        "psnr_per_image": per_image,
        "psnr": per_image.mean().item(),
        "bits_per_dim": bits,
        "f": ae.config.f,
        "reg": ae.config.reg,
        "latent_shape": (c, h, w),
    }


def draw_autoencoder_view(view: dict, title: str = "", error_max: float = 0.3):
    """A grid, one column per image: original, reconstruction, |error|, then the c latent channels."""
    b = view["originals"].shape[0]
    c, h, w = view["latent_shape"]
    rows = 3 + c
    fig, axes = plt.subplots(rows, b, figsize=(1.35 * b + 0.9, 1.3 * rows), squeeze=False)
    for j in range(b):
        axes[0, j].imshow(view["originals"][j].permute(1, 2, 0).numpy(), interpolation="nearest")
        axes[1, j].imshow(view["reconstructions"][j].permute(1, 2, 0).numpy(), interpolation="nearest")
        axes[1, j].set_title(f"{view['psnr_per_image'][j]:.1f} dB", fontsize=8, pad=2)
        axes[2, j].imshow(view["errors"][j].numpy(), cmap="magma", vmin=0, vmax=error_max, interpolation="nearest")
        z = view["latents"][j]
        lim = max(z.abs().max().item(), 1e-6)  # one symmetric colour scale per image, over its c channels
        for k in range(c):
            axes[3 + k, j].imshow(z[k].numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    labels = ["original x", "x~ = D(E(x))", f"|x - x~|\n(0 to {error_max})"] + [
        f"z channel {k}\n({h}x{w})" for k in range(c)
    ]
    for ax, label in zip(axes[:, 0], labels):
        ax.set_ylabel(label, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    head = (
        f"{view['reg'].upper()}-reg, f = {view['f']}: z is {c} x {h} x {w}, PSNR {view['psnr']:.1f} dB, "
        f"{view['bits_per_dim']:.3f} bits/dim"
    )
    fig.suptitle(f"{title}\n{head}" if title else head, fontsize=9)
    fig.tight_layout()
    return fig


def autoencoder_panel(models, images: torch.Tensor, f: int = 4, reg: str = "kl"):
    """Pick f and the regulariser; see originals, reconstructions, error maps and latent channels.

    ``models`` maps names "ae-{reg}-f{f}" to autoencoders: a dict, or a ``ModelCache`` that
    loads on demand. Each (model, images) view is computed once and cached.
    """
    def name(reg_: str, f_: int) -> str:
        return f"ae-{reg_}-f{f_}"

    factors = sorted({f_ for f_ in (1, 2, 4, 8, 16) for r in ("kl", "vq") if name(r, f_) in models})
    if not factors:
        raise ValueError(f"no autoencoder named ae-{{kl,vq}}-f{{1,2,4,8,16}} in models: {list(models)}")
    f_picker = w.ToggleButtons(options=factors, value=f if f in factors else factors[0], description="f")
    reg_picker = w.ToggleButtons(options=["kl", "vq"], value=reg, description="regulariser")
    out = w.Output()
    views: dict[str, dict] = {}

    def redraw(*_):
        key = name(reg_picker.value, f_picker.value)
        with out:
            out.clear_output(wait=True)
            if key not in models:
                print(f"{key} is not available (yet); available: {', '.join(models)}")
                return
            if key not in views:
                views[key] = autoencoder_view(models[key], images)
            view = views[key]
            draw_autoencoder_view(view, key)
            c, h, w_ = view["latent_shape"]
            print(
                f"{key}: f = {view['f']}, z is {c} x {h} x {w_}, rate {view['bits_per_dim']:.4f} bits/dim, PSNR "
                    f"{view['psnr']:.2f} dB"
            )
            plt.show()

    f_picker.observe(redraw, names="value")
    reg_picker.observe(redraw, names="value")
    redraw()
    panel = w.VBox([f_picker, reg_picker, out])
    display(panel)
    return panel


# ---------------------------------------------------------------- lesson 03: the forward-noising slider


def noising_view(x0: torch.Tensor, z0: torch.Tensor, t: int, schedule, decode, seed: int = 0) -> dict:
    """q(x_t | x_0) for one image in pixel space, and q(z_t | z_0) for its latent, at timestep t.

    x0: the image (3 H W) in [-1, 1]; z0: its scaled latent (c h w), z0 = scale * E(x0);
    decode: latents (b c h w) -> images in [-1, 1], e.g. ``lambda z: ae.decode(z / ae.scale_factor)``.
    The noises eps are drawn once from ``seed``, so moving t changes only the weights
    sqrt(alpha_bar_t) and sqrt(1 - alpha_bar_t), never the noise itself.

    Returns x_t (3 H W) and z_t (c h w) as ``schedule.q_sample`` makes them, the images shown
    (x_t and D(z_t), in [0, 1], clipped), alpha_bar_t, SNR(t) = alpha_bar_t / (1 - alpha_bar_t)
    and log SNR(t).
    """
    if x0.ndim != 3 or z0.ndim != 3:
        raise ValueError(
            f"x0 must be one image (3, H, W) and z0 one latent (c, h, w); got {tuple(x0.shape)} and {tuple(z0.shape)}"
        )
    if not 0 <= int(t) < schedule.T:
        raise ValueError(f"t={t} is outside the schedule: pick t in [0, {schedule.T - 1}]")
    generator = torch.Generator().manual_seed(seed)
    eps_x = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
    eps_z = torch.randn(z0.shape, generator=generator, dtype=z0.dtype)
    t_batch = torch.tensor([int(t)])
    x_t = schedule.q_sample(x0[None], t_batch, eps_x[None].to(x0.device))[0]  # sqrt(a) x0 + sqrt(1 - a) eps
    z_t = schedule.q_sample(z0[None], t_batch, eps_z[None].to(z0.device))[0]
    with torch.no_grad():
        decoded = decode(z_t[None])[0]
    alpha_bar = schedule.alphas_cumprod[int(t)].item()
    snr = schedule.snr(t_batch)[0].item()
    return {
        "t": int(t),
        "x_t": x_t,
        "z_t": z_t,
        "x_t_image": to_image_range(x_t).cpu(),
        "z_t_decoded": to_image_range(decoded).cpu(),
        "alpha_bar": alpha_bar,
        "snr": snr,
        "log_snr": float(torch.tensor(snr, dtype=torch.float64).log()),
    }


def draw_noising_view(x0: torch.Tensor, view: dict, schedule):
    """Five panels: x_0, x_t (pixels), z_t (its c channels), D(z_t), and log SNR(t) with t marked."""
    fig, axes = plt.subplots(1, 5, figsize=(13, 2.9), gridspec_kw={"width_ratios": [1, 1, 1, 1, 1.6]})
    axes[0].imshow(to_image_range(x0).permute(1, 2, 0).cpu().numpy(), interpolation="nearest")
    axes[0].set_title("x_0 (clean)", fontsize=9)
    axes[1].imshow(view["x_t_image"].permute(1, 2, 0).numpy(), interpolation="nearest")
    axes[1].set_title(f"x_t, pixel space\nt = {view['t']}", fontsize=9)
    z = view["z_t"].detach().cpu()
    c, h, w = z.shape
    cols = 2 if c == 4 else c
    rows = -(-c // cols)
    tiles = torch.full((rows * (h + 1) - 1, cols * (w + 1) - 1), float("nan"))
    for k in range(c):
        r, q = divmod(k, cols)
        tiles[r * (h + 1) : r * (h + 1) + h, q * (w + 1) : q * (w + 1) + w] = z[k]
    axes[2].imshow(tiles.numpy(), cmap="coolwarm", vmin=-3, vmax=3, interpolation="nearest")
    axes[2].set_title(f"z_t: {c} channels of {h}x{w}", fontsize=9)
    axes[3].imshow(view["z_t_decoded"].permute(1, 2, 0).numpy(), interpolation="nearest")
    axes[3].set_title("D(z_t / scale)\nlatent space, decoded", fontsize=9)
    for ax in axes[:4]:
        ax.axis("off")
    ts = torch.arange(schedule.T)
    axes[4].plot(ts.numpy(), schedule.snr(ts).log().numpy(), color="tab:blue")
    axes[4].axhline(0, color="gray", lw=0.6, ls=":")
    axes[4].plot([view["t"]], [view["log_snr"]], "o", color="tab:red")
    axes[4].set_xlabel("t", fontsize=8)
    axes[4].set_ylabel("log SNR(t)", fontsize=8)
    axes[4].tick_params(labelsize=7)
    axes[4].set_title(f"alpha_bar_t = {view['alpha_bar']:.4f}, SNR = {view['snr']:.3g}", fontsize=9)
    fig.tight_layout()
    return fig


def noising_panel(x0: torch.Tensor, z0: torch.Tensor, schedules, decode, t: int = 300, seed: int = 0):
    """A t slider (and a schedule picker) over ``noising_view``. ``schedules``: a NoiseSchedule or {name: schedule}."""
    schedules = schedules if isinstance(schedules, dict) else {"schedule": schedules}
    names = list(schedules)
    T = schedules[names[0]].T
    slider = w.IntSlider(
        value=t, min=0, max=T - 1, description="t", continuous_update=False, layout=w.Layout(width="420px")
    )
    picker = w.Dropdown(options=names, value=names[0], description="schedule")
    def draw():
        schedule = schedules[picker.value]
        draw_noising_view(x0, noising_view(x0, z0, slider.value, schedule, decode, seed), schedule)

    return live_panel([picker, slider], draw)


# ---------------------------------------------------------------- lesson 06: the sampling sliders


def sampling_view(
    ldm, captions: list[str], steps: int = 20, eta: float = 0.0, guidance: float = 3.0, seed: int = 0
) -> dict:
    """Generate one image per caption with DDIM (S = ``steps``, ``eta``) and classifier-free guidance s = ``guidance``.

    Returns the images (b 3 H W in [0, 1]), the wall time in seconds, and ``unet_evals``: how
    many times the UNet saw each image, counted by a forward hook. That is S with s = 0 or s = 1
    (one branch of eps = eps_u + s (eps_c - eps_u) suffices) and 2 S otherwise.
    """
    captions = [captions] if isinstance(captions, str) else list(captions)
    rows = []
    hook = ldm.unet.register_forward_hook(lambda module, args, out: rows.append(out.shape[0]))
    try:
        start = time.perf_counter()
        images = ldm.generate(captions, steps=steps, guidance=guidance, eta=eta, seed=seed)
        seconds = time.perf_counter() - start
    finally:
        hook.remove()
    return {"images": images, "seconds": seconds, "unet_evals": sum(rows) / len(captions),
            "steps": steps, "eta": eta, "guidance": guidance, "seed": seed}


def sampling_panel(
    ldm, captions: list[str], steps: int = 20, eta: float = 0.0, guidance: float = 3.0, seed: int = 0, ncols: int = 4
):
    """Sliders for DDIM steps S, eta and the guidance scale s, and a seed box, over ``sampling_view``."""
    style = {"description_width": "85px"}  # 70px cut "guidance s" to "guidanc..." in JupyterLab
    steps_w = w.SelectionSlider(
        options=[1, 2, 5, 10, 20, 50, 100, 200],
        value=steps,
        description="steps S",
        continuous_update=False,
        style=style,
    )
    eta_w = w.FloatSlider(
        value=eta, min=0.0, max=1.0, step=0.1, description="eta", continuous_update=False, style=style
    )
    guidance_w = w.FloatSlider(
        value=guidance, min=0.0, max=8.0, step=0.5, description="guidance s", continuous_update=False, style=style
    )
    seed_w = w.IntText(value=seed, description="seed", style=style, layout=w.Layout(width="160px"))
    out = w.Output()

    def redraw(*_):
        with out:  # inside, so an exception shows in the panel instead of vanishing into the kernel log
            view = sampling_view(ldm, captions, steps_w.value, eta_w.value, guidance_w.value, seed_w.value)
            out.clear_output(wait=True)
            head = (f"DDIM S = {view['steps']}, eta = {view['eta']:.1f}, guidance s = {view['guidance']:.1f}: "
                    f"{view['unet_evals']:.0f} UNet calls per image")
            # The settings go in a printed line above the grid, not in a suptitle: in the browser a
            # suptitle ran into the wrapped captions.
            print(f"{head}, {view['seconds']:.2f} s")
            show_grid(view["images"], captions, ncols=ncols, scale=1.8, fontsize=8)
            plt.show()

    for control in (steps_w, eta_w, guidance_w, seed_w):
        control.observe(redraw, names="value")
    redraw()
    panel = w.VBox([w.HBox([steps_w, eta_w]), w.HBox([guidance_w, seed_w]), out])
    display(panel)
    return panel


# ---------------------------------------------------------------- lesson 07: pick a model, see its figure


def choice_panel(options: dict, description: str = "show"):
    """Buttons, one per key of ``options`` (name -> a function that draws a figure); the
    figure of the chosen one is drawn below and replaced when another is chosen."""
    if not options:
        raise ValueError("choice_panel needs at least one option")
    picker = w.ToggleButtons(options=list(options), value=next(iter(options)), description=description)
    return live_panel([picker], lambda: options[picker.value]())

# ---------------------------------------------------------------- lesson 08: where the bits go


def bits_view(result: dict, t: int, image: int = 0, fraction: float = 0.9) -> dict:
    """The reverse process of ``experiments.bits.evaluate_bound``'s ``result`` at timestep t.

    t is snapped to the nearest evaluated (respaced) step. Returns x_t and x0_hat of the kept
    image ``image`` (3 H W, in [0, 1]), the bits/dim spent on arriving at x_t (L_T plus every
    step above t), that as a share of the whole bound, the distortion there (RMSE, 0..255), and
    the region, "semantic" above the split of ``split_point`` and "perceptual" from it down.
    """
    ts = torch.as_tensor(result["t"])
    T_max = int(ts.max())
    if not 0 <= int(t) <= T_max:
        raise ValueError(f"t={t} is outside the evaluated process: pick t in [0, {T_max}]")
    kept = result["x_t"].shape[1]
    if not 0 <= image < kept:
        raise ValueError(f"image={image}: only {kept} images were kept, pick 0..{kept - 1}")
    k = int((ts - int(t)).abs().argmin())
    total = float(result["total_bits"])
    spent = float(torch.as_tensor(result["rate"])[k])
    split = split_point(result["t"], result["rate"], result["distortion"], total, fraction)
    return {
        "t": int(ts[k]),
        "index": k,
        "x_t_image": to_image_range(result["x_t"][k, image]),
        "x0_hat_image": to_image_range(result["x0_hat"][k, image]),
        "bits_spent": spent,
        "share": spent / total,
        "total_bits": total,
        "distortion": float(torch.as_tensor(result["distortion"])[k]),
        "region": "perceptual" if k <= split["index"] else "semantic",
        "split": split,
    }


def draw_bits_view(result: dict, view: dict, image: int = 0):
    """x_0, x_t, x0_hat, and the rate-distortion curve with the current step marked."""
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.0), gridspec_kw={"width_ratios": [1, 1, 1, 2.2]})
    pictures = [to_image_range(result["x0"][image]), view["x_t_image"], view["x0_hat_image"]]
    titles = [
        "x_0 (to be sent)",
        f"x_t, t = {view['t']}\n(what the receiver holds)",
        f"x0_hat(x_t)\nRMSE {view['distortion']:.1f} / 255 (all images)",
    ]
    for ax, picture, title in zip(axes, pictures, titles):
        ax.imshow(picture.permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    ax = axes[3]
    split = view["split"]
    ax.axvspan(0, split["rate"], color="tab:orange", alpha=0.15, label="semantic")
    ax.axvspan(split["rate"], view["total_bits"], color="tab:blue", alpha=0.12, label="perceptual")
    ax.plot(
        torch.as_tensor(result["rate"]).numpy(), torch.as_tensor(result["distortion"]).numpy(), color="black", lw=1.2
    )
    ax.plot([view["bits_spent"]], [view["distortion"]], "o", color="tab:red")
    ax.set_xlabel("bits/dim spent so far", fontsize=8)
    ax.set_ylabel("RMSE (0..255)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title(
        f"spent {view['bits_spent']:.3f} of {view['total_bits']:.3f} bits/dim ({100 * view['share']:.0f}%): "
            f"{view['region']}",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def bits_panel(result: dict, t: int | None = None, image: int = 0):
    """A t slider over the evaluated steps (and an image picker) over ``bits_view``."""
    steps = [int(v) for v in torch.as_tensor(result["t"]).flip(0)]  # T - 1 first: the order the reverse process runs
    t = steps[len(steps) // 2] if t is None else min(steps, key=lambda s: abs(s - t))
    slider = w.SelectionSlider(
        options=steps, value=t, description="t", continuous_update=False, layout=w.Layout(width="420px")
    )
    picker = w.IntSlider(
        value=image, min=0, max=result["x_t"].shape[1] - 1, description="image", continuous_update=False
    )

    def draw():
        draw_bits_view(result, bits_view(result, slider.value, picker.value), picker.value)

    return live_panel([slider, picker], draw)
