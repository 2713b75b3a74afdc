"""Running an arbitrary-style network (AdaIN, WCT) on photos, folders and videos, or on noise (WCT's universal
texture synthesis), with α, several styles and their weights, and a mask per style.

``StyledNetwork`` binds a network to its style images once (their statistics are computed one time, on the
device of the first input) and is then an ordinary image-to-image module: ``texnets.inference.Stylizer``
runs it exactly like a Johnson network, with the same precision, tiling, folder and video code.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from texnets.errors import TexnetsError
from texnets.feature_transforms import check_blend
from texnets.generators.arbitrary import ArbitraryStyleNet
from texnets.images import fit_mask, load_image

DEFAULT_STYLE_SIZE = 512  # pytorch-AdaIN test.py --style_size 512 (shorter side)


class StyledNetwork(nn.Module):
    """An arbitrary-style network with its styles: ``forward(photos) -> stylised``.

    Args:
        network: an AdaINNet or WCTNet.
        styles: style images, each (1, 3, H, W) in [0, 1].
        weights: their mix (normalised to sum 1; default equal).
        masks: one (1, 1, H, W) mask per style, at the input's size (or its shape).
        alpha: 0 returns the decoded photo, 1 full style.
        levels: WCT levels to run (default every trained level).
        mask_names: how error messages name the masks (their files).
    """

    def __init__(self, network: ArbitraryStyleNet, styles: Sequence[torch.Tensor], weights: Sequence[float] | None = None,
                 masks: Sequence[torch.Tensor] | None = None, alpha: float = 1.0, levels: Sequence[str] | None = None,
                 mask_names: Sequence[str] | None = None):
        super().__init__()
        if not styles:
            raise TexnetsError("an arbitrary-style network needs at least one --style image")
        self.network, self.alpha = network, float(alpha)
        self.weights = check_blend(len(styles), weights, masks, alpha)
        self.levels = network.check_levels(levels)
        self.style_images, self.masks = list(styles), None if masks is None else list(masks)
        self.mask_names = list(mask_names or [f"mask {index + 1}" for index in range(len(masks or []))])
        self._styles: tuple[torch.device, list] | None = None
        self.frozen = None

    @property
    def size_multiple(self) -> int:
        return self.network.size_multiple

    def receptive_margin(self) -> int:
        return self.network.receptive_margin()

    def styles(self, device: torch.device) -> list:
        if self._styles is None or self._styles[0] != device:
            self._styles = (device, [self.network.style_features(style.to(device), self.levels)
                                     for style in self.style_images])
        return self._styles[1]

    def _masks(self, images: torch.Tensor) -> list[torch.Tensor] | None:
        if self.masks is None:
            return None
        return [fit_mask(mask, images.shape[-2:], name).to(images.device) for mask, name in zip(self.masks, self.mask_names)]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network.stylize(images, self.styles(images.device), self.weights, self._masks(images), self.alpha,
                                    self.levels, frozen=self.frozen)

    @torch.no_grad()
    def freeze_statistics(self, crops: torch.Tensor) -> StyledNetwork:
        """A copy whose photo statistics at every level are pooled over ``crops`` (windows of one large image)
        and then fixed, so tiles share one normalisation, as ``texnets.tiling`` does for instance norms."""
        if self.masks is not None:
            raise TexnetsError("masks work on inputs that fit in one block; raise --block above the input's size")
        frozen = copy.copy(self)
        record: dict = {}
        self.network.stylize(crops, self.styles(crops.device), self.weights, None, self.alpha, self.levels,
                             record=record)
        frozen.frozen = record
        return frozen


def load_styles(specs: Sequence[str], size: int | None = DEFAULT_STYLE_SIZE) -> list[torch.Tensor]:
    """Style images (path, builtin:<name> or URL), shorter side resized to ``size`` (None: as they are)."""
    return [load_image(spec, size, what="style image") for spec in specs]


@torch.no_grad()
def texture_from_noise(style: StyledNetwork, size: Sequence[int], seed: int = 0, sample: int = 0,
                       device="cpu") -> torch.Tensor:
    """Universal texture synthesis (Li et al. 2017, section 4.3): the multi-level transform applied to uniform
    noise instead of a photo. Returns a (1, 3, H, W) float CPU image."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + sample)
    noise = torch.rand(1, 3, *size, generator=generator).to(device)
    return style(noise).float().cpu()


__all__ = ["DEFAULT_STYLE_SIZE", "StyledNetwork", "load_styles", "texture_from_noise"]
