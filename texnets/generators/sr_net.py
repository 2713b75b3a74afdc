"""Johnson et al. 2016's super-resolution network ("Perceptual Losses for Real-Time Style Transfer and
Super-Resolution", section 4.2 and supplementary material), built from the transfer network's blocks:

    9×9 conv 64 ─ 4 × residual(3×3 conv 64, 3×3 conv 64) ─ log2(factor) × (up×2 + 3×3 conv 64) ─ 9×9 conv 3

A low-resolution image of any H×W in, a factor·H × factor·W image out (×2, ×4 or ×8). As in the transfer network,
every convolution pads by reflection, every one but the last is followed by a normalisation and a ReLU (none after a
residual block's second convolution), and the output is ``0.5 + output_range · tanh`` (the paper's scaled tanh onto
the pixel range: 0.5 gives [0, 1]). Upsampling is resize-convolution by default (Odena et al. 2016, no checkerboard
artefacts); ``upsample="transposed"`` keeps the paper's stride-½ convolutions.

The paper normalises with batch normalisation (``norm="batch"``, the default here); ``norm="instance"``, the transfer
networks' choice, is there for comparison.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from texnets.errors import TexnetsError
from texnets.generators.base import Generator
from texnets.generators.transformer_net import UPSAMPLINGS, ConvLayer, ResidualBlock, UpsampleConv, instance_norm

FACTORS = (2, 4, 8)
NORMS = {"batch": nn.BatchNorm2d, "instance": instance_norm}
MIN_INPUT = 8   # the first 9×9 convolution reflect-pads by 4, which needs more than 4 pixels; 8 leaves some content


@dataclass
class SuperResolutionNetConfig:
    """Hyper-parameters of :class:`SuperResolutionNet`; what a checkpoint stores to rebuild it.

    Args:
        factor: upscaling factor, 2, 4 or 8 (Johnson et al. 2016 report ×4 and ×8).
        channels: channels of every hidden layer (64 in Johnson et al. 2016's supplementary material).
        residual_blocks: residual blocks at low resolution (4 in Johnson et al. 2016's supplementary material).
        upsample: ``nearest`` (resize-convolution) or ``transposed`` (the paper's stride-½ convolutions).
        norm: ``batch`` (the paper) or ``instance``.
        output_range: half-range of the tanh output around mid-grey, in [0, 1] image units (0.5: [0, 1]).
    """

    factor: int = 4
    channels: int = 64
    residual_blocks: int = 4
    upsample: str = "nearest"
    norm: str = "batch"
    output_range: float = 0.5

    def __post_init__(self):
        if self.factor not in FACTORS:
            raise TexnetsError(f"generator factor must be one of {', '.join(map(str, FACTORS))}, not {self.factor}")
        if self.upsample not in UPSAMPLINGS:
            raise TexnetsError(f"generator upsample must be one of {', '.join(UPSAMPLINGS)}, not {self.upsample!r}")
        if self.norm not in NORMS:
            raise TexnetsError(f"generator norm must be one of {', '.join(NORMS)}, not {self.norm!r}")
        if self.channels < 1 or self.residual_blocks < 0 or self.output_range <= 0:
            raise TexnetsError("generator channels must be positive, residual_blocks not negative and output_range "
                               "positive")

    @property
    def stages(self) -> int:
        return self.factor.bit_length() - 1   # log2(factor)


class SuperResolutionNet(Generator):
    """``net(low_resolution) -> high_resolution``: (N, 3, H, W) in [0, 1] to (N, 3, factor·H, factor·W)."""

    model_type = "sr_net"
    config_class = SuperResolutionNetConfig
    size_multiple = 1

    def __init__(self, config: SuperResolutionNetConfig | None = None, **overrides):
        super().__init__()
        self.config = config = self.resolve_config(config, overrides)
        norm, width = NORMS[config.norm], config.channels
        self.head = ConvLayer(3, width, 9, norm_layer=norm)
        self.residuals = nn.Sequential(*[ResidualBlock(width, norm) for _ in range(config.residual_blocks)])
        self.upsampling = nn.Sequential(*[UpsampleConv(width, width, config.upsample, norm)
                                          for _ in range(config.stages)])
        self.output = ConvLayer(width, 3, 9, relu=False, norm=False)
        self.factor = config.factor
        self.output_range = float(config.output_range)

    def check_input(self, size: tuple[int, int]) -> None:
        """A one-line TexnetsError for a low-resolution input too small for the network."""
        if min(size) < MIN_INPUT:
            raise TexnetsError(f"a {size[1]}x{size[0]} low-resolution input is too small: at least {MIN_INPUT} pixels "
                               f"per side (a x{self.factor} network makes {MIN_INPUT * self.factor} from {MIN_INPUT})")

    def receptive_margin(self) -> int:
        """Low-resolution pixels of context, on each side, that one output pixel can depend on (for tiling).

        Walks an output pixel's dependency interval back through the layers, for each of its ``factor`` positions
        within a low-resolution pixel, and returns the widest reach (14 at x4 with 4 residual blocks; an upper bound
        for transposed upsampling)."""
        worst = 0
        for position in range(self.factor):
            lo, hi = position - 4, position + 4          # the output 9×9 conv, at high resolution
            for _ in range(self.config.stages):          # each ×2 stage: a 3×3 conv, then nearest (i reads i // 2)
                lo, hi = (lo - 1) // 2, (hi + 1) // 2
            reach = 2 * self.config.residual_blocks + 4  # two 3×3 convs per residual block, the 9×9 head
            worst = max(worst, reach - lo, hi + reach)
        return worst

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # Centred like the transfer network's input, so reflection padding stays neutral.
        x = self.head(images - 0.5)
        x = self.output(self.upsampling(self.residuals(x)))
        return 0.5 + self.output_range * torch.tanh(x)


__all__ = ["FACTORS", "MIN_INPUT", "SuperResolutionNet", "SuperResolutionNetConfig"]
