"""The model types the studio offers, as one table: a new model type is one entry in ``MODEL_KINDS``.

An entry says which tab runs the type, how the run picker labels it, which optional controls apply to it (the
page shows only those that apply to the chosen run), and, for the Stylise tab, how a loaded generator becomes an
image-to-image network.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from texnets.arbitrary_inference import DEFAULT_STYLE_SIZE, StyledNetwork
from texnets.checkpoints import LoadedGenerator
from texnets.errors import TexnetsError
from texnets.images import resize
from texnets.inference import bake_style
from texnets.studio.catalog import Run

STYLIZE, TEXTURE, SOLID, SUPER_RESOLVE = "stylize", "texture", "solid", "super-resolve"
# Optional controls a kind may use; the page hides the ones the chosen run does not.
STYLE_IMAGE, ALPHA, PRESERVE_COLOR, MAX_SIZE, TILE = "style image", "alpha", "preserve color", "max size", "tile"
STYLE_MIX = "style mix"   # a multi-style network's style and blend (shown only for a run that knows several)


def built_in_style(loaded: LoadedGenerator, style: torch.Tensor | None, alpha: float,
                   style_weights: torch.Tensor | None = None) -> torch.nn.Module:
    """A Johnson network: its style was trained in; a multi-style network's ``style_weights`` (default: its first
    style) are baked into a plain one, as ``synthesize.py --mix`` does."""
    return bake_style(loaded, 0 if style_weights is None else style_weights)[0]


def any_style(loaded: LoadedGenerator, style: torch.Tensor | None, alpha: float,
              style_weights: torch.Tensor | None = None) -> torch.nn.Module:
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
    # Stylise only: (loaded, style image, alpha, a multi-style network's weights) -> an image-to-image network
    network: Callable[[LoadedGenerator, torch.Tensor | None, float, torch.Tensor | None], torch.nn.Module] | None = None


MODEL_KINDS: dict[str, ModelKind] = {
    "transformer_net": ModelKind(STYLIZE, "transfer network (Johnson et al. 2016)",
                                 frozenset({STYLE_MIX, PRESERVE_COLOR, MAX_SIZE}), built_in_style),
    "adain_net": ModelKind(STYLIZE, "arbitrary style, AdaIN (Huang & Belongie 2017)",
                           frozenset({STYLE_IMAGE, ALPHA, PRESERVE_COLOR, MAX_SIZE}), any_style),
    "wct_net": ModelKind(STYLIZE, "arbitrary style, WCT (Li et al. 2017)",
                         frozenset({STYLE_IMAGE, ALPHA, PRESERVE_COLOR, MAX_SIZE}), any_style),
    "texture_net": ModelKind(TEXTURE, "texture network (Ulyanov et al. 2016)", frozenset({TILE})),
    "solid_texture_net": ModelKind(SOLID, "solid texture (Gutierrez et al. 2020)"),
    "sr_net": ModelKind(SUPER_RESOLVE, "super-resolution (Johnson et al. 2016)"),
}


def model_types(tab: str) -> tuple[str, ...]:
    return tuple(name for name, kind in MODEL_KINDS.items() if kind.tab == tab)


def run_controls(run: Run | None) -> frozenset[str]:
    """The optional controls the page shows for ``run`` (none for an unknown or unusable one): its kind's, less the
    style mix where the network knows one style only."""
    if run is None or run.model_type not in MODEL_KINDS:
        return frozenset()
    controls = MODEL_KINDS[run.model_type].controls
    return controls if len(run.styles) > 1 else controls - {STYLE_MIX}


__all__ = ["ALPHA", "MAX_SIZE", "MODEL_KINDS", "ModelKind", "PRESERVE_COLOR", "SOLID", "STYLE_IMAGE", "STYLE_MIX",
           "STYLIZE", "SUPER_RESOLVE", "TEXTURE", "TILE", "any_style", "built_in_style", "model_types", "run_controls"]
