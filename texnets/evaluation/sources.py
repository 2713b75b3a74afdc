"""Image sources: what to read, in which pairs, streamed in batches."""
from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from texnets.errors import TexnetsError
from texnets.images import IMAGE_SUFFIXES, list_images, load_image, read_image, resize


def _has_glob(spec: str) -> bool:
    return any(char in spec for char in "*?[")


def is_image_set(spec: str) -> bool:
    """A folder or a glob pattern (as opposed to one image, ``builtin:`` name or URL)."""
    return Path(spec).is_dir() or (_has_glob(spec) and not Path(spec).exists())


def find_images(spec: str | os.PathLike, what: str = "images") -> list[Path]:
    """An image file, a folder (searched recursively) or a glob pattern -> sorted paths; refuses an empty set."""
    spec = str(spec)
    path = Path(spec)
    if path.is_dir():
        paths = list_images(path)
    elif path.is_file():
        paths = [path]
    elif _has_glob(spec):
        paths = sorted(Path(p) for p in glob.glob(spec, recursive=True)
                       if Path(p).is_file() and Path(p).suffix.lower() in IMAGE_SUFFIXES)
    else:
        raise TexnetsError(f"{what} not found: {spec}")
    if not paths:
        raise TexnetsError(f"no images in the {what} {spec} (looked for {' '.join(IMAGE_SUFFIXES)})")
    return paths


def check_images_open(paths: Sequence[Path]) -> None:
    """Open every file's header now (fast), so a non-image fails before minutes of work, not after.
    Truncated pixel data only shows when decoded; ``read_image`` reports that in one line too."""
    for path in paths:
        try:
            with Image.open(path):
                pass
        except UnidentifiedImageError:
            raise TexnetsError(f"not an image file (unrecognised format): {path}") from None
        except OSError as exc:
            raise TexnetsError(f"cannot read image {path} ({exc})".splitlines()[0]) from None


def pair_images(generated: Sequence[Path], references: Sequence[Path], by: str = "name") -> list[tuple[Path, Path]]:
    """Match each generated image with its reference.

    ``by="name"``: the same file name without suffix on both sides (``0007.png`` ~ ``0007.jpg``), any
    names, no integer requirement; every file must have a partner. ``by="order"``: the i-th of each
    sorted list, for differently named files; the counts must agree.
    """
    if by == "order":
        if len(generated) != len(references):
            raise TexnetsError(f"cannot pair {len(generated)} generated images with {len(references)} references:"
                               f" the counts differ")
        return list(zip(generated, references))
    if by != "name":
        raise TexnetsError(f"pairs are matched by 'name' or 'order', not {by!r}")
    for side, paths in (("generated", generated), ("reference", references)):
        stems = [p.stem for p in paths]
        duplicates = sorted({s for s in stems if stems.count(s) > 1})
        if duplicates:
            raise TexnetsError(f"two {side} images are named {duplicates[0]!r}; pairing by name needs unique names"
                               f" (or use --pairs order)")
    by_stem = {p.stem: p for p in references}
    unmatched = [p for p in generated if p.stem not in by_stem]
    extra = sorted(set(by_stem) - {p.stem for p in generated})
    if unmatched or extra:
        detail = (f"generated {unmatched[0].name} has no reference of that name" if unmatched
                  else f"reference {by_stem[extra[0]].name} has no generated image of that name")
        raise TexnetsError(f"mismatched pairs: {detail} ({len(unmatched)} generated and {len(extra)} reference"
                           f" images unmatched; --pairs order pairs sorted lists instead)")
    return [(p, by_stem[p.stem]) for p in generated]


def read_for_eval(path: Path, size=None) -> torch.Tensor:
    return resize(read_image(path), size)


def stream_batches(rows: Sequence[tuple[Path, ...]], batch_size: int, size=None, desc: str = "images",
                   progress: bool = True) -> Iterator[tuple[list[tuple[Path, ...]], tuple[torch.Tensor, ...]]]:
    """Yield ``(rows, tensors)``: up to ``batch_size`` rows (one path per column, e.g. generated and
    reference), read and stacked per column. A batch holds consecutive rows whose images share their
    sizes (a size change starts a new batch), so only one batch is ever in memory."""
    bar = tqdm(total=len(rows), desc=desc, unit="img", disable=not progress, leave=False, dynamic_ncols=True)
    pending_rows, pending = [], []
    for row in rows:
        images = tuple(read_for_eval(path, size) for path in row)
        shapes = tuple(im.shape for im in images)
        if pending and (len(pending) == batch_size or shapes != tuple(im.shape for im in pending[0])):
            yield pending_rows, tuple(torch.stack(column) for column in zip(*pending))
            bar.update(len(pending))
            pending_rows, pending = [], []
        pending_rows.append(row)
        pending.append(images)
    if pending:
        yield pending_rows, tuple(torch.stack(column) for column in zip(*pending))
        bar.update(len(pending))
    bar.close()


@dataclass
class Reference:
    """What generated images are compared with.

    ``exemplar``: one image (``image``) for every generated image. ``set``: a reference distribution
    (``paths``), for FID/KID. ``pairs``: ``paths[i]`` is the reference of the i-th generated image.
    """

    mode: str
    source: str
    paths: list[Path] = field(default_factory=list)
    image: torch.Tensor | None = None    # (1, 3, H, W), exemplar mode

    @classmethod
    def from_spec(cls, spec: str, generated: Sequence[Path], pairs_by: str | None = None,
                  size=None) -> tuple["Reference", list[tuple[Path, Path]]]:
        """What ``evaluate.py --reference`` names: an exemplar, a reference set, or (with ``pairs_by``) one
        reference per generated image; refuses pairs whose names or counts do not match."""
        if not is_image_set(spec):
            if pairs_by:
                raise TexnetsError("--pairs needs a folder or glob of references, not one image")
            return cls.exemplar(spec, size), []
        references = find_images(spec, "references")
        if pairs_by:
            pairs = pair_images(generated, references, pairs_by)
            return cls("pairs", spec, paths=[ref for _, ref in pairs]), pairs
        return cls("set", spec, paths=references), []

    @classmethod
    def exemplar(cls, spec: str, size=None) -> "Reference":
        """Load an exemplar (path, ``builtin:<name>`` or URL), resized like the generated images
        (``MetricOptions.size`` applies to streamed images only)."""
        return cls("exemplar", str(spec), image=load_image(spec, size, what="exemplar"))

    @property
    def count(self) -> int:
        return 1 if self.mode == "exemplar" else len(self.paths)

    def describe(self) -> str:
        return {"exemplar": "1 exemplar", "set": f"{self.count} reference images",
                "pairs": f"{self.count} paired references"}[self.mode]
