#!/usr/bin/env python
"""Regenerate the README figures under docs/ from scikit-image's built-in images only (never from
../shared, whose images must not be committed, not even as one panel).

    python docs/make_figures.py                       # the optimisation figures
    python docs/make_figures.py transfer REF ALT      # transfer-network figure from two exported networks
    python docs/make_figures.py arbitrary ADAIN WCT   # AdaIN and WCT checkpoints with built-in styles
    python docs/make_figures.py studies [DIR]         # docs/studies.md from python -m bench.bench_studies' runs
    python docs/make_figures.py temporal PLAIN STEADY # flicker: frame by frame vs temporal term + blend

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


def temporal_figure(plain: str, steady: str, strength: float = 0.5) -> None:
    """Three consecutive frames of a pan across a built-in photo, and where each stylisation changed between the
    last two along the known motion (|frame 3 - warped frame 2|, x4, black where frame 2 did not see): frame by
    frame with a plain network, and with the temporal-term network plus --temporal blend."""
    import torch
    from texnets.clips import make_clip
    from texnets.flow import DISFlow
    from texnets.inference import Stylizer
    from texnets.temporal import TemporalBlender, warp
    clip = make_clip(load_image("builtin:astronaut")[0], frames=3, size=(144, 144), motion="pan", speed=4.0,
                     noise=0.01)
    rows = {"input": clip.frames}
    rows["frame by frame"] = Stylizer(_network(plain), block=None)(clip.frames)
    rows["temporal term + blend"] = TemporalBlender(DISFlow(), strength)(
        clip.frames, Stylizer(_network(steady), block=None)(clip.frames))
    panels, captions = [], []
    for label, frames in rows.items():
        change = (frames[2:] - warp(frames[1:2], clip.backward[1:])[0]).abs().mean(1, keepdim=True) * clip.visible[1:]
        panels += [*frames.split(1), (4 * change).clamp(0, 1).expand(-1, 3, -1, -1)]
        captions += [f"{label}: frame {i + 1}" for i in range(3)] + [f"{label}: change 2->3 (x4)"]
    with torch.no_grad():
        save_image(labelled_grid(panels, captions, columns=4, cell=144), DOCS / "temporal_strip.jpg", quality=85)


def _finding(report: dict) -> str:
    """What the run shows in numbers, said plainly, including where it contradicts the study's expectation."""
    runs = [run for run in report["runs"] if "final_loss" in run]
    name = report["study"]
    if name == "inversion-depth":
        psnr = [run["psnr_db"] for run in runs]
        held = all(a > b for a, b in zip(psnr, psnr[1:]))
        return (f"PSNR {' > '.join(f'{v:.1f}' for v in psnr)} dB from the 1st to the 10th convolution: fidelity "
                f"{'falls with depth, as expected' if held else 'does not fall monotonically with depth here: a finding'}.")
    if name in ("inversion-conv-vs-relu", "inversion-relu-vs-pool"):
        pairs = [(runs[i], runs[i + 1]) for i in range(0, len(runs) - 1, 2)]
        better = sum(a["psnr_db"] > b["psnr_db"] for a, b in pairs)
        first = "convolution" if name.endswith("relu") else "ReLU"
        return (f"The {first} inversion has the higher PSNR in {better} of {len(pairs)} pairs "
                + ", ".join(f"({a['label']} {a['psnr_db']:.1f} vs {b['label']} {b['psnr_db']:.1f} dB)" for a, b in pairs)
                + ("." if better == len(pairs) else ": not the expected ordering everywhere, a finding."))
    if name == "optimizers":
        ordered = sorted(runs, key=lambda run: run["final_loss"])
        return ("Final loss after the same number of steps: "
                + ", ".join(f"{run['label']} {run['final_loss']:.3g}" for run in ordered) + ".")
    if name == "moments-mmd":
        stopped = [run for run in runs if run.get("threshold_step")]
        return (f"{len(stopped)} of {len(runs)} runs fell under 1% of their first loss within {report['steps']} Adam "
                f"steps; the table gives each run's final loss and the step at which it stopped.")
    if name == "networks":
        skipped = [run for run in report["runs"] if "skipped" in run]
        return ("VGG16's weights are not available offline: only the VGG19 half ran here."
                if skipped else "Both networks ran.")
    diverged = [run["label"] for run in runs if run.get("stopped_early")]
    return ("Final losses (each against its own layers, so compare the images rather than the numbers across runs): "
            + ", ".join(f"{run['label']} {run['final_loss']:.3g}" for run in runs) + "."
            + (f" Diverged, keeping its last image with a finite loss: {', '.join(diverged)}." if diverged else ""))


def studies_page(source: str = "bench/out/studies") -> None:
    """docs/studies.md and one JPEG per study (each under 300 KB), from the runs of bench.bench_studies, whose
    inputs are built-in images only."""
    import json
    from PIL import Image
    from texnets.studies import STUDIES, run_table
    root = Path(source)
    figures = DOCS / "studies"
    figures.mkdir(exist_ok=True)
    lines = ["# The studies, by name", "",
             "Every figure below was made by `python -m bench.bench_studies` (each study at its defaults, on its "
             "built-in input) and `python docs/make_figures.py studies`. Re-run one with "
             "`python optimize.py study NAME --output DIR`; its wall time is in BENCHMARKS.md.", ""]
    for name, study in STUDIES.items():
        report = json.loads((root / name / "study.json").read_text())
        grid = Image.open(root / name / "grid.png").convert("RGB")
        target = figures / f"{name}.jpg"
        quality = 85
        while True:
            grid.save(target, quality=quality)
            if target.stat().st_size < 290_000 or quality <= 40:
                break
            quality -= 10
        lines += [f"## `{name}`", "", f"*Reproduces:* {study.source}.", "", study.shows, "",
                  f"![{name}](studies/{name}.jpg)", "", f"**Here:** {_finding(report)}", ""]
        if study.table:
            table = run_table(report, *study.table)
            lines += ["| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
            lines += ["| " + " | ".join(row) + " |" for row in table[1:]] + [""]
    (DOCS / "studies.md").write_text("\n".join(lines))


if __name__ == "__main__":
    if sys.argv[1:2] == ["transfer"]:
        transfer_figure(*sys.argv[2:4])
    elif sys.argv[1:2] == ["arbitrary"]:
        arbitrary_figure(*sys.argv[2:4])
    elif sys.argv[1:2] == ["temporal"]:
        temporal_figure(*sys.argv[2:4])
    elif sys.argv[1:2] == ["studies"]:
        studies_page(*sys.argv[2:3])
    else:
        texture_figure()
        inversion_figure()
