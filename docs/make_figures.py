#!/usr/bin/env python
"""Regenerate the README figures under docs/ from scikit-image's built-in images only (never from
../shared, whose images must not be committed, not even as one panel).

    python docs/make_figures.py
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from texnets import optim  # noqa: E402
from texnets.images import labelled_grid, load_image, save_image  # noqa: E402
from texnets.vgg import VGGEncoder  # noqa: E402

DOCS = Path(__file__).resolve().parent
SIZE = 128


def texture_figure() -> None:
    panels, labels = [], []
    for name in ("brick", "immunohistochemistry"):
        exemplar = load_image(f"builtin:{name}", SIZE)
        result = optim.synthesize_texture(exemplar, (SIZE, SIZE), steps=300, encoder={"pooling": "avg"},
                                          progress=name)
        panels += [exemplar, result.image]
        labels += [f"exemplar: {name[:10]}", "Gatys'15 synthesis"]
    save_image(labelled_grid(panels, labels), DOCS / "texture_synthesis.png")


def inversion_figure() -> None:
    target = load_image("builtin:astronaut", SIZE)
    layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_1"]
    encoder = VGGEncoder(layers)
    panels, labels = [target], ["target"]
    for layer in layers:
        result = optim.invert_features(target, [layer], steps=300, encoder=encoder, progress=layer)
        panels.append(result.image)
        labels.append(f"inverted {layer}")
    save_image(labelled_grid(panels, labels), DOCS / "feature_inversion.png")


if __name__ == "__main__":
    texture_figure()
    inversion_figure()
