"""The model types the studio offers, as one table: a new model type is one entry in ``MODEL_KINDS``.

An entry says which tab runs the type, how the run picker labels it, which optional controls apply to it (the
page shows only those), and, for the Stylise tab, how a loaded generator becomes an image-to-image network.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from texnets.arbitrary_inference import DEFAULT_STYLE_SIZE, StyledNetwork
from texnets.checkpoints import LoadedGenerator
from texnets.errors import TexnetsError
from texnets.images import resize

STYLIZE, TEXTURE, SOLID = "stylize", "texture", "solid"
# Optional controls a kind may use; the page hides the ones the chosen run does not.
STYLE_IMAGE, ALPHA, PRESERVE_COLOR, MAX_SIZE, TILE = "style image", "alpha", "preserve color", "max size", "tile"


def built_in_style(loaded: LoadedGenerator, style: torch.Tensor | None, alpha: float) -> torch.nn.Module:
    """A Johnson network: its style was trained in (a multi-style network's first style, baked into a plain one)."""
    generator = loaded.generator
    return generator.with_style(0) if generator.styles > 1 else generator


def any_style(loaded: LoadedGenerator, style: torch.Tensor | None, alpha: float) -> torch.nn.Module:
    """An arbitrary-style network bound to the style image the page was given, its shorter side brought down to
    synthesize.py's default style size (a full-resolution painting would cost seconds per request)."""
    if style is None:
        raise TexnetsError("this network stylises with any style image: add one under 'Style image'")
    if min(style.shape[-2:]) > DEFAULT_STYLE_SIZE:
        style = resize(style, DEFAULT_STYLE_SIZE)
    return StyledNetwork(loaded.generator, [style], alpha=alpha)


@dataclass(frozen=True)
class ModelKind:
    tab: str
    label: str
    controls: frozenset[str] = frozenset()
    network: Callable[[LoadedGenerator, torch.Tensor | None, float], torch.nn.Module] | None = None  # Stylise only


MODEL_KINDS: dict[str, ModelKind] = {
    "transformer_net": ModelKind(STYLIZE, "transfer network (Johnson et al. 2016)",
                                 frozenset({PRESERVE_COLOR, MAX_SIZE}), built_in_style),
    "adain_net": ModelKind(STYLIZE, "arbitrary style, AdaIN (Huang & Belongie 2017)",
                           frozenset({STYLE_IMAGE, ALPHA, PRESERVE_COLOR, MAX_SIZE}), any_style),
    "wct_net": ModelKind(STYLIZE, "arbitrary style, WCT (Li et al. 2017)",
                         frozenset({STYLE_IMAGE, ALPHA, PRESERVE_COLOR, MAX_SIZE}), any_style),
    "texture_net": ModelKind(TEXTURE, "texture network (Ulyanov et al. 2016)", frozenset({TILE})),
    "solid_texture_net": ModelKind(SOLID, "solid texture (Gutierrez et al. 2020)"),
}


def model_types(tab: str) -> tuple[str, ...]:
    return tuple(name for name, kind in MODEL_KINDS.items() if kind.tab == tab)


__all__ = ["ALPHA", "MAX_SIZE", "MODEL_KINDS", "ModelKind", "PRESERVE_COLOR", "SOLID", "STYLE_IMAGE", "STYLIZE",
           "TEXTURE", "TILE", "any_style", "built_in_style", "model_types"]
