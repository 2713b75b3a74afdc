#!/usr/bin/env python
"""Benchmarks of the arbitrary-style networks, AdaIN and WCT (issue 16), written to BENCHMARKS.md.

    python -m bench.bench_arbitrary quality --adain checkpoints/adain_cpu/last.ckpt \\
        --wct checkpoints/wct_cpu/last.ckpt [--johnson checkpoints/starry_cpu/last.ckpt] [--steps 100]
    python -m bench.bench_arbitrary speed --adain ... --wct ... [--johnson ...]

quality: ``evaluate.py compare`` on held-aside photos (the first files of ../shared/data/content, which every
CPU config holds aside for validation) with one style seen in the AdaIN run's training (starry_night.jpg, the
Johnson net's style too) and two it never saw (the two it held aside: composition_vii.jpg and
grande_jatte_study.jpg); WCT never sees a style. Methods: Gatys optimisation (Gram, L-BFGS), the AdaIN and
WCT networks, and the Johnson net for its own style when given. Targets: on unseen styles, AdaIN's Gram
distance within 3x of the optimisation's while at least 100x faster; WCT closer in style than AdaIN.

speed: ms per image at 512² and 1024² on this machine, network time only (texnets.inference.Stylizer), for
the checkpoints given and, with random weights, the reference-width networks, next to the Johnson net.

Each section runs alone: two torch processes on two cores slow each other several-fold.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

from bench._report import command_line, machine, publish, run_front_door, today
from texnets.cli import markdown_table

REPO = Path(__file__).resolve().parents[1]
MODULE = "bench.bench_arbitrary"
SHARED = REPO.parent / "shared" / "data"
OUT = REPO / "bench" / "out" / "arbitrary"
PHOTOS = ["amber_door.jpg", "chicago.jpg", "cornell.jpg", "flower_garden.jpg"]  # held aside by every CPU config
STYLES = {"starry_night.jpg": "seen", "composition_vii.jpg": "unseen", "grande_jatte_study.jpg": "unseen"}
METHOD_NAMES = {"gram": "Gatys optimisation (Gram, L-BFGS)", "adain": "AdaIN net", "wct": "WCT net",
                "net": "Johnson net (this style only)"}


def gram_total(evaluation: dict) -> float:
    return sum(m["value"] for m in evaluation["metrics"].values() if m["metric"] == "gram")


def content_value(evaluation: dict) -> float | None:
    return next((m["value"] for m in evaluation["metrics"].values() if m["metric"] == "content"), None)


def run_style(style: str, args) -> dict:
    output = OUT / f"{Path(style).stem}.png"
    checkpoints = [args.adain, args.wct] + ([args.johnson] if args.johnson and style == "starry_night.jpg" else [])
    methods = ["gram", "adain", "wct"] + (["net"] if len(checkpoints) == 3 else [])
    run_front_door(["evaluate.py", "compare", "--style", str(SHARED / "styles" / style),
                    "--content", *[str(SHARED / "content" / p) for p in PHOTOS[:args.photos]],
                    "--checkpoint", *checkpoints, "--methods", *methods, "--size", str(args.size),
                    "--style-size", str(args.size), "--steps", str(args.steps), "--samples", str(args.photos),
                    "--metrics", "style", "--quiet", "--output", str(output)])
    return json.loads(output.with_suffix(".json").read_text())


def quality_table(reports: dict[str, dict]) -> tuple[str, dict]:
    rows, verdict = [], {}
    for style, report in reports.items():
        methods = report["methods"]
        gatys_gram = gram_total(methods["gram"]["evaluation"])
        for key in [k for k in ("gram", "adain", "wct", "net") if k in methods]:
            method = methods[key]
            gram = gram_total(method["evaluation"])
            seen = STYLES[style] if key == "adain" else ("unseen" if key == "wct" else "—")
            rows.append([style, METHOD_NAMES[key], seen if key in ("adain", "wct") else "—",
                         f"{method['seconds_per_image']:.3g}", f"{method['speedup']:.0f}×" if key != "gram" else "1×",
                         f"{gram:.4g}", f"{gram / gatys_gram:.2f}×", f"{content_value(method['evaluation']):.4g}"])
            verdict.setdefault(style, {})[key] = {"gram_ratio": gram / gatys_gram, "speedup": method["speedup"]}
    table = markdown_table(["style", "method", "style in training", "s / image", "speed-up", "Gram Σ5 layers ↓",
                            "Gram vs Gatys", "content distance relu4_2 ↓"], rows)
    return table, verdict


def training_facts(checkpoint: str) -> str:
    report = Path(checkpoint).parent / "report.json"
    if not report.is_file():
        return f"`{checkpoint}`"
    data = json.loads(report.read_text())
    threads = data.get("environment", {}).get("threads")
    return (f"`{checkpoint}` ({data.get('final_step')} training steps in {data.get('seconds', 0) / 60:.0f} min"
            f"{f', {threads} thread' + 's' * (threads != 1) if threads else ''})")


def quality(args) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    reports = {style: run_style(style, args) for style in STYLES}
    table, verdict = quality_table(reports)
    unseen = [style for style, kind in STYLES.items() if kind == "unseen"]
    adain_ratio = max(verdict[s]["adain"]["gram_ratio"] for s in unseen)
    adain_speed = min(verdict[s]["adain"]["speedup"] for s in unseen)
    wct_closer = all(verdict[s]["wct"]["gram_ratio"] < verdict[s]["adain"]["gram_ratio"] for s in unseen)
    lines = [
        "## Arbitrary-style networks (AdaIN, WCT) on the CPU: quality against Gatys optimisation",
        "",
        f"Command: `{command_line(MODULE)}`; machine: {machine()}; date: {today()}.",
        "",
        f"Networks: AdaIN {training_facts(args.adain)}, WCT {training_facts(args.wct)}"
        + (f", Johnson {training_facts(args.johnson)}" if args.johnson else "") + ". "
        f"`evaluate.py compare` per style on {args.photos} held-aside photos ({', '.join(PHOTOS[:args.photos])}), "
        f"{args.size}² centre crops, style image at {args.size} px; Gatys optimisation: {args.steps} L-BFGS steps "
        "from the photo (content relu4_2, style relu1_1–relu5_1 × 1e4, average pooling). Style distances on "
        "relu1_1–relu5_1 of the bundled VGG19; seconds are network time per photo (optimisation: the whole run). "
        "\"style in training\": whether the AdaIN run trained on that style (its two held-out styles never were); "
        "WCT trains on photos only.",
        "",
        table,
        "",
        f"**Targets, on unseen styles.** AdaIN's Gram distance is at most {adain_ratio:.2f}× the optimisation's "
        f"(target ≤ 3×: {'met' if adain_ratio <= 3 else 'missed'}), at ≥ {adain_speed:.0f}× its speed (target "
        f"≥ 100×: {'met' if adain_speed >= 100 else 'missed'}). WCT closer in style than AdaIN on every unseen "
        f"style: {'yes' if wct_closer else 'no'}.",
    ]
    publish("bench_arbitrary_quality", lines, args.note, after="bench_transfer_quality")


def time_network(network: torch.nn.Module, side: int, repeats: int = 3) -> float:
    """Median ms per image of ``network`` on one side×side photo (after a warm-up), network time only."""
    from texnets.inference import Stylizer
    stylizer = Stylizer(network, torch.device("cpu"), block=None)
    photo = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0))
    stylizer(photo)
    times = []
    for _ in range(repeats):
        stylizer.network_seconds.clear()
        stylizer(photo)
        times.append(1000 * stylizer.network_seconds[-1])
    return statistics.median(times)


def speed(args) -> None:
    from texnets.arbitrary_inference import StyledNetwork
    from texnets.checkpoints import load_generator
    from texnets.generators import AdaINNet, TransformerNet, WCTNet
    style = torch.rand(1, 3, 512, 512, generator=torch.Generator().manual_seed(1))
    networks = {}
    for label, checkpoint in (("AdaIN", args.adain), ("WCT", args.wct)):
        if checkpoint:
            loaded = load_generator(checkpoint)
            config = loaded.generator.config
            networks[f"{label} (checkpoint, width {config.width})"] = StyledNetwork(loaded.generator, [style])
    torch.manual_seed(0)
    networks["AdaIN, reference width (random weights)"] = StyledNetwork(AdaINNet(), [style])
    networks["WCT, reference width, 5 levels (random weights)"] = StyledNetwork(WCTNet(), [style])
    networks["Johnson net, reference width (random weights)"] = TransformerNet()
    rows, results = [], {}
    for label, network in networks.items():
        network.eval()
        results[label] = {side: time_network(network, side) for side in (512, 1024)}
        rows.append([label, f"{results[label][512]:.0f}", f"{results[label][1024]:.0f}"])
        print(label, results[label], file=sys.stderr)
    lines = ["## Arbitrary-style networks (AdaIN, WCT) on the CPU: speed", "",
             f"Command: `{command_line(MODULE)}`; machine: {machine()}; date: {today()}.", "",
             "Milliseconds per photo (fp32, batch 1, median of 3 after a warm-up; network time only, the style "
             "image's statistics computed once beforehand, as synthesize.py does for a folder or a video).", "",
             markdown_table(["network", "ms at 512²", "ms at 1024²"], rows)]
    publish("bench_arbitrary_speed", lines, after="bench_arbitrary_quality")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="section", required=True)
    for name in ("quality", "speed"):
        p = sub.add_parser(name)
        p.add_argument("--adain", required=name == "quality", help="an AdaIN checkpoint (configs/adain_cpu.yaml)")
        p.add_argument("--wct", required=name == "quality", help="a WCT checkpoint (configs/wct_cpu.yaml)")
        p.add_argument("--johnson", help="a Johnson net for starry_night.jpg (configs/starry_cpu.yaml)")
        if name == "quality":
            p.add_argument("--steps", type=int, default=100, help="L-BFGS steps of the optimisation baseline")
            p.add_argument("--size", type=int, default=192)
            p.add_argument("--photos", type=int, default=2, choices=range(1, len(PHOTOS) + 1))
            p.add_argument("--note", help="a sentence appended to the section (e.g. how the checkpoints were made)")
    args = parser.parse_args(argv)
    quality(args) if args.section == "quality" else speed(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
