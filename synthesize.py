#!/usr/bin/env python
"""Sample from a trained texnets generator: the inference front door for every model type.

    python synthesize.py --checkpoint checkpoints/quickstart/last.ckpt --size 512 512 --output outputs/pebbles.png
    python synthesize.py --checkpoint ... --count 8 --seed 3 --output outputs/batch.png   # batch_000.png ...
    python synthesize.py --checkpoint ... --size 4096 4096 --tile                          # tiled, seamless
    python synthesize.py --checkpoint ... --export exports/quickstart                      # TorchScript + safetensors

The checkpoint is read with ``torch.load(weights_only=True)`` and must carry the model type that
texnets' training tasks record; the matching sampler is picked from ``SAMPLERS``. A JSON report
(arguments, versions, timings) is written next to the output.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from texnets.checkpoints import LoadedGenerator, load_generator
from texnets.cli import environment, main_guard, pick_device, report_path
from texnets.errors import TexnetsError
from texnets.export import export_generator
from texnets.images import save_image, save_json
from texnets.tiling import generate, has_instance_norm


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Sample images from a trained texnets checkpoint.")
    parser.add_argument("--checkpoint", required=True, help="a checkpoint written by train.py (e.g. last.ckpt)")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"),
                        help="output height and width (default: the training size)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed; the same seed gives the same samples")
    parser.add_argument("--count", type=int, default=1, help="number of samples")
    parser.add_argument("--tile", action="store_true",
                        help="make the output wrap around seamlessly (forces circular padding)")
    parser.add_argument("--output", default=None,
                        help="output PNG/JPEG; with --count N > 1, _000, _001 ... are appended "
                             "(default: outputs/<run>.png; none with --export alone)")
    parser.add_argument("--block", type=int, default=1024,
                        help="outputs larger than this on a side are generated in tiles of this size")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 or mps")
    parser.add_argument("--export", metavar="DIR", help="also write TorchScript + safetensors files to DIR")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def output_paths(output: str, count: int) -> list[Path]:
    path = Path(output)
    if count == 1:
        return [path]
    return [path.with_name(f"{path.stem}_{index:03d}{path.suffix}") for index in range(count)]


def sample_texture_net(loaded: LoadedGenerator, args: argparse.Namespace) -> dict:
    """Noise-driven generators: any size (a multiple of 2^(scales-1)), tiled when large."""
    generator = loaded.generator
    training_size = loaded.metadata.get("training", {}).get("size") or [256, 256]
    size = tuple(args.size or training_size)
    try:
        generator.check_size(size)
    except TexnetsError as exc:
        step = generator.size_multiple
        nearest = " ".join(str(max(step, round(s / step) * step)) for s in size)
        raise TexnetsError(f"{exc}; e.g. --size {nearest}") from None
    if args.tile and generator.config.padding != "circular":
        generator.set_padding("circular")  # only border pixels change: the output now wraps around
    device = pick_device(args.device)
    generator.to(device)
    paths = output_paths(args.output, args.count)
    tiled = max(size) > args.block
    timings = []
    bar = tqdm(total=args.count, desc="samples", disable=args.quiet or args.count < 4, dynamic_ncols=True)
    for index, path in enumerate(paths):
        start = time.perf_counter()
        image = generate(generator, size, seed=args.seed, samples=[index], block=args.block, device=device,
                         progress=not args.quiet and tiled)
        if device.type == "cuda":
            torch.cuda.synchronize()
        timings.append(time.perf_counter() - start)
        save_image(image.clamp(0, 1), path)
        bar.update()
    bar.close()
    per_sample = sum(timings) / len(timings)
    print(f"{args.count} sample{'s' if args.count > 1 else ''} of {size[1]}x{size[0]} in {sum(timings):.2f} s: "
          f"{per_sample * 1000:.1f} ms per sample{' (tiled)' if tiled else ''} on {device}", file=sys.stderr)
    return {"outputs": [str(path) for path in paths], "size": list(size), "tiled": tiled,
            "wraps": generator.config.padding == "circular",
            "instance_norm_statistics": "frozen from a 1024px calibration window" if tiled and
            has_instance_norm(generator) else None,
            "seconds_per_sample": per_sample, "seconds": timings, "device": str(device)}


# Model type recorded in the checkpoint -> the function that samples it.
SAMPLERS = {
    "texture_net": sample_texture_net,
}


@main_guard
def main(argv=None) -> int:
    args = parse_args(argv)
    if args.count < 1:
        raise TexnetsError("--count must be at least 1")
    loaded = load_generator(args.checkpoint)
    report = {"command": " ".join(["synthesize.py", *(sys.argv[1:] if argv is None else argv)]),
              "checkpoint": str(args.checkpoint), "model_type": loaded.model_type,
              "checkpoint_step": loaded.global_step, "generator": loaded.metadata.get("generator"),
              "training": loaded.metadata.get("training"), "environment": environment()}
    if args.export:
        report["export"] = export_generator(loaded.generator, args.export,
                                            extra={"checkpoint": str(args.checkpoint), "step": loaded.global_step})
        print(f"exported to {args.export}", file=sys.stderr)
        if args.output is None:
            save_json(report, Path(args.export) / "report.json")
            return 0
    sampler = SAMPLERS.get(loaded.model_type)
    if sampler is None:
        raise TexnetsError(f"synthesize.py cannot sample {loaded.model_type!r} models yet")
    if args.output is None:
        args.output = f"outputs/{Path(args.checkpoint).resolve().parent.name}.png"
    report.update(sampler(loaded, args))
    save_json(report, report_path(args.output))
    print(f"wrote {', '.join(report['outputs'][:3])}{' ...' if len(report['outputs']) > 3 else ''}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
