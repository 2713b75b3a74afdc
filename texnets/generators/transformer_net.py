"""Johnson et al. 2016's image transformation network ("Perceptual Losses for Real-Time Style Transfer
and Super-Resolution", supplementary material; layout of jcjohnson/fast-neural-style's
``c9s1-32,d64,d128,R128×5,u64,u32,c9s1-3`` and of pytorch/examples' ``TransformerNet``):

    9×9 conv 32 ─ 3×3/2 conv 64 ─ 3×3/2 conv 128 ─ 5 × residual(3×3 conv 128, 3×3 conv 128)
        ─ up×2 + 3×3 conv 64 ─ up×2 + 3×3 conv 32 ─ 9×9 conv 3

Every convolution pads by reflection; every one but the last is followed by an InstanceNorm with
affine parameters (Ulyanov et al. 2016's instance normalisation, which fast-neural-style adopted)
and a ReLU (none after a residual block's second convolution). At width 1 this is 1,679,235
parameters, the reference count; ``width`` scales every channel count (0.5 for a ~4× cheaper net).

Upsampling is nearest-neighbour ×2 followed by a 3×3 convolution ("resize-convolution", Odena et al.
2016), which avoids the checkerboard artefacts of transposed convolutions; ``upsample="transposed"``
keeps the paper's fractionally-strided convolutions (same parameter count) for comparison.

Any H×W works: the input is reflect-padded to a multiple of 4 (two stride-2 stages) and the output is
cropped back, so the output always has the input's size. The output is
``0.5 + output_range · tanh(conv)`` (fast-neural-style's ``-tanh_constant 150`` on 0..255 pixels:
output_range = 150/255), so it stays near [0, 1] without clamping during training.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from texnets.errors import TexnetsError
from texnets.generators.base import Generator
from texnets.generators.convolutions import FewOutputsConv2d

UPSAMPLINGS = ("nearest", "transposed")


@dataclass
class TransformerNetConfig:
    """Hyper-parameters of :class:`TransformerNet`; what a checkpoint stores to rebuild it.

    Args:
        width: channel multiplier; 1.0 is the reference (32, 64, 128 channels).
        residual_blocks: number of residual blocks at the bottleneck (5 in Johnson et al. 2016).
        upsample: ``nearest`` (resize-convolution, no checkerboard) or ``transposed`` (the paper's).
        output_range: half-range of the tanh output around mid-grey, in [0, 1] image units
            (fast-neural-style: 150 on a 0..255 scale); 0 gives an unbounded linear output.
    """

    width: float = 1.0
    residual_blocks: int = 5
    upsample: str = "nearest"
    output_range: float = 150.0 / 255.0

    def __post_init__(self):
        if self.upsample not in UPSAMPLINGS:
            raise TexnetsError(f"generator upsample must be one of {', '.join(UPSAMPLINGS)}, not {self.upsample!r}")
        if not 0 < self.width <= 8:
            raise TexnetsError(f"generator width must be in (0, 8], not {self.width}")
        if self.residual_blocks < 0 or self.output_range < 0:
            raise TexnetsError("generator residual_blocks and output_range must not be negative")

    def channels(self, reference: int) -> int:
        return max(1, int(round(reference * self.width)))


def instance_norm(channels: int) -> nn.Module:
    """The transfer networks' normalisation: InstanceNorm with affine parameters (Ulyanov et al. 2016)."""
    return nn.InstanceNorm2d(channels, affine=True)


class ConvLayer(nn.Sequential):
    """Reflection padding + convolution (+ normalisation unless ``norm`` is False, + ReLU unless ``relu`` is)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, relu: bool = True, norm: bool = True,
                 norm_layer: Callable[[int], nn.Module] = instance_norm):
        # The RGB output layer is computed by space-to-depth on CPUs (texnets.generators.convolutions: 2.3x faster).
        convolution = FewOutputsConv2d if cout <= 4 and stride == 1 else nn.Conv2d
        layers: list[nn.Module] = [nn.ReflectionPad2d(kernel // 2), convolution(cin, cout, kernel, stride)]
        if norm:
            layers.append(norm_layer(cout))
        if relu:
            layers.append(nn.ReLU())
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    """x + norm(conv(ReLU(norm(conv(x))))), the variant of Gross & Wilber that fast-neural-style uses (InstanceNorm)."""

    def __init__(self, channels: int, norm_layer: Callable[[int], nn.Module] = instance_norm):
        super().__init__()
        self.body = nn.Sequential(ConvLayer(channels, channels, 3, norm_layer=norm_layer),
                                  ConvLayer(channels, channels, 3, relu=False, norm_layer=norm_layer))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpsampleConv(nn.Module):
    """×2 upsampling then a 3×3 convolution, normalisation and ReLU. ``nearest``: resize-convolution;
    ``transposed``: a stride-2 transposed convolution with the same weights' shape."""

    def __init__(self, cin: int, cout: int, mode: str, norm_layer: Callable[[int], nn.Module] = instance_norm):
        super().__init__()
        self.nearest = mode == "nearest"
        if self.nearest:
            self.conv = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3))
        else:
            self.conv = nn.Sequential(nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1))
        self.norm = norm_layer(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.nearest:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return F.relu(self.norm(self.conv(x)))


class TransformerNet(Generator):
    """``net(images) -> stylised images``: (N, 3, H, W) in [0, 1] to the same shape."""

    model_type = "transformer_net"
    config_class = TransformerNetConfig
    size_multiple = 4  # two stride-2 stages; other sizes are padded internally

    def __init__(self, config: TransformerNetConfig | None = None, **overrides):
        super().__init__()
        self.config = config = self.resolve_config(config, overrides)
        c32, c64, c128 = config.channels(32), config.channels(64), config.channels(128)
        self.encoder = nn.Sequential(ConvLayer(3, c32, 9), ConvLayer(c32, c64, 3, stride=2),
                                     ConvLayer(c64, c128, 3, stride=2))
        self.residuals = nn.Sequential(*[ResidualBlock(c128) for _ in range(config.residual_blocks)])
        self.decoder = nn.Sequential(UpsampleConv(c128, c64, config.upsample), UpsampleConv(c64, c32, config.upsample),
                                     ConvLayer(c32, 3, 9, relu=False, norm=False))
        self.output_range = float(config.output_range)

    def receptive_margin(self) -> int:
        """Input pixels of context, on each side, that one output pixel can depend on (for tiling).

        Walks an output pixel's dependency interval back through the layers, for each of its four
        alignments with the stride-4 grid, and returns the widest reach (57 px at the reference depth;
        an upper bound for transposed upsampling).
        """
        worst = 0
        for p in range(4):
            lo, hi = p - 4, p + 4                            # the last 9×9 conv
            for _ in range(2):                               # the two ×2 upsampling stages: a 3×3 conv, then
                lo, hi = (lo - 1) // 2, (hi + 1) // 2        # nearest (i reads i // 2), or a transposed 3×3/2
            lo, hi = lo - 2 * self.config.residual_blocks, hi + 2 * self.config.residual_blocks
            for _ in range(2):                               # the two 3×3 stride-2 convs
                lo, hi = 2 * lo - 1, 2 * hi + 1
            lo, hi = lo - 4, hi + 4                          # the first 9×9 conv
            worst = max(worst, p - lo, hi - p)
        return worst

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2], images.shape[-1]
        # Caffe-like mean-centred input (the network reads "0..255 minus the mean" in fast-neural-style);
        # the first InstanceNorm makes the scale immaterial, the centring keeps reflection padding neutral.
        # Always padded (by 0 to 3 pixels), without a Python branch, so ONNX tracing keeps the padding
        # for every input size.
        x = F.pad(images - 0.5, [0, (4 - width % 4) % 4, 0, (4 - height % 4) % 4], mode="reflect")
        x = self.decoder(self.residuals(self.encoder(x)))
        x = x[..., :height, :width]
        if self.output_range > 0:
            return 0.5 + self.output_range * torch.tanh(x)
        return 0.5 + x


__all__ = ["ConvLayer", "ResidualBlock", "TransformerNet", "TransformerNetConfig", "UPSAMPLINGS", "UpsampleConv",
           "instance_norm"]
