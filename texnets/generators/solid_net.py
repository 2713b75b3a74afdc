"""Solid-texture generator of Gutiérrez, Rabin, Galerne and Hurtut 2020 ("On Demand Solid Texture
Synthesis Using Deep 3D Networks", Computer Graphics Forum; reference code JorgeGtz/SolidTextureNets,
``MultiScaleGen3D``): the multi-scale Texture Network made 3D, with no padding at all.

Layout, for K scales and channel step s (as the 2D ``TextureNet``, every operation made 3D)::

    noise level K-1 (coarsest) ─ block(3→s) ─ up+norm ─ crop ─┐
    noise level K-2 ─────────── block(3→s) ──────────────── cat ─ block(2s→2s) ─ up+norm ─ crop ─┐
    ...                                                                                       ...
    noise level 0 (finest) ──── block(3→s) ─────────────────────────────────────────────────── cat ─ block(Ks→Ks) ─ 1×1 → RGB

``block`` is conv 3×3×3, conv 3×3×3, conv 1×1×1, each followed by BatchNorm and a LeakyReLU, all
*unpadded* ("valid"); ``up+norm`` is nearest ×2 upsampling then BatchNorm. With K=6, 3 noise channels
and s=4 this is 84,963 parameters, the reference count (the paper: "less than 100k").

Why no padding: every output voxel then depends only on the noise around it, so an unbounded volume
can be evaluated block by block, anywhere, on demand. The noise of each level lives on a global
integer grid (level k's voxel i covers the finest voxels [i·2^k, (i+1)·2^k)); :func:`solid_layout`
works out, for a block [origin, origin+size) of the finest grid, which window of every level's noise
it needs and where each upsampled coarse feature map must be cropped to line up with the finer one
(the reference code's ``Shift3D`` / ``drop_conf``). A volume made in one call and the same volume
assembled from separately computed blocks are then the same function of the same noise.

Only BatchNorm is offered: instance normalisation would make each voxel depend on the whole block.
In eval mode BatchNorm is a fixed per-channel affine map, which keeps everything local. The module
knows nothing about losses, Lightning or files.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import List

import torch
from torch import nn

from texnets.errors import TexnetsError
from texnets.generators.base import Generator
from texnets.noise import NoiseSpec

AXES = ("z", "y", "x")   # a volume tensor is (N, 3, D, H, W): D runs along z, H along y, W along x


@dataclass
class SolidTextureNetConfig:
    """Hyper-parameters of :class:`SolidTextureNet`; what a checkpoint stores to rebuild it.

    Args:
        scales: noise levels K (the reference: 6 levels, i.e. 5 upsamplings).
        noise_channels: channels of uniform noise per level.
        channel_step: width of each noise branch; the block joining scale k is k·channel_step wide.
        leaky_slope: negative slope of the LeakyReLUs.
        output_scale: the last convolution works in 0..255 pixel units around mid-grey, as in the
            reference code; the volume is ``0.5 + conv / output_scale`` (see ``TextureNetConfig``).
        bn_momentum: momentum of the BatchNorms' running statistics.
    """

    scales: int = 6
    noise_channels: int = 3
    channel_step: int = 4
    leaky_slope: float = 0.01
    output_scale: float = 255.0
    bn_momentum: float = 0.1

    def __post_init__(self):
        if self.scales < 1 or self.noise_channels < 1 or self.channel_step < 1:
            raise TexnetsError("generator scales, noise_channels and channel_step must be positive")
        if self.output_scale <= 0:
            raise TexnetsError("generator output_scale must be positive")
        if not 0 < self.bn_momentum <= 1:
            raise TexnetsError("generator bn_momentum must be in (0, 1]")


@dataclass(frozen=True)
class SolidLayout:
    """What generating the block [origin, origin + size) takes (see :func:`solid_layout`).

    ``noise_windows[level][axis]`` is the [start, stop) range of that level's noise grid to feed,
    finest level first; ``offsets[join][axis]`` is where each upsampled coarse map is cropped, for
    the joins from coarse to fine (0 or 1, the voxel by which the coarse grid overhangs).
    """

    origin: tuple[int, ...]
    size: tuple[int, ...]
    noise_windows: tuple[tuple[tuple[int, int], ...], ...]
    offsets: tuple[tuple[int, ...], ...]

    def noise_shapes(self, batch: int, channels: int) -> list[tuple[int, ...]]:
        return [(batch, channels, *(b - a for a, b in window)) for window in self.noise_windows]


def solid_layout(scales: int, origin: Sequence[int], size: Sequence[int]) -> SolidLayout:
    """Noise windows and crop offsets for the block [origin, origin + size) of a ``scales``-level
    :class:`SolidTextureNet`, any origin (negative too) and any positive size, in any dimensions.

    Backwards from the output: a join block (two unpadded 3×3×3 convs) needs 2 more voxels per side
    than it outputs; a noise branch needs 2 more than that; the coarser level must cover the join
    input under nearest upsampling (floor division by 2); the coarsest level is a noise branch only.
    """
    origin = tuple(int(o) for o in origin)
    size = tuple(int(s) for s in size)
    if len(origin) != len(size) or any(s < 1 for s in size):
        raise TexnetsError(f"a block needs a positive size on every axis and an origin per axis "
                           f"(size {list(size)}, origin {list(origin)})")
    needed = [(o, o + s) for o, s in zip(origin, size)]       # this level's join (or coarsest block) output
    windows, offsets = [], []
    for level in range(scales):
        if level == scales - 1:
            windows.append(tuple((a - 2, b + 2) for a, b in needed))
            break
        join_input = [(a - 2, b + 2) for a, b in needed]
        windows.append(tuple((a - 2, b + 2) for a, b in join_input))
        coarser = [(a // 2, (b - 1) // 2 + 1) for a, b in join_input]
        offsets.append(tuple(a - 2 * ca for (a, _), (ca, _) in zip(join_input, coarser)))
        needed = coarser
    # Joins run coarse to fine: offsets[0] is the join into level K-2.
    return SolidLayout(origin, size, tuple(windows), tuple(reversed(offsets)))


class ValidConvBlock(nn.Sequential):
    """conv 3×3×3, conv 3×3×3, conv 1×1×1, unpadded; each followed by BatchNorm and a LeakyReLU."""

    def __init__(self, in_channels: int, out_channels: int, config: SolidTextureNetConfig):
        layers: list[nn.Module] = []
        for kernel, cin in ((3, in_channels), (3, out_channels), (1, out_channels)):
            layers += [nn.Conv3d(cin, out_channels, kernel), nn.BatchNorm3d(out_channels, momentum=config.bn_momentum),
                       nn.LeakyReLU(config.leaky_slope)]
        super().__init__(*layers)


class UpsampleNorm3d(nn.Module):
    """Nearest ×2 upsampling, then BatchNorm (the coarse branch's side of a join)."""

    def __init__(self, channels: int, momentum: float):
        super().__init__()
        self.norm = nn.BatchNorm3d(channels, momentum=momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"))


class SolidTextureNet(Generator):
    """``net(noise, offsets) -> volume``: K noise tensors (finest first) and the crop offsets of
    :func:`solid_layout`, to an (N, 3, D, H, W) volume. :meth:`layout` gives both for any block."""

    model_type = "solid_texture_net"
    config_class = SolidTextureNetConfig
    __jit_unused_properties__ = ["noise_spec"]

    def __init__(self, config: SolidTextureNetConfig | None = None, **overrides):
        super().__init__()
        self.config = config = self.resolve_config(config, overrides)
        self.scales = config.scales
        step, k = config.channel_step, config.scales
        # Index 0 is the coarsest level throughout: the forward pass runs coarse to fine.
        self.coarsest = ValidConvBlock(config.noise_channels, step, config)
        self.upsamples = nn.ModuleList([UpsampleNorm3d(step * j, config.bn_momentum) for j in range(1, k)])
        self.noise_blocks = nn.ModuleList([ValidConvBlock(config.noise_channels, step, config) for _ in range(1, k)])
        self.join_blocks = nn.ModuleList([ValidConvBlock(step * (j + 1), step * (j + 1), config) for j in range(1, k)])
        self.to_rgb = nn.Conv3d(step * k, 3, kernel_size=1)
        self.output_gain = 1.0 / config.output_scale

    # -- what callers need to know -----------------------------------------------------------------
    @property
    def noise_spec(self) -> NoiseSpec:
        return NoiseSpec(self.config.scales, self.config.noise_channels)

    def layout(self, origin: Sequence[int], size: Sequence[int]) -> SolidLayout:
        """Noise windows and crop offsets that generate the block [origin, origin + size)."""
        if len(size) != 3 or len(origin) != 3:
            raise TexnetsError(f"a solid block needs 3 sizes and 3 origin coordinates (z y x), "
                               f"got size {list(size)} and origin {list(origin)}")
        return solid_layout(self.config.scales, origin, size)

    # -- the network -------------------------------------------------------------------------------
    def forward(self, noise: List[torch.Tensor], offsets: List[List[int]]) -> torch.Tensor:
        if len(noise) != self.scales or len(offsets) != self.scales - 1:
            raise ValueError(f"expected {self.scales} noise levels and {self.scales - 1} offsets, "
                             f"got {len(noise)} and {len(offsets)}")
        x = self.coarsest(noise[self.scales - 1])
        for i, (upsample, noise_block, join) in enumerate(zip(self.upsamples, self.noise_blocks, self.join_blocks)):
            fine = noise_block(noise[self.scales - 2 - i])
            d, h, w = fine.shape[2], fine.shape[3], fine.shape[4]
            oz, oy, ox = offsets[i][0], offsets[i][1], offsets[i][2]
            coarse = upsample(x)[:, :, oz:oz + d, oy:oy + h, ox:ox + w]
            x = join(torch.cat([coarse, fine], dim=1))
        return self.to_rgb(x) * self.output_gain + 0.5


__all__ = ["AXES", "SolidLayout", "SolidTextureNet", "SolidTextureNetConfig", "solid_layout"]
