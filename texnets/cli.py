"""What every front door (optimize.py, train.py, synthesize.py, evaluate.py, diffuse.py) shares: one-line
errors, warnings without source lines, device choice and synchronisation, the --size flag, the JSON
report written next to each output, markdown tables, and the CPU allocator setting (texnets.allocator)."""
from __future__ import annotations

import functools
import platform
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from texnets import __version__
from texnets.allocator import allocator_state, keep_freed_memory
from texnets.errors import TexnetsError


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=file or sys.stderr)


def main_guard(main: Callable[..., int | None]) -> Callable[..., int]:
    """Wrap a CLI ``main``: a TexnetsError (or a missing file) becomes one ``error:`` line and exit 2;
    Ctrl-C exits 130 without a traceback. Anything else is a bug and keeps its traceback. Freed CPU memory
    stays in the process from then on (texnets.allocator: CPU training steps 1.2x faster)."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs) -> int:
        warnings.showwarning = _one_line_warning
        keep_freed_memory()
        try:
            return int(main(*args, **kwargs) or 0)
        except TexnetsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except FileNotFoundError as exc:
            print(f"error: file not found: {exc.filename or exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130

    return wrapper


def pick_device(name: str | None = "auto") -> torch.device:
    """``auto`` is CUDA when available, else MPS, else CPU; an unavailable explicit choice is an error."""
    if name in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise TexnetsError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:1 or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TexnetsError(f"device {name} requested but CUDA is not available here; use --device cpu")
    return device


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously), so a timing around it means what it says."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def parse_size(values, minimum: int = 16, square: bool = False) -> int | tuple[int, int] | None:
    """A ``--size`` flag's values: one (the shorter side; with ``square``, a square's side) or two (H W),
    each at least ``minimum``. None stays None."""
    if values is None:
        return None
    values = [values] if isinstance(values, int) else list(values)
    if not 1 <= len(values) <= 2 or any(int(value) < minimum for value in values):
        one = "a square" if square else "shorter side"
        raise TexnetsError(f"--size takes one value ({one}) or two (H W), each at least {minimum}")
    values = [int(value) for value in values]
    if len(values) == 1:
        return (values[0], values[0]) if square else values[0]
    return values[0], values[1]


def layer_list(values) -> list[str]:
    """The one syntax of a layer list on every front door: one or more arguments (or YAML values), each a
    layer or several joined by commas, so ``relu1_1 relu2_1`` and ``relu1_1,relu2_1`` are the same list.
    (optimize.py's ``--layers`` takes several lists for a study: there each argument is one list.)"""
    values = [values] if isinstance(values, str) else list(values or [])
    return [layer for value in values for layer in str(value).split(",") if layer]


def markdown_table(headers: list[str], rows: list[list]) -> str:
    """A markdown table (no trailing newline); a ``|`` inside a cell is escaped."""
    lines = ["| " + " | ".join(str(cell) for cell in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def environment() -> dict:
    """Versions and machine, recorded in every report so each figure can be reproduced."""
    info = {"texnets": __version__, "torch": torch.__version__, "python": platform.python_version(),
            "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
            "threads": torch.get_num_threads(), "malloc": allocator_state(), "date": time.strftime("%Y-%m-%d")}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def report_path(output: str | Path) -> Path:
    """The JSON report that goes with an output file: ``out.png`` -> ``out.json``."""
    return Path(output).with_suffix(".json")
