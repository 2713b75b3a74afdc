"""Running an image-to-image generator (a transfer or super-resolution network) on photos, folders and videos, and
choosing a multi-style network's style.

``Stylizer`` holds the generator on its device with the inference options (precision, memory
layout, tiling block, colour preservation, downscaling) and times the network alone, synchronising
the GPU, so ``synthesize.py`` can report milliseconds per image that mean what they say. Files are
read and written with texnets.images / texnets.video (atomic writes, one-line errors).
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from texnets.backends import prepare_network
from texnets.checkpoints import LoadedGenerator, known_styles, style_name
from texnets.cli import synchronize
from texnets.color import keep_content_colors, match_histograms
from texnets.errors import TexnetsError
from texnets.generators.transformer_net import check_style_weights
from texnets.images import IMAGE_SUFFIXES, list_images, read_image, resize, save_image
from texnets.temporal import TemporalBlender
from texnets.tiling import stylize
from texnets.video import is_variable_frame_rate, probe_video, read_frames, write_video

SAVE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Stylizer:
    """A generator ready for inference.

    Args:
        generator: an image-to-image ``nn.Module`` (e.g. TransformerNet), in eval mode.
        device: where it runs.
        precision: ``fp32``, ``bf16`` or ``fp16`` (autocast; the output is float32).
        channels_last: run in channels_last memory layout (faster convolutions on recent GPUs).
        block: images with a side longer than this are stylised in tiles (texnets.tiling.stylize).
        preserve_color: keep the input's colours, stylise the luminance only (Gatys et al. 2017).
        max_size: downscale inputs whose longer side exceeds this first (None: full resolution).
        backend: ``eager``, ``compile`` or ``onnxruntime`` (texnets.backends) for untiled inputs; ``compile``
            pays for videos and batches of same-sized photos (2.2-3.2x on an H100 in bf16; on a CPU see
            BENCHMARKS.md). Tiled images run eagerly.
        compile: the older spelling of ``backend="compile"``.
        histogram_match: map each output channel onto the histogram of the input's (super-resolution's
            post-processing, Johnson et al. 2016 section 4.2), once the whole output is assembled: a global
            mapping, so never tile by tile. Timed with the network, as part of the method.
    """

    generator: torch.nn.Module
    device: torch.device = torch.device("cpu")
    precision: str = "fp32"
    channels_last: bool = False
    block: int | None = 1024
    preserve_color: bool = False
    max_size: int | None = None
    compile: bool = False
    backend: str = "eager"
    histogram_match: bool = False
    network_seconds: list[float] = field(default_factory=list)

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise TexnetsError(f"--precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        if self.max_size is not None and self.max_size < 16:
            raise TexnetsError("--max-size must be at least 16")
        self.generator = self.generator.eval().to(self.device)
        if self.channels_last:
            self.generator = self.generator.to(memory_format=torch.channels_last)
        if self.compile:
            if self.backend not in ("eager", "compile"):
                raise TexnetsError(f"--compile and --backend {self.backend} disagree: pass one of them")
            self.backend = "compile"
        self._backend_network = prepare_network(self.generator, self.backend, self.device, self.precision,
                                                self.channels_last)

    def downscale(self, image: torch.Tensor) -> torch.Tensor:
        if self.max_size and max(image.shape[-2:]) > self.max_size:
            height, width = image.shape[-2:]
            scale = self.max_size / max(height, width)
            image = resize(image, (max(16, round(height * scale)), max(16, round(width * scale))))
        return image

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] -> stylised (N, 3, H, W) float on the CPU (factor·H × factor·W for super-resolution);
        the network time is recorded."""
        check_input = getattr(self.generator, "check_input", None)   # super-resolution: its own minimum
        if check_input is not None:
            check_input(tuple(images.shape[-2:]))
        elif min(images.shape[-2:]) < 16:
            raise TexnetsError(f"the input is {images.shape[-1]}x{images.shape[-2]}: at least 16 pixels per side, please")
        postprocess = keep_content_colors if self.preserve_color else None
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        synchronize(self.device)
        start = time.perf_counter()
        options = {"device": self.device, "dtype": PRECISIONS[self.precision], "postprocess": postprocess}
        if max(images.shape[-2:]) > (self.block or float("inf")):  # tiles, one image at a time
            outputs = [stylize(self.generator, image.unsqueeze(0), self.block, **options) for image in images]
        else:
            # `is None`, not `or`: truthiness of an nn.Module calls len(), which most generators lack.
            network = self.generator if self._backend_network is None else self._backend_network
            outputs = [stylize(network, images, None, **options)]
        output = torch.cat(outputs).clamp(0, 1)
        if self.histogram_match:
            output = match_histograms(output, images)
        synchronize(self.device)
        self.network_seconds.append(time.perf_counter() - start)
        return output

    def timing(self, items: int) -> dict:
        total = sum(self.network_seconds)
        return {"network_seconds": round(total, 4),
                "ms_per_item": round(1000 * total / items, 2) if items else None}


def parse_mix(items: list[str], styles: int) -> torch.Tensor:
    """``INDEX=WEIGHT`` pairs (synthesize.py's ``--mix 0=0.7 1=0.3``) -> (N,) mixing weights, checked: indices in
    range and a convex combination."""
    weights = torch.zeros(styles)
    for item in items:
        index, _, weight = item.partition("=")
        try:
            index, weight = int(index), float(weight)
        except ValueError:
            raise TexnetsError(f"--mix takes INDEX=WEIGHT pairs such as 0=0.7 1=0.3, not {item!r}") from None
        check_style_weights(index, styles)
        weights[index] += weight
    return check_style_weights(weights, styles)


def choose_style(loaded: LoadedGenerator, index: int | None = None, mix: list[str] | None = None
                 ) -> tuple[torch.nn.Module, dict]:
    """A transfer network ready to run, and what a report says of its style: a multi-style network (Dumoulin et al.
    2017) with style ``index`` or the ``mix`` pairs (default: style 0) baked into a plain TransformerNet, which
    tiles, compiles and exports like any; a single-style network as it is."""
    if index is not None and mix:
        raise TexnetsError("--style-index and --mix both choose the style: pass one of them")
    styles = loaded.generator.styles
    return bake_style(loaded, parse_mix(mix, styles) if mix else check_style_weights(index or 0, styles))


def bake_style(loaded: LoadedGenerator, weights: torch.Tensor | int) -> tuple[torch.nn.Module, dict]:
    """``choose_style`` for weights already made (an index or a convex combination, checked here): the network and
    ``style_report``."""
    network = loaded.generator
    weights = check_style_weights(weights, network.styles)
    if network.styles > 1:
        network = network.with_style(weights)
    return network, style_report(loaded, weights)


def style_report(loaded: LoadedGenerator, weights: torch.Tensor | int) -> dict:
    """What a report says of a transfer network's style: ``styles`` (every style the checkpoint knows, by file name
    and source) and ``style_mix`` (the chosen ones, with their weights)."""
    styles = known_styles(loaded.metadata)
    weights = check_style_weights(weights, loaded.generator.styles)
    chosen = [{"index": i, "name": style_name(styles[i]), "weight": round(float(w), 6)}
              for i, w in enumerate(weights.tolist()) if w > 0]
    listed = [{"index": i, "name": style_name(spec), "source": spec} for i, spec in enumerate(styles)]
    return {"styles": listed, "style_mix": chosen}


def output_suffix(path: Path) -> str:
    return path.suffix.lower() if path.suffix.lower() in SAVE_SUFFIXES else ".png"


def stylize_image(stylizer: Stylizer, source: str | Path, output: str | Path) -> dict:
    image = stylizer.downscale(read_image(source).unsqueeze(0))
    result = stylizer(image)
    save_image(result, output)
    return {"input": str(source), "output": str(output), "size": [int(image.shape[-1]), int(image.shape[-2])],
            "output_size": [int(result.shape[-1]), int(result.shape[-2])]}


def stylize_folder(stylizer: Stylizer, folder: str | Path, output_dir: str | Path, progress: bool = True) -> dict:
    """Every image under ``folder`` (recursive) into the same relative path under ``output_dir``;
    unreadable files are skipped with a warning each and counted."""
    folder, output_dir = Path(folder), Path(output_dir)
    sources = list_images(folder)
    if not sources:
        raise TexnetsError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    if output_dir.resolve() == folder.resolve():
        raise TexnetsError("--output must differ from the input folder: stylised images would replace the originals")
    written, skipped = [], []
    for source in tqdm(sources, desc="images", disable=not progress, dynamic_ncols=True):
        target = output_dir / source.relative_to(folder)
        target = target.with_suffix(output_suffix(target))
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            written.append(stylize_image(stylizer, source, target))
        except TexnetsError as exc:
            warnings.warn(f"skipped {source}: {exc}", stacklevel=2)
            skipped.append(str(source))
    if not written:
        raise TexnetsError(f"none of the {len(sources)} images in {folder} could be stylised")
    return {"outputs": [item["output"] for item in written], "skipped": skipped, "images": len(written)}


def stylize_video(stylizer: Stylizer, source: str | Path, output: str | Path, batch_size: int = 8,
                  progress: bool = True, blender: TemporalBlender | None = None) -> dict:
    """Stylise a video frame by frame, in batches, at its own frame rate, keeping its audio. With ``blender``
    (``synthesize.py --temporal blend``) each stylised frame is blended with the previous one along the motion;
    the time that takes is reported apart from the network's."""
    info = probe_video(source)
    if info.fps is None:
        raise TexnetsError(f"{source} has no frame rate that texnets can read")
    if is_variable_frame_rate(source):
        warnings.warn(f"{source} has a variable frame rate: the output is written at its average rate, "
                      f"{float(info.fps):.3f} fps, one frame after another", stacklevel=2)
    frames = read_frames(source, batch_size=batch_size, max_size=stylizer.max_size)
    blend_seconds = []

    def stylised_batches():
        for batch in frames:
            result = stylizer(batch)
            if blender is not None:
                start = time.perf_counter()
                result = blender(batch, result)
                blend_seconds.append(time.perf_counter() - start)
            yield result

    written = write_video(output, stylised_batches(), info.fps, audio_from=source, progress=progress,
                          total_frames=info.frames)
    report = {"input": str(source), "outputs": [written["path"]], "video": written, "frames": written["frames"]}
    if blender is not None:
        report["temporal"] = {"method": "blend", "flow": blender.label, **blender.summary(),
                              "ms_per_frame": round(1000 * sum(blend_seconds) / max(written["frames"], 1), 2)}
    return report


__all__ = ["PRECISIONS", "Stylizer", "bake_style", "choose_style", "output_suffix", "parse_mix", "style_report",
           "stylize_folder", "stylize_image", "stylize_video"]
