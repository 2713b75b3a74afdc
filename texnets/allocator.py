"""Keep the memory PyTorch frees on the CPU inside the process, so a step does not page it in again.

PyTorch's CPU tensors come straight from ``malloc``. glibc serves every block above its mmap threshold
(32 MB at most) with a fresh ``mmap`` and hands it back to the kernel on ``free``, so every large activation of
every step is new memory that the kernel must fault in and zero. In a bare training step of a Johnson network
(256² × batch 4, 2 cores) that is about 2.8 GB: some 700,000 page faults and 1.9 s of kernel time in a 4.0 s step,
which takes 2.7 s with the setting below; a 1024² stylisation takes 1.8 s with it and 3.1 s without. Through
train.py: 2.73 s per step with it, 3.31 s without (BENCHMARKS.md, "head to head with pytorch/examples").

``keep_freed_memory`` tells glibc to serve large blocks from its heap (``M_MMAP_MAX`` = 0) and to keep what is
freed there (a high ``M_TRIM_THRESHOLD``), so the next step reuses the same pages. Why hand-written: the usual
remedy, jemalloc or tcmalloc through ``LD_PRELOAD``, must be installed and set before Python starts, and
``GLIBC_TUNABLES`` too; ``mallopt`` needs nothing and works in a running process. The cost: the process keeps
its peak memory until it exits, and the heap fragments a little before it settles (measured: 2.95 GB instead of
2.71 GB at the peak of that training step, 2.0 GB instead of 1.8 GB for a 1024² image, flat after a few steps).

Every front door calls it (texnets.cli.main_guard). ``TEXNETS_MALLOC=system`` leaves malloc as it is; so does a
preloaded allocator or a ``glibc.malloc`` tunable set by the user, and any C library other than glibc.
"""
from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD = -1   # glibc malloc.h: bytes of free memory at the heap's top before it is given back
M_MMAP_MAX = -4         # glibc malloc.h: how many blocks may be mmap'ed at once; 0 serves all from the heap
KEEP_UP_TO = 2**31 - 1  # mallopt takes an int: keep up to 2 GiB free at the top of the heap
OPT_OUT = "TEXNETS_MALLOC"

_state: str | None = None


def keep_freed_memory() -> str:
    """Apply the setting once per process; returns what malloc does now, for reports."""
    global _state
    if _state is None:
        _state = _apply()
    return _state


def allocator_state() -> str:
    """What ``keep_freed_memory`` did in this process ("system malloc" when it was not called)."""
    return _state or "system malloc"


def _apply() -> str:
    if os.environ.get(OPT_OUT, "").lower() == "system":
        return f"system malloc ({OPT_OUT}=system)"
    preload = os.environ.get("LD_PRELOAD", "")
    if any(name in preload for name in ("jemalloc", "tcmalloc", "mimalloc")):
        return "preloaded allocator (LD_PRELOAD)"
    if "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return "glibc malloc (GLIBC_TUNABLES)"
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return "system malloc"
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return "system malloc"
    if mallopt(M_MMAP_MAX, 0) != 1 or mallopt(M_TRIM_THRESHOLD, KEEP_UP_TO) != 1:
        return "system malloc (mallopt refused)"
    return "glibc malloc, freed memory kept"


__all__ = ["OPT_OUT", "allocator_state", "keep_freed_memory"]
