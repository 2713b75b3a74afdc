"""What the studio's tabs do, as plain functions on files and numbers: no Gradio here, so each is tested directly.

Every function that makes a result writes it into a fresh folder of its own (``Workspace.folder``) with the JSON
report the command line would write beside it, and returns the paths: two sessions never share a file. Bad input
raises ``TexnetsError`` with one line, which the page shows as a message.
"""
from __future__ import annotations

import copy
import math
import shutil
import tempfile
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from texnets import optim
from texnets.checkpoints import LoadedGenerator, matches_histograms
from texnets.cli import environment, synchronize
from texnets.degradation import bicubic_upscale
from texnets.errors import TexnetsError
from texnets.generators.transformer_net import check_style_weights
from texnets.images import from_uint8, read_image, resize, save_image, save_json, to_uint8
from texnets.inference import Stylizer, style_report
from texnets.losses import STYLE_LOSSES
from texnets.studio import DEFAULT_MAX_MEGAPIXELS
from texnets.studio.catalog import Catalog
from texnets.studio.kinds import (MODEL_KINDS, SOLID, STYLE_IMAGE, STYLE_MIX, STYLIZE, SUPER_RESOLVE, TEXTURE,
                                  model_types, run_controls)
from texnets.tiling import generate
from texnets.vgg import GATYS_STYLE_LAYERS, GATYS_TEXTURE_LAYERS, VGGEncoder
from texnets.volumes import AXES, check_volume_size, generate_volume, save_slice_preview

OPTIMIZE_METHODS = ("texture", "style")
MAX_OPTIMIZE_SIDE = 512      # pixels optimised per side: beyond this a CPU takes minutes per step
MAX_OPTIMIZE_STEPS = 2000
MAX_TEXTURE_SIDE = 4096      # texture networks tile beyond 1024, so this is bounded by time, not memory
MAX_SOLID_EDGE = 256         # 256³ is 50 MB of .npy and about a minute on 2 CPU cores
MAX_ELONGATION = 4           # Optimise: the longer side at most this many times the chosen size
KEEP_RESULTS_SECONDS = 3600  # results older than this are deleted when a new one is made (disk stays bounded)
UPLOAD_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")   # what Pillow may open: no EPS (Ghostscript)


@dataclass
class Result:
    image: Path                  # what the page shows
    files: list[Path]            # the downloads: the result itself, its JSON report, any extra output
    summary: str                 # one line for the page
    report: dict
    volume: Path | None = None   # a solid texture's .npy, also among the files
    baseline: Path | None = None  # super-resolution's bicubic enlargement, also among the files


class Workspace:
    """A private folder per app (removed by ``close``) with a fresh sub-folder per result; results older than
    ``keep_seconds`` are removed as new ones are made (by then Gradio has served its own copy)."""

    def __init__(self, root: str | Path | None = None, keep_seconds: float = KEEP_RESULTS_SECONDS):
        self.root = Path(tempfile.mkdtemp(prefix="texnets-studio-", dir=root))
        self.keep_seconds = keep_seconds

    def folder(self, kind: str) -> Path:
        cutoff = time.time() - self.keep_seconds
        for old in self.root.iterdir():
            try:
                if old.is_dir() and old.stat().st_mtime < cutoff:
                    shutil.rmtree(old, ignore_errors=True)
            except OSError:   # removed by a concurrent request meanwhile
                pass
        return Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=self.root))

    def owns(self, path: str | Path) -> bool:
        return Path(path).resolve().is_relative_to(self.root.resolve())

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def read_upload(path: str | Path | None, what: str = "image", max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
                name: str | None = None) -> torch.Tensor:
    """An uploaded image as (1, 3, H, W) in [0, 1]; one-line errors for a missing, non-image, corrupt or too
    large upload. The size is read from the header before anything is decoded, so a decompression bomb (a
    small file that claims a huge image) is refused without being expanded."""
    if not path:
        raise TexnetsError(f"no {what}: upload one first")
    name = name or Path(path).name
    try:
        # Only the header is read here; only formats a photo comes in are opened (EPS, say, would run Ghostscript).
        with Image.open(path, formats=UPLOAD_FORMATS) as pil:
            width, height = pil.size
    except UnidentifiedImageError:
        raise TexnetsError(f"the {what} {name} is not an image (not {', '.join(UPLOAD_FORMATS)})") from None
    except Image.DecompressionBombError:
        raise TexnetsError(f"the {what} {name} claims a size beyond Pillow's decompression-bomb limit; "
                           f"refused without decoding it") from None
    except (OSError, ValueError, SyntaxError, struct.error) as exc:
        reason = str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__
        raise TexnetsError(f"the {what} {name} cannot be read ({reason})") from None
    if width * height > max_megapixels * 1e6:
        raise TexnetsError(f"the {what} {name} is {width}x{height} ({width * height / 1e6:.1f} megapixels); "
                           f"this studio takes up to {max_megapixels:g} megapixels")
    try:
        return read_image(path).unsqueeze(0)
    except TexnetsError as exc:
        raise TexnetsError(str(exc).replace(str(path), name)) from None


def report_header(run: str | None, endpoint: str) -> dict:
    """Where a result came from: the run (a folder name under --checkpoints; None for an optimisation), the endpoint
    and the machine."""
    header = {"app": "texnets studio", "endpoint": endpoint, "environment": environment()}
    return header if run is None else {**header, "checkpoint": run}


def _finish(folder: Path, image: Path, report: dict, summary: str, extra: list[Path] = ()) -> Result:
    report["outputs"] = [image.name, *(path.name for path in extra)]
    report_file = save_json(report, folder / "report.json")
    return Result(image, [image, *extra, report_file], summary, report)


# --------------------------------------------------------------------------------------------------
# Stylise

def style_weights(styles: int, style: int = 0, blend_with: int | None = None, blend: float = 0.0) -> torch.Tensor:
    """A multi-style network's (N,) weights from the page's controls: ``style``, blended towards ``blend_with`` by
    ``blend`` (0: ``style`` alone, 1: ``blend_with`` alone), i.e. ``synthesize.py --mix style=1-blend
    blend_with=blend``. One-line errors for an index out of range or a blend outside [0, 1]."""
    blend = float(blend)
    if not 0 <= blend <= 1:
        raise TexnetsError(f"the blend is between 0 (the first style) and 1 (the second), not {blend:g}")
    weights = check_style_weights(int(style), styles)
    if blend_with is not None and blend > 0:
        weights = (1 - blend) * weights + blend * check_style_weights(int(blend_with), styles)
    return weights


def chosen_style(catalog: Catalog, run: str, loaded: LoadedGenerator, style: int = 0, blend_with: int | None = None,
                 blend: float = 0.0) -> torch.Tensor | None:
    """The weights of a run that knows several styles (``style_weights``); None for any other run, whose page hides
    the style controls, so whatever they last held is ignored."""
    if STYLE_MIX not in run_controls(catalog.usable(run)):
        return None
    return style_weights(loaded.generator.styles, style, blend_with, blend)


def mix_words(style_mix: list[dict]) -> str:
    """A report's ``style_mix`` in a few words for the summary: "udnie.jpg", "70% udnie.jpg + 30% starry_night.jpg"."""
    if len(style_mix) == 1:
        return style_mix[0]["name"]
    return " + ".join(f"{100 * part['weight']:.0f}% {part['name']}" for part in style_mix)


def stylize(catalog: Catalog, workspace: Workspace, run: str, photo: torch.Tensor, style: torch.Tensor | None = None,
            alpha: float = 1.0, preserve_color: bool = False, max_size: int | None = None,
            device: torch.device = torch.device("cpu"), photo_name: str = "photo", style_name: str | None = None,
            style_index: int = 0, blend_with: int | None = None, blend: float = 0.0) -> Result:
    """A photo through a Stylise-tab network (Johnson, AdaIN, WCT), as ``synthesize.py --input`` does; a
    multi-style network in ``style_index``, blended towards ``blend_with`` by ``blend`` (``style_weights``)."""
    loaded = catalog.load(run, model_types(STYLIZE))
    kind = MODEL_KINDS[loaded.model_type]
    weights = chosen_style(catalog, run, loaded, style_index, blend_with, blend)
    mix_report = {} if weights is None else style_report(loaded, weights)
    network = kind.network(loaded, style, alpha, weights)
    stylizer = Stylizer(network, device, block=1024, preserve_color=preserve_color, max_size=max_size or None)
    image = stylizer.downscale(photo)
    output = stylizer(image)
    folder = workspace.folder("stylize")
    path = save_image(output, folder / "stylized.png")
    timing = stylizer.timing(1)
    report = {**report_header(run, "/stylize"), **loaded.report(), "input": photo_name,
              "size": [int(image.shape[-1]), int(image.shape[-2])], **timing, "device": str(device),
              "preserve_color": preserve_color, "max_size": max_size or None, **mix_report}
    if STYLE_IMAGE in kind.controls:
        report.update(style=style_name, alpha=alpha)
    in_style = f"; {mix_words(mix_report['style_mix'])}" if mix_report else ""
    return _finish(folder, path, report, f"{image.shape[-1]}x{image.shape[-2]} in {timing['ms_per_item']:.0f} ms "
                                         f"({run}, {device}{in_style})")


@dataclass
class LiveState:
    """One webcam session: the frame size that keeps up with ``budget_ms`` and the network bound to its style.

    Each frame is scaled down so its longer side is at most ``side``; after each frame ``side`` moves towards the
    size whose time would be the budget (time grows with the pixel count, so by the square root of the ratio), by
    at most 25% a frame so one slow frame does not halve the picture, and never beyond the camera's own size."""
    side: int = 256
    budget_ms: float = 120.0
    network: tuple | None = None    # (key, network): rebuilt when the run, style, alpha or style mix change
    style: tuple | None = None      # (upload path, decoded style image): the style is decoded once

    def adapt(self, milliseconds: float, largest: int = 1024) -> None:
        factor = min(1.25, max(0.8, math.sqrt(self.budget_ms / max(milliseconds, 1e-3))))
        self.side = int(min(largest, 1024, max(64, round(self.side * factor / 16) * 16)))


def stylize_frame(catalog: Catalog, run: str, frame: np.ndarray, state: LiveState, style: torch.Tensor | None = None,
                  style_key: str | None = None, alpha: float = 1.0, preserve_color: bool = False,
                  device: torch.device = torch.device("cpu"), style_index: int = 0, blend_with: int | None = None,
                  blend: float = 0.0) -> tuple[np.ndarray, str]:
    """One webcam frame (H, W, 3) uint8 -> the stylised frame, at the size ``state`` says keeps up, and a status
    line with the milliseconds it took."""
    loaded = catalog.load(run, model_types(STYLIZE))
    weights = chosen_style(catalog, run, loaded, style_index, blend_with, blend)
    mix = None if weights is None else tuple(weights.tolist())
    key = (run, loaded, style_key, alpha, mix)   # the loaded object itself: a reloaded checkpoint is a new one
    if state.network is None or state.network[0] != key:
        state.network = (key, MODEL_KINDS[loaded.model_type].network(loaded, style, alpha, weights))
    if frame.ndim != 3 or frame.shape[-1] < 3:
        raise TexnetsError("a webcam frame must be an RGB image")
    image = from_uint8(frame).unsqueeze(0)
    stylizer = Stylizer(state.network[1], device, block=None, preserve_color=preserve_color, max_size=state.side)
    image = stylizer.downscale(image)
    start = time.perf_counter()
    output = stylizer(image)
    milliseconds = 1000 * (time.perf_counter() - start)
    state.adapt(milliseconds, largest=max(frame.shape[:2]))
    status = f"{image.shape[-1]}x{image.shape[-2]}: {milliseconds:.0f} ms per frame (next frame {state.side} px)"
    return to_uint8(output).permute(1, 2, 0).numpy(), status


# --------------------------------------------------------------------------------------------------
# Super-resolution

def super_resolve(catalog: Catalog, workspace: Workspace, run: str, image: torch.Tensor, histogram_match: bool = True,
                  device: torch.device = torch.device("cpu"), image_name: str = "image",
                  max_megapixels: float = DEFAULT_MAX_MEGAPIXELS) -> Result:
    """A small photo through a super-resolution network, exactly factor × its size, as ``synthesize.py --input``
    does: with the paper's histogram matching unless ``histogram_match`` is off (or the run was trained without
    it). The bicubic enlargement, the baseline, is written beside it for comparison. The output's size, not the
    upload's, is held to ``max_megapixels``: a ×4 network makes 16 times the pixels it is given."""
    loaded = catalog.load(run, model_types(SUPER_RESOLVE))
    factor = loaded.generator.factor
    height, width = (int(side) for side in image.shape[-2:])
    if height * width * factor ** 2 > max_megapixels * 1e6:
        raise TexnetsError(f"x{factor} of a {width}x{height} image is {factor * width}x{factor * height} "
                           f"({height * width * factor ** 2 / 1e6:.3g} megapixels); this studio makes up to "
                           f"{max_megapixels:g} megapixels: upload a smaller image")
    matched = matches_histograms(loaded.metadata) and bool(histogram_match)
    stylizer = Stylizer(loaded.generator, device, block=1024, histogram_match=matched)
    output = stylizer(image)
    folder = workspace.folder("super-resolve")
    path = save_image(output, folder / f"x{factor}.png")
    bicubic = save_image(bicubic_upscale(image, factor), folder / f"bicubic_x{factor}.png")
    timing = stylizer.timing(1)
    report = {**report_header(run, "/super_resolve"), **loaded.report(), "input": image_name,
              "input_size": [width, height], "size": [factor * width, factor * height], "factor": factor,
              "histogram_matching": matched, **timing, "device": str(device)}
    unmatched = "" if matched else ", not histogram-matched"
    result = _finish(folder, path, report, f"{width}x{height} -> {factor * width}x{factor * height} in "
                                           f"{timing['ms_per_item']:.0f} ms ({run}, {device}{unmatched})", [bicubic])
    result.baseline = bicubic
    return result


# --------------------------------------------------------------------------------------------------
# Textures and solid textures

def sample_texture(catalog: Catalog, workspace: Workspace, run: str, seed: int = 0, height: int = 256,
                   width: int = 256, tile: bool = False, device: torch.device = torch.device("cpu")) -> Result:
    """A texture-network sample in one forward pass (tiled beyond 1024 px), as ``synthesize.py --size`` does.
    A size that is not a multiple of the network's step is rounded to the nearest one, and the summary says so."""
    loaded = catalog.load(run, model_types(TEXTURE))
    generator = loaded.generator
    step = generator.size_multiple
    requested = (int(height), int(width))
    if min(requested) < 1 or max(requested) > MAX_TEXTURE_SIDE:
        raise TexnetsError(f"a texture's sides must be between 1 and {MAX_TEXTURE_SIDE} px, not {width}x{height}")
    size = tuple(max(step, round(side / step) * step) for side in requested)
    if tile and generator.config.padding != "circular":
        # The loaded generator is shared by every session: change a copy.
        generator = copy.deepcopy(generator)
        generator.set_padding("circular")
    start = time.perf_counter()
    image = generate(generator, size, seed=int(seed), samples=[0], block=1024, device=device)
    synchronize(device)
    seconds = time.perf_counter() - start
    folder = workspace.folder("texture")
    path = save_image(image.clamp(0, 1), folder / "texture.png")
    rounded = f" (rounded from {requested[1]}x{requested[0]}: sides are multiples of {step})" if size != requested else ""
    report = {**report_header(run, "/sample_texture"), **loaded.report(), "size": list(size),
              "seed": int(seed), "wraps": generator.config.padding == "circular", "seconds": round(seconds, 4),
              "device": str(device)}
    return _finish(folder, path, report, f"{size[1]}x{size[0]} in {1000 * seconds:.0f} ms{rounded}")


def check_axis(axis: str) -> None:
    if axis not in AXES:
        raise TexnetsError(f"the slice axis is one of {', '.join(AXES)}, not {axis!r}")


def solid_slice(volume_path: str | Path, axis: str, depth: int) -> np.ndarray:
    """The slice of a saved (D, H, W, 3) volume perpendicular to ``axis`` at ``depth`` (clamped), read without
    loading the rest of the volume."""
    check_axis(axis)
    volume = np.load(volume_path, mmap_mode="r")
    index = AXES.index(axis)
    depth = int(min(max(int(depth), 0), volume.shape[index] - 1))
    return np.ascontiguousarray(np.take(volume, depth, axis=index))


def sample_solid(catalog: Catalog, workspace: Workspace, run: str, seed: int = 0, edge: int = 64, axis: str = "z",
                 depth: int | None = None, device: torch.device = torch.device("cpu")) -> Result:
    """A cube of the solid texture (``.npy``, as ``synthesize.py`` writes it) and the slice along ``axis`` at
    ``depth`` (default the middle); the three centre slices go with it as a PNG."""
    loaded = catalog.load(run, model_types(SOLID))
    edge = int(edge)
    if not 1 <= edge <= MAX_SOLID_EDGE:
        raise TexnetsError(f"a solid texture's edge is between 1 and {MAX_SOLID_EDGE} voxels here, not {edge}")
    check_axis(axis)   # before the volume is made
    depth = edge // 2 if depth is None else int(min(max(int(depth), 0), edge - 1))
    size = check_volume_size([edge])
    folder = workspace.folder("solid")
    volume_path = folder / "solid.npy"
    start = time.perf_counter()
    result = generate_volume(loaded.generator, size, seed=int(seed), block=128, device=device, path=volume_path)
    seconds = time.perf_counter() - start
    preview = save_slice_preview(result["slices"], folder / "solid_slices.png")
    slice_path = folder / f"slice_{axis}.png"
    save_image(from_uint8(solid_slice(volume_path, axis, depth)), slice_path)
    report = {**report_header(run, "/sample_solid"), **loaded.report(), "size": list(size),
              "seed": int(seed), "slice": {"axis": axis, "depth": depth},
              "layout": "(D, H, W, 3) uint8 = z, y, x, RGB", "seconds": round(seconds, 4), "device": str(device)}
    result = _finish(folder, slice_path, report, f"{edge}³ voxels in {seconds:.2f} s; slice {axis} = {depth}",
                     [volume_path, preview])
    result.volume = volume_path
    return result


# --------------------------------------------------------------------------------------------------
# Optimise: Gatys texture synthesis and style transfer, watched while they run

@dataclass
class Progress:
    step: int
    image: torch.Tensor          # (1, 3, H, W) on the CPU
    history: list[float]         # the total loss at every step so far
    result: Result | None = None  # set on the last update only


@dataclass
class Optimization:
    """One optimisation run of the Optimise tab; ``stop()`` (the Stop button) ends it at the next step, keeping
    the current image."""
    method: str
    exemplar: torch.Tensor
    content: torch.Tensor | None = None
    size: int = 128
    steps: int = 100
    every: int = 5
    loss: str = "gram"
    seed: int = 0
    device: torch.device = torch.device("cpu")
    stopping: threading.Event = field(default_factory=threading.Event)
    worker: threading.Thread | None = None
    HEARTBEAT_SECONDS = 0.5   # how often ``updates`` yields when nothing new came: a closed tab is noticed soon

    def __post_init__(self):
        if self.method not in OPTIMIZE_METHODS:
            raise TexnetsError(f"the method is texture or style, not {self.method!r}")
        if self.method == "style" and self.content is None:
            raise TexnetsError("style transfer needs a content photo: upload one")
        if self.loss not in STYLE_LOSSES:
            raise TexnetsError(f"the style statistic is one of {', '.join(STYLE_LOSSES)}, not {self.loss!r}")
        if not 32 <= int(self.size) <= MAX_OPTIMIZE_SIDE:
            raise TexnetsError(f"the size is between 32 and {MAX_OPTIMIZE_SIDE} px, not {self.size}")
        if not 1 <= int(self.steps) <= MAX_OPTIMIZE_STEPS:
            raise TexnetsError(f"the steps are between 1 and {MAX_OPTIMIZE_STEPS}, not {self.steps}")
        self.size, self.steps, self.every = int(self.size), int(self.steps), max(1, int(self.every))
        # The size sets the shorter side: a long thin image would still be huge on its longer side.
        for name, image in (("texture or style image", self.exemplar), ("content photo", self.content)):
            if image is not None and max(image.shape[-2:]) > MAX_ELONGATION * min(image.shape[-2:]):
                raise TexnetsError(f"the {name} is {image.shape[-1]}x{image.shape[-2]}: more than {MAX_ELONGATION} "
                                   "times as long as it is wide; crop it first")

    def stop(self) -> None:
        self.stopping.set()

    def _run(self, channel: _Latest) -> None:
        history: list[float] = []

        def monitor(step: int, image: torch.Tensor, loss: float) -> bool:
            history.append(loss)
            if step % self.every == 0 and step < self.steps:
                channel.offer(Progress(step, image.detach().cpu().clone(), list(history)))
            return self.stopping.is_set()

        try:
            # As optimize.py: the seed fixes the noise start and any random projection (sliced Wasserstein); the
            # studio runs one optimisation at a time, so seeding the global generator affects only this run.
            torch.manual_seed(self.seed)
            # Gatys et al.: average pooling for textures, max pooling for style transfer (as optimize.py).
            if self.method == "texture":
                exemplar = resize(self.exemplar, self.size)
                encoder = VGGEncoder(GATYS_TEXTURE_LAYERS, pooling="avg").to(self.device)
                result = optim.synthesize_texture(exemplar, (self.size, self.size), GATYS_TEXTURE_LAYERS, self.loss,
                                                  self.steps, seed=self.seed, encoder=encoder, device=self.device,
                                                  progress=False, monitor=monitor)
            else:
                content = resize(self.content, self.size)
                style = resize(self.exemplar, self.size)
                result = optim.transfer_style(content, style, loss=self.loss, steps=self.steps, seed=self.seed,
                                              encoder={"pooling": "max"}, device=self.device, progress=False,
                                              monitor=monitor)
            channel.finish(result)
        except Exception as exc:   # handed to the page's thread, which shows TexnetsErrors and re-raises the rest
            channel.finish(exc)

    def updates(self, workspace: Workspace) -> Iterator[Progress | None]:
        """Run in a worker thread and yield the newest ``Progress`` (every ``every`` steps, skipping any the caller
        was too slow to take), ``None`` when nothing new came for ``HEARTBEAT_SECONDS``, and a last ``Progress``
        with the result."""
        channel = _Latest()
        self.worker = threading.Thread(target=self._run, args=(channel,), daemon=True, name="texnets-optimize")
        self.worker.start()
        try:
            while True:
                progress, final = channel.take(self.HEARTBEAT_SECONDS)
                if final is None:
                    yield progress
                    continue
                self.worker.join()
                if isinstance(final, Exception):
                    raise final
                yield Progress(final.steps, final.image, list(final.history), self._finish(workspace, final))
                return
        finally:
            # A caller that stops listening (a closed browser tab) must not leave the optimisation running.
            self.stopping.set()

    def _finish(self, workspace: Workspace, result: optim.OptimResult) -> Result:
        folder = workspace.folder("optimize")
        path = save_image(result.image, folder / f"{self.method}.png")
        layers = GATYS_TEXTURE_LAYERS if self.method == "texture" else GATYS_STYLE_LAYERS
        report = {**report_header(None, "/optimize"), "command": self.method,
                  "arguments": {"size": self.size, "steps": self.steps, "loss": self.loss, "seed": self.seed,
                                "layers": list(layers), "optimizer": "lbfgs"},
                  **result.report(), "device": str(self.device)}
        stopped = f", {result.stopped}" if result.stopped else ""
        summary = (f"loss {result.first_losses['total']:.4g} -> {result.losses['total']:.4g} in {result.steps} steps, "
                   f"{result.seconds:.1f} s{stopped}")
        return _finish(folder, path, report, summary)


class _Latest:
    """Worker -> page: only the newest progress is kept (a fast worker never queues images the page has not shown),
    and the final result or error is never dropped."""

    def __init__(self):
        self._ready = threading.Condition()
        self._progress: Progress | None = None
        self._final = None

    def offer(self, progress: Progress) -> None:
        with self._ready:
            self._progress = progress
            self._ready.notify()

    def finish(self, final) -> None:
        with self._ready:
            self._final = final
            self._ready.notify()

    def take(self, timeout: float) -> tuple[Progress | None, object]:
        """(the newest progress or None, the final result or None), waiting up to ``timeout`` for either."""
        with self._ready:
            if self._progress is None and self._final is None:
                self._ready.wait(timeout)
            progress, self._progress = self._progress, None
            if progress is not None:
                return progress, None
            return None, self._final


__all__ = ["LiveState", "MAX_OPTIMIZE_SIDE", "MAX_SOLID_EDGE", "MAX_TEXTURE_SIDE", "OPTIMIZE_METHODS", "Optimization",
           "Progress", "Result", "Workspace", "chosen_style", "mix_words", "read_upload", "report_header",
           "sample_solid", "sample_texture", "solid_slice", "style_weights", "stylize", "stylize_frame",
           "super_resolve"]
