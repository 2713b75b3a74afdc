#!/usr/bin/env python
"""Flicker-free video (issue 21): warping error, style and content loss of Johnson networks trained with and
without the temporal term, each with and without ``--temporal blend``, written to BENCHMARKS.md.

    python -m bench.bench_temporal train [--steps 1000] [--weight 1e6] [--runs ...]   # same seed and steps
    python -m bench.bench_temporal measure [--frames 16] [--strength 0.5]             # the table

train: ``train.py`` with configs/starry.yaml + configs/starry_cpu.yaml at a small size (width 0.25, 128² crops,
style at 192 px, TV rescaled to the crops) on ../shared/data/content, three runs with the same seed and steps:
no temporal term (checkpoints/temporal_off), Wang et al.'s compound term (temporal_on) and the noise-only term
(temporal_noise), both at the weight given.

measure: synthetic clips with known motion (texnets.clips: a pan and a zoom across each held-aside photo,
160x112, 2 px per frame, camera noise 0.01) are stylised by each network, with and without the motion-
compensated blend (DIS flow estimated on the noisy input frames, as a user's clip would have it). The warping
error uses the *known* motion (the clean measure); style loss is the Gram loss of the training objective
(relu1_2..relu4_3, chw-normalised) against the painting, content loss the relu2_2 feature MSE against the
input frame, both averaged over frames. One clip also goes through the front doors (``synthesize.py
--temporal blend`` and ``evaluate.py video``, DIS motion) so the file path is measured too.

Target: temporal term + blend cut the warping error >= 2x below plain frame-by-frame stylisation, with the
style loss no more than 1.2x higher.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from bench._report import command_line, machine, publish, run_front_door, today
from texnets.cli import markdown_table

REPO = Path(__file__).resolve().parents[1]
MODULE = "bench.bench_temporal"
SHARED = REPO.parent / "shared" / "data"
OUT = REPO / "bench" / "out" / "temporal"
STYLE = SHARED / "styles" / "starry_night.jpg"
PHOTOS = ["amber_door.jpg", "chicago.jpg"]  # held aside by starry_cpu.yaml (val_images: 4)
# run name -> (label, the temporal term's mode or None)
RUNS = {"temporal_off": ("no temporal term", None), "temporal_on": ("compound term (Wang et al. 2020)", "compound"),
        "temporal_noise": ("noise-only term", "noise")}
SIZE = (112, 160)
# --temporal none, blend (the current frame's local contrast kept: the default) and the plain linear blend
BLENDS = ("none", "blend", "linear blend")


def train(args) -> None:
    for run in args.runs:
        mode = RUNS[run][1]
        command = ["train.py", "--config", "configs/starry.yaml", "--config", "configs/starry_cpu.yaml",
                   "--model.style", str(STYLE), "--data.folder", str(SHARED / "content"),
                   "--model.generator.width", "0.25", "--model.style_size", "192", "--model.tv_weight", "6.7e3",
                   "--data.size", "128", "--trainer.max_steps", str(args.steps), "--trainer.val_check_interval",
                   str(args.steps), "--checkpoint_every", str(args.steps), "--run_name", run, "--overwrite", "true",
                   "--model.temporal_weight", str(args.weight if mode else 0.0), "--model.temporal.mode",
                   mode or "compound"]
        seconds = run_front_door(command)
        print(f"{run}: {seconds / 60:.1f} min", file=sys.stderr)


def style_and_content(frames: torch.Tensor, stylised: torch.Tensor, criterion_parts) -> tuple[float, float]:
    encoder, style_loss, content_layers = criterion_parts
    with torch.no_grad():
        styles, contents = [], []
        for frame, output in zip(frames.split(4), stylised.split(4)):
            features = encoder(output, [*style_loss.layers, *content_layers])
            targets = encoder(frame, content_layers)
            styles.append(float(style_loss(features)) * len(frame))
            contents.append(sum(float((features[layer] - targets[layer]).square().mean()) for layer in content_layers)
                            * len(frame))
    return sum(styles) / len(frames), sum(contents) / len(frames)


def load_parts(checkpoint: str):
    """The network, and the training objective's encoder, style loss (with the painting's target) and
    content layers, rebuilt from the checkpoint's own hyper-parameters."""
    from texnets.tasks import TransferTask
    task = TransferTask.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True).eval()
    return task.generator, (task.encoder, task.criterion.terms["style"], task.content_layers)


def clips():
    from texnets.clips import make_clip
    from texnets.images import read_image
    for photo in PHOTOS:
        image = read_image(SHARED / "content" / photo)
        for motion in ("pan", "zoom"):
            clip = make_clip(image, frames=ARGS.frames, size=SIZE, motion=motion, speed=2.0, noise=0.01, seed=0)
            yield f"{Path(photo).stem} {motion}", clip


def measure(args) -> None:
    from texnets.flow import DISFlow
    from texnets.inference import Stylizer
    from texnets.temporal import TemporalBlender, warping_error
    OUT.mkdir(parents=True, exist_ok=True)
    checkpoints = {run: REPO / "checkpoints" / run / "last.ckpt" for run in RUNS
                   if (REPO / "checkpoints" / run / "last.ckpt").is_file()}
    results, fps = {}, {}
    floor = []
    for run, checkpoint in checkpoints.items():
        network, parts = load_parts(str(checkpoint))
        if run == "temporal_off":
            sources = flicker_sources(network)
        stylizer = Stylizer(network, block=None)
        for name, clip in clips():
            if run == "temporal_off":  # the noisy input clip's own warping error: the floor
                floor.append(float(warping_error(clip.frames[:-1], clip.frames[1:], clip.backward, clip.visible).mean()))
            stylizer.network_seconds.clear()
            plain = stylizer(clip.frames)
            network_seconds = sum(stylizer.network_seconds)
            for blend in BLENDS:
                output = plain
                blend_seconds = 0.0
                if blend != "none":
                    blender = TemporalBlender(DISFlow(), args.strength, keep_contrast=blend == "blend")
                    start = time.perf_counter()
                    output = blender(clip.frames, plain)
                    blend_seconds = time.perf_counter() - start
                error = float(warping_error(output[:-1], output[1:], clip.backward, clip.visible).mean())
                style, content = style_and_content(clip.frames, output, parts)
                key = (run, blend)
                results.setdefault(key, []).append({"clip": name, "warping_error": error, "style": style,
                                                    "content": content})
                fps.setdefault(key, []).append(len(clip.frames) / (network_seconds + blend_seconds))
    summary = {key: {metric: statistics.mean(r[metric] for r in rows) for metric in ("warping_error", "style", "content")}
               for key, rows in results.items()}
    base = summary[("temporal_off", "none")]
    rows = []
    for (run, blend), values in summary.items():
        rows.append([RUNS[run][0], blend, f"{values['warping_error']:.2f}",
                     f"{values['warping_error'] / base['warping_error']:.2f}×", f"{values['style']:.4g}",
                     f"{values['style'] / base['style']:.2f}×", f"{values['content']:.4g}",
                     f"{statistics.median(fps[(run, blend)]):.1f}"])
    best = summary[("temporal_on", "blend")]
    cut = base["warping_error"] / best["warping_error"]
    style_ratio = best["style"] / base["style"]
    within = {key: base["warping_error"] / values["warping_error"] for key, values in summary.items()
              if values["style"] <= 1.2 * base["style"]}
    best_within = max(within, key=within.get)
    per_clip = [[r["clip"]] + [f"{results[key][i]['warping_error']:.2f}" for key in summary]
                for i, r in enumerate(results[("temporal_off", "none")])]
    file_rows = front_doors(args)
    costs = blend_cost(args.strength)
    lines = [
        "## Flicker-free video on the CPU: temporal term and motion-compensated blending",
        "",
        f"Command: `{command_line(MODULE)}`; machine: {machine()}; date: {today()}.",
        "",
        f"Networks: {training_facts()}. Clips: a pan and a zoom across each of {len(PHOTOS)} held-aside photos "
        f"({', '.join(PHOTOS)}), {SIZE[1]}x{SIZE[0]}, {args.frames} frames, 2 px per frame, camera noise 0.01 "
        f"(texnets.clips). Warping error: mean |S(t+1) − warp(S(t))| on 0..255 along the *known* motion, visible "
        f"pixels only; the noisy input clips' own is {statistics.mean(floor):.2f} (the floor). Blend: strength "
        f"{args.strength}, DIS flow on the noisy input frames, the current frame's local contrast restored (Gaussian "
        "σ 2 px; `linear blend`: without that, what the blend costs in contrast). Style: the training objective's "
        "Gram loss against the painting; content: relu2_2 MSE against the input frame; both per frame. Frames/s: "
        "network plus blend, batch of all frames, 2 cores.",
        "",
        markdown_table(["network", "--temporal", "warping error ↓", "vs plain", "style loss ↓", "vs plain",
                        "content loss ↓", "frames/s"], rows),
        "",
        "Per clip (warping error, same column order as the rows above):",
        "",
        markdown_table(["clip", *[f"{RUNS[r][0]}, {b}" for r, b in summary]], per_clip),
        "",
        "Through the front doors (`synthesize.py --temporal ...` then `evaluate.py video`, motion estimated by DIS "
        "on the H.264 input clip; first clip):",
        "",
        markdown_table(["network", "--temporal", "warping error (DIS motion)", "floor", "blend ms / frame"], file_rows),
        "",
        "Where the frame-by-frame network's flicker comes from (warping error, first photo): "
        + ", ".join(f"{label} {value:.2f}" for label, value in sources.items()) + ".",
        "",
        "What `--temporal blend` adds per frame (two DIS flows, the mask and a warp; 2 cores): "
        + ", ".join(f"{ms:.0f} ms at {size}" for size, ms in costs.items()) + ".",
        "",
        f"**Target.** Temporal term + blend against plain frame-by-frame stylisation: warping error cut "
        f"{cut:.2f}× (target ≥ 2×: {'met' if cut >= 2 else 'missed'}), style loss {style_ratio:.2f}× (target "
        f"≤ 1.2×: {'met' if style_ratio <= 1.2 else 'missed'}). Within the 1.2× style bound, the largest cut of "
        f"any row is {within[best_within]:.2f}× ({RUNS[best_within[0]][0]}, --temporal {best_within[1]}).",
    ]
    publish("bench_temporal", lines, args.note, after="bench_transfer_quality")
    (OUT / "summary.json").write_text(json.dumps({"summary": {" ".join(map(str, k)): v for k, v in summary.items()},
                                                  "blend_ms_per_frame": costs, "floor": statistics.mean(floor)},
                                                 indent=1))


def flicker_sources(network) -> dict[str, float]:
    """Where the frame-by-frame flicker comes from: the same network on a still clip with camera noise, and on
    a noiseless pan of 2 px per frame (warping error along the known motion, first photo)."""
    from texnets.clips import make_clip
    from texnets.images import read_image
    from texnets.temporal import warping_error
    photo = read_image(SHARED / "content" / PHOTOS[0])
    sources = {}
    for label, speed, noise in (("noise only (still camera)", 0.0, 0.01), ("motion only (2 px pan)", 2.0, 0.0)):
        clip = make_clip(photo, frames=ARGS.frames, size=SIZE, motion="pan", speed=speed, noise=noise)
        with torch.no_grad():
            output = network(clip.frames).clamp(0, 1)
        sources[label] = float(warping_error(output[:-1], output[1:], clip.backward, clip.visible).mean())
    return sources


def blend_cost(strength: float) -> dict[str, float]:
    """Milliseconds per frame that --temporal blend adds (two DIS flows, the mask, a warp) at video sizes."""
    from texnets.clips import make_clip
    from texnets.flow import DISFlow
    from texnets.images import read_image
    from texnets.temporal import TemporalBlender
    photo = read_image(SHARED / "content" / PHOTOS[0])
    costs = {}
    for height, width in ((360, 640), (720, 1280)):
        clip = make_clip(photo, frames=4, size=(height, width), motion="pan", speed=2.0, noise=0.01)
        blender = TemporalBlender(DISFlow(), strength)
        blender(clip.frames[:1], clip.frames[:1])  # the first frame has nothing to blend with
        start = time.perf_counter()
        blender(clip.frames[1:], clip.frames[1:])
        costs[f"{width}x{height}"] = 1000 * (time.perf_counter() - start) / 3
    return costs


def front_doors(args) -> list[list[str]]:
    """The first clip written as H.264, stylised with synthesize.py and scored by evaluate.py video."""
    from texnets.video import write_video
    name, clip = next(clips())
    source = OUT / "clip.mp4"
    write_video(source, [clip.frames], fps=25)
    rows = []
    for run in ("temporal_off", "temporal_on"):
        for temporal in ("none", "blend"):
            output = OUT / f"{run}_{temporal}.mp4"
            run_front_door(["synthesize.py", "--checkpoint", f"checkpoints/{run}/last.ckpt", "--input", str(source),
                            "--output", str(output), "--temporal", temporal, "--temporal-strength", str(args.strength),
                            "--quiet"])
            evaluation = OUT / f"{output.stem}_evaluation.json"
            run_front_door(["evaluate.py", "video", "--input", str(source), "--stylised", str(output),
                            "--output", str(evaluation)])
            report = json.loads(evaluation.read_text())
            synthesis = json.loads(output.with_suffix(".json").read_text())  # synthesize.py's own report
            blend_ms = (synthesis.get("temporal") or {}).get("ms_per_frame")
            rows.append([RUNS[run][0], temporal, f"{report['warping_error']:.2f}", f"{report['floor']:.2f}",
                         f"{blend_ms:.1f}" if blend_ms else "—"])
    return rows


def training_facts() -> str:
    from texnets.checkpoints import load_generator
    facts = []
    for run in RUNS:
        if not (REPO / "checkpoints" / run / "last.ckpt").is_file():
            continue
        report = REPO / "checkpoints" / run / "report.json"
        data = json.loads(report.read_text()) if report.is_file() else {}
        temporal = load_generator(REPO / "checkpoints" / run / "last.ckpt").metadata["training"].get("temporal")
        term = f", temporal weight {temporal['weight']:g}, {temporal['mode']}" if temporal else ", no temporal term"
        facts.append(f"`checkpoints/{run}` ({data.get('final_step')} steps in {data.get('seconds', 0) / 60:.0f} min"
                     f"{term})")
    return "; ".join(facts)


ARGS = None


def main(argv=None) -> int:
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="section", required=True)
    p = sub.add_parser("train")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--weight", type=float, default=1e6, help="--model.temporal_weight of the runs with the term")
    p.add_argument("--runs", nargs="+", choices=list(RUNS), default=list(RUNS))
    p = sub.add_parser("measure")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--strength", type=float, default=0.5)
    p.add_argument("--note")
    ARGS = parser.parse_args(argv)
    {"train": train, "measure": measure}[ARGS.section](ARGS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
