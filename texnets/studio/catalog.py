"""The run folders under ``--checkpoints``: the only checkpoints the studio ever reads.

Every run is named by its folder, relative to the root (``starry``, ``sweeps/starry_lr1e-3``); a request names a
run, never a path, so nothing outside the root can be opened through the page or its API. Checkpoints are read
with ``torch.load(weights_only=True)`` (``texnets.checkpoints``). A file that cannot be read is listed with its
one-line reason instead of stopping the app.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import torch

from texnets.checkpoints import LoadedGenerator, checked_metadata, known_styles, load_generator, read_checkpoint, style_name
from texnets.errors import TexnetsError
from texnets.generators.sr_net import SuperResolutionNetConfig

CHECKPOINT_NAME = "last.ckpt"   # what train.py keeps up to date in every run folder
MAX_DEPTH = 3                   # run folders up to root/a/b/c: deep enough for sweeps, cheap to scan


@dataclass(frozen=True)
class Run:
    name: str          # the folder, relative to the root, with "/" separators
    path: Path
    model_type: str | None
    problem: str | None = None   # why it cannot be used, when it cannot
    styles: tuple[str, ...] = ()  # a transfer network's styles by file name, in index order (several: Dumoulin et al.)
    factor: int | None = None     # a super-resolution network's enlargement

    @property
    def usable(self) -> bool:
        return self.problem is None


class Catalog:
    """The runs under ``root`` (scanned on creation and by ``refresh``) and a cache of their loaded generators.

    Loaded generators are moved to ``device`` once and then shared by every session; the studio only runs them in
    eval mode under ``no_grad`` and copies one before changing it (``texnets.studio.functions``), so sharing leaks
    nothing between sessions. Each file is loaded under its own lock, so a slow load holds up only the requests for
    that run.
    """

    def __init__(self, root: str | Path, device: torch.device | str = "cpu"):
        self.root = Path(root)
        if not self.root.is_dir():
            raise TexnetsError(f"--checkpoints {self.root} is not a folder (train.py writes runs under checkpoints/)")
        self.device = torch.device(device)
        self._lock = threading.Lock()                  # guards the dictionaries below, never held while loading
        self._file_locks: dict[Path, threading.Lock] = {}
        self._loaded: dict[Path, tuple[tuple, LoadedGenerator]] = {}
        self._described: dict[tuple, tuple] = {}   # file version -> (type, problem, styles, factor)
        self.runs: dict[str, Run] = {}
        self.refresh()

    @staticmethod
    def _version(path: Path) -> tuple:
        stat = path.stat()
        return path, stat.st_mtime_ns, stat.st_size

    def _describe(self, path: Path) -> tuple:
        """(model type, None, styles, factor) or (None, why it cannot be used, (), None), read once per version of
        the file; the styles and the factor come from the checkpoint's metadata, without building the network."""
        if not path.resolve().is_relative_to(self.root.resolve()):
            return None, f"{path} leads outside {self.root} (a link); the studio reads only what is under it", (), None
        key = self._version(path)
        if key not in self._described:
            try:
                metadata = checked_metadata(read_checkpoint(path), path)
            except TexnetsError as exc:
                self._described[key] = (None, str(exc), (), None)
            else:
                model_type = metadata["model_type"]
                styles = known_styles(metadata) if model_type == "transformer_net" else []
                factor = (metadata.get("generator") or {}).get("factor", SuperResolutionNetConfig.factor)
                self._described[key] = (model_type, None, tuple(map(style_name, styles)),
                                        int(factor) if model_type == "sr_net" else None)
        return self._described[key]

    def refresh(self) -> dict[str, Run]:
        """Scan the run folders again (a checkpoint is read only when it is new or has changed)."""
        runs = {}
        for depth in range(MAX_DEPTH + 1):   # level by level: never walks below MAX_DEPTH
            for path in sorted(self.root.glob("*/" * depth + CHECKPOINT_NAME)):
                if not path.is_file():
                    continue
                relative = path.parent.relative_to(self.root)
                name = relative.as_posix() if relative.parts else self.root.resolve().name
                runs[name] = Run(name, path, *self._describe(path))
        self.runs = runs
        return runs

    def names(self, model_types) -> list[str]:
        """The usable runs whose model type is one of ``model_types``, by name."""
        return [run.name for run in self.runs.values() if run.usable and run.model_type in model_types]

    def usable(self, name) -> Run | None:
        """The usable run ``name``, or None (an unknown name, an unusable run)."""
        run = self.runs.get(name) if isinstance(name, str) else None
        return run if run is not None and run.usable else None

    def model_type(self, name) -> str | None:
        """The model type of the usable run ``name``, or None (an unknown name, an unusable run)."""
        run = self.usable(name)
        return run.model_type if run is not None else None

    def problems(self) -> list[str]:
        return [f"{run.name}: {run.problem}" for run in self.runs.values() if not run.usable]

    def load(self, name: str, model_types) -> LoadedGenerator:
        """The generator of run ``name``, which must hold one of ``model_types``; loaded once per file version."""
        run = self.runs.get(name) if isinstance(name, str) else None
        if run is None:
            raise TexnetsError(f"no run named {name!r} under {self.root}; choose one the page lists")
        if not run.usable:
            raise TexnetsError(f"{run.name}: {run.problem}")
        if run.model_type not in model_types:
            raise TexnetsError(f"{run.name} holds a {run.model_type.replace('_', '-')}, which this tab does not run")
        try:
            version = self._version(run.path)
        except OSError:
            raise TexnetsError(f"{run.name}: its checkpoint has gone; refresh the list") from None
        with self._lock:
            file_lock = self._file_locks.setdefault(run.path, threading.Lock())
        with file_lock:
            cached = self._loaded.get(run.path)
            if cached is None or cached[0] != version:
                loaded = load_generator(run.path)   # a file rewritten since the scan is checked again here
                if loaded.model_type != run.model_type:
                    raise TexnetsError(f"{run.name} now holds a {loaded.model_type}; refresh the list")
                loaded.generator.to(self.device)
                cached = self._loaded[run.path] = (version, loaded)
            return cached[1]


__all__ = ["CHECKPOINT_NAME", "Catalog", "Run"]
