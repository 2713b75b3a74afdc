"""Generate noise-driven samples of any size: in one pass when it fits, in tiles with a halo when not.

Noise comes from ``NoiseSpec.hashed``: every value is a function of (seed, sample, level, channel,
coordinates), so a tile can draw exactly the noise window a one-shot pass would see around it.

Tiles. The output is cut into ``block``×``block`` tiles. Each tile is generated from a noise
window ``halo`` pixels larger on every side, where ``halo`` is the generator's receptive margin
(``receptive_margin()``) rounded up to the coarsest grid (2^(K-1) pixels, so every pyramid level's
window is whole and nearest upsampling lines up), and then cropped. Every kept pixel has its whole
receptive field inside the window, so for a generator whose layers are local in eval mode (BatchNorm
with running statistics, convolutions, LeakyReLU, upsampling) the tiled output equals the one-shot
output up to float rounding, with no seams. Across the output's border, windows wrap around when the
generator pads circularly (seamless outputs), and are clipped to the image otherwise, so the
generator's own zero or reflect padding applies exactly where it would in one pass.

Instance normalisation is not local: it normalises each feature map by its statistics over the
whole image, which a tile cannot see. Tiled generation therefore first runs the generator in one
pass over a ``calibration``×``calibration`` window of the same noise field, records every instance
norm's per-channel mean and variance there, and generates all tiles with those statistics frozen
(``freeze_instance_norms``). All tiles share one normalisation, so there are no seams; because the
noise is stationary, statistics over a 1024² window are close to those over the whole image, and
the result is visually equivalent to (though not bit-identical with) an impossible one-shot pass.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from texnets.errors import TexnetsError


class FrozenInstanceNorm(nn.Module):
    """An InstanceNorm2d whose per-channel statistics were measured once and are now constants."""

    def __init__(self, norm: nn.InstanceNorm2d, mean: torch.Tensor, var: torch.Tensor):
        super().__init__()
        self.eps = norm.eps
        self.register_buffer("mean", mean.detach().clone().view(1, -1, 1, 1))
        self.register_buffer("inv_std", torch.rsqrt(var.detach().view(1, -1, 1, 1) + norm.eps))
        weight = norm.weight.detach() if norm.affine else torch.ones_like(mean)
        bias = norm.bias.detach() if norm.affine else torch.zeros_like(mean)
        self.register_buffer("weight", weight.clone().view(1, -1, 1, 1))
        self.register_buffer("bias", bias.clone().view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) * self.inv_std * self.weight + self.bias


def has_instance_norm(generator: nn.Module) -> bool:
    return any(isinstance(module, nn.InstanceNorm2d) for module in generator.modules())


@torch.no_grad()
def freeze_instance_norms(generator: nn.Module, noise: list[torch.Tensor]) -> nn.Module:
    """A copy of ``generator`` whose instance norms use the statistics they compute on ``noise``
    (a batch of one), frozen. On that noise the copy reproduces the original's output exactly."""
    frozen = copy.deepcopy(generator).eval()
    stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    hooks = []
    for name, module in frozen.named_modules():
        if isinstance(module, nn.InstanceNorm2d):
            def record(module, inputs, name=name):
                x = inputs[0][0].float()
                stats[name] = (x.mean((1, 2)), x.var((1, 2), unbiased=False))
            hooks.append(module.register_forward_pre_hook(record))
    frozen(noise)
    for hook in hooks:
        hook.remove()
    for name, (mean, var) in stats.items():
        parent_name, _, child = name.rpartition(".")
        parent = frozen.get_submodule(parent_name) if parent_name else frozen
        setattr(parent, child, FrozenInstanceNorm(getattr(parent, child), mean, var))
    return frozen


def tile_halo(generator) -> int:
    """The generator's receptive margin, rounded up to a multiple of its coarsest grid step."""
    step = generator.size_multiple
    return math.ceil(generator.receptive_margin() / step) * step


def _tiles(length: int, block: int, halo: int, wrap: bool):
    """(start, stop) of each tile and of its noise window along one dimension."""
    for start in range(0, length, block):
        stop = min(start + block, length)
        if wrap:
            yield start, stop, start - halo, stop + halo
        else:
            yield start, stop, max(0, start - halo), min(length, stop + halo)


@torch.no_grad()
def generate_one_shot(generator, size: Sequence[int], seed: int, samples: Sequence[int], device="cpu") -> torch.Tensor:
    noise = generator.noise_spec.hashed(seed, size, samples, device=device)
    return generator(noise).float().cpu()


@torch.no_grad()
def generate_tiled(generator, size: Sequence[int], seed: int, sample: int = 0, block: int = 1024,
                   device="cpu", calibration: int = 1024, progress: bool = False) -> torch.Tensor:
    """One (1, 3, H, W) sample generated tile by tile (see the module docstring)."""
    height, width = generator.check_size(size)
    step = generator.size_multiple
    if block < step or block % step:
        raise TexnetsError(f"tile block size {block} must be a positive multiple of {step}")
    spec = generator.noise_spec
    if has_instance_norm(generator):
        side = [min(height, max(step, calibration // step * step)), min(width, max(step, calibration // step * step))]
        window = [(0, side[0]), (0, side[1])]
        generator = freeze_instance_norms(generator, spec.hashed(seed, size, [sample], window, device=device))
    wrap = generator.config.padding == "circular"
    halo = tile_halo(generator)
    output = torch.empty(1, 3, height, width)
    rows, cols = list(_tiles(height, block, halo, wrap)), list(_tiles(width, block, halo, wrap))
    bar = tqdm(total=len(rows) * len(cols), desc="tiles", disable=not progress, leave=False, dynamic_ncols=True)
    for y0, y1, wy0, wy1 in rows:
        for x0, x1, wx0, wx1 in cols:
            noise = spec.hashed(seed, size, [sample], [(wy0, wy1), (wx0, wx1)], device=device)
            tile = generator(noise).float().cpu()
            output[:, :, y0:y1, x0:x1] = tile[:, :, y0 - wy0:y1 - wy0, x0 - wx0:x1 - wx0]
            bar.update()
    bar.close()
    return output


def generate(generator, size: Sequence[int], seed: int = 0, samples: Sequence[int] = (0,), block: int | None = 1024,
             device="cpu", progress: bool = False) -> torch.Tensor:
    """Samples ``samples`` of the noise field ``seed`` as (N, 3, H, W) float images (unclamped, CPU).

    One pass when both sides fit in ``block`` (or ``block`` is None), tiles otherwise. The same
    (seed, sample) gives the same image either way (exactly for BatchNorm generators).
    """
    size = generator.check_size(size)
    if block is None or max(size) <= block:
        return generate_one_shot(generator, size, seed, samples, device)
    return torch.cat([generate_tiled(generator, size, seed, sample, block, device, progress=progress)
                      for sample in samples])


__all__ = ["FrozenInstanceNorm", "freeze_instance_norms", "generate", "generate_one_shot", "generate_tiled",
           "has_instance_norm", "tile_halo"]
