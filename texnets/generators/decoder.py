"""The decoder of the arbitrary-style networks: the mirror image of VGG19 from one of its ``reluN_1`` layers
back to pixels (Huang & Belongie 2017, naoto0804/pytorch-AdaIN ``net.decoder``; Li et al. 2017 use one such
decoder per level).

Walking VGG19 backwards from the top layer, each 3×3 convolution becomes a 3×3 convolution from its
output channels to its input channels, each max pooling a ×2 nearest upsampling; every convolution pads
by reflection and is followed by a ReLU, except the last (conv1_1's mirror, to RGB), which is linear. No
normalisation layers (the reference decoder has none: instance norm would undo what AdaIN sets). For
relu4_1 this is exactly the reference decoder (3,505,219 parameters at width 1). ``width`` scales the
hidden channels (not the top layer's, which the encoder fixes) for CPU-sized networks.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from texnets.errors import TexnetsError
from texnets.vgg import layer_channels, layer_names

DECODER_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")  # Li et al. 2017's five levels
# Root mean square of the bundled (Caffe, 0..255-pixel) VGG19's features on photos and paintings, measured by
# texnets. The decoder divides its input by it: the reference decoders read the *normalised* VGG's O(1)
# features, and inputs in the hundreds would start a decoder at outputs in the hundreds. A fixed rescaling
# of the first convolution's input, so only where training starts changes, not what a decoder can learn.
FEATURE_RMS = {"relu1_1": 45.0, "relu2_1": 230.0, "relu3_1": 310.0, "relu4_1": 1000.0, "relu5_1": 150.0}


def check_decoder_layer(layer: str) -> str:
    if layer not in DECODER_LAYERS:
        raise TexnetsError(f"a decoder starts at one of {', '.join(DECODER_LAYERS)}, not {layer!r}")
    return layer


def encoder_margin(top_layer: str) -> int:
    """Input pixels of context, per side, that one ``top_layer`` feature depends on in VGG19 (tiling)."""
    margin, stride = 0, 1
    for name in layer_names("vgg19")[:layer_names("vgg19").index(top_layer) + 1]:
        if name.startswith("conv"):
            margin += stride
        elif name.startswith("pool"):
            margin += stride  # a 2×2 window reaches one more pixel of the finer grid
            stride *= 2
    return margin


@dataclass
class DecoderConfig:
    """Hyper-parameters of :class:`VGGDecoder`.

    Args:
        top_layer: the encoder layer it inverts (relu1_1 … relu5_1).
        width: multiplier of the hidden channels (1.0 is the reference).
    """

    top_layer: str = "relu4_1"
    width: float = 1.0

    def __post_init__(self):
        check_decoder_layer(self.top_layer)
        if not 0 < self.width <= 4:
            raise TexnetsError(f"decoder width must be in (0, 4], not {self.width}")


class VGGDecoder(nn.Module):
    """Features at ``top_layer`` (N, C, H/2^k, W/2^k) -> RGB (N, 3, H, W), nominally in [0, 1]."""

    def __init__(self, config: DecoderConfig):
        super().__init__()
        self.config = config
        names = layer_names("vgg19")
        forward_convs = [name for name in names[:names.index(config.top_layer) + 1] if name.startswith(("conv", "pool"))]
        layers: list[nn.Module] = []
        channels = layer_channels(config.top_layer)
        for name in reversed(forward_convs):
            if name.startswith("pool"):
                layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
                continue
            if name == "conv1_1":
                out = 3
            else:
                previous = names[names.index(name) - 1]  # what fed this conv: a relu or a pool of the block before
                out = self._hidden(layer_channels(previous))
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, out, 3)]
            if name != "conv1_1":
                layers.append(nn.ReLU(inplace=True))
            channels = out
        self.body = nn.Sequential(*layers)

    def _hidden(self, channels: int) -> int:
        return max(8, int(round(channels * self.config.width)))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.body(features * (1.0 / FEATURE_RMS[self.config.top_layer]))

    @property
    def scale(self) -> int:
        return 2 ** sum(isinstance(layer, nn.Upsample) for layer in self.body)

    def receptive_margin(self) -> int:
        """Output pixels of context per side (in input-image pixels) that one output pixel depends on."""
        margin, scale = 0, self.scale
        for layer in self.body:
            if isinstance(layer, nn.Conv2d):
                margin += scale  # one feature pixel at this depth spans `scale` output pixels
            elif isinstance(layer, nn.Upsample):
                scale //= 2
        return margin


__all__ = ["DECODER_LAYERS", "FEATURE_RMS", "DecoderConfig", "VGGDecoder", "check_decoder_layer", "encoder_margin"]
