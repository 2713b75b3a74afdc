"""What the studio's tabs do, as plain functions on files and numbers: no Gradio here, so each is tested directly.

Every function that makes a result writes it into a fresh folder of its own (``Workspace.folder``) with the JSON
report the command line would write beside it, and returns the paths: two sessions never share a file. Bad input
raises ``TexnetsError`` with one line, which the page shows as a message.
"""
from __future__ import annotations

import copy
import math
import queue
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from texnets import optim
from texnets.cli import environment, synchronize
from texnets.errors import TexnetsError
from texnets.images import read_image, resize, save_image, save_json, to_uint8
from texnets.inference import Stylizer
from texnets.losses import STYLE_LOSSES
from texnets.studio import DEFAULT_MAX_MEGAPIXELS
from texnets.studio.catalog import Catalog
from texnets.studio.kinds import MODEL_KINDS, SOLID, STYLIZE, TEXTURE, model_types
from texnets.tiling import generate
from texnets.vgg import GATYS_STYLE_LAYERS, GATYS_TEXTURE_LAYERS, VGGEncoder
from texnets.volumes import AXES, check_volume_size, generate_volume, save_slice_preview

OPTIMIZE_METHODS = ("texture", "style")
MAX_OPTIMIZE_SIDE = 512      # pixels optimised per side: beyond this a CPU takes minutes per step
MAX_OPTIMIZE_STEPS = 2000
MAX_TEXTURE_SIDE = 4096      # texture networks tile beyond 1024, so this is bounded by time, not memory
MAX_SOLID_EDGE = 256         # 256³ is 50 MB of .npy and about a minute on 2 CPU cores


@dataclass
class Result:
    image: Path                  # what the page shows
    files: list[Path]            # the downloads: the result itself, its JSON report, any extra output
    summary: str                 # one line for the page
    report: dict


class Workspace:
    """A private folder per app (removed by ``close``) with a fresh sub-folder per result."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(tempfile.mkdtemp(prefix="texnets-studio-", dir=root))

    def folder(self, kind: str) -> Path:
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
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as pil:
                width, height = pil.size
    except UnidentifiedImageError:
        raise TexnetsError(f"the {what} {name} is not an image (unrecognised format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise TexnetsError(f"the {what} {name} claims a size beyond Pillow's decompression-bomb limit; "
                           f"refused without decoding it") from None
    except OSError as exc:
        raise TexnetsError(f"the {what} {name} cannot be read ({str(exc).splitlines()[0][:100]})") from None
    if width * height > max_megapixels * 1e6:
        raise TexnetsError(f"the {what} {name} is {width}x{height} ({width * height / 1e6:.1f} megapixels); "
                           f"this studio takes up to {max_megapixels:g} megapixels")
    try:
        return read_image(path).unsqueeze(0)
    except TexnetsError as exc:
        raise TexnetsError(str(exc).replace(str(path), name)) from None


def report_header(run: str, endpoint: str) -> dict:
    """Where a result came from: the run (a folder name under --checkpoints), the endpoint and the machine."""
    return {"app": "texnets studio", "endpoint": endpoint, "checkpoint": run, "environment": environment()}


def _finish(folder: Path, image: Path, report: dict, summary: str, extra: list[Path] = ()) -> Result:
    report["outputs"] = [str(image.name), *(path.name for path in extra)]
    report_file = save_json(report, folder / "report.json")
    return Result(image, [image, *extra, report_file], summary, report)


# --------------------------------------------------------------------------------------------------
# Stylise

def stylize(catalog: Catalog, workspace: Workspace, run: str, photo: torch.Tensor, style: torch.Tensor | None = None,
            alpha: float = 1.0, preserve_color: bool = False, max_size: int | None = None,
            device: torch.device = torch.device("cpu"), photo_name: str = "photo", style_name: str | None = None
            ) -> Result:
    """A photo through a Stylise-tab network (Johnson, AdaIN, WCT), as ``synthesize.py --input`` does."""
    loaded = catalog.load(run, model_types(STYLIZE))
    kind = MODEL_KINDS[loaded.model_type]
    network = kind.network(loaded, style, alpha)
    stylizer = Stylizer(network, device, block=1024, preserve_color=preserve_color, max_size=max_size or None)
    image = stylizer.downscale(photo)
    output = stylizer(image)
    folder = workspace.folder("stylize")
    path = save_image(output, folder / "stylized.png")
    timing = stylizer.timing(1)
    report = {**report_header(run, "/stylize"), **loaded.report(), "input": photo_name,
              "size": [int(image.shape[-1]), int(image.shape[-2])], **timing, "device": str(device),
              "preserve_color": preserve_color, "max_size": max_size or None}
    if style is not None and kind.network is not None and style_name is not None:
        report.update(style=style_name, alpha=alpha)
    return _finish(folder, path, report, f"{image.shape[-1]}x{image.shape[-2]} in {timing['ms_per_item']:.0f} ms "
                                         f"({run}, {device})")


@dataclass
class LiveState:
    """One webcam session: the frame size that keeps up with ``budget_ms`` and the network bound to its style.

    Each frame is scaled so its longer side is ``side``; after each frame ``side`` moves towards the size whose
    time would be the budget (time grows with the pixel count, so by the square root of the ratio), by at most
    25% a frame so one slow frame does not halve the picture."""
    side: int = 256
    budget_ms: float = 120.0
    last_ms: float | None = None
    network: tuple | None = None    # (key, network): rebuilt when the run, style or alpha change
    style: tuple | None = None      # (upload path, decoded style image): the style is decoded once

    def adapt(self, milliseconds: float) -> None:
        self.last_ms = milliseconds
        factor = min(1.25, max(0.8, math.sqrt(self.budget_ms / max(milliseconds, 1e-3))))
        self.side = int(min(1024, max(64, round(self.side * factor / 16) * 16)))


def stylize_frame(catalog: Catalog, run: str, frame: np.ndarray, state: LiveState, style: torch.Tensor | None = None,
                  style_key: str | None = None, alpha: float = 1.0, preserve_color: bool = False,
                  device: torch.device = torch.device("cpu")) -> tuple[np.ndarray, str]:
    """One webcam frame (H, W, 3) uint8 -> the stylised frame, at the size ``state`` says keeps up, and a status
    line with the milliseconds it took."""
    loaded = catalog.load(run, model_types(STYLIZE))
    key = (run, id(loaded), style_key, alpha)
    if state.network is None or state.network[0] != key:
        state.network = (key, MODEL_KINDS[loaded.model_type].network(loaded, style, alpha))
    if frame.ndim != 3 or frame.shape[-1] < 3:
        raise TexnetsError("a webcam frame must be an RGB image")
    image = torch.from_numpy(np.array(frame[..., :3])).permute(2, 0, 1).float().div(255).unsqueeze(0)   # a copy: writable
    height, width = image.shape[-2:]
    scale = state.side / max(height, width)
    image = resize(image, (max(16, round(height * scale)), max(16, round(width * scale))))
    stylizer = Stylizer(state.network[1], device, block=None, preserve_color=preserve_color)
    start = time.perf_counter()
    output = stylizer(image)
    milliseconds = 1000 * (time.perf_counter() - start)
    state.adapt(milliseconds)
    status = f"{image.shape[-1]}x{image.shape[-2]}: {milliseconds:.0f} ms per frame (next frame {state.side} px)"
    return to_uint8(output).permute(1, 2, 0).numpy(), status


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
    image = generate(generator.to(device), size, seed=int(seed), samples=[0], block=1024, device=device)
    synchronize(device)
    seconds = time.perf_counter() - start
    folder = workspace.folder("texture")
    path = save_image(image.clamp(0, 1), folder / "texture.png")
    rounded = f" (rounded from {requested[1]}x{requested[0]}: sides are multiples of {step})" if size != requested else ""
    report = {**report_header(run, "/sample_texture"), **loaded.report(), "size": list(size),
              "seed": int(seed), "wraps": generator.config.padding == "circular", "seconds": round(seconds, 4),
              "device": str(device)}
    return _finish(folder, path, report, f"{size[1]}x{size[0]} in {1000 * seconds:.0f} ms{rounded}")


def solid_slice(volume_path: str | Path, axis: str, depth: int) -> np.ndarray:
    """The slice of a saved (D, H, W, 3) volume perpendicular to ``axis`` at ``depth`` (clamped), read without
    loading the rest of the volume."""
    if axis not in AXES:
        raise TexnetsError(f"the slice axis is one of {', '.join(AXES)}, not {axis!r}")
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
    size = check_volume_size([edge])
    folder = workspace.folder("solid")
    volume_path = folder / "solid.npy"
    start = time.perf_counter()
    result = generate_volume(loaded.generator.to(device), size, seed=int(seed), block=128, device=device,
                             path=volume_path)
    seconds = time.perf_counter() - start
    preview = save_slice_preview(result["slices"], folder / "solid_slices.png")
    depth = edge // 2 if depth is None else depth
    slice_path = folder / f"slice_{axis}.png"
    save_image(torch.from_numpy(solid_slice(volume_path, axis, depth)).permute(2, 0, 1).float().div(255).unsqueeze(0),
               slice_path)
    report = {**report_header(run, "/sample_solid"), **loaded.report(), "size": list(size),
              "seed": int(seed), "slice": {"axis": axis, "depth": int(min(max(depth, 0), edge - 1))},
              "layout": "(D, H, W, 3) uint8 = z, y, x, RGB", "seconds": round(seconds, 4), "device": str(device)}
    return _finish(folder, slice_path, report, f"{edge}³ voxels in {seconds:.2f} s; slice {axis} = {depth}",
                   [volume_path, preview])


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

    def stop(self) -> None:
        self.stopping.set()

    def _run(self, updates: queue.Queue) -> None:
        history: list[float] = []

        def monitor(step: int, image: torch.Tensor, loss: float) -> bool:
            history.append(loss)
            if step % self.every == 0 and step < self.steps:
                updates.put(Progress(step, image.detach().cpu().clone(), list(history)))
            return self.stopping.is_set()

        try:
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
            updates.put(result)
        except Exception as exc:   # handed to the page's thread, which shows TexnetsErrors and re-raises the rest
            updates.put(exc)

    def updates(self, workspace: Workspace) -> Iterator[Progress]:
        """Run in a worker thread and yield a ``Progress`` every ``every`` steps, then a last one with the result."""
        pending: queue.Queue = queue.Queue()
        worker = threading.Thread(target=self._run, args=(pending,), daemon=True, name="texnets-optimize")
        worker.start()
        try:
            while True:
                item = pending.get()
                if isinstance(item, Progress):
                    yield item
                    continue
                worker.join()
                if isinstance(item, Exception):
                    raise item
                yield Progress(item.steps, item.image, list(item.history), self._finish(workspace, item))
                return
        finally:
            # A caller that stops listening (a closed browser tab) must not leave the optimisation running.
            self.stopping.set()

    def _finish(self, workspace: Workspace, result: optim.OptimResult) -> Result:
        folder = workspace.folder("optimize")
        path = save_image(result.image, folder / f"{self.method}.png")
        report = {"app": "texnets studio", "endpoint": "/optimize", "command": self.method,
                  "arguments": {"size": self.size, "steps": self.steps, "loss": self.loss, "seed": self.seed,
                                "layers": list(GATYS_TEXTURE_LAYERS if self.method == "texture"
                                               else GATYS_STYLE_LAYERS),
                                "optimizer": "lbfgs"},
                  **result.report(), "device": str(self.device), "environment": environment()}
        stopped = f", {result.stopped}" if result.stopped else ""
        summary = (f"loss {result.first_losses['total']:.4g} -> {result.losses['total']:.4g} in {result.steps} steps, "
                   f"{result.seconds:.1f} s{stopped}")
        return _finish(folder, path, report, summary)


__all__ = ["LiveState", "MAX_OPTIMIZE_SIDE", "MAX_SOLID_EDGE", "MAX_TEXTURE_SIDE", "OPTIMIZE_METHODS", "Optimization",
           "Progress", "Result", "Workspace", "read_upload", "report_header", "sample_solid", "sample_texture",
           "solid_slice", "stylize", "stylize_frame"]
