"""Checkpoints: what texnets records in them, how they are written, and how they are read back safely.

Every training task stores a ``"texnets"`` entry in its Lightning checkpoint::

    {"format": 1, "model_type": "texture_net", "texnets_version": "0.1.0",
     "generator": {...hyper-parameters...}, "generator_prefix": "generator.", "training": {...}}

so ``synthesize.py`` can rebuild the right generator without the training code and refuse anything
else. Checkpoints are only ever read with ``torch.load(weights_only=True)``: tensors, containers and
primitive values, never arbitrary pickled objects. This module does not import Lightning, so
inference stays quick to start.
"""
from __future__ import annotations

import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from texnets import __version__
from texnets.errors import TexnetsError, existing_file
from texnets.generators import GENERATORS, build_generator
from texnets.images import atomic_path

CHECKPOINT_FORMAT = 1   # bump when the "texnets" entry changes incompatibly
METADATA_KEY = "texnets"


def checkpoint_metadata(model_type: str, generator_config: dict, generator_prefix: str = "generator.",
                        training: dict | None = None) -> dict:
    """The ``"texnets"`` entry a task adds to its checkpoints (plain types only: weights_only-safe)."""
    return {"format": CHECKPOINT_FORMAT, "model_type": model_type, "texnets_version": __version__,
            "generator": dict(generator_config), "generator_prefix": generator_prefix,
            "training": dict(training or {})}


def save_atomically(checkpoint: dict[str, Any], path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file beside ``path``, fsync it, then rename it onto ``path``.

    A crash, SIGKILL or full disk during the write leaves the previous file at ``path`` untouched
    (see ``texnets.tasks.base.AtomicCheckpointIO`` for why Lightning's own writer is not enough).
    """
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            torch.save(checkpoint, handle)
            handle.flush()
            os.fsync(handle.fileno())


def _not_a_checkpoint(path: Path) -> str | None:
    """Why ``path`` cannot be a ``torch.save`` file, judged from its first bytes, or None if it may be one.

    torch.save writes a zip archive (or, before torch 1.6, a pickle, which starts with the PROTO opcode
    0x80). Anything else is refused here, before unpickling, so a YAML config or an image passed as
    --checkpoint is called what it is rather than reported as a pickle that weights_only refused."""
    with open(path, "rb") as handle:
        head = handle.read(512)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\x80"):
        return None
    if not head:
        return "it is empty"
    try:
        head.decode("utf-8")
        text = b"\x00" not in head
    except UnicodeDecodeError as exc:
        text = exc.start >= len(head) - 3  # only a multi-byte character cut off at the end of the read
    if text:
        hint = " (a config goes to train.py --config)" if path.suffix.lower() in (".yaml", ".yml") else ""
        return f"it is a text file{hint}"
    return "it is neither a zip archive nor a pickle, the two formats torch.save writes"


def read_checkpoint(path: str | os.PathLike) -> dict:
    """``torch.load(path, weights_only=True)`` with a one-line ``TexnetsError`` for every failure."""
    path = existing_file(path, "checkpoint", f" (try {Path(path) / 'last.ckpt'})")
    reason = _not_a_checkpoint(Path(path))
    if reason:
        raise TexnetsError(f"{path} is not a checkpoint: {reason}; pass a .ckpt file that train.py wrote")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only refuses pickled Python objects (classes, functions): not something texnets writes.
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else "unpickling failed"
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise TexnetsError(f"{path} holds pickled Python objects that a texnets checkpoint never contains;"
                               f" refusing to load it (weights_only=True)") from None
        raise TexnetsError(f"{path} is corrupt or not a checkpoint ({reason})") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError) as exc:
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise TexnetsError(f"{path} is corrupt or truncated, not a readable checkpoint ({reason})") from None
    if not isinstance(checkpoint, dict):
        raise TexnetsError(f"{path} is not a texnets checkpoint (it holds a {type(checkpoint).__name__})")
    return checkpoint


def checked_metadata(checkpoint: dict, path: str | os.PathLike = "checkpoint") -> dict:
    """The checkpoint's ``"texnets"`` entry, after checking this texnets can use it."""
    meta = checkpoint.get(METADATA_KEY)
    if not isinstance(meta, dict) or "model_type" not in meta:
        raise TexnetsError(f"{path} is not a texnets checkpoint (no model type recorded in it); "
                           f"synthesize.py reads the checkpoints train.py writes")
    written_by = meta.get("texnets_version", "?")
    if int(meta.get("format", 0)) > CHECKPOINT_FORMAT:
        raise TexnetsError(f"{path} was written by texnets {written_by} in checkpoint format {meta['format']};"
                           f" this texnets ({__version__}) reads format {CHECKPOINT_FORMAT} or older: upgrade texnets")
    if meta["model_type"] not in GENERATORS:
        raise TexnetsError(f"{path} holds a {meta['model_type']!r} model, which this texnets ({__version__}) "
                           f"does not know; it knows {', '.join(sorted(GENERATORS))}")
    return meta


@dataclass
class LoadedGenerator:
    model_type: str
    generator: torch.nn.Module   # in eval mode, on the CPU
    metadata: dict               # the checkpoint's "texnets" entry
    global_step: int | None

    def report(self) -> dict:
        """What a report says of the network that made an output (synthesize.py's and the studio's)."""
        return {"model_type": self.model_type, "checkpoint_step": self.global_step,
                "generator": self.metadata.get("generator"), "training": self.metadata.get("training")}


def generator_state(checkpoint: dict, prefix: str) -> dict[str, torch.Tensor]:
    state = checkpoint.get("state_dict")
    if not isinstance(state, dict):
        raise TexnetsError("the checkpoint has no state_dict")
    return {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}


def load_generator(path: str | os.PathLike) -> LoadedGenerator:
    """Rebuild the generator stored in a texnets checkpoint (no training code, no VGG needed)."""
    checkpoint = read_checkpoint(path)
    meta = checked_metadata(checkpoint, path)
    generator = build_generator(meta["model_type"], meta.get("generator", {}))
    state = generator_state(checkpoint, meta.get("generator_prefix", "generator."))
    try:
        generator.load_state_dict(state)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())[:200]
        raise TexnetsError(f"{path}: the weights do not fit a {meta['model_type']} with the recorded "
                           f"hyper-parameters ({detail})") from None
    return LoadedGenerator(meta["model_type"], generator.eval(), meta, checkpoint.get("global_step"))


def style_name(spec: str) -> str:
    """A style's file name, from a path, ``builtin:<name>`` or a URL (checksum fragment dropped)."""
    spec = str(spec).split("#")[0].rstrip("/")
    return spec.rsplit("/", 1)[-1] if "/" in spec else spec


def known_styles(metadata: dict) -> list[str]:
    """The styles a transfer checkpoint knows, in index order: ``training.styles``, or the one ``training.style``
    of checkpoints written before networks learnt several."""
    training = metadata.get("training") or {}
    styles = training.get("styles") or ([training["style"]] if training.get("style") else [])
    count = int((metadata.get("generator") or {}).get("styles", 1))
    return list(styles) if len(styles) == count else [f"style {index}" for index in range(count)]


def matches_histograms(metadata: dict) -> bool:
    """Whether a super-resolution checkpoint's outputs are histogram-matched to their inputs (Johnson et al. 2016's
    post-processing): ``training.postprocess``; checkpoints written before it was recorded follow the paper."""
    return (metadata.get("training") or {}).get("postprocess", "histogram_matching") == "histogram_matching"


__all__ = ["CHECKPOINT_FORMAT", "LoadedGenerator", "checked_metadata", "checkpoint_metadata",
           "generator_state", "known_styles", "load_generator", "matches_histograms", "read_checkpoint",
           "style_name", "save_atomically"]
