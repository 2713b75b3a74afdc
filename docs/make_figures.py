#!/usr/bin/env python
"""Regenerate the README figures under docs/ from scikit-image's built-in images only (never from
../shared, whose images must not be committed, not even as one panel).

    python docs/make_figures.py                       # the optimisation figures
    python docs/make_figures.py transfer REF ALT      # transfer-network figure from two exported networks
    python docs/make_figures.py arbitrary ADAIN WCT   # AdaIN and WCT checkpoints with built-in styles

``transfer`` takes two ``synthesize.py --export`` folders (or checkpoints): the reference Starry Night
network and a variant, each applied to built-in photos (see README, "Style transfer networks").
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


def _network(path: str):
    from texnets.checkpoints import load_generator
    from texnets.export import load_exported_weights
    return load_exported_weights(path) if Path(path).is_dir() else load_generator(path).generator


def transfer_figure(reference: str, variant: str,
                    labels=("Starry Night, 3000 steps", "style_weight 1.5, 1500 steps")) -> None:
    import torch
    networks = [_network(reference), _network(variant)]
    panels, captions = [], []
    for name in ("astronaut", "chelsea", "coffee"):
        photo = load_image(f"builtin:{name}", 224)
        with torch.no_grad():
            panels += [photo, *[net(photo).clamp(0, 1) for net in networks]]
        captions += [f"built-in: {name}", *labels]
    save_image(labelled_grid(panels, captions, columns=3, cell=224), DOCS / "transfer_starry.jpg", quality=88)


def arbitrary_figure(adain: str, wct: str) -> None:
    """Built-in photos with built-in styles neither network trained on: AdaIN, AdaIN at α 0.5, WCT."""
    import torch
    from texnets.arbitrary_inference import StyledNetwork
    networks = [_network(adain).eval(), _network(wct).eval()]
    panels, captions = [], []
    for photo_name, style_name in (("astronaut", "immunohistochemistry"), ("chelsea", "hubble"),
                                   ("coffee", "immunohistochemistry")):
        photo, style = load_image(f"builtin:{photo_name}", 192), load_image(f"builtin:{style_name}", 256)
        runs = [StyledNetwork(networks[0], [style]), StyledNetwork(networks[0], [style], alpha=0.5),
                StyledNetwork(networks[1], [style])]
        with torch.no_grad():
            panels += [photo, style, *[run(photo).clamp(0, 1) for run in runs]]
        captions += [f"photo: {photo_name}", f"style: {style_name[:12]}", "AdaIN", "AdaIN, alpha 0.5", "WCT"]
    save_image(labelled_grid(panels, captions, columns=5, cell=160), DOCS / "arbitrary_styles.jpg", quality=85)


if __name__ == "__main__":
    if sys.argv[1:2] == ["transfer"]:
        transfer_figure(*sys.argv[2:4])
    elif sys.argv[1:2] == ["arbitrary"]:
        arbitrary_figure(*sys.argv[2:4])
    else:
        texture_figure()
        inversion_figure()
