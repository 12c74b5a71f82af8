"""Measuring: pure measures, the judge network, prompt and binding scores, trained models.

- ``measures``: PSNR, SSIM, the Frechet distance in the judge's features (an FID stand-in);
- ``judge``: the attribute classifier (perceptual-loss features, FD features, prompt judge) and its training;
- ``prompts``: prompt accuracy and attribute binding of generated images;
- ``models``: an autoencoder's reconstructions and rate, an LDM's prompt accuracy, upscalers;
- ``bound``: the variational bound of a pixel-space diffusion model, term by term (lesson 08).

The common names are re-exported here: ``from ldm_mini.eval import psnr, prompt_accuracy``.
"""

from .judge import AttributeClassifier, AttributeClassifierConfig, classifier_accuracy, train_attribute_classifier
from .measures import (
    PSNR_MAX,
    embed_images,
    frechet_distance,
    frechet_distance_from_features,
    psnr,
    psnr_per_image,
    ssim,
)
from .models import evaluate_autoencoder, evaluate_ldm, evaluate_upscalers, evaluation_captions, upscalers
from .prompts import (
    PROMPT_METRICS,
    binding_table,
    classify_images,
    describe,
    judge_caption,
    prompt_accuracy,
    score_binding,
    two_object_captions,
)

__all__ = [
    "AttributeClassifier", "AttributeClassifierConfig", "classifier_accuracy", "train_attribute_classifier", "PSNR_MAX",
    "embed_images", "frechet_distance", "frechet_distance_from_features", "psnr", "psnr_per_image", "ssim",
    "evaluate_autoencoder", "evaluate_ldm", "evaluate_upscalers", "evaluation_captions", "upscalers", "PROMPT_METRICS",
    "binding_table", "classify_images", "describe", "judge_caption", "prompt_accuracy", "score_binding",
    "two_object_captions",
]
