"""The ldm-mini command line (also `python -m ldm_mini`). `ldm-mini COMMAND --help` for each."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def cmd_data(args) -> None:
    from .data import images_uint8, load_shapes

    for split, n in (("train", args.n), ("val", args.n_eval), ("test", args.n_eval)):
        start = time.perf_counter()
        ds = load_shapes(n, split, seed=args.seed, image_size=args.image_size)
        images_uint8(ds)
        print(f"{split}: {len(ds)} images in {time.perf_counter() - start:.1f} s")


def cmd_train_ae(args) -> None:
    from .checkpoints import save_model
    from .config import get_profile
    from .data import images_uint8, load_shapes, to_model_range
    from .pretrained import CLASSIFIER, ae_recipe, evaluate_autoencoder, load_pretrained
    from .train import train_autoencoder

    profile = get_profile(args.profile)
    config, loss_config, cfg = ae_recipe(args.reg, args.f, profile, args.seed)
    if args.steps:
        cfg.steps = args.steps
        loss_config.disc_start = int(0.7 * cfg.steps)
    classifier = load_pretrained(CLASSIFIER)
    train = images_uint8(load_shapes(profile.n_train, "train", seed=args.seed))
    out = Path(args.out)
    ae, _ = train_autoencoder(config, train, cfg, loss_config, feature_net=classifier, out_dir=out, resume=args.resume)
    ae.measure_scale_factor(to_model_range(train[:1000]))
    save_model(ae, out / "model.safetensors")
    metrics = evaluate_autoencoder(ae, images_uint8(load_shapes(profile.n_eval, "val", seed=args.seed)), classifier)
    print(json.dumps({k: round(v, 4) for k, v in metrics.items()}, indent=1))
    print(f"saved {out / 'model.safetensors'}")


def cmd_train_ldm(args) -> None:
    """Also runs under `torchrun --nproc_per_node N -m ldm_mini train-ldm ...` (one writer: rank 0)."""
    from . import distributed

    distributed.setup()
    try:
        _train_ldm(args)
    finally:
        distributed.cleanup()


def _train_ldm(args) -> None:
    from . import distributed
    from .autoencoder import Autoencoder
    from .checkpoints import load_model
    from .config import get_profile
    from .data import images_uint8, load_shapes
    from .ldm import LatentDiffusion
    from .pretrained import ae_name, ldm_recipe, load_pretrained, save_ldm
    from .train import encode_images, train_ldm

    profile = get_profile(args.profile)
    ae = load_model(Autoencoder, args.autoencoder) if args.autoencoder else load_pretrained(ae_name(args.reg, args.f))
    config, cfg = ldm_recipe(ae.config, profile, args.seed)
    if args.steps:
        cfg.steps = args.steps
    ldm = LatentDiffusion(config)
    ldm.autoencoder.load_state_dict(ae.state_dict())
    with distributed.main_process_first():  # rank 0 draws and caches the dataset, the others then read it
        train = load_shapes(profile.n_train, "train", seed=args.seed)
    latents = encode_images(ldm.autoencoder, images_uint8(train))
    out = Path(args.out)
    ldm, _ = train_ldm(ldm, latents, ldm.tokenizer(train["caption"]), cfg, out_dir=out, resume=args.resume)
    if distributed.is_main():
        save_ldm(ldm, out / "model.safetensors")
        print(f"saved {out / 'model.safetensors'} (its autoencoder: {args.autoencoder or ae_name(args.reg, args.f)})")


def cmd_sample(args) -> None:
    from .pretrained import load_pretrained
    from .plotting import save_images

    ldm = load_pretrained(args.model)
    captions = [args.caption] * args.n
    images = ldm.generate(captions, steps=args.steps, guidance=args.guidance, eta=args.eta, seed=args.seed)
    save_images(images, args.output)
    print(f"wrote {args.output}: {args.n} image(s) for {args.caption!r}")


def cmd_eval(args) -> None:
    from .config import get_profile
    from .data import images_uint8, load_shapes
    from .pretrained import CLASSIFIER, evaluate_autoencoder, evaluate_ldm, load_pretrained

    model = load_pretrained(args.model)
    classifier = load_pretrained(CLASSIFIER)
    if type(model).__name__ == "Autoencoder":
        profile = get_profile(args.profile)
        metrics = evaluate_autoencoder(model, images_uint8(load_shapes(profile.n_eval, "val")), classifier)
    elif type(model).__name__ == "LatentDiffusion":
        metrics = evaluate_ldm(model, classifier, n=args.n, steps=args.steps, guidance=args.guidance)
    else:
        raise SystemExit(f"eval takes an autoencoder or an LDM, not {args.model}")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}, indent=1))


def cmd_pretrained(args) -> None:
    from .pretrained import build_all

    build_all(args.profile, args.only)


EXPERIMENTS = ("f_sweep", "bits", "superres", "binding")  # modules of ldm_mini/experiments/ (lessons 07-10)


def cmd_experiment(args) -> None:
    import importlib

    from .config import get_profile
    from .experiments import RESULTS_DIR

    module = importlib.import_module(f".experiments.{args.name}", __package__)
    start = time.perf_counter()
    module.run(get_profile(args.profile), out_dir=Path(args.out) if args.out else RESULTS_DIR)
    print(f"experiment {args.name} done in {time.perf_counter() - start:.0f} s")


def cmd_export_diffusers(args) -> None:
    """A shipped LDM as a Stable Diffusion folder: OUT/unet, OUT/vae, OUT/scheduler load with diffusers' classes."""
    from .bridge import export_to_diffusers
    from .pretrained import load_pretrained

    start = time.perf_counter()
    out = export_to_diffusers(load_pretrained(args.name), args.out)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"wrote {out} ({size / 1e6:.1f} MB) in {time.perf_counter() - start:.1f} s; "
          f"diffusers.StableDiffusionPipeline over it: ldm_mini.bridge.load_pipeline({str(out)!r})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ldm-mini", description="Latent diffusion, small: data, training, sampling and evaluation.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("data", help="draw the captioned shapes and cache them in data/cache/")
    p.add_argument("--n", type=int, default=20_000, help="training images (default 20000)")
    p.add_argument("--n-eval", type=int, default=1_000, help="val and test images each")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("train-ae", help="train an autoencoder (stage 1)")
    p.add_argument("--f", type=int, default=4, help="downsampling factor: 1, 2, 4, 8 or 16")
    p.add_argument("--reg", choices=("kl", "vq"), default="kl")
    p.add_argument("--profile", choices=("quick", "full"), default=None)
    p.add_argument("--steps", type=int, default=None, help="override the profile's step count")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/ae")
    p.add_argument("--resume", action="store_true", help="continue from OUT/state.safetensors")
    p.set_defaults(func=cmd_train_ae)

    p = sub.add_parser("train-ldm", help="train a text-to-image latent diffusion model (stage 2)")
    p.add_argument("--f", type=int, default=4, help="use the shipped autoencoder ae-REG-fF")
    p.add_argument("--reg", choices=("kl", "vq"), default="kl")
    p.add_argument("--autoencoder", default=None, help="or an autoencoder .safetensors of your own")
    p.add_argument("--profile", choices=("quick", "full"), default=None)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/ldm")
    p.add_argument("--resume", action="store_true")
    p.set_defaults(func=cmd_train_ldm)

    p = sub.add_parser("sample", help="generate images for a caption")
    p.add_argument("caption", help='e.g. "a red circle above a blue square"')
    p.add_argument("-o", "--output", default="sample.png")
    p.add_argument("--model", default="shapes-kl-f4", help="a shipped LDM")
    p.add_argument("--n", type=int, default=4, help="images to draw")
    p.add_argument("--steps", type=int, default=50, help="DDIM steps S")
    p.add_argument("--eta", type=float, default=0.0, help="0: deterministic DDIM, 1: DDPM-like")
    p.add_argument("--guidance", type=float, default=3.0, help="classifier-free guidance scale s")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("eval", help="measure a shipped autoencoder or LDM")
    p.add_argument("model", help="e.g. ae-kl-f4 or shapes-kl-f4")
    p.add_argument("--profile", choices=("quick", "full"), default=None)
    p.add_argument("--n", type=int, default=200, help="LDM: captions to sample")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--guidance", type=float, default=3.0)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("pretrained", help="rebuild the shipped checkpoints in data/checkpoints/")
    p.add_argument("--profile", choices=("quick", "full"), default="quick")
    p.add_argument("--only", nargs="*", default=None, help="names, e.g. attribute-classifier ae-kl-f4")
    p.set_defaults(func=cmd_pretrained)

    p = sub.add_parser("experiment", help="run one of the paper's experiments (lessons 07-10); writes data/experiments/NAME.json")
    p.add_argument("name", choices=EXPERIMENTS)
    p.add_argument("--profile", choices=("quick", "full"), default=None)
    p.add_argument("--out", default=None, help="results folder (default data/experiments/)")
    p.set_defaults(func=cmd_experiment)

    p = sub.add_parser("export-diffusers", help="write a shipped LDM as a diffusers / Stable Diffusion folder")
    p.add_argument("name", help="a shipped text-to-image LDM, e.g. shapes-kl-f4")
    p.add_argument("out", help="output folder (OUT/unet, OUT/vae, OUT/scheduler, OUT/text_encoder, OUT/tokenizer)")
    p.set_defaults(func=cmd_export_diffusers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError) as error:  # bad input: say what and how to fix, no traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
