"""Evaluation metrics for generated textures, stylisations and reconstructions, computed over images
streamed from disk in batches (memory stays at one batch whatever the number of images; only KID
keeps one feature vector, 2 KB, per image).

Every figure is labelled with the network that produced its features and the number of images behind
it, so that a small-sample or non-Inception FID is never mistaken for a paper-comparable one:

  * FID and KID (torchmetrics). With the standard InceptionV3 weights (torch-fidelity's port of the
    TF-FID network) when ``torch-fidelity`` is installed and the weights are cached or downloadable;
    otherwise, or on request, on features of the bundled VGG19 (global mean of one layer, default
    pool5, at a fixed input size) and labelled ``FID-VGG19(pool5)``, never plain "FID".
  * SiFID (Shaham et al. 2019, SinGAN): the Fréchet distance between the distributions of the
    feature vectors at every *position* of one generated image and of its exemplar, on early-layer
    features: InceptionV3's first pooling block (64-d, SinGAN's choice) or second (192-d), or any
    VGG19 layer (offline default pool1, also 64-d), labelled with layer and dimensionality.
  * LPIPS (Zhang et al. 2018, the ``lpips`` package): distance to aligned references, and diversity,
    the mean pairwise LPIPS among samples (how a texture network's mode collapse shows). Without the
    torchvision backbone weights, a one-line error; a random-backbone mode exists for tests only and
    says so in its label. Offline, diversity falls back to the same formula with uniform weights on
    the bundled VGG19, labelled ``Diversity-VGG19(...)``, never "LPIPS" (see ``VGGFeatureDistance``).
  * Style distances per layer: Gram, MeanVar and sliced Wasserstein, with the very loss modules of
    ``texnets.losses`` on the shared encoder, so "Gram distance" means the Gram loss.
  * PSNR and SSIM (torchmetrics) for inversions and reconstructions.

``Evaluator`` builds each network once and scores any number of image sets against a ``Reference``:
an exemplar image, a reference set (FID/KID) or pairs matched by file name.

One module per seam: ``results`` (what a figure is), ``sources`` (which images, in which pairs, streamed in
batches), ``extractors`` (the feature networks), ``distances``, ``evaluator`` (one pass) and ``report``
(markdown). PSNR/SSIM live in ``texnets.quality``, which training imports without this package.
"""
from __future__ import annotations

from texnets.evaluation.distances import (LPIPS_NETS, STYLE_STATISTICS, ExemplarGramScore, PairwiseDiversity,
                                          SetDistances, StyleDistances, VGGFeatureDistance, frechet_distance, load_lpips,
                                          position_statistics)
from texnets.evaluation.evaluator import (DIVERSITY_EXTRACTORS, FID_EXTRACTORS, METRICS, REFERENCE_MODES, Evaluator,
                                          MetricOptions)
from texnets.evaluation.extractors import (INCEPTION_SIFID, InceptionEarlyFeatures, InceptionPooledFeatures,
                                           PooledVGGFeatures, load_inception)
from texnets.evaluation.report import evaluation_table, format_value
from texnets.evaluation.results import Evaluation, MetricResult, RunningStat
from texnets.evaluation.sources import Reference, find_images, is_image_set, pair_images, stream_batches
from texnets.quality import psnr_ssim

__all__ = [
    "DIVERSITY_EXTRACTORS", "Evaluation", "Evaluator", "ExemplarGramScore", "FID_EXTRACTORS",
    "INCEPTION_SIFID", "InceptionEarlyFeatures",
    "InceptionPooledFeatures", "LPIPS_NETS", "METRICS", "MetricOptions", "MetricResult", "PairwiseDiversity",
    "PooledVGGFeatures", "REFERENCE_MODES", "Reference", "RunningStat", "STYLE_STATISTICS", "SetDistances",
    "StyleDistances", "VGGFeatureDistance", "find_images", "format_value", "frechet_distance", "is_image_set",
    "load_inception", "load_lpips", "evaluation_table", "pair_images", "position_statistics", "psnr_ssim",
    "stream_batches",
]
