#!/usr/bin/env python
"""Benchmarks of solid-texture generators (issue 5), written to the "Solid textures" sections of BENCHMARKS.md.

    python -m bench.bench_solid                     # CPU: quality run (1000 steps on brown016.png) + volume speed
    python -m bench.bench_solid --steps 300         # shorter training; the section says so
    python -m bench.bench_solid --skip-training     # reuse the last run's checkpoint, re-measure the rest
    python -m bench.bench_solid --quick             # toy sizes and few steps; prints only
    python -m bench.bench_solid gpu --json OUT.json # on a GPU machine (the lent device): seconds per 256³ volume
    python -m bench.bench_solid record-gpu OUT.json # write a GPU JSON into BENCHMARKS.md

Figures:
  * CPU training: configs/solid_cpu.yaml (64² slices, 4 per axis and step, all three axes) on
    ../shared/data/solid/brown016.png, wall time of train.py;
  * quality: the training criterion (Gram / CHW on relu1_1..relu5_1, average-pooling VGG) of 8 fresh
    64² slices perpendicular to each axis, cut from volumes the trained network generates on demand,
    against an optimize.py texture baseline (300 L-BFGS steps on that same criterion) at 64², run here too;
  * a slice preview of a fresh 128³ volume (docs/solid_slices.png, for the README: generated slices only);
  * CPU speed: seconds and peak memory (fresh process each) for 128³, 256³ and 512³ volumes written
    to .npy in 128³ blocks;
  * GPU (gpu section): seconds per 256³ volume in fp32 and bf16, one block or 128³ blocks.
"""
from __future__ import annotations

import argparse
import copy
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from bench._report import machine, peak_rss_mb, run_front_door as run, today, update_section
from texnets.checkpoints import load_generator
from texnets.cli import markdown_table
from texnets.generators.solid_net import AXES, SolidTextureNet
from texnets.images import save_json
from texnets.vgg import ULYANOV_STYLE_LAYERS  # (configs/solid_cpu.yaml's layers)
from texnets.volumes import generate_block, generate_volume

REPO = Path(__file__).resolve().parents[1]

EXEMPLAR = REPO.parent / "shared" / "data" / "solid" / "brown016.png"
OUT = REPO / "bench" / "out"
RUN_NAME = "bench_solid_cpu"
FIGURE = REPO / "docs" / "solid_slices.png"


def exemplar_spec() -> str:
    return str(EXEMPLAR) if EXEMPLAR.exists() else "builtin:gravel"


def train(steps: int, edge: int, batch: int) -> dict:
    command = ["train.py", "--config", "configs/solid_cpu.yaml", "--data.exemplars", f"[{exemplar_spec()}]",
               "--data.slice_size", str(edge), "--data.exemplar_size", str(edge),
               "--data.slices_per_axis", str(batch), "--trainer.max_steps", str(steps),
               "--trainer.enable_progress_bar", "false", "--output_dir", str(OUT / "runs"), "--run_name", RUN_NAME,
               "--overwrite", "true"]
    wall = run(command)
    report = json.loads((OUT / "runs" / RUN_NAME / "report.json").read_text())
    return {"wall_seconds": wall, "fit_seconds": report["seconds"], "seconds_per_step": report["seconds_per_step"],
            "steps": report["final_step"]}


def criterion(edge: int):
    from texnets import optim
    from texnets.images import load_image
    exemplar = load_image(exemplar_spec(), edge)
    return optim.texture_criterion(exemplar, ULYANOV_STYLE_LAYERS, "gram", encoder={"pooling": "avg"},
                                   loss_options={"normalize": "chw"})


def gram_loss(loss_fn, image: torch.Tensor) -> float:
    """The training criterion of one (3, H, W) image after 8-bit quantisation (what a file holds)."""
    with torch.no_grad():
        _, logs = loss_fn(((image.clamp(0, 1) * 255).round() / 255).unsqueeze(0))
    return float(logs["total"])


def fresh_slice_losses(generator: SolidTextureNet, edge: int, per_axis: int, loss_fn) -> dict:
    """Mean criterion of ``per_axis`` fresh edge² slices perpendicular to each axis, each cut on
    demand at a different place of the volume of seed 1 (never seen in training: hashed noise)."""
    losses = {}
    for axis in AXES:
        values = []
        for index in range(per_axis):
            size = [edge, edge, edge]
            size[AXES.index(axis)] = 1
            origin = [1000 * index + 37, -500 * index, 250 * index + 3]
            block = generate_block(generator, origin, size, seed=1)
            values.append(gram_loss(loss_fn, block[0].select(1 + AXES.index(axis), 0)))
        losses[axis] = {"mean": statistics.mean(values), "min": min(values), "max": max(values)}
    return losses


def baseline(edge: int, steps: int, loss_fn) -> dict:
    output = OUT / f"solid_baseline_{edge}.png"
    wall = run(["optimize.py", "texture", "--style", exemplar_spec(), "--size", str(edge),
                "--layers", ",".join(ULYANOV_STYLE_LAYERS), "--pooling", "avg", "--gram-normalize", "chw",
                "--steps", str(steps), "--device", "cpu", "--quiet", "--output", str(output)])
    from texnets.images import load_image
    return {"wall_seconds": wall, "loss": gram_loss(loss_fn, load_image(output)[0]), "steps": steps}


def child_volume(checkpoint: str, edge: int, block: int) -> dict:
    """In a fresh process: one edge³ volume written to .npy in block³ blocks; time and peak RSS."""
    generator = load_generator(checkpoint).generator
    path = OUT / f"solid_{edge}.npy"
    generate_block(generator, (0, 0, 0), (16, 16, 16))  # warm-up
    start = time.perf_counter()
    generate_volume(generator, (edge,) * 3, seed=1, block=block, path=path)
    seconds = time.perf_counter() - start
    size_mb = path.stat().st_size / 2**20
    path.unlink()
    return {"edge": edge, "block": block, "seconds": seconds, "peak_rss_mb": peak_rss_mb(), "file_mb": size_mb}


def volume_speed(checkpoint: Path, edges, block: int) -> list[dict]:
    rows = []
    for edge in edges:
        child = [sys.executable, "-m", "bench.bench_solid", "child-volume", str(checkpoint), str(edge), str(block)]
        out = subprocess.check_output(child, cwd=REPO, text=True)
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(f"volume {edge}³: {rows[-1]}", flush=True)
    return rows


def preview(checkpoint: Path, edge: int, figure: Path | None) -> dict:
    """synthesize.py as a user runs it: a fresh edge³ volume and its slice preview."""
    output = OUT / f"solid_preview_{edge}.npy"
    wall = run(["synthesize.py", "--checkpoint", str(checkpoint), "--size", str(edge), "--seed", "3",
                "--output", str(output), "--quiet"])
    png = output.with_name(f"{output.stem}_slices.png")
    if figure is not None:
        shutil.copyfile(png, figure)
    return {"wall_seconds": wall, "preview": str(png)}


def cpu(args) -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    edge, batch, steps = (32, 2, 5) if args.quick else (64, 4, args.steps)
    checkpoint = OUT / "runs" / RUN_NAME / "last.ckpt"
    results: dict = {"steps": steps, "edge": edge, "slices_per_axis": batch, "exemplar": exemplar_spec(),
                     "note": args.note}
    if not args.skip_training or not checkpoint.exists():
        results["training"] = train(steps, edge, batch)
    else:
        saved = json.loads((OUT / "solid_results.json").read_text())
        results["training"] = saved["training"]
        results["note"] = saved.get("note")
    loss_fn = criterion(edge)
    generator = load_generator(checkpoint).generator
    results["slices"] = fresh_slice_losses(generator, edge, 2 if args.quick else 8, loss_fn)
    results["baseline"] = baseline(edge, 10 if args.quick else 300, loss_fn)
    results["preview"] = preview(checkpoint, 32 if args.quick else 128, None if args.quick else FIGURE)
    results["speed"] = volume_speed(checkpoint, [32, 64] if args.quick else [128, 256, 512], 32 if args.quick else 128)
    print(json.dumps(results, indent=1))
    if args.quick:
        return 0
    save_json(results, OUT / "solid_results.json")
    update_section("solid-cpu", cpu_markdown(results))
    print("updated BENCHMARKS.md (solid-cpu)")
    return 0


def cpu_markdown(r: dict) -> str:
    t, b = r["training"], r["baseline"]
    slices = markdown_table(
        ["slices perpendicular to", "criterion: mean (min–max)", "ratio to the baseline"],
        [[axis, f"{r['slices'][axis]['mean']:.1f} ({r['slices'][axis]['min']:.1f}–{r['slices'][axis]['max']:.1f})",
          f"{r['slices'][axis]['mean'] / b['loss']:.2f}×"] for axis in AXES])
    speed = markdown_table(["volume", "seconds", "peak RSS (MB)", "file (MB)"],
                           [[f"{s['edge']}³", f"{s['seconds']:.1f}", f"{s['peak_rss_mb']:.0f}", f"{s['file_mb']:.0f}"]
                            for s in r["speed"]])
    return f"""## Solid textures (CPU)

`python -m bench.bench_solid` on {machine()}, {today()}.

**Training:** `configs/solid_cpu.yaml` ({r['edge']}² slices, {r['slices_per_axis']} per axis and step, axes x, y and z)
on `solid/brown016.png`, {t['steps']} steps: {t['fit_seconds'] / 60:.1f} min of training
({t['seconds_per_step']:.2f} s per step), {t['wall_seconds'] / 60:.1f} min for the whole `train.py` run.
{r.get('note') or ''}

**Quality:** the training criterion (Gram / CHW on relu1_1..relu5_1, average-pooling VGG, after 8-bit
quantisation) of 8 fresh {r['edge']}² slices perpendicular to each axis, cut on demand from the trained
network's volume (seed 1, places never trained on), against `optimize.py texture` optimising that
criterion directly for one {r['edge']}² image ({b['steps']} L-BFGS steps, {b['wall_seconds']:.0f} s, same run):
baseline loss **{b['loss']:.1f}**.

{slices}

The baseline fits the statistics of one 64² image, where relu5_1 has 4×4 positions and can be matched
almost exactly; the network must produce them in every slice of an endless volume, consistently across
three axes, from 84,963 parameters, so a large ratio is expected (the 2D texture network's is 18–22×, see
above). The slices still look like the exemplar: a preview of a fresh 128³ volume is `docs/solid_slices.png`
(generated slices only; at 64² training slices, the texture's features come out at half the 128² exemplar's scale).

**Volumes on the CPU** (`synthesize.py`'s path: blocks of {r['speed'][0]['block']}³ written into a `.npy`, fresh
process each, untimed warm-up):

{speed}
"""


# -- GPU ---------------------------------------------------------------------------------------------
def gpu(args) -> int:
    device = torch.device("cuda")
    generator = (load_generator(args.checkpoint).generator if args.checkpoint else SolidTextureNet()).to(device).eval()
    results = {"device": torch.cuda.get_device_name(), "machine": machine(), "date": today(), "rows": []}
    edge = 256
    configurations = [(256, "fp32", False, False), (256, "fp32", True, False), (256, "bf16", True, False),
                      (256, "fp16", True, False), (128, "fp32", True, False), (128, "fp16", True, False),
                      (256, "fp16", True, True), (256, "bf16", True, True)]
    for block, precision, channels_last, compiled in configurations:
        net = copy.deepcopy(generator).to(memory_format=torch.channels_last_3d if channels_last
                                          else torch.contiguous_format)
        if compiled:
            net.compile()
        generate_volume(net, (edge,) * 3, seed=0, block=block, device=device, precision=precision)  # warm-up
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        times = []
        for repeat in range(5):
            start = time.perf_counter()
            generate_volume(net, (edge,) * 3, seed=1 + repeat, block=block, device=device, precision=precision)
            torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        row = {"edge": edge, "block": block, "precision": precision, "channels_last": channels_last, "compile": compiled,
               "seconds": statistics.median(times), "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20}
        print(row, flush=True)
        results["rows"].append(row)
    save_json(results, args.json)
    return 0


def record_gpu(args) -> int:
    update_section("solid-gpu", gpu_markdown(json.loads(Path(args.json).read_text())))
    print("updated BENCHMARKS.md (solid-gpu)")
    return 0


def gpu_markdown(r: dict) -> str:
    """The "Solid textures (GPU)" section, from the JSON :func:`gpu` wrote."""
    rows = markdown_table(
        ["blocks", "precision", "channels_last_3d", "torch.compile", "seconds per 256³ volume", "peak GPU memory (MB)"],
        [[f"{x['block']}³", x["precision"], "yes" if x["channels_last"] else "no", "yes" if x.get("compile") else "no",
          f"{x['seconds']:.3f}", f"{x['peak_gpu_mb']:.0f}"] for x in r["rows"]])
    best = min(x["seconds"] for x in r["rows"])
    return f"""## Solid textures (GPU)

`python -m bench.bench_solid gpu --json OUT.json` on the lent **{r['device']}** ({r['machine']}), {r['date']};
recorded with `record-gpu`. One 256³ volume end to end as `synthesize.py` makes it: hashed noise on the
GPU, the reference generator (84,963 parameters), uint8 conversion and the copy to host memory; median
of 5 after a warm-up.

{rows}

Best: **{best:.3f} s** per 256³ volume, against the paper's ~1 s on one GPU (goal: 10× faster, 0.1 s).
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("section", nargs="?", default="cpu", choices=["cpu", "gpu", "record-gpu", "child-volume"])
    parser.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=1000, help="training steps (default 1000)")
    parser.add_argument("--quick", action="store_true", help="toy sizes and few steps; do not write BENCHMARKS.md")
    parser.add_argument("--skip-training", action="store_true", help="reuse bench/out/runs/... from the last run")
    parser.add_argument("--checkpoint", help="gpu: time this checkpoint's generator (default: a fresh one)")
    parser.add_argument("--note", help="a sentence on the conditions of the training run, kept in the section")
    parser.add_argument("--json", help="gpu: where to write the results")
    args = parser.parse_args()
    if args.section == "child-volume":
        checkpoint, edge, block = args.rest
        print(json.dumps(child_volume(checkpoint, int(edge), int(block))))
        return 0
    if args.section == "record-gpu":
        args.json = args.json or args.rest[0]
        return record_gpu(args)
    if args.section == "gpu":
        return gpu(args)
    return cpu(args)


if __name__ == "__main__":
    sys.exit(main())
