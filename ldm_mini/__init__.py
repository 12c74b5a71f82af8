"""ldm_mini: Latent Diffusion Models (Rombach et al., CVPR 2022), small enough for a laptop CPU."""

__version__ = "0.1.0"


def load_pretrained(name: str, device="cpu"):
    """A shipped checkpoint from data/checkpoints/ (sha256-checked), e.g. "shapes-kl-f4"
    (a LatentDiffusion), "ae-kl-f4" (an Autoencoder) or "attribute-classifier"."""
    # Imported on call, not at the top: `import ldm_mini.diffusion` should not load the whole zoo
    # (datasets, torchmetrics), and the package must not import the layers above its core.
    from .zoo import load_pretrained as _load

    return _load(name, device=device)
