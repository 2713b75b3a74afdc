"""Deep Image Prior's encoder-decoder "skip" network (Ulyanov, Vedaldi, Lempitsky 2018, "Deep Image
Prior"; the reference code is DmitryUlyanov/deep-image-prior, ``models/skip.py``).

Nothing is learnt from data: the network is fitted to one degraded image from a fixed noise input, and
its structure alone acts as the prior (see ``texnets.tasks.prior``). Layout, for L levels, level 0 the
finest::

    level i (input x):
        deeper = conv 3×3 stride 2 ─ BN ─ act ─ conv 3×3 ─ BN ─ act ─ [level i+1] ─ upsample ×2
        skip   = conv 1×1 ─ BN ─ act                                  (skip_channels > 0 only)
        out    = cat(skip, deeper) ─ BN ─ conv 3×3 ─ BN ─ act ─ conv 1×1 ─ BN ─ act
    image = sigmoid(conv 1×1 (level 0's output))

where ``act`` is a LeakyReLU. Downsampling is by strided convolution; the upsampling (bilinear,
nearest or a transposed convolution) is a config flag because the prior depends on it. Sides must be
multiples of 2^L (and, with reflection padding, at least (k//2 + 1)·2^L for k×k kernels, so the
coarsest feature map can be reflected); ``padded_size`` gives the nearest size that works, and the
task pads its noise input to it and crops the output back.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from texnets.errors import TexnetsError
from texnets.generators.base import Generator

UPSAMPLE_MODES = ("bilinear", "nearest", "transposed")
PADDINGS = ("reflect", "zeros")


def _per_level(value: int | list[int], levels: int, name: str) -> list[int]:
    values = [int(value)] * levels if isinstance(value, int) else [int(v) for v in value]
    if len(values) != levels:
        raise TexnetsError(f"generator {name} lists {len(values)} values for {levels} levels")
    return values


@dataclass
class SkipNetConfig:
    """Hyper-parameters of :class:`SkipNet`; what a checkpoint stores to rebuild it. Channel counts are
    one int (every level) or a list, finest level first.

    Args:
        input_channels: channels of the fixed noise input.
        levels: number of down/up levels (scales) L.
        down_channels: width of each level's encoder (its two 3×3 convolutions).
        up_channels: width of each level's decoder.
        skip_channels: width of each level's 1×1 skip branch (0 removes it).
        kernel_size: encoder and decoder convolutions (k×k).
        upsample: ``bilinear``, ``nearest`` or ``transposed`` (a learnt 4×4 stride-2 transposed conv).
        padding: ``reflect`` or ``zeros``.
        leaky_slope: negative slope of the LeakyReLUs.
    """

    # Defaults: the paper's default architecture (supplementary material) as the reference notebooks
    # build it for denoising (F16), ×4 super-resolution and text inpainting:
    # get_net(32, 'skip', 'reflection', skip_n33d=128, skip_n33u=128, skip_n11=4, num_scales=5,
    # upsample_mode='bilinear') in denoising.ipynb and super-resolution.ipynb.
    input_channels: int = 32                                      # input_depth = 32 (denoising/SR notebooks)
    levels: int = 5                                               # num_scales = 5
    down_channels: int | list[int] = 128                          # skip_n33d = 128
    up_channels: int | list[int] = 128                            # skip_n33u = 128
    skip_channels: int | list[int] = 4                            # skip_n11 = 4
    kernel_size: int = 3                                          # filter_size_down = filter_size_up = 3
    upsample: str = "bilinear"                                    # upsample_mode='bilinear' (denoising, SR)
    padding: str = "reflect"                                      # pad = 'reflection' in every notebook
    leaky_slope: float = 0.2                                      # models/common.py: nn.LeakyReLU(0.2)

    def __post_init__(self):
        if self.padding in ("reflection", "zero"):  # the reference code's spellings
            self.padding = {"reflection": "reflect", "zero": "zeros"}[self.padding]
        if self.upsample not in UPSAMPLE_MODES:
            raise TexnetsError(f"generator upsample must be one of {', '.join(UPSAMPLE_MODES)}, not {self.upsample!r}")
        if self.padding not in PADDINGS:
            raise TexnetsError(f"generator padding must be one of {', '.join(PADDINGS)}, not {self.padding!r}")
        if self.levels < 1 or self.input_channels < 1:
            raise TexnetsError("generator levels and input_channels must be positive")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise TexnetsError(f"generator kernel_size must be a positive odd number, not {self.kernel_size}")
        if self.leaky_slope < 0:
            raise TexnetsError("generator leaky_slope must not be negative")
        # Plain lists, so that config_dict() -> from_config() round-trips and checkpoints compare equal.
        self.down_channels = _per_level(self.down_channels, self.levels, "down_channels")
        self.up_channels = _per_level(self.up_channels, self.levels, "up_channels")
        self.skip_channels = _per_level(self.skip_channels, self.levels, "skip_channels")
        if min(self.down_channels + self.up_channels) < 1 or min(self.skip_channels) < 0:
            raise TexnetsError("generator down/up channels must be positive and skip channels not negative")


def conv_bn_act(in_channels: int, out_channels: int, kernel: int, config: SkipNetConfig, stride: int = 1):
    """conv (reflection or zero padding, with bias as in the reference) ─ BatchNorm ─ LeakyReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, padding_mode=config.padding),
        nn.BatchNorm2d(out_channels), nn.LeakyReLU(config.leaky_slope))


def make_upsample(mode: str, channels: int) -> nn.Module:
    if mode == "transposed":
        # As the reference UNet's 'deconv' (models/unet.py): ConvTranspose2d(c, c, 4, stride=2, padding=1).
        return nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1)
    return nn.Upsample(scale_factor=2, mode=mode)


class SkipLevel(nn.Module):
    """One level of the encoder-decoder; ``inner`` is the next coarser level (None at the coarsest)."""

    def __init__(self, index: int, in_channels: int, config: SkipNetConfig, inner: SkipLevel | None):
        super().__init__()
        down, up, skip, k = (config.down_channels[index], config.up_channels[index], config.skip_channels[index],
                             config.kernel_size)
        deeper_channels = config.up_channels[index + 1] if inner is not None else down
        self.skip = conv_bn_act(in_channels, skip, 1, config) if skip else None
        self.down = nn.Sequential(conv_bn_act(in_channels, down, k, config, stride=2),
                                  conv_bn_act(down, down, k, config))
        self.inner = inner
        self.upsample = make_upsample(config.upsample, deeper_channels)
        self.join_norm = nn.BatchNorm2d(skip + deeper_channels)
        self.up = nn.Sequential(conv_bn_act(skip + deeper_channels, up, k, config), conv_bn_act(up, up, 1, config))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        deeper = self.down(x)
        if self.inner is not None:
            deeper = self.inner(deeper)
        deeper = self.upsample(deeper)
        if self.skip is not None:
            deeper = torch.cat([self.skip(x), deeper], dim=1)  # skip first, as the reference's Concat
        return self.up(self.join_norm(deeper))


class SkipNet(Generator):
    """``net(noise) -> image``: (N, input_channels, H, W) to (N, 3, H, W) in (0, 1) (sigmoid output)."""

    model_type = "skip_net"
    config_class = SkipNetConfig

    def __init__(self, config: SkipNetConfig | None = None, **overrides):
        super().__init__()
        self.config = config = self.resolve_config(config, overrides)
        level = None
        for index in reversed(range(config.levels)):  # built coarsest first: each level wraps the next
            in_channels = config.input_channels if index == 0 else config.down_channels[index - 1]
            level = SkipLevel(index, in_channels, config, level)
        self.levels = level
        self.to_rgb = nn.Conv2d(config.up_channels[0], 3, kernel_size=1)

    # -- what callers need to know -----------------------------------------------------------------
    @property
    def size_multiple(self) -> int:
        return 2 ** self.config.levels

    @property
    def min_size(self) -> int:
        # Reflection padding needs the coarsest (H / 2^L) feature map to be wider than the padding.
        if self.config.padding == "reflect":
            return self.size_multiple * (self.config.kernel_size // 2 + 1)
        return self.size_multiple

    def padded_size(self, height: int, width: int) -> tuple[int, int]:
        """The smallest size at least (height, width) that this network accepts."""
        multiple, smallest = self.size_multiple, self.min_size
        return tuple(max(math.ceil(side / multiple) * multiple, smallest) for side in (height, width))

    def check_size(self, height: int, width: int) -> tuple[int, int]:
        if (height, width) != self.padded_size(height, width):
            raise TexnetsError(f"a {self.config.levels}-level skip network needs sides that are multiples of "
                               f"{self.size_multiple} and at least {self.min_size} px, not {width}x{height}; "
                               f"pad the input to {'x'.join(map(str, self.padded_size(height, width)[::-1]))}")
        return height, width

    # -- the network -------------------------------------------------------------------------------
    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        self.check_size(*noise.shape[-2:])
        return torch.sigmoid(self.to_rgb(self.levels(noise)))


__all__ = ["PADDINGS", "UPSAMPLE_MODES", "SkipNet", "SkipNetConfig"]
