"""ldm_mini: Latent Diffusion Models (Rombach et al., CVPR 2022), small enough for a laptop CPU."""

__version__ = "0.1.0"
