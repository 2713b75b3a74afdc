#!/usr/bin/env python
"""One network for four styles against four single-style networks (Dumoulin et al. 2017; issue 17), written to
BENCHMARKS.md, and the README's mixing strip.

    OMP_NUM_THREADS=2 python -m bench.bench_multistyle [--steps 1000] [--reuse]

Trains, with configs/multistyle_dumoulin2017.yaml + multistyle_cpu.yaml and train.py as a user runs it, one network
per painting for --steps steps each, and one network on the four paintings twice: for the same --steps (so it sees
each style about a quarter as often as that style's own network) and for four times --steps (the four single-style
networks' total: each style then gets as many training images as its own network), into bench/out/multistyle/
(--reuse keeps finished runs and resumes shorter ones). Then, on
the photos every CPU config holds aside (256² centre crops), each style's Gram loss (the training loss: relu1_2 to
relu4_3, Gram / CHW, against the painting at the config's style size) and content loss (relu3_3) for both.
Target: every style of the multi-style network within 1.5x of its single-style network's style loss.

The strip (docs/multistyle_mix.jpg) stylises scikit-image's built-in coffee photo with convex mixes of two of the
multi-style network's styles; it shows network outputs only, never a painting.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from bench._report import command_line, machine, publish, run_front_door, today
from texnets.checkpoints import load_generator
from texnets.cli import markdown_table
from texnets.images import labelled_grid, load_image, save_image
from texnets.losses import ContentLoss, make_style_loss
from texnets.vgg import VGGEncoder

REPO = Path(__file__).resolve().parents[1]
MODULE = "bench.bench_multistyle"
SHARED = REPO.parent / "shared" / "data"
OUT = REPO / "bench" / "out" / "multistyle"
FIGURE = REPO / "docs" / "multistyle_mix.jpg"
PAINTINGS = ["starry_night.jpg", "composition_vii.jpg", "udnie.jpg", "shipwreck_minotaur.jpg"]
PHOTOS = ["amber_door.jpg", "chicago.jpg", "cornell.jpg", "flower_garden.jpg"]   # held aside by every CPU config
STYLE_LAYERS = ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]   # multistyle_dumoulin2017.yaml's
CONTENT_LAYERS = ["relu3_3"]


def trained_steps(checkpoint: Path) -> int:
    return int(torch.load(checkpoint, map_location="cpu", weights_only=True)["global_step"]) if checkpoint.is_file() else 0


def train(name: str, styles: list[str], steps: int, reuse: bool) -> Path:
    """Train run ``name`` for ``steps``; with ``reuse``, keep a run that has them, and resume one that has fewer (the
    learning rate is constant, so that is the same training as one run, but for the crop order restarting)."""
    last = OUT / name / "last.ckpt"
    done = trained_steps(last) if reuse else 0
    if done == steps:
        return last
    listed = "[" + ", ".join(str(SHARED / "styles" / style) for style in styles) + "]"
    start = ["--ckpt_path", str(last)] if 0 < done < steps else ["--overwrite", "true"]
    run_front_door(["train.py", "--config", "configs/multistyle_dumoulin2017.yaml", "--config",
                    "configs/multistyle_cpu.yaml", "--model.style", listed, "--data.folder", str(SHARED / "content"),
                    "--trainer.max_steps", str(steps), "--checkpoint_every", str(steps),
                    "--trainer.enable_progress_bar", "false", "--output_dir", str(OUT), "--run_name", name, *start])
    return last


def centre_crop(spec: str, size: int) -> torch.Tensor:
    image = load_image(spec, size)
    top, left = (image.shape[-2] - size) // 2, (image.shape[-1] - size) // 2
    return image[..., top:top + size, left:left + size]


@torch.no_grad()
def losses(network: torch.nn.Module, style_index: int | None, painting: str, photos: torch.Tensor,
           encoder: VGGEncoder, style_size: int) -> tuple[float, float]:
    """(style loss, content loss) of ``network`` (in style ``style_index`` when multi-style) on ``photos``."""
    styled = network if style_index is None else network.with_style(style_index)
    outputs = styled.eval()(photos).clamp(0, 1)
    style_image = load_image(str(SHARED / "styles" / painting), style_size)
    gram = make_style_loss("gram", STYLE_LAYERS, target=encoder(style_image, STYLE_LAYERS), normalize="chw")
    content = ContentLoss(CONTENT_LAYERS, target=encoder(photos, CONTENT_LAYERS))
    features = encoder(outputs, STYLE_LAYERS + CONTENT_LAYERS)
    return float(gram(features)), float(content(features))


def mixing_strip(checkpoint: Path, styles: tuple[int, int] = (0, 1), steps: int = 5) -> None:
    loaded = load_generator(checkpoint)
    photo = centre_crop("builtin:coffee", 256)
    names = [Path(spec).stem.replace("_", " ") for spec in loaded.metadata["training"]["styles"]]
    images, labels = [photo], ["photo (builtin:coffee)"]
    for step in range(steps):
        weight = step / (steps - 1)
        mix = torch.zeros(loaded.generator.styles)
        mix[styles[0]], mix[styles[1]] = 1 - weight, weight
        with torch.no_grad():
            images.append(loaded.generator.with_style(mix).eval()(photo).clamp(0, 1))
        labels.append(f"{1 - weight:.2g} {names[styles[0]]} + {weight:.2g} {names[styles[1]]}")
    save_image(labelled_grid(images, labels, columns=len(images), cell=192), FIGURE, quality=85)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000,
                        help="training steps of each single-style network (the four-style one: this and 4x this)")
    parser.add_argument("--size", type=int, default=256, help="side of the held-aside photos' centre crops")
    parser.add_argument("--reuse", action="store_true",
                        help="keep runs already trained for --steps; resume shorter ones from their last checkpoint")
    parser.add_argument("--note", help="a closing paragraph for the section")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    singles = {painting: train(Path(painting).stem, [painting], args.steps, args.reuse) for painting in PAINTINGS}
    multi = train("four_styles", PAINTINGS, args.steps, args.reuse)
    # The four single-style networks' total: each style gets as many training images as its own network.
    multi_total = train("four_styles_x4", PAINTINGS, 4 * args.steps, args.reuse)

    encoder = VGGEncoder(STYLE_LAYERS + CONTENT_LAYERS).eval()
    photos = torch.cat([centre_crop(str(SHARED / "content" / photo), args.size) for photo in PHOTOS])
    multi_net, total_net = load_generator(multi), load_generator(multi_total)
    style_size = int(torch.load(multi, weights_only=True)["hyper_parameters"]["style_size"])
    rows, ratios, total_ratios = [], [], []
    for index, painting in enumerate(PAINTINGS):
        style_single, content_single = losses(load_generator(singles[painting]).generator, None, painting, photos,
                                              encoder, style_size)
        style_multi, content_multi = losses(multi_net.generator, index, painting, photos, encoder, style_size)
        style_total, content_total = losses(total_net.generator, index, painting, photos, encoder, style_size)
        ratios.append(style_multi / style_single)
        total_ratios.append(style_total / style_single)
        rows.append([painting, f"{style_single:.4g} / {content_single:.4g}",
                     f"{style_total:.4g} / {content_total:.4g}", f"{total_ratios[-1]:.2f}×",
                     f"{style_multi:.4g} / {content_multi:.4g}", f"{ratios[-1]:.2f}×"])
    mixing_strip(multi_total)
    lines = [
        "## Many styles in one network (conditional instance norm) against one network per style, on the CPU",
        "",
        f"Command: `{command_line(MODULE)}`; machine: {machine()}; date: {today()}.",
        "",
        f"Six runs of `configs/multistyle_dumoulin2017.yaml` + `configs/multistyle_cpu.yaml` (width 0.5, 128² crops, "
        f"batch 4, style images at {style_size} px): one network per painting, {args.steps} steps each "
        f"({4 * args.steps} in all), and one network for the four paintings, trained for the four networks' total of "
        f"{4 * args.steps} steps and, apart, for only {args.steps}. Every batch of 4 holds each style once "
        f"(`style_sampling: balanced`), so at {4 * args.steps} steps each style is trained on as many images as its "
        f"own network, and at {args.steps} on a quarter as many. Losses on the {len(PHOTOS)} held-aside photos "
        f"({', '.join(PHOTOS)}), "
        f"{args.size}² centre crops: the style loss is the training loss (Gram / CHW, relu1_2–relu4_3, summed over "
        f"layers), the content loss relu3_3's mean squared difference; ratio = the four-style network's style loss "
        f"over the single-style network's.",
        "",
        markdown_table(["style", f"own net, {args.steps} steps: style / content ↓",
                        f"4-style net, {4 * args.steps} steps: style / content", "ratio",
                        f"4-style net, {args.steps} steps: style / content", "ratio"], rows),
        "",
        f"**Target:** every style within 1.5× of its single-style network's style loss, for the same total steps. "
        f"The four-style network trained for the single-style networks' total of {4 * args.steps} steps: "
        f"{'met' if max(total_ratios) <= 1.5 else 'missed'} (worst {max(total_ratios):.2f}×). Trained for only "
        f"{args.steps} steps, a quarter of the training per style: {'within' if max(ratios) <= 1.5 else 'outside'} "
        f"1.5× (worst {max(ratios):.2f}×). The four-style network holds its {multi_net.generator.styles} styles in "
        f"{sum(p.numel() for p in multi_net.generator.parameters()):,} parameters, against four times "
        f"{sum(p.numel() for p in load_generator(singles[PAINTINGS[0]]).generator.parameters()):,}.",
        "",
        f"The README's strip, `{FIGURE.relative_to(REPO)}`, mixes styles 0 and 1 of the {4 * args.steps}-step "
        f"four-style network on a built-in photo.",
    ]
    publish("bench_multistyle", lines, args.note, after="bench_arbitrary_speed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
