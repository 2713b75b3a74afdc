"""Shared by every bench script: machine description and in-place update of one BENCHMARKS.md section."""
from __future__ import annotations

import os
import platform
import re
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
HEADER = ("# Benchmarks\n\nEvery figure below was produced by a script in `bench/`; each section names its command, "
          "machine and date. Re-run a script to refresh its section; the others are left as they are.\n")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no GPU"
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads){gpu}"


def today() -> str:
    return time.strftime("%Y-%m-%d")


def peak_rss_mb() -> float:
    """This process's peak resident memory (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def command_line(module: str) -> str:
    """A bench's command as typed (``python -m <module> ...``), with the thread count when one was set."""
    threads = os.environ.get("OMP_NUM_THREADS")
    arguments = list(sys.argv[1:])
    for index, argument in enumerate(arguments[:-1]):
        if argument == "--note":  # the note is printed as the section's last paragraph, not in its command line
            arguments[index + 1] = "(the last paragraph)"
    typed = [f"python -m {module}", *map(shlex.quote, arguments)]
    return " ".join([f"OMP_NUM_THREADS={threads}"] * bool(threads) + typed)


def update_section(key: str, markdown: str, after: str | None = None) -> None:
    """Replace the block between ``<!-- key:start -->`` and ``<!-- key:end -->``; a new block goes
    right after section ``after`` when that exists, else at the end."""
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else HEADER
    block = f"<!-- {key}:start -->\n{markdown.strip()}\n<!-- {key}:end -->"
    pattern = re.compile(rf"<!-- {re.escape(key)}:start -->.*?<!-- {re.escape(key)}:end -->", re.S)
    anchor = f"<!-- {after}:end -->" if after else None
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    elif anchor and anchor in text:
        text = text.replace(anchor, f"{anchor}\n\n{block}", 1)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    BENCHMARKS.write_text(text)


def publish(key: str, lines: list[str], note: str | None = None, after: str | None = None) -> None:
    """Write a bench's section (``lines``, then ``note`` as its own paragraph when given) into BENCHMARKS.md
    and print it."""
    text = "\n".join(lines + (["", note] if note else []))
    update_section(key, text, after=after)
    print(text)


def run_front_door(command: list[str]) -> float:
    """Run a texnets script (e.g. ``["train.py", ...]``) from the repository root as a user would;
    return its wall time."""
    start = time.perf_counter()
    subprocess.run([sys.executable, *command], cwd=BENCHMARKS.parent, check=True)
    return time.perf_counter() - start
