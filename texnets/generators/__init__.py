"""Generators: plain ``nn.Module``s that map noise (or images) to images (or volumes). They know nothing about
losses, Lightning or files.

``GENERATORS`` maps the model type recorded in a checkpoint to the class that rebuilds it with
``cls.from_config(dict)``; ``config_dict()`` goes the other way (both from ``texnets.generators.base``).
A new generator subclasses ``Generator`` and registers itself here.
"""
from __future__ import annotations

from texnets.errors import TexnetsError
from texnets.generators.adain_net import AdaINNet, AdaINNetConfig
from texnets.generators.base import Generator
from texnets.generators.skip_net import SkipNet, SkipNetConfig
from texnets.generators.solid_net import SolidTextureNet, SolidTextureNetConfig
from texnets.generators.sr_net import SuperResolutionNet, SuperResolutionNetConfig
from texnets.generators.texture_net import TextureNet, TextureNetConfig
from texnets.generators.transformer_net import TransformerNet, TransformerNetConfig
from texnets.generators.wct_net import WCTNet, WCTNetConfig

GENERATORS: dict[str, type[Generator]] = {
    TextureNet.model_type: TextureNet,
    TransformerNet.model_type: TransformerNet,
    SolidTextureNet.model_type: SolidTextureNet,
    SkipNet.model_type: SkipNet,
    AdaINNet.model_type: AdaINNet,
    WCTNet.model_type: WCTNet,
    SuperResolutionNet.model_type: SuperResolutionNet,
}


def build_generator(model_type: str, config: dict) -> Generator:
    """Rebuild a generator from its model type and hyper-parameters (as stored in a checkpoint)."""
    try:
        cls = GENERATORS[model_type]
    except KeyError:
        raise TexnetsError(f"unknown generator type {model_type!r}; this texnets knows "
                           f"{', '.join(sorted(GENERATORS))}") from None
    return cls.from_config(dict(config))


__all__ = ["AdaINNet", "AdaINNetConfig", "GENERATORS", "Generator", "SkipNet", "SkipNetConfig", "SolidTextureNet",
           "SolidTextureNetConfig", "SuperResolutionNet", "SuperResolutionNetConfig", "TextureNet", "TextureNetConfig",
           "TransformerNet", "TransformerNetConfig", "WCTNet", "WCTNetConfig", "build_generator"]
