"""Texture Networks' multi-scale generator (Ulyanov et al. 2016, "Texture Networks: Feed-forward
Synthesis of Textures and Stylized Images"), with the instance normalisation of Ulyanov et al. 2017
("Improved Texture Networks") as an option.

Layout (the JorgeGtz PyTorch reimplementation, ``Pyramid2D``), for K scales and channel step s:

    noise level K-1 (coarsest) ─ block(3→s) ─ up+norm ─┐
    noise level K-2 ─────────── block(3→s) ─────────── cat ─ block(2s→2s) ─ up+norm ─┐
    ...                                                                               ...
    noise level 0 (finest) ──── block(3→s) ──────────────────────────────────────── cat ─ block(Ks→Ks) ─ 1×1 → RGB

where ``block`` is conv 3×3, conv 3×3, conv 1×1, each followed by a normalisation and a LeakyReLU,
``up+norm`` is nearest ×2 upsampling followed by a normalisation, and the block joining scale k
(counting from the coarsest, k = 1..K) is k·s channels wide. With K=6, 3 noise channels and s=8 this
is 116,835 parameters (BatchNorm affine parameters included), the reference count.

The output is the 1×1 convolution, unbounded as in the reference code, in 0..255 units around
mid-grey (``output_scale``); it is trained to land in [0, 1] and is clamped only when saved. The
module knows nothing about losses, Lightning or files, and is TorchScript-scriptable so it can be
exported on its own.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from texnets.errors import TexnetsError
from texnets.generators.base import Generator
from texnets.noise import NoiseSpec, check_size

NORMS = ("batch", "instance")
PADDINGS = ("circular", "zeros", "reflect")


@dataclass
class TextureNetConfig:
    """Hyper-parameters of :class:`TextureNet`; what a checkpoint stores to rebuild it.

    Args:
        scales: noise levels K; outputs must be multiples of 2^(K-1) on each side.
        noise_channels: channels of uniform noise per level.
        channel_step: width of each noise branch; the block joining scale k is k·channel_step wide.
        norm: ``batch`` (Ulyanov et al. 2016) or ``instance`` (Ulyanov et al. 2017).
        padding: ``circular`` (samples tile seamlessly), ``zeros`` or ``reflect``.
        leaky_slope: negative slope of the LeakyReLUs.
        output_scale: the last convolution works in 0..255 pixel units, centred on mid-grey, as in the
            reference code (whose VGG reads Caffe-style 0..255 images); the image is
            ``0.5 + conv / output_scale``. This keeps Adam's lr 0.1 of the reference meaningful;
            1.0 makes the layer output [0, 1] values directly.
    """

    scales: int = 6
    noise_channels: int = 3
    channel_step: int = 8
    norm: str = "batch"
    padding: str = "circular"
    leaky_slope: float = 0.01
    output_scale: float = 255.0

    def __post_init__(self):
        if self.padding == "zero":
            self.padding = "zeros"
        if self.norm not in NORMS:
            raise TexnetsError(f"generator norm must be one of {', '.join(NORMS)}, not {self.norm!r}")
        if self.padding not in PADDINGS:
            raise TexnetsError(f"generator padding must be one of {', '.join(PADDINGS)}, not {self.padding!r}")
        if self.output_scale <= 0:
            raise TexnetsError("generator output_scale must be positive")
        if self.scales < 1 or self.noise_channels < 1 or self.channel_step < 1:
            raise TexnetsError("generator scales, noise_channels and channel_step must be positive")


def make_norm(kind: str, channels: int) -> nn.Module:
    # Both have 2·channels affine parameters; only BatchNorm keeps running statistics.
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.InstanceNorm2d(channels, affine=True)


class ConvBlock(nn.Sequential):
    """conv 3×3, conv 3×3, conv 1×1; each followed by a normalisation and a LeakyReLU."""

    def __init__(self, in_channels: int, out_channels: int, config: TextureNetConfig):
        layers: list[nn.Module] = []
        for kernel, cin in ((3, in_channels), (3, out_channels), (1, out_channels)):
            layers += [nn.Conv2d(cin, out_channels, kernel, padding=kernel // 2, padding_mode=config.padding),
                       make_norm(config.norm, out_channels), nn.LeakyReLU(config.leaky_slope)]
        super().__init__(*layers)


class UpsampleNorm(nn.Module):
    """Nearest ×2 upsampling, then a normalisation (the coarse branch's side of a join)."""

    def __init__(self, channels: int, norm: str):
        super().__init__()
        self.norm = make_norm(norm, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"))


class TextureNet(Generator):
    """``net(noise) -> images``: a list of K noise tensors, finest first (see texnets.noise), to
    (N, 3, H, W) images whose size is the finest level's."""

    model_type = "texture_net"
    config_class = TextureNetConfig
    __jit_unused_properties__ = ["noise_spec", "size_multiple"]  # Python-side helpers, not exported

    def __init__(self, config: TextureNetConfig | None = None, **overrides):
        super().__init__()
        self.config = config = self.resolve_config(config, overrides)
        self.scales = config.scales
        step, k = config.channel_step, config.scales
        # Index 0 is the coarsest level throughout: the forward pass runs coarse to fine.
        self.coarsest = ConvBlock(config.noise_channels, step, config)
        self.upsamples = nn.ModuleList([UpsampleNorm(step * j, config.norm) for j in range(1, k)])
        self.noise_blocks = nn.ModuleList([ConvBlock(config.noise_channels, step, config) for _ in range(1, k)])
        self.join_blocks = nn.ModuleList([ConvBlock(step * (j + 1), step * (j + 1), config) for j in range(1, k)])
        self.to_rgb = nn.Conv2d(step * k, 3, kernel_size=1)
        self.output_gain = 1.0 / config.output_scale

    # -- what callers need to know -----------------------------------------------------------------
    @property
    def noise_spec(self) -> NoiseSpec:
        return NoiseSpec(self.config.scales, self.config.noise_channels)

    @property
    def size_multiple(self) -> int:
        return 2 ** (self.config.scales - 1)

    def check_size(self, size) -> tuple[int, int]:
        return check_size(size, self.config.scales)

    def set_padding(self, mode: str) -> "TextureNet":
        """Switch every convolution's padding (e.g. to ``circular`` for seamlessly wrapping output).
        Only the border pixels change: the weights do not depend on the padding."""
        TextureNetConfig(padding=mode)  # validates
        mode = "zeros" if mode == "zero" else mode
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                module.padding_mode = mode
        self.config.padding = mode
        return self

    def receptive_margin(self) -> int:
        """Finest-level pixels of context, on each side, that one output pixel depends on.

        Propagates an output pixel's dependency interval back through the network (two 3×3 convs
        per block, nearest upsampling halving indices) for every alignment of the pixel with the
        coarsest grid, and returns the widest reach. Tiled generation needs a halo at least this big.
        """
        k, worst = self.config.scales, 0
        for p in range(2 ** (k - 1)):
            lo = hi = p
            for level in range(k):
                if level < k - 1:
                    lo, hi = lo - 2, hi + 2                        # the join block at this level
                    noise_lo, noise_hi = lo - 2, hi + 2            # this level's noise branch
                else:
                    noise_lo, noise_hi = lo - 2, hi + 2            # the coarsest block is the noise branch
                worst = max(worst, p - noise_lo * 2 ** level, (noise_hi + 1) * 2 ** level - 1 - p)
                lo, hi = lo // 2, hi // 2                          # nearest upsampling from the next level
        return worst

    # -- the network -------------------------------------------------------------------------------
    def forward(self, noise: list[torch.Tensor]) -> torch.Tensor:
        if len(noise) != self.scales:
            raise ValueError(f"expected {self.scales} noise levels, got {len(noise)}")
        x = self.coarsest(noise[self.scales - 1])
        for i, (upsample, noise_block, join) in enumerate(zip(self.upsamples, self.noise_blocks, self.join_blocks)):
            level = self.scales - 2 - i
            x = join(torch.cat([upsample(x), noise_block(noise[level])], dim=1))
        return self.to_rgb(x) * self.output_gain + 0.5


__all__ = ["NORMS", "PADDINGS", "TextureNet", "TextureNetConfig"]
