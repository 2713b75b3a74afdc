"""Image input and output: files, built-in images, cached URLs; resizing; atomic saving; labelled grids.

Inside texnets an image is a float tensor, RGB, in [0, 1], shaped (N, 3, H, W). Everything that
arrives in another form (grayscale, RGBA, palette, CMYK, 16-bit, EXIF-rotated) is converted here.
Every user-facing failure is a ``TexnetsError`` with a one-line message.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import urllib.request
import warnings
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError
from torchvision.utils import make_grid

from texnets.errors import TexnetsError, existing_file

# Photographs and textures shipped inside scikit-image (no download), usable as ``builtin:<name>``.
BUILTIN_IMAGES = {
    "coffee": "coffee",                 # cup of coffee on a table (content)
    "astronaut": "astronaut",           # Eileen Collins portrait (content)
    "chelsea": "chelsea",               # a cat (content)
    "rocket": "rocket",                 # launch pad (content)
    "immunohistochemistry": "immunohistochemistry",  # stained tissue: a colourful stochastic texture
    "hubble": "hubble_deep_field",      # galaxies on black (texture)
    "brick": "brick",                   # grayscale brick wall (texture)
    "grass": "grass",                   # grayscale grass (texture)
    "gravel": "gravel",                 # grayscale gravel (texture)
}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")


def cache_dir() -> Path:
    """Where downloads are kept: $TEXNETS_CACHE, else $XDG_CACHE_HOME/texnets, else ~/.cache/texnets."""
    root = os.environ.get("TEXNETS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "texnets")
    return Path(root)


# --------------------------------------------------------------------------------------------------
# Reading

def _pil_to_tensor(pil: Image.Image) -> torch.Tensor:
    """Any Pillow mode -> (3, H, W) float in [0, 1]: gray and 16-bit replicated, alpha dropped, CMYK and
    palette converted."""
    if pil.mode in ("I;16", "I;16B", "I;16L", "I"):
        scale = 65535.0 if pil.mode.startswith("I;16") or np.asarray(pil).max() > 255 else 255.0
        array = np.asarray(pil, dtype=np.float32) / scale
        return torch.from_numpy(array).clamp(0, 1).unsqueeze(0).expand(3, -1, -1).clone()
    if pil.mode == "P":
        pil = pil.convert("RGBA")  # palette transparency survives only through RGBA
    array = np.asarray(pil.convert("RGB"))
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255.0


def read_image(path: str | os.PathLike, draft: int | None = None) -> torch.Tensor:
    """Decode an image file to a (3, H, W) float tensor in [0, 1], honouring EXIF orientation.

    ``draft``: a JPEG may be decoded at 1/2, 1/4 or 1/8 scale as long as both sides stay at least
    this long (libjpeg's DCT scaling: several times faster for training crops of large photos).

    Decoded with Pillow rather than torchvision.io: torchvision 0.29 deprecates its decoders, and its
    PNG decoder crashes the process (segfault) on corrupt data, where Pillow raises an error we can
    report in one line.
    """
    path = existing_file(path, "image")
    try:
        with Image.open(path) as pil:
            fmt = pil.format
            if draft and fmt == "JPEG":
                pil.draft("RGB", (draft, draft))
            pil.load()
            return _pil_to_tensor(ImageOps.exif_transpose(pil))
    except UnidentifiedImageError:
        raise TexnetsError(f"not an image file (unrecognised format): {path}") from None
    except (OSError, ValueError, SyntaxError, zlib.error, Image.DecompressionBombError) as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        kind = f"{fmt} image" if "fmt" in locals() else "image"
        raise TexnetsError(f"truncated or corrupt {kind}: {path} ({reason[:100]})") from None


def _builtin(name: str) -> torch.Tensor:
    if name not in BUILTIN_IMAGES:
        raise TexnetsError(f"unknown built-in image {name!r}; choose one of {', '.join(sorted(BUILTIN_IMAGES))}")
    import skimage.data  # imported lazily: only built-ins need it
    array = getattr(skimage.data, BUILTIN_IMAGES[name])()
    image = torch.from_numpy(np.ascontiguousarray(array)).float() / 255.0
    if image.ndim == 2:
        image = image.unsqueeze(0).expand(3, -1, -1)
    else:
        image = image[..., :3].permute(2, 0, 1)
    return image.contiguous()


def fetch_url(url: str, sha256: str | None = None, timeout: float = 30.0) -> Path:
    """Download ``url`` once into the cache and return the local path.

    A ``#sha256=<hex>`` suffix on the URL (or ``sha256=``) is checked against the file; a mismatch
    deletes the download. Offline, an uncached URL raises a one-line error asking for a local path.
    """
    url, _, fragment = url.partition("#")
    if fragment.startswith("sha256="):
        sha256 = sha256 or fragment[len("sha256="):]
    name = os.path.basename(url.split("?")[0]) or "download"
    target = cache_dir() / "downloads" / f"{hashlib.sha256(url.encode()).hexdigest()[:16]}_{name}"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, atomic_path(target) as tmp:
                Path(tmp).write_bytes(response.read())
        except TexnetsError:
            raise
        except Exception as exc:
            raise TexnetsError(f"cannot download {url} ({type(exc).__name__}: {exc}); "
                               f"offline? download it elsewhere and pass a local path instead") from None
    if sha256:
        digest = hashlib.sha256(target.read_bytes()).hexdigest()
        if digest != sha256.lower():
            target.unlink(missing_ok=True)
            raise TexnetsError(f"checksum mismatch for {url}: expected sha256 {sha256}, got {digest}")
    return target


def resize(image: torch.Tensor, size: int | tuple[int, int] | None) -> torch.Tensor:
    """Resize with antialiasing. ``size`` int: shorter side; (H, W): exact; None: unchanged."""
    if size is None:
        return image
    if isinstance(size, (list, tuple)):
        size = [int(s) for s in size]
        if len(size) == 1:
            size = size[0]
        elif size == list(image.shape[-2:]):
            return image  # already that exact size
    return TF.resize(image, size if isinstance(size, list) else [int(size)], antialias=True).clamp(0, 1)


def load_image(spec: str | os.PathLike, size: int | tuple[int, int] | None = None,
               what: str = "image") -> torch.Tensor:
    """Load a path, ``builtin:<name>`` or an http(s) URL as a (1, 3, H, W) tensor in [0, 1].

    ``size`` resizes (int: shorter side; (H, W): exact). Upsampling an image beyond its native
    resolution is allowed but warned about, since it blurs the statistics the losses match.
    """
    spec = str(spec)
    if spec.startswith("builtin:"):
        image = _builtin(spec[len("builtin:"):])
    elif spec.startswith(("http://", "https://")):
        image = read_image(fetch_url(spec))
    else:
        image = read_image(spec)
    if size is not None:
        h, w = image.shape[-2:]
        if isinstance(size, (list, tuple)) and len(size) == 2:  # (H, W): upsampled if either side grows
            upsampled = size[0] > h or size[1] > w
        else:
            upsampled = (size[0] if isinstance(size, (list, tuple)) else size) > min(h, w)
        if upsampled:
            warnings.warn(f"the {what} {spec} is {w}x{h}, smaller than the requested size {size}: "
                          f"it is upsampled, which blurs its fine detail", stacklevel=2)
        image = resize(image, size)
    return image.unsqueeze(0).contiguous()


def load_mask(path: str | os.PathLike) -> torch.Tensor:
    """A mask image as (1, 1, H, W) in [0, 1]: its luminance (white = the region is in)."""
    image = read_image(path)
    return (0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2])[None, None]


def fit_mask(mask: torch.Tensor, size: Sequence[int], name: str = "mask") -> torch.Tensor:
    """``mask`` at an input's (H, W): resized when only the scale differs (an input downscaled by --max-size),
    refused in one line when the shapes disagree."""
    height, width = size
    mask_height, mask_width = mask.shape[-2:]
    if (mask_height, mask_width) == (height, width):
        return mask
    if abs(mask_width / mask_height - width / height) > 0.01 * width / height:
        raise TexnetsError(f"{name} is {mask_width}x{mask_height} but the input is {width}x{height}: "
                           "a mask must have the input's size (or its shape, scaled)")
    return resize(mask[0], (height, width))[None]


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files under ``folder`` (recursive), sorted by path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise TexnetsError(f"not a folder: {folder}")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


# --------------------------------------------------------------------------------------------------
# Writing

def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    A crash, Ctrl-C or error inside the block leaves no half-written ``path`` behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    """(3, H, W) or (1, 3, H, W) float in [0, 1] -> (3, H, W) uint8 on the CPU."""
    if image.ndim == 4:
        if image.shape[0] != 1:
            raise ValueError("to_uint8 takes one image")
        image = image[0]
    return (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()


def from_uint8(array: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 pixels (a decoded frame, a volume's slice, a drawn canvas) -> (3, H, W) float in [0, 1], a copy
    (so read-only or memory-mapped arrays are fine); the inverse of ``to_uint8``."""
    return torch.from_numpy(np.array(array[..., :3], dtype=np.uint8)).permute(2, 0, 1).float() / 255


def save_image(image: torch.Tensor, path: str | os.PathLike, quality: int = 95) -> Path:
    """Save one image atomically; the format follows the suffix (.png, .jpg/.jpeg, .webp).

    Pillow encodes (torchvision 0.29 deprecates its encoders); the temporary-file-then-rename keeps
    an interrupted save from leaving a half-written image.
    """
    path = Path(path)
    formats = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
    if path.suffix.lower() not in formats:
        raise TexnetsError(f"unsupported output format {path.suffix!r} for {path}; use .png, .jpg or .webp")
    pil = Image.fromarray(to_uint8(image).permute(1, 2, 0).numpy())
    options = {"quality": quality} if formats[path.suffix.lower()] in ("JPEG", "WEBP") else {}
    with atomic_path(path) as tmp:
        pil.save(tmp, format=formats[path.suffix.lower()], **options)
    return path


def write_text(text: str, path: str | os.PathLike) -> Path:
    """Write a text file (a markdown table, a report) atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
    return path


def save_json(data: dict, path: str | os.PathLike) -> Path:
    """Write a JSON report atomically (indentation for humans, sorted keys for diffs)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    return path


CAPTION_LINE_HEIGHT = 12  # Pillow's default font (10 px) with 2 px between lines


def wrap_caption(label: str, fits: Callable[[str], bool]) -> list[str]:
    """Break a caption into lines that each ``fits``, after spaces, commas, ``+`` or ``/`` where it can
    (layer lists such as ``gram relu1_1,relu2_1`` have no spaces), inside a word only when the word alone
    is too wide: every character of the label is kept."""
    lines, line = [], ""
    for token in re.split(r"(?<=[\s,+/])", label):
        if fits(line + token.rstrip()):
            line += token
            continue
        if line:
            lines.append(line.rstrip())
            line = ""
        while not fits(token.rstrip()) and len(token) > 1:  # a single word wider than a line
            cut = max([n for n in range(1, len(token)) if fits(token[:n])] or [1])
            lines.append(token[:cut])
            token = token[cut:]
        line = token
    if line.strip() or not lines:
        lines.append(line.rstrip())
    return lines


def labelled_grid(images: list[torch.Tensor], labels: list[str], columns: int | None = None,
                  cell: int | None = None) -> torch.Tensor:
    """Tile images (each (1, 3, H, W) or (3, H, W)) into one (3, H', W') image with a caption each.

    Images are resized to a common cell height first; captions are drawn by Pillow in a strip under
    each cell (torchvision draws text only inside boxes), wrapped onto as many lines as the longest
    needs, so a caption is never cut off however narrow the cell.
    """
    if len(images) != len(labels):
        raise ValueError("one label per image")
    tiles = [im[0] if im.ndim == 4 else im for im in images]
    cell = cell or max(t.shape[-2] for t in tiles)
    tiles = [resize(t.detach().float().cpu(), [cell, round(t.shape[-1] * cell / t.shape[-2])]) for t in tiles]
    width = max(t.shape[-1] for t in tiles)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    captions = [wrap_caption(label, lambda text: measure.textlength(text) <= width - 4) for label in labels]
    strip = 2 + CAPTION_LINE_HEIGHT * max(len(lines) for lines in captions)
    captioned = []
    for tile, lines in zip(tiles, captions):
        canvas = Image.new("RGB", (width, cell + strip), "white")
        canvas.paste(Image.fromarray(to_uint8(tile).permute(1, 2, 0).numpy()), (0, 0))
        ImageDraw.Draw(canvas).text((2, cell + 1), "\n".join(lines), fill="black", spacing=2)
        captioned.append(from_uint8(np.asarray(canvas)))
    return make_grid(captioned, nrow=columns or len(captioned), padding=2, pad_value=1.0)
