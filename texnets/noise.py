"""Multi-scale noise for generators driven by noise pyramids (2D texture nets now, 3D solid nets later).

A pyramid has ``scales`` levels; level k has the output's spatial size divided by 2**k (finest
first), and ``channels`` channels of i.i.d. uniform noise in [0, 1), the distribution of Ulyanov et
al. 2016's ``torch.rand`` inputs and of the JorgeGtz reimplementation. Every function here works for
any number of spatial dimensions: ``size`` is (H, W) for images and (D, H, W) for solids.

Two ways to draw it:
  * ``NoiseSpec.sample``: ``torch.rand``, fast, for training batches.
  * ``NoiseSpec.hashed``: each value is a hash of (seed, sample, level, channel, integer coordinates).
    Any window of the noise field can then be produced on its own, which is what tiled generation of
    very large outputs needs: tiles computed separately see exactly the noise a one-shot pass would
    see, and coordinates taken modulo the level's size give a field that wraps around (seamless).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from texnets.errors import TexnetsError

_MASK32 = 0xFFFFFFFF
# Multiplier of the "lowbias" integer hash (Chris Wellons' hash-prospector). It is below 2**31,
# so a 32-bit value times it stays inside int64 and torch never has to wrap around.
_HASH_MULTIPLIER = 0x45D9F3B


def _hash32(x: torch.Tensor) -> torch.Tensor:
    """Integer avalanche hash on int64 tensors holding 32-bit values."""
    x = ((x >> 16) ^ x) * _HASH_MULTIPLIER & _MASK32
    x = ((x >> 16) ^ x) * _HASH_MULTIPLIER & _MASK32
    return (x >> 16) ^ x


def _mix(state: torch.Tensor, value: torch.Tensor | int) -> torch.Tensor:
    """Fold one more key (broadcast) into a hash state."""
    return _hash32(state ^ (value & _MASK32))


def check_size(size: Sequence[int], scales: int) -> tuple[int, ...]:
    """Every spatial side must be a positive multiple of 2**(scales-1), so each level is whole."""
    size = tuple(int(s) for s in size)
    step = 2 ** (scales - 1)
    if not size or any(s <= 0 or s % step for s in size):
        raise TexnetsError(f"size {'x'.join(map(str, size))} must be a positive multiple of {step} on every "
                           f"side (2^(scales-1) for {scales} scales)")
    return size


@dataclass(frozen=True)
class NoiseSpec:
    """The noise a generator consumes: ``scales`` levels of ``channels``-channel uniform noise."""

    scales: int
    channels: int

    def level_size(self, size: Sequence[int], level: int) -> tuple[int, ...]:
        return tuple(s >> level for s in size)

    def shapes(self, batch: int, size: Sequence[int]) -> list[tuple[int, ...]]:
        """Tensor shapes of the pyramid for outputs of spatial ``size``, finest level first."""
        size = check_size(size, self.scales)
        return [(batch, self.channels, *self.level_size(size, k)) for k in range(self.scales)]

    def sample(self, batch: int, size: Sequence[int], generator: torch.Generator | None = None,
               device=None, dtype=torch.float32) -> list[torch.Tensor]:
        """Fresh i.i.d. noise (``torch.rand``), finest level first."""
        return [torch.rand(shape, generator=generator, dtype=dtype).to(device) if generator is not None
                else torch.rand(shape, dtype=dtype, device=device) for shape in self.shapes(batch, size)]

    def hashed(self, seed: int, size: Sequence[int], samples: Sequence[int] = (0,),
               window: Sequence[tuple[int, int]] | None = None, device=None,
               dtype=torch.float32) -> list[torch.Tensor]:
        """Deterministic noise: a window of the pyramid of an output of spatial ``size``.

        ``window`` gives, per spatial dimension, the [start, stop) range in *finest-level* pixels
        (default: the whole output). Both ends must be multiples of 2**(scales-1). Coordinates
        outside [0, size) wrap around, so a window may straddle the border of a periodic output.
        ``samples`` are the indices of the samples drawn with this seed (one batch entry each).
        """
        size = check_size(size, self.scales)
        window = [(0, s) for s in size] if window is None else [(int(a), int(b)) for a, b in window]
        if len(window) != len(size):
            raise ValueError(f"window has {len(window)} dimensions, size has {len(size)}")
        step = 2 ** (self.scales - 1)
        if any(a % step or b % step or b <= a for a, b in window):
            raise ValueError(f"window {window} must have ends that are multiples of {step}")
        levels = []
        for level in range(self.scales):
            level_size = self.level_size(size, level)
            # Per-dimension coordinates at this level, wrapped.
            coords = [torch.arange(a >> level, b >> level, dtype=torch.int64) % n
                      for (a, b), n in zip(window, level_size)]
            levels.append(self._hash_level(seed, level, coords, samples, device, dtype))
        return levels

    def hashed_window(self, seed: int, level: int, window: Sequence[tuple[int, int]], samples: Sequence[int] = (0,),
                      device=None, dtype=torch.float32) -> torch.Tensor:
        """Deterministic noise of one pyramid ``level`` over an unbounded grid: the values at integer
        coordinates [start, stop) per dimension, in that level's own units. Any window, negative
        coordinates included, can be drawn on its own and agrees with every other window where they
        overlap; nothing wraps around. This is what on-demand solid textures need (texnets.volumes).
        The values are computed on ``device``, so a GPU draws its own noise.
        """
        coords = [torch.arange(int(a), int(b), dtype=torch.int64, device=device) for a, b in window]
        return self._hash_level(seed, level, coords, samples, device, dtype)

    def _hash_level(self, seed: int, level: int, coords: list[torch.Tensor], samples: Sequence[int], device,
                    dtype) -> torch.Tensor:
        """Hash (seed, sample, level, channel, coordinates) into uniform [0, 1) values, shaped
        (samples, channels, *per-dimension coordinate counts)."""
        base = _mix(torch.tensor(seed & _MASK32, dtype=torch.int64, device=device), (seed >> 32) & _MASK32)
        sample_index = torch.as_tensor(list(samples), dtype=torch.int64, device=device)
        state = _mix(_mix(base, level + 1), sample_index).view(-1, 1)                               # (N, 1)
        state = _mix(state, torch.arange(self.channels, dtype=torch.int64, device=device))        # (N, C)
        state = state.view(*state.shape, *([1] * len(coords)))                                    # (N, C, 1, ...)
        for d, coord in enumerate(coords):
            shape = [1] * state.dim()
            shape[2 + d] = -1
            # Coordinates are hashed before mixing, so rows whose states happen to differ only in low
            # bits cannot produce shifted copies of each other. Masking to 32 bits maps a negative
            # coordinate to its own value (it never changes the non-negative ones).
            coord = coord.to(device) & _MASK32
            state = _mix(state, _hash32(coord + (d + 1) * _HASH_MULTIPLIER).view(shape))
        # 24 high-quality bits -> exactly representable floats in [0, 1).
        return ((state >> 8).to(torch.float64) / float(1 << 24)).to(dtype=dtype, device=device)


__all__ = ["NoiseSpec", "check_size"]
