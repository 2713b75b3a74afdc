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

from texnets.checkpoints import LoadedGenerator, checked_metadata, load_generator, read_checkpoint
from texnets.errors import TexnetsError

CHECKPOINT_NAME = "last.ckpt"   # what train.py keeps up to date in every run folder
MAX_DEPTH = 3                   # run folders up to root/a/b/c: deep enough for sweeps, cheap to scan


@dataclass(frozen=True)
class Run:
    name: str          # the folder, relative to the root, with "/" separators
    path: Path
    model_type: str | None
    problem: str | None = None   # why it cannot be used, when it cannot

    @property
    def usable(self) -> bool:
        return self.problem is None


class Catalog:
    """The runs under ``root`` (scanned on creation and by ``refresh``) and a cache of their loaded generators.

    Loaded generators are shared by every session; the studio only runs them in eval mode under ``no_grad`` and
    copies one before changing it (``texnets.studio.functions``), so sharing leaks nothing between sessions.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise TexnetsError(f"--checkpoints {self.root} is not a folder (train.py writes runs under checkpoints/)")
        self._lock = threading.Lock()
        self._loaded: dict[tuple[Path, int, int], LoadedGenerator] = {}
        self.runs: dict[str, Run] = {}
        self.refresh()

    def refresh(self) -> dict[str, Run]:
        runs = {}
        for path in sorted(self.root.rglob(CHECKPOINT_NAME)):
            relative = path.parent.relative_to(self.root)
            if len(relative.parts) > MAX_DEPTH or not path.is_file():
                continue
            name = relative.as_posix() if relative.parts else self.root.resolve().name
            try:
                model_type, problem = checked_metadata(read_checkpoint(path), path)["model_type"], None
            except TexnetsError as exc:
                model_type, problem = None, str(exc)
            runs[name] = Run(name, path, model_type, problem)
        self.runs = runs
        return runs

    def names(self, model_types) -> list[str]:
        """The usable runs whose model type is one of ``model_types``, by name."""
        return [run.name for run in self.runs.values() if run.usable and run.model_type in model_types]

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
            stat = run.path.stat()
        except OSError:
            raise TexnetsError(f"{run.name}: its checkpoint has gone; refresh the list") from None
        key = (run.path, stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if key not in self._loaded:
                loaded = load_generator(run.path)   # a file rewritten since the scan is checked again here
                if loaded.model_type != run.model_type:
                    raise TexnetsError(f"{run.name} now holds a {loaded.model_type}; refresh the list")
                self._loaded = {k: v for k, v in self._loaded.items() if k[0] != run.path}
                self._loaded[key] = loaded
            return self._loaded[key]


__all__ = ["CHECKPOINT_NAME", "Catalog", "Run"]
