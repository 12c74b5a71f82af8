"""Measuring: pure measures, the attribute classifier, the judge, prompt and binding scores, trained models.

- ``measures``: PSNR, SSIM, the Frechet distance in a network's features (an FID stand-in);
- ``classifier``: the attribute classifier (perceptual-loss features, FD features) and its training;
- ``judge``: the judge of generated images, a network no model was trained against, and its agreement
  with the rule-based ``detector``;
- ``prompts``: prompt accuracy and attribute binding of generated images;
- ``models``: an autoencoder's reconstructions and rate, an LDM's prompt accuracy, upscalers;
- ``bound``: the variational bound of a pixel-space diffusion model, term by term (lesson 08).

The common names are re-exported here: ``from ldm_mini.eval import psnr, prompt_accuracy``.
"""

from .classifier import AttributeClassifier, AttributeClassifierConfig, classifier_accuracy, train_attribute_classifier
from .judge import Judge, JudgeConfig, SceneRule, judge_vs_detector, scene_check, train_judge
from .measures import (
    PSNR_MAX,
    embed_images,
    frechet_distance,
    frechet_distance_from_features,
    psnr,
    psnr_per_image,
    ssim,
    wilson_interval,
)
from .models import (
    HEADLINE_SETS,
    evaluate_autoencoder,
    evaluate_upscalers,
    evaluation_captions,
    headline_captions,
    headline_metrics,
    upscalers,
)
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
    "AttributeClassifier", "AttributeClassifierConfig", "classifier_accuracy", "train_attribute_classifier", "Judge",
    "JudgeConfig", "SceneRule", "judge_vs_detector", "scene_check", "train_judge", "PSNR_MAX", "embed_images",
    "frechet_distance",
    "frechet_distance_from_features", "psnr", "psnr_per_image", "ssim", "wilson_interval", "HEADLINE_SETS",
    "evaluate_autoencoder", "evaluate_upscalers", "evaluation_captions", "headline_captions",
    "headline_metrics", "upscalers", "PROMPT_METRICS", "binding_table", "classify_images", "describe", "judge_caption",
    "prompt_accuracy", "score_binding", "two_object_captions",
]
