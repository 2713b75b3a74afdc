#!/usr/bin/env python
"""x4 super-resolution side by side (Johnson et al. 2016, section 4.2; issue 17), written to BENCHMARKS.md, and the
README's figure.

    OMP_NUM_THREADS=2 python -m bench.bench_sr --perceptual checkpoints/sr_cpu/last.ckpt \\
        --pixel checkpoints/sr_cpu_pixel/last.ckpt [--size 192] [--dip-steps 500]

Runs ``evaluate.py sr --held-aside`` as a user would: the photos the networks' run held aside (never trained on),
shorter side resized to --size and centre-cropped, degraded by blur + bicubic x4, then enlarged by bicubic
interpolation, the per-pixel-loss network, the perceptual network and Deep Image Prior (configs/dip_super_resolution.yaml,
--dip-steps per photo). The networks' outputs are histogram-matched to their inputs, the paper's post-processing, and
their raw outputs are scored too (evaluate.py sr --unmatched). Targets: the perceptual network beats bicubic on the
relu2_2 distance on every photo, and is at least 1000x faster than DIP.

The figure (docs/sr_x4.jpg) is the same comparison on two of scikit-image's built-in photos, without DIP.
"""
from __future__ import annotations

import argparse
import itertools
import json
import shutil
from pathlib import Path

import torch
from PIL import Image

from bench._report import command_line, machine, publish, run_front_door, today
from texnets.checkpoints import METADATA_KEY, load_generator, read_checkpoint, save_atomically
from texnets.degradation import low_resolution
from texnets.tasks.base import recalibrate_batch_norm
from texnets.tasks.transfer import ContentCrops

REPO = Path(__file__).resolve().parents[1]
MODULE = "bench.bench_sr"
OUT = REPO / "bench" / "out" / "sr"
FIGURE = REPO / "docs" / "sr_x4.jpg"


def training_facts(checkpoint: str) -> str:
    report = Path(checkpoint).parent / "report.json"
    if not report.is_file():
        return f"`{checkpoint}`"
    data = json.loads(report.read_text())
    return f"`{checkpoint}` ({data.get('final_step')} steps in {(data.get('seconds') or 0) / 60:.0f} min)"


def recalibrated(checkpoint: str, batches: int) -> str:
    """A copy of ``checkpoint`` (``recalibrated.ckpt`` beside it) whose BatchNorm statistics are the exact average
    over ``batches`` fresh batches of its run's training crops, as ``bn_recalibration_batches`` makes them in
    training (SuperResolutionTask.recalibrate); the weights are untouched. For runs trained before that option."""
    state = read_checkpoint(checkpoint)
    loaded = load_generator(checkpoint)
    training, hparams = loaded.metadata["training"], state.get("hyper_parameters", {})
    crops = ContentCrops(training["content"], training["size"], training["crop_scale"], seed=12345,
                         exclude=training["val_images"], rank=0, world_size=1)
    stream = iter(crops)
    sigma = float(hparams.get("blur_sigma", 1.0))
    inputs = [low_resolution(torch.stack(list(itertools.islice(stream, training["batch_size"]))), loaded.generator.factor,
                             sigma) for _ in range(batches)]
    recalibrate_batch_norm(loaded.generator.train(), inputs)
    prefix = loaded.metadata.get("generator_prefix", "generator.")
    for key, value in loaded.generator.state_dict().items():
        state["state_dict"][prefix + key] = value
    state[METADATA_KEY]["training"]["bn_recalibration"] = f"{batches} batches of training crops, after training"
    target = Path(checkpoint).with_name("recalibrated.ckpt")
    save_atomically(state, target)
    return str(target)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--perceptual", required=True, help="a checkpoint of configs/sr_cpu.yaml (loss: feature)")
    parser.add_argument("--pixel", required=True, help="the same recipe with --model.loss pixel")
    parser.add_argument("--size", type=int, default=192, help="high-resolution side of the held-aside photos")
    parser.add_argument("--dip-steps", type=int, default=500, help="Deep Image Prior's steps per photo")
    parser.add_argument("--recalibrate", type=int, default=0, metavar="N",
                        help="first recompute the checkpoints' BatchNorm statistics over N batches of training crops "
                             "(for runs trained without bn_recalibration_batches)")
    parser.add_argument("--note", help="a closing paragraph for the section")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    if args.recalibrate:
        args.perceptual, args.pixel = (recalibrated(path, args.recalibrate) for path in (args.perceptual, args.pixel))
    table_path = OUT / "held_aside.json"
    run_front_door(["evaluate.py", "sr", "--held-aside", "--checkpoint", args.perceptual, args.pixel,
                    "--methods", "bicubic", "dip", "--dip-steps", str(args.dip_steps), "--size", str(args.size),
                    "--unmatched", "--output", str(table_path)])
    report = json.loads(table_path.read_text())
    markdown = table_path.with_suffix(".md").read_text()
    table = markdown.split("\n\n")[2]
    per_photo = markdown.split("Per photo:\n\n")[1].split("\n\n")[0]
    methods = {method["label"]: method for method in report["methods"]}
    bicubic, perceptual = methods["bicubic"], methods["perceptual net"]
    wins = sum(p["feature_distance"] < b["feature_distance"] for p, b in zip(perceptual["scores"], bicubic["scores"]))
    seconds = {label: sum(m["seconds"]) / len(m["seconds"]) for label, m in methods.items()}
    speedup = seconds["Deep Image Prior"] / seconds["perceptual net"]

    figure = OUT / "figure.png"
    run_front_door(["evaluate.py", "sr", "--reference", "builtin:astronaut", "builtin:coffee", "--checkpoint",
                    args.perceptual, args.pixel, "--size", "256", "--output", str(figure)])
    FIGURE.parent.mkdir(exist_ok=True)
    with Image.open(figure) as image:
        image.convert("RGB").save(FIGURE, quality=85)
    shutil.rmtree(OUT / "figure_images", ignore_errors=True)

    photos = ", ".join(photo["name"] for photo in report["photos"])
    lines = [
        "## x4 super-resolution on the CPU: bicubic, per-pixel and perceptual networks, Deep Image Prior",
        "",
        f"Command: `{command_line(MODULE)}`; machine: {machine()}; date: {today()}.",
        "",
        f"Networks: perceptual {training_facts(args.perceptual)}, per-pixel {training_facts(args.pixel)}, both "
        f"`configs/sr_johnson2016.yaml` + `configs/sr_cpu.yaml` (128² patches, batch 4) on `../shared/data/content`. "
        f"`evaluate.py sr --held-aside` on the {len(report['photos'])} photos that run held aside ({photos}), shorter "
        f"side {args.size} px, centre crop, degraded as in training (Gaussian blur σ {report['blur_sigma']:g}, bicubic "
        f"x{report['factor']}). Deep Image Prior: {args.dip_steps} steps per photo with `configs/dip_super_resolution.yaml`"
        f"'s settings (its notebook runs 2000), keeping the last output, fitting the same degradation (blur + "
        f"bicubic) instead of its default area downsampling. relu2_2 distance: the mean squared difference of "
        f"VGG19 relu2_2 features, the perceptual network's training loss. The networks' rows are post-processed as "
        f"the paper's section 4.2 does (each output channel histogram-matched to the input's, "
        f"`texnets.color.match_histograms`), which is what `synthesize.py` writes; the rows marked *unmatched* are "
        f"the networks' raw outputs. Seconds per photo are the method alone; the networks' are forward passes (and "
        f"the matching) after a warm-up.",
        "",
        table,
        "",
        per_photo,
        "",
        f"**Targets.** The perceptual network's relu2_2 distance is below bicubic's on {wins} of "
        f"{len(perceptual['scores'])} photos (target: all: {'met' if wins == len(perceptual['scores']) else 'missed'}); "
        f"it is {speedup:,.0f}x faster than Deep Image Prior (target ≥ 1000x: {'met' if speedup >= 1000 else 'missed'}).",
        "",
        f"The README's figure, `{FIGURE.relative_to(REPO)}`, is the same comparison on scikit-image's astronaut and "
        f"coffee photos.",
    ]
    if report.get("lpips") is None:
        lines += ["", "LPIPS is missing from the table: torchvision's AlexNet weights are not cached on this machine "
                      "(no download here)."]
    publish("bench_sr", lines, args.note, after="bench_arbitrary_speed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
