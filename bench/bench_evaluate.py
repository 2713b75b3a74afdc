#!/usr/bin/env python
"""Benchmarks of evaluation (issue 6), written to BENCHMARKS.md.

    python -m bench.bench_evaluate            # full run (trains a texture network per exemplar unless cached)
    python -m bench.bench_evaluate --quick    # smoke run at tiny sizes: prints only, writes nothing
    python -m bench.bench_evaluate --exemplar pebbles --checkpoint checkpoints/pebbles/last.ckpt
    python -m bench.bench_evaluate --transfer bench/out/runs/bench_starry_cpu/last.ckpt   # transfer compare only
    python -m bench.bench_evaluate --transfer CKPT --render   # rewrite that section from bench/out

Figures:
  * throughput at 256² on this machine: images per second of the FID feature extractors (VGG19 pool5,
    the offline one; InceptionV3 where torch-fidelity and its weights are present) and image pairs per
    second of LPIPS. LPIPS runs here with a *random* backbone, because its torchvision ImageNet
    weights cannot be downloaded on this machine; the cost is that of the real network (same
    architecture), the values are not LPIPS and are not reported;
  * a streamed FID/KID evaluation from PNG files, at two set sizes, in fresh processes: images per
    second and peak memory, which should not grow with the number of images;
  * the full compare (``evaluate.py compare``) on pebbles.jpg and starry_night.jpg at CPU-sized
    settings: texture network (trained here with configs/texture_cpu.yaml unless a checkpoint is
    given; checkpoints stay under bench/out/, never committed) vs Gram, MeanVar and SW optimisation;
  * with ``--transfer CKPT`` (its own section, nothing else is run): the style-transfer compare of a
    Starry Night transfer network (e.g. bench_transfer.py quality's) against Gram and MeanVar style
    transfer by optimisation, on scikit-image's built-in photos; with ``--figure`` its grid (style image
    left out) becomes the README figure docs/compare_transfer.jpg, for a network worth showing.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench._report import machine, peak_rss_mb, today, update_section
from texnets import evaluation
from texnets.cli import markdown_table
from texnets.errors import TexnetsError
from texnets.images import load_image, save_image, save_json

REPO = Path(__file__).resolve().parents[1]

SHARED = REPO.parent / "shared" / "data"
EXEMPLARS = {"pebbles": SHARED / "textures" / "pebbles.jpg", "starry_night": SHARED / "styles" / "starry_night.jpg"}
OUT = REPO / "bench" / "out"


def images_per_second(function, batch: torch.Tensor, repeats: int) -> float:
    """Median throughput of ``function(batch)`` after one warm-up call."""
    with torch.no_grad():
        function(batch)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            function(batch)
            times.append(time.perf_counter() - start)
    return len(batch) / statistics.median(times)


def throughput(size: int, batch: int, repeats: int) -> dict:
    """Images (pairs, for LPIPS) per second of each metric's network on random size² images; the Inception
    entry is the reason it is unavailable instead, where it is."""
    images = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    result = {"size": size, "batch": batch}
    result["vgg19"] = images_per_second(evaluation.PooledVGGFeatures("pool5", size=224), images, repeats)
    try:
        inception = evaluation.InceptionPooledFeatures(evaluation.load_inception())
        result["inception"] = images_per_second(inception, images, repeats)
    except TexnetsError as exc:
        result["inception"] = str(exc).split(";")[0]
    lpips_model, _ = evaluation.load_lpips("alex", random_backbone=True)
    others = images.flip(0)
    result["lpips_pairs"] = images_per_second(lambda x: lpips_model(x, others, normalize=True), images, repeats)
    return result


def throughput_table(result: dict) -> str:
    """The throughput table, from :func:`throughput`'s figures."""
    size, batch, inception = result["size"], result["batch"], result["inception"]
    rows = [["FID features, VGG19 pool5 (offline FID-VGG19; input resized to 224²)", f"{size}²", f"{batch}",
             f"{result['vgg19']:.2f} images/s"]]
    if isinstance(inception, str):
        rows.append(["FID features, InceptionV3 pool3 (standard FID)", f"{size}²", f"{batch}",
                     f"not available here: {inception}"])
    else:
        rows.append(["FID features, InceptionV3 pool3 (standard FID; resized to 299²)", f"{size}²", f"{batch}",
                     f"{inception:.2f} images/s"])
    rows.append(["LPIPS-alex, **random backbone** (ImageNet weights offline here; same network cost)", f"{size}²",
                 f"{batch} pairs", f"{result['lpips_pairs']:.2f} pairs/s"])
    return markdown_table(["what", "input", "batch", "throughput"], rows)


def stream_child(folder: str, count: int, size: int) -> dict:
    """In a fresh process: FID/KID (VGG19 pool5) of ``count`` PNGs against as many, from disk."""
    from texnets.evaluation import Evaluator, MetricOptions, Reference, find_images
    generated, references = find_images(Path(folder) / "generated"), find_images(Path(folder) / "references")
    generated, references = generated[:count], references[:count]
    options = MetricOptions(metrics=["fid", "kid"], fid_extractor="vgg19", progress=False, batch_size=8)
    start = time.perf_counter()
    Evaluator(options).evaluate(generated, Reference("set", folder, paths=references))
    seconds = time.perf_counter() - start
    return {"images_per_second": 2 * count / seconds, "peak_rss_mb": peak_rss_mb(), "seconds": seconds}


def streaming(counts: list[int], size: int) -> list[dict]:
    """A streamed FID/KID evaluation (:func:`stream_child`, a fresh process each) per set size."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        texture = load_image("builtin:immunohistochemistry", size * 2)
        rng = torch.Generator().manual_seed(0)
        for side in ("generated", "references"):
            for i in range(max(counts)):
                y, x = (int(torch.randint(0, s - size + 1, (1,), generator=rng)) for s in texture.shape[-2:])
                save_image(texture[..., y:y + size, x:x + size], Path(folder) / side / f"{i:05d}.png")
        for count in counts:
            child = [sys.executable, "-m", "bench.bench_evaluate", "--stream-child", folder, str(count), str(size)]
            out = subprocess.check_output(child, text=True, cwd=REPO)
            rows.append({"count": count, "size": size, **json.loads(out.strip().splitlines()[-1])})
            print(f"streamed {count} vs {count}: {rows[-1]}", flush=True)
    return rows


def streaming_table(rows: list[dict]) -> str:
    """The streamed FID/KID table, from :func:`streaming`'s rows."""
    return markdown_table(["images", "size", "images/s", "seconds", "peak RSS (MB)"],
                          [[f"{row['count']} vs {row['count']}", f"{row['size']}²", f"{row['images_per_second']:.2f}",
                            f"{row['seconds']:.0f}", f"{row['peak_rss_mb']:.0f}"] for row in rows])


def train_checkpoint(name: str, exemplar: Path, steps: int, quick: bool) -> tuple[Path, str]:
    """A texture network for ``exemplar`` via train.py, reused if bench/out already holds it."""
    run = f"evaluate_{name}{'_quick' if quick else ''}"
    checkpoint = OUT / run / "last.ckpt"
    if checkpoint.is_file():
        # Say how it was made: train.py's report holds the command and the machine (e.g. a lent GPU,
        # where the 1000 steps take a minute instead of over an hour here).
        report_file = checkpoint.with_name("report.json")
        if report_file.is_file():
            report = json.loads(report_file.read_text())
            env = report.get("environment", {})
            where = env.get("gpu") or f"{env.get('threads', '?')} CPU threads"
            return checkpoint, (f"`python {report.get('command', 'train.py')}` on {where}, {env.get('date', '?')} "
                                f"({report.get('seconds', 0) / 60:.1f} min; reused from "
                                f"`{checkpoint.relative_to(REPO)}`)")
        return checkpoint, f"reused {checkpoint.relative_to(REPO)}"
    config = "configs/quickstart.yaml" if quick else "configs/texture_cpu.yaml"
    command = [sys.executable, "train.py", "--config", config, "--data.exemplar", str(exemplar),
               "--trainer.max_steps", str(steps), "--output_dir", str(OUT), "--run_name", run, "--overwrite", "true"]
    if quick:
        command += ["--data.size", "32", "--data.exemplar_size", "32"]
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO)
    return checkpoint, f"`{' '.join(['python', *command[1:]])}` ({(time.perf_counter() - start) / 60:.1f} min)"


def compare(name: str, exemplar: Path, checkpoint: Path, settings: dict) -> tuple[str, dict]:
    output = OUT / f"compare_{name}.png"
    argv = ["compare", "--style", str(exemplar), "--checkpoint", str(checkpoint), "--methods", "gram", "meanvar", "sw",
            "--size", str(settings["size"]), "--samples", str(settings["samples"]), "--steps", str(settings["steps"]),
            "--output", str(output), "--quiet", "--hide-exemplar", *settings.get("extra", [])]
    subprocess.run([sys.executable, "evaluate.py", *argv], check=True, cwd=REPO)
    table = output.with_suffix(".md").read_text()
    report = json.loads(output.with_suffix(".json").read_text())
    return f"python evaluate.py {' '.join(argv)}", {"table": table, "report": report}


TRANSFER_PHOTOS = ("builtin:astronaut", "builtin:coffee", "builtin:chelsea")
TRANSFER_SETTINGS = {"size": 192, "steps": 200}  # the CPU quality recipe's crop size (configs/starry_cpu.yaml)
TRANSFER_OUTPUT = OUT / "compare_transfer.png"


def transfer_compare(checkpoint: Path, quick: bool, figure: bool) -> None:
    """evaluate.py compare --content: one network, Gram and MeanVar optimisation, the built-in photos."""
    output = OUT / "compare_transfer_quick.png" if quick else TRANSFER_OUTPUT
    size, steps = (48, 3) if quick else (TRANSFER_SETTINGS["size"], TRANSFER_SETTINGS["steps"])
    argv = ["compare", "--style", str(EXEMPLARS["starry_night"]), "--content", *TRANSFER_PHOTOS,
            "--checkpoint", str(checkpoint), "--methods", "gram", "meanvar", "--samples", str(len(TRANSFER_PHOTOS)),
            "--size", str(size), "--steps", str(steps), "--output", str(output), "--quiet", "--hide-exemplar"]
    if quick:
        argv += ["--style-layers", "relu1_1", "relu2_1", "--layers", "relu1_1,relu2_1", "--content-layers", "relu2_1"]
    start = time.perf_counter()
    subprocess.run([sys.executable, "evaluate.py", *argv], check=True, cwd=REPO)
    wall = time.perf_counter() - start
    print(output.with_suffix(".md").read_text().split("## Style distances")[0], flush=True)
    if quick:
        return
    shown = checkpoint.relative_to(REPO) if checkpoint.is_relative_to(REPO) else checkpoint
    run = {"wall_seconds": wall, "date": today(), "machine": machine(),
           "command": f"python -m bench.bench_evaluate --transfer {shown}" + " --figure" * figure}
    save_json(run, OUT / "compare_transfer_bench.json")
    render_transfer_compare()
    if figure:  # only for a well-trained network: the grid is the README's picture of what transfer nets do
        from PIL import Image
        target = REPO / "docs" / "compare_transfer.jpg"
        with Image.open(output) as grid:
            grid.convert("RGB").save(target, quality=88)
        print(f"wrote {target.relative_to(REPO)} ({target.stat().st_size / 1024:.0f} KB)")


def render_transfer_compare() -> None:
    """The "transfer network vs optimisation" section, from the last run's files in bench/out."""
    run = json.loads((OUT / "compare_transfer_bench.json").read_text())
    report = json.loads(TRANSFER_OUTPUT.with_suffix(".json").read_text())
    table = TRANSFER_OUTPUT.with_suffix(".md").read_text().split("## Style distances")[0]
    body = table.split("\n", 2)[2].strip()  # drop the title
    net = report["methods"]["net"]["details"]
    training_report = Path(report["arguments"]["checkpoint"]).with_name("report.json")
    training = json.loads(training_report.read_text()) if training_report.is_file() else {}
    env = training.get("environment", {})
    made = (f"`python {training['command']}` on {env.get('gpu') or str(env.get('threads', '?')) + ' CPU threads'}, "
            f"{env.get('date', '?')}" if training else f"`{report['arguments']['checkpoint']}`")
    wall = run.get("wall_note") or f"{run['wall_seconds'] / 60:.0f} min in all"
    update_section("bench_evaluate_transfer", f"""## Evaluation: transfer network vs style transfer by optimisation

Command: `{run['command']}` ({wall}) · machine: {run['machine']} · date: {run['date']}

Transfer network: {made}; its checkpoint holds step {net['global_step']}. Johnson et al. trained for 40,000
steps; the CPU recipe (`configs/starry_cpu.yaml`) for 1,500, and this one for a sixth of that. It is
scored here as the network that was at hand, not as what the method reaches: its outputs keep little of
the photos yet (the grid, `bench/out/compare_transfer.png`, is not committed).

{body}

Every timing here is this machine's (CPU). The content distance is the content loss of Gatys et al. 2016
(relu4_2 of the bundled VGG19) against each photo; the style distances are against the Starry Night. Lower
is better for both and the two pull against each other, so a method is judged on the pair; the unstylised
photo marks where every method starts. The network was trained with Johnson et al.'s VGG16 losses and
weights, the optimisation minimises these VGG19 distances directly.
""")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and steps; do not write BENCHMARKS.md")
    parser.add_argument("--exemplar", nargs="+", choices=list(EXEMPLARS), default=list(EXEMPLARS))
    parser.add_argument("--checkpoint", help="a trained texture network for the (single) --exemplar")
    parser.add_argument("--train-steps", type=int, default=1000, help="training steps (configs/texture_cpu.yaml)")
    parser.add_argument("--transfer", metavar="CKPT", help="only the style-transfer compare, with this transfer network")
    parser.add_argument("--figure", action="store_true",
                        help="with --transfer: also write its grid to docs/compare_transfer.jpg (a well-trained net)")
    parser.add_argument("--render", action="store_true", help="with --transfer: rewrite its section from bench/out")
    parser.add_argument("--stream-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.transfer and args.render:
        render_transfer_compare()
        return 0
    if args.transfer:
        transfer_compare(Path(args.transfer).resolve(), args.quick, args.figure)
        return 0
    if args.stream_child:
        folder, count, size = args.stream_child
        print(json.dumps(stream_child(folder, int(count), int(size))))
        return 0
    if args.checkpoint and len(args.exemplar) != 1:
        parser.error("--checkpoint goes with exactly one --exemplar")

    quick = args.quick
    size, batch, repeats = (64, 2, 2) if quick else (256, 8, 5)
    speeds = throughput(size, batch, repeats)
    print(throughput_table(speeds), flush=True)
    stream_counts = [4, 8] if quick else [32, 128]
    stream_rows = streaming(stream_counts, 64 if quick else 256)
    settings = ({"size": 32, "samples": 2, "steps": 3,
                 "extra": ["--style-layers", "relu1_1", "relu2_1", "--layers", "relu1_1,pool1"]} if quick else
                {"size": 128, "samples": 4, "steps": 200})
    compares = []
    for name in args.exemplar:
        exemplar = EXEMPLARS[name]
        if not exemplar.is_file():
            print(f"skipping {name}: {exemplar} not found", file=sys.stderr)
            continue
        if args.checkpoint:
            checkpoint, trained = Path(args.checkpoint), f"given: `{args.checkpoint}`"
        else:
            checkpoint, trained = train_checkpoint(name, exemplar, 2 if quick else args.train_steps, quick)
        command, result = compare(name, exemplar, checkpoint, settings)
        compares.append((name, command, trained, result))
        print(result["table"].split("## Style distances")[0], flush=True)
    if quick:
        return 0

    sections = []
    for name, command, trained, result in compares:
        table = result["table"].split("## Style distances")[0].split("\n", 2)[2].strip()  # drop the title
        sections.append(f"### {name}\n\nTexture network: {trained}.\n\n{table}\n\n"
                        f"Grid and per-layer tables: `bench/out/compare_{name}.png`, `.md` (not committed).")
    markdown = f"""## Evaluation (evaluate.py)

Command: `python -m bench.bench_evaluate` · machine: {machine()} · date: {today()}

**Throughput** (median of {repeats} batches after a warm-up; random {size}² images):

{throughput_table(speeds)}

**Streamed FID/KID from disk** (VGG19 pool5; decode, resize and features; fresh process each, so the peak
resident memory is that run's alone and should not grow with the number of images):

{streaming_table(stream_rows)}

**Texture network vs optimisation**, {settings['size']}² samples, {settings['samples']} per method,
{settings['steps']} L-BFGS steps per optimised sample; every figure against the exemplar. Offline, SiFID runs
on VGG19 pool1, and diversity (mean distance over all pairs of samples) on the bundled VGG19 with LPIPS'
formula and uniform weights, labelled Diversity-VGG19: LPIPS' ImageNet backbone weights cannot be
downloaded here. Its values are not LPIPS values. It is 0 only for identical samples; between
unaligned texture samples it saturates near 1, so it hardly separates these methods.

{chr(10).join(sections)}

Every timing in this section is this machine's (CPU). Where a texture network was trained on a lent GPU,
the line above its table names the GPU; the compare itself, samples and baselines, ran here.
"""
    update_section("bench_evaluate", markdown)
    readme_figure(compares)
    return 0


def readme_figure(compares) -> None:
    """docs/compare_pebbles.jpg for the README: the pebbles grid, which leaves the exemplar out
    (--hide-exemplar: a committed figure must not reproduce a ../shared image); JPEG to stay < 300 KB."""
    from PIL import Image
    for name, *_ in compares:
        if name != "pebbles":
            continue
        target = REPO / "docs" / "compare_pebbles.jpg"
        with Image.open(OUT / f"compare_{name}.png") as grid:
            grid.convert("RGB").save(target, quality=88)
        print(f"wrote {target.relative_to(REPO)} ({target.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    sys.exit(main())
