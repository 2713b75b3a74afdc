#!/usr/bin/env python
"""Run a trained texnets generator: the inference front door for every model type.

Texture networks (noise in):
    python synthesize.py --checkpoint checkpoints/quickstart/last.ckpt --size 512 512 --output outputs/pebbles.png
    python synthesize.py --checkpoint ... --count 8 --seed 3 --output outputs/batch.png   # batch_000.png ...
    python synthesize.py --checkpoint ... --size 4096 4096 --tile                          # tiled, seamless
Transfer networks (photos in):
    python synthesize.py --checkpoint checkpoints/starry/last.ckpt --input photo.jpg --output outputs/photo.jpg
    python synthesize.py --checkpoint ... --input photos/ --output outputs/photos/         # mirrors the folder
    python synthesize.py --checkpoint ... --input clip.mp4 --output outputs/clip.mp4      # keeps fps and audio
    python synthesize.py --checkpoint ... --input clip.mp4 --precision bf16 --channels-last --compile   # GPU
    python synthesize.py --checkpoint ... --input photos/ --backend onnxruntime           # or compile; CPU
    python synthesize.py --checkpoint ... --input huge.jpg --preserve-color --max-size 4000
Multi-style transfer networks (Dumoulin et al. 2017):
    python synthesize.py --checkpoint checkpoints/multistyle_cpu/last.ckpt --list-styles
    python synthesize.py --checkpoint ... --input photo.jpg --style-index 2
    python synthesize.py --checkpoint ... --input photo.jpg --mix 0=0.5 3=0.5
Super-resolution networks (a small photo in, factor x its size out):
    python synthesize.py --checkpoint checkpoints/sr_cpu/last.ckpt --input small.png --output outputs/large.png
    python synthesize.py --checkpoint ... --input small_photos/ --output outputs/large/ --factor 4   # checked
    python synthesize.py --checkpoint ... --input small.png --no-histogram-match   # the network's raw output
Arbitrary-style networks (AdaIN, WCT: photo and any style image in):
    python synthesize.py --checkpoint checkpoints/adain_cpu/last.ckpt --input photo.jpg --style painting.jpg --alpha 0.8
    python synthesize.py --checkpoint ... --input photo.jpg --style a.jpg b.jpg --style-weights 0.7 0.3
    python synthesize.py --checkpoint ... --input photo.jpg --style a.jpg b.jpg --mask sky.png ground.png
    python synthesize.py --checkpoint checkpoints/wct_cpu/last.ckpt --style texture.jpg --size 512 512   # texture
Solid textures (noise in, volumes out; any block of an unbounded volume):
    python synthesize.py --checkpoint checkpoints/solid_cpu/last.ckpt --size 256 256 256 --output outputs/solid.npy
    python synthesize.py --checkpoint ... --size 64 64 64 --origin 1000 -20 5   # the block at (z, y, x) = ...
Any model:
    python synthesize.py --checkpoint ... --export exports/starry    # TorchScript (+ ONNX) + safetensors

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

from texnets.arbitrary_inference import DEFAULT_STYLE_SIZE, StyledNetwork, load_styles, texture_from_noise
from texnets.backends import BACKENDS
from texnets.checkpoints import LoadedGenerator, known_styles, load_generator, matches_histograms, style_name
from texnets.cli import environment, main_guard, pick_device, report_path, synchronize
from texnets.errors import TexnetsError
from texnets.export import export_generator
from texnets.flow import FLOW_METHODS, flow_estimator
from texnets.images import load_mask, save_image, save_json
from texnets.inference import Stylizer, choose_style, output_suffix, stylize_folder, stylize_image, stylize_video
from texnets.temporal import TemporalBlender
from texnets.tiling import generate, has_instance_norm
from texnets.video import is_video
from texnets.volumes import check_volume_size, generate_volume, save_slice_preview


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run a trained texnets checkpoint: sample textures or stylise "
                                                 "images, folders and videos.")
    parser.add_argument("--checkpoint", required=True, help="a checkpoint written by train.py (e.g. last.ckpt)")
    parser.add_argument("--input", help="transfer and super-resolution networks: an image, a folder of images or a "
                                        "video file")
    parser.add_argument("--size", type=int, nargs="+", metavar="N",
                        help="texture networks: H W; solid textures: D H W, or one edge for a cube "
                             "(default: the training size)")
    parser.add_argument("--origin", type=int, nargs=3, metavar=("Z", "Y", "X"),
                        help="solid textures: where the block starts in the unbounded volume (default 0 0 0)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed; the same seed gives the same samples")
    parser.add_argument("--count", type=int, default=1, help="number of samples")
    parser.add_argument("--tile", action="store_true",
                        help="make the output wrap around seamlessly (forces circular padding)")
    parser.add_argument("--output", default=None,
                        help="output image (.png/.jpg/.webp), folder (for a folder input) or video; with --count "
                             "N > 1, _000, _001 ... are appended (default: under outputs/; none with --export alone)")
    parser.add_argument("--block", type=int, default=None,
                        help="images larger than this on a side are processed in tiles of this size (default 1024); "
                             "solid textures are generated in blocks of this edge (default 128 on CPUs, 256 on GPUs), "
                             "which bounds memory")
    parser.add_argument("--style", nargs="+", metavar="IMAGE",
                        help="arbitrary-style networks (AdaIN, WCT): one or more style images (path, builtin:<name>, URL)")
    parser.add_argument("--style-weights", type=float, nargs="+", metavar="W",
                        help="arbitrary-style networks: how much of each --style (normalised to sum 1; default equal)")
    parser.add_argument("--mask", nargs="+", metavar="IMAGE",
                        help="arbitrary-style networks: one mask image per --style, the input's size; white = that "
                             "style, black = not; where no mask is white the photo stays")
    parser.add_argument("--style-index", type=int, metavar="K",
                        help="multi-style transfer networks: stylise with style K (default 0; --list-styles)")
    parser.add_argument("--mix", nargs="+", metavar="K=W",
                        help="multi-style transfer networks: a convex combination of styles, e.g. 0=0.7 2=0.3 "
                             "(weights sum to 1)")
    parser.add_argument("--list-styles", action="store_true",
                        help="transfer networks: print the styles the checkpoint knows, by index, and exit")
    parser.add_argument("--alpha", type=float, default=1.0,
                        help="arbitrary-style networks: content/style trade-off, 0 = the photo, 1 = full style")
    parser.add_argument("--style-size", type=int, default=DEFAULT_STYLE_SIZE,
                        help="arbitrary-style networks: resize each style image's shorter side to this (0: as is)")
    parser.add_argument("--levels", nargs="+", metavar="LAYER",
                        help="WCT networks: which levels to run, of those the checkpoint trained (default all)")
    parser.add_argument("--preserve-color", action="store_true",
                        help="transfer networks: keep the input's colours, stylise the luminance only")
    parser.add_argument("--max-size", type=int, help="transfer networks: downscale inputs whose longer side is larger")
    parser.add_argument("--batch-size", type=int, default=8, help="video frames per forward pass")
    parser.add_argument("--temporal", choices=["none", "blend"], default="none",
                        help="videos: blend each stylised frame with the previous one warped along the input's motion "
                             "where that motion is reliable, keeping the frame's stroke contrast (less flicker; costs "
                             "two optical flows per frame)")
    parser.add_argument("--temporal-strength", type=float, default=0.5,
                        help="videos with --temporal blend: how much of the previous frame to carry, in [0, 1)")
    parser.add_argument("--flow", choices=FLOW_METHODS, default="dis",
                        help="videos with --temporal blend: motion estimator, dis (OpenCV) or raft (cached weights only)")
    parser.add_argument("--factor", type=int,
                        help="super-resolution: the enlargement you expect (2, 4 or 8); checked against the "
                             "checkpoint's, which sets it")
    parser.add_argument("--no-histogram-match", action="store_true",
                        help="super-resolution: the network's raw output, without matching each channel's histogram "
                             "to the input's (Johnson et al. 2016's post-processing; on when the checkpoint's config "
                             "has it)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"],
                        help="transfer networks and solid textures: inference precision (bf16/fp16 on GPUs)")
    parser.add_argument("--channels-last", action="store_true", help="channels_last memory layout (GPU speed-up)")
    parser.add_argument("--backend", choices=BACKENDS, default="eager",
                        help="transfer networks: eager PyTorch, torch.compile (pays for videos and same-sized "
                             "batches), or onnxruntime (Johnson networks, fp32, CPU); tiled images run eagerly")
    parser.add_argument("--compile", action="store_true",
                        help="transfer networks: the same as --backend compile; solid textures: torch.compile the "
                             "network (volumes of equal blocks)")
    parser.add_argument("--exact", action="store_true",
                        help="solid textures: native CPU convolutions (slower), so that volumes generated in "
                             "different blocks agree voxel for voxel (see texnets.volumes)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 or mps")
    parser.add_argument("--export", metavar="DIR",
                        help="also write TorchScript (+ ONNX when the onnx package is installed) + safetensors to DIR")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def output_paths(output: str, count: int) -> list[Path]:
    path = Path(output)
    if count == 1:
        return [path]
    return [path.with_name(f"{path.stem}_{index:03d}{path.suffix}") for index in range(count)]


def sample_texture_net(loaded: LoadedGenerator, args: argparse.Namespace) -> dict:
    """Noise-driven generators: any size (a multiple of 2^(scales-1)), tiled when large."""
    if args.input:
        raise TexnetsError("a texture network makes images from noise and takes no --input; use --size and --seed")
    if args.origin:
        raise TexnetsError("--origin is for solid textures; a texture network's samples have no position")
    if args.size and len(args.size) != 2:
        raise TexnetsError(f"a texture network's --size is H W, not {' '.join(map(str, args.size))}")
    if args.output is None:
        args.output = f"outputs/{Path(args.checkpoint).resolve().parent.name}.png"
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
    block = args.block or 1024
    tiled = max(size) > block
    timings = []
    bar = tqdm(total=args.count, desc="samples", disable=args.quiet or args.count < 4, dynamic_ncols=True)
    for index, path in enumerate(paths):
        start = time.perf_counter()
        image = generate(generator, size, seed=args.seed, samples=[index], block=block, device=device,
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


def default_output(source: Path, run: str) -> Path:
    if source.is_dir():
        return Path("outputs") / f"{source.name}_{run}"
    suffix = source.suffix.lower() if is_video(source) else output_suffix(source)
    return Path("outputs") / f"{source.stem}_{run}{suffix}"


def stylize_transfer_net(loaded: LoadedGenerator, args: argparse.Namespace) -> dict:
    """Johnson networks: an image, a folder (mirrored into --output) or a video, in the chosen style."""
    if not args.input:
        raise TexnetsError("a transfer network stylises photos: pass --input IMAGE, FOLDER or VIDEO")
    network, style = choose_style(loaded, args.style_index, args.mix)
    if len(style["styles"]) > 1:
        chosen = " + ".join(f"{item['weight']:g} x {item['index']}: {item['name']}" for item in style["style_mix"])
        print(f"style: {chosen} (of {len(style['styles'])}; --list-styles)", file=sys.stderr)
    return {**stylize_inputs(network, args), **style}


def upscale_sr_net(loaded: LoadedGenerator, args: argparse.Namespace) -> dict:
    """Super-resolution networks: an image, a folder or a video, each enlarged exactly ×factor."""
    factor = loaded.generator.factor
    if not args.input:
        raise TexnetsError(f"a super-resolution network enlarges photos x{factor}: pass --input IMAGE, FOLDER or VIDEO")
    if args.factor is not None and args.factor != factor:
        raise TexnetsError(f"--factor {args.factor}: this network was trained for x{factor} only (train another with "
                           f"--model.generator.factor {args.factor})")
    if args.preserve_color:
        raise TexnetsError("--preserve-color is for style transfer; a super-resolution network keeps the colours")
    matched = matches_histograms(loaded.metadata) and not args.no_histogram_match
    return {**stylize_inputs(loaded.generator, args, f"a super-resolution network makes {factor}x the input's size",
                             histogram_match=matched),
            "factor": factor, "histogram_matching": matched}


def stylize_inputs(network: torch.nn.Module, args: argparse.Namespace,
                   output_size: str = "a transfer network keeps the input's size", histogram_match: bool = False) -> dict:
    """Any image-to-image network: an image, a folder (mirrored into --output) or a video."""
    if args.size or args.count != 1 or args.tile or args.origin:
        raise TexnetsError(f"--size, --count, --tile and --origin are for noise-driven generators; "
                           f"{output_size} (see --max-size)")
    if args.batch_size < 1:
        raise TexnetsError("--batch-size must be at least 1")
    source = Path(args.input)
    if not source.exists():
        raise TexnetsError(f"input not found: {source}")
    if args.temporal != "none" and not is_video(source):
        raise TexnetsError("--temporal blends consecutive video frames: the --input must be a video")
    output = Path(args.output) if args.output else default_output(source, Path(args.checkpoint).resolve().parent.name)
    args.output = str(output)
    device = pick_device(args.device)
    stylizer = Stylizer(network, device, args.precision, args.channels_last, args.block or 1024,
                        args.preserve_color, args.max_size, args.compile, args.backend, histogram_match)
    progress = not args.quiet
    start = time.perf_counter()
    if source.is_dir():
        result = stylize_folder(stylizer, source, output, progress=progress)
        items, unit = result["images"], "image"
    elif is_video(source):
        if not is_video(output):
            raise TexnetsError(f"a video input needs a video --output (.mp4, .mkv, .mov, .webm), not {output}")
        blender = TemporalBlender(flow_estimator(args.flow, device), args.temporal_strength) \
            if args.temporal == "blend" else None
        result = stylize_video(stylizer, source, output, args.batch_size, progress=progress, blender=blender)
        items, unit = result["frames"], "frame"
        if blender is not None:
            print(f"temporal blend: {result['temporal']['ms_per_frame']:.1f} ms per frame "
                  f"({result['temporal']['flow']})", file=sys.stderr)
    else:
        result = stylize_image(stylizer, source, output)
        result["outputs"] = [result.pop("output")]
        items, unit = 1, "image"
    seconds = time.perf_counter() - start
    timing = stylizer.timing(items)
    print(f"{items} {unit}{'s' if items != 1 else ''} in {seconds:.2f} s: {timing['ms_per_item']:.1f} ms per {unit} "
          f"in the network on {device} ({args.precision}, {stylizer.backend}), "
          f"{1000 * seconds / max(items, 1):.1f} ms with I/O", file=sys.stderr)
    return {**result, **timing, "seconds": round(seconds, 3), "device": str(device), "precision": args.precision,
            "preserve_color": args.preserve_color, "max_size": args.max_size, "compile": stylizer.backend == "compile",
            "backend": stylizer.backend}


def stylize_arbitrary(loaded: LoadedGenerator, args: argparse.Namespace) -> dict:
    """AdaIN and WCT networks: photos with any style images; with WCT and no --input, a texture from noise."""
    if not args.style:
        raise TexnetsError(f"a {loaded.model_type.replace('_', '-')} stylises with any style image: pass --style IMAGE "
                           "[IMAGE ...]")
    if args.style_size < 0:
        raise TexnetsError("--style-size must be at least 1 (or 0: the style images as they are)")
    network = loaded.generator
    masks = [load_mask(path) for path in args.mask] if args.mask else None
    styled = StyledNetwork(network, load_styles(args.style, args.style_size or None), args.style_weights, masks,
                           args.alpha, args.levels, mask_names=[f"the mask {path}" for path in args.mask or []])
    options = {"styles": list(args.style), "style_weights": styled.weights, "alpha": args.alpha,
               "levels": styled.levels, "masks": args.mask}
    if args.input:
        return {**stylize_inputs(styled, args), **options}
    if loaded.model_type != "wct_net":
        raise TexnetsError("texture synthesis from noise is WCT's (Li et al. 2017, section 4.3): pass --input PHOTO, "
                           "or use a WCT checkpoint")
    if masks is not None or args.origin or args.tile:
        raise TexnetsError("a texture from noise takes no --mask, --origin or --tile")
    if args.size and len(args.size) != 2:
        raise TexnetsError(f"a texture's --size is H W, not {' '.join(map(str, args.size))}")
    size = tuple(args.size or (256, 256))
    if min(size) < 16:
        raise TexnetsError("--size must be at least 16 16")
    if args.output is None:
        args.output = f"outputs/{Path(args.checkpoint).resolve().parent.name}_texture.png"
    device = pick_device(args.device)
    styled.to(device).eval()
    paths, timings = output_paths(args.output, args.count), []
    for index, path in enumerate(paths):
        start = time.perf_counter()
        image = texture_from_noise(styled, size, args.seed, index, device)
        synchronize(device)
        timings.append(time.perf_counter() - start)
        save_image(image.clamp(0, 1), path)
    print(f"{len(paths)} texture{'s' * (len(paths) > 1)} of {size[1]}x{size[0]} from noise: "
          f"{1000 * sum(timings) / len(timings):.0f} ms each on {device}", file=sys.stderr)
    return {"outputs": [str(p) for p in paths], "size": list(size), "seconds": timings, "device": str(device),
            "method": "universal texture synthesis (Li et al. 2017, section 4.3)", **options}


def sample_solid_texture_net(loaded: LoadedGenerator, args: argparse.Namespace) -> dict:
    """Solid textures: a block of the unbounded volume, generated block by block into a .npy file,
    with a PNG of its three orthogonal centre slices."""
    if args.input or args.tile:
        raise TexnetsError("a solid texture is made from noise: it takes no --input, and --tile does not apply "
                           "(the volume has no border: pick any block with --origin)")
    if args.output is None:
        args.output = f"outputs/{Path(args.checkpoint).resolve().parent.name}.npy"
    if Path(args.output).suffix.lower() != ".npy":
        raise TexnetsError(f"a solid texture is written as a .npy volume: --output {Path(args.output).with_suffix('.npy')}")
    training_size = loaded.metadata.get("training", {}).get("size") or [128, 128, 128]
    size = check_volume_size(args.size or training_size)
    origin = tuple(args.origin or (0, 0, 0))
    device = pick_device(args.device)
    # 128³ blocks keep a CPU run near 1.5 GB; a GPU does a 256³ block at once in 5-7 GB, twice as fast.
    block = args.block or (256 if device.type == "cuda" else 128)
    generator = loaded.generator.to(device)
    if args.channels_last or device.type == "cuda":
        # On GPUs channels_last_3d is always the faster layout for these 3D convolutions (2.7x on an H100).
        generator.to(memory_format=torch.channels_last_3d)
    if args.compile:
        generator.compile()
    results = []
    for index, path in enumerate(output_paths(args.output, args.count)):
        start = time.perf_counter()
        result = generate_volume(generator, size, origin, seed=args.seed, sample=index, block=block, device=device,
                                 precision=args.precision, exact=args.exact, path=path, progress=not args.quiet)
        result["seconds"] = time.perf_counter() - start
        preview = save_slice_preview(result.pop("slices"), path.with_name(f"{path.stem}_slices.png"))
        result["preview"] = str(preview)
        results.append(result)
    per_volume = sum(r["seconds"] for r in results) / len(results)
    print(f"{len(results)} volume{'s' if len(results) > 1 else ''} of {'x'.join(map(str, size))} (z y x) at "
          f"{' '.join(map(str, origin))} in {block}³ blocks: {per_volume:.2f} s per volume on {device}", file=sys.stderr)
    return {"outputs": [r["output"] for r in results], "previews": [r["preview"] for r in results],
            "size": list(size), "origin": list(origin), "block": block, "layout": "(D, H, W, 3) uint8 = z, y, x, RGB",
            "seconds_per_volume": per_volume, "seconds": [r["seconds"] for r in results], "device": str(device),
            "precision": args.precision, "exact": args.exact}


# Model type recorded in the checkpoint -> the function that runs it.
SAMPLERS = {
    "texture_net": sample_texture_net,
    "transformer_net": stylize_transfer_net,
    "solid_texture_net": sample_solid_texture_net,
    "adain_net": stylize_arbitrary,
    "wct_net": stylize_arbitrary,
    "sr_net": upscale_sr_net,
}
IMAGE_INPUT_SAMPLERS = (stylize_transfer_net, stylize_arbitrary, upscale_sr_net)   # what --input, videos and backends serve
ARBITRARY_STYLE_OPTIONS = ("style", "style_weights", "mask", "levels")


@main_guard
def main(argv=None) -> int:
    args = parse_args(argv)
    if not 0 <= args.temporal_strength < 1:
        raise TexnetsError(f"--temporal-strength must be in [0, 1), not {args.temporal_strength}")
    if args.temporal == "none" and (args.flow != "dis" or args.temporal_strength != 0.5):
        raise TexnetsError("--flow and --temporal-strength are for --temporal blend")
    if args.temporal != "none" and not args.input:
        raise TexnetsError("--temporal blends consecutive video frames: pass --input VIDEO")
    if args.count < 1:
        raise TexnetsError("--count must be at least 1")
    if args.block is not None and args.block < 1:
        raise TexnetsError("--block must be at least 1")
    loaded = load_generator(args.checkpoint)
    transfer = loaded.model_type == "transformer_net"
    if (args.style_index is not None or args.mix or args.list_styles) and not transfer:
        raise TexnetsError(f"--style-index, --mix and --list-styles are for transfer networks; this is a "
                           f"{loaded.model_type.replace('_', '-')}")
    if args.list_styles:
        for index, spec in enumerate(known_styles(loaded.metadata)):
            print(f"{index}: {style_name(spec)}" + (f"  ({spec})" if style_name(spec) != spec else ""))
        return 0
    report = {"command": " ".join(["synthesize.py", *(sys.argv[1:] if argv is None else argv)]),
              "checkpoint": str(args.checkpoint), **loaded.report(), "environment": environment()}
    if args.export:
        network, extra = loaded.generator, {"checkpoint": str(args.checkpoint), "step": loaded.global_step}
        if loaded.model_type == "sr_net" and matches_histograms(loaded.metadata):
            extra["postprocess"] = ("not in the exported graph: match each output channel's histogram to the "
                                    "input's (Johnson et al. 2016, section 4.2; texnets.color.match_histograms), as "
                                    "synthesize.py does for this checkpoint")
        if transfer and network.styles > 1:
            if args.style_index is None and not args.mix:
                raise TexnetsError(f"this network knows {network.styles} styles and exports one at a time: add "
                                   f"--style-index K or --mix K1=W1 K2=W2 (--list-styles shows them)")
            network, style = choose_style(loaded, args.style_index, args.mix)
            extra["style_mix"] = style["style_mix"]
        report["export"] = export_generator(network, args.export, extra=extra)
        print(f"exported to {args.export}", file=sys.stderr)
        if args.output is None and args.input is None:
            save_json(report, Path(args.export) / "report.json")
            return 0
    sampler = SAMPLERS.get(loaded.model_type)
    if sampler is None:
        raise TexnetsError(f"synthesize.py cannot sample {loaded.model_type!r} models yet")
    for flag, given in (("--factor", args.factor is not None), ("--no-histogram-match", args.no_histogram_match)):
        if given and sampler is not upscale_sr_net:
            raise TexnetsError(f"{flag} is for super-resolution checkpoints; this is a "
                               f"{loaded.model_type.replace('_', '-')}")
    if args.temporal != "none" and sampler not in IMAGE_INPUT_SAMPLERS:
        raise TexnetsError(f"--temporal is for networks that stylise videos; a {loaded.model_type.replace('_', '-')} "
                           "makes images from noise")
    if args.backend != "eager" and (sampler not in IMAGE_INPUT_SAMPLERS or not args.input):
        raise TexnetsError(f"--backend {args.backend} is for networks that stylise photos (--input); use --compile "
                           "for solid textures")
    given = [name for name in ARBITRARY_STYLE_OPTIONS if getattr(args, name)] + ["alpha"] * (args.alpha != 1.0)
    if sampler is not stylize_arbitrary and given:
        raise TexnetsError(f"--{given[0].replace('_', '-')} is for arbitrary-style checkpoints (AdaIN, WCT); this "
                           f"{loaded.model_type.replace('_', '-')} has its style built in")
    report.update(sampler(loaded, args))
    output = Path(args.output)
    save_json(report, output / "report.json" if output.is_dir() else report_path(output))
    print(f"wrote {', '.join(report['outputs'][:3])}{' ...' if len(report['outputs']) > 3 else ''}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
