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

Photos (``stylize``, for transfer networks) follow the same plan. Tiles start on the network's
stride grid (multiples of 4), windows reach ``receptive_margin()`` pixels (rounded up to that grid)
beyond each tile and are clipped at the photo's border, where the network's own reflection padding
then applies exactly as in one pass. The instance norms are frozen with statistics pooled over a
few full-resolution calibration windows spread over the photo (the right scale, unlike a downscaled
copy); a photo that fits in one window is calibrated on itself, and then tiling reproduces the
one-shot output to float rounding. Because overlapping windows agree on every kept pixel, tiles
are cropped and abutted: a blend of overlaps would average identical values, and no seam can show.
Peak memory is the input and output images plus the activations of the calibration batch (a few
windows at once); the tiles then run one window at a time.
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


class _PoolingInstanceNorm(nn.Module):
    """Calibration stand-in for an InstanceNorm2d: normalises with statistics pooled over the whole
    batch (all calibration windows count as one image) and records them."""

    def __init__(self, norm: nn.InstanceNorm2d):
        super().__init__()
        self.norm = norm
        self.stats: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        mean, var = xf.mean((0, 2, 3)), xf.var((0, 2, 3), unbiased=False)
        self.stats = (mean, var)
        frozen = FrozenInstanceNorm(self.norm, mean, var)
        return frozen(xf).to(x.dtype)


def _replace_modules(root: nn.Module, kind: type, make) -> None:
    """Replace every submodule of type ``kind`` by ``make(submodule)``."""
    for name, child in list(root.named_modules()):
        if isinstance(child, kind) and name:
            parent_name, _, attribute = name.rpartition(".")
            setattr(root.get_submodule(parent_name) if parent_name else root, attribute, make(child))


@torch.no_grad()
def freeze_instance_norms(generator: nn.Module, inputs) -> nn.Module:
    """A copy of ``generator`` whose instance norms use fixed statistics, measured on ``inputs``: a
    batch (noise pyramid or images) whose items are treated as windows of one larger image, so each
    norm's per-channel mean and variance are pooled over all of them. For a batch of one, the copy
    reproduces the original's output on that input exactly."""
    frozen = copy.deepcopy(generator).eval()
    _replace_modules(frozen, nn.InstanceNorm2d, _PoolingInstanceNorm)
    frozen(inputs)
    _replace_modules(frozen, _PoolingInstanceNorm, lambda module: FrozenInstanceNorm(module.norm, *module.stats))
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


def calibration_windows(height: int, width: int, block: int, count: int) -> list[tuple[int, int, int, int]]:
    """Up to ``count`` block×block windows (y0, y1, x0, x1), on the stride-4 grid, spread evenly over
    an image (one window covering it when it fits)."""
    side_h, side_w = min(block, height), min(block, width)
    per_side = max(1, math.isqrt(count))
    windows = set()
    for i in range(per_side):
        for j in range(per_side):
            y0 = (height - side_h) * (2 * i + 1) // (2 * per_side) // 4 * 4
            x0 = (width - side_w) * (2 * j + 1) // (2 * per_side) // 4 * 4
            windows.add((y0, y0 + side_h, x0, x0 + side_w))
    return sorted(windows)


@torch.no_grad()
def stylize(generator, image: torch.Tensor, block: int | None = 1024, device="cpu", calibration_windows_count: int = 4,
            dtype: torch.dtype | None = None, postprocess=None, progress: bool = False) -> torch.Tensor:
    """Run an image-to-image generator on a (1, 3, H, W) image; tiles when a side exceeds ``block``.

    A generator with a ``factor`` (super-resolution) returns factor·H × factor·W: tiles and their windows are cut
    from the input, and each tile's output is cropped at factor times its place. ``postprocess(output_tile,
    input_tile)`` runs on each tile (e.g. colour preservation, which is per-pixel), so no full-size intermediate
    is ever made. Returns a float (1, 3, scale·H, scale·W) CPU tensor.
    """
    height, width = image.shape[-2:]
    scale = int(getattr(generator, "factor", 1))
    device = torch.device(device)
    autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype not in (None, torch.float32))

    def run(net, tile):
        with autocast:
            output = net(tile.to(device)).float()
        return (postprocess(output, tile.to(device)) if postprocess else output).cpu()

    if block is None or max(height, width) <= block:
        return run(generator, image)
    step = getattr(generator, "size_multiple", 4)  # tiles and windows start on the network's stride grid
    if block < 16 or block % step:
        raise TexnetsError(f"tile block size {block} must be a multiple of {step} and at least 16")
    halo = math.ceil(generator.receptive_margin() / step) * step
    freezes = hasattr(generator, "freeze_statistics")  # arbitrary-style networks: their photo statistics
    if freezes or has_instance_norm(generator):
        # Calibration windows as large as a tile's whole window (tile + halo): the statistics of the
        # region one pass of the network actually sees, so nothing is gained by tiling more finely.
        windows = calibration_windows(height, width, block + 2 * halo, calibration_windows_count)
        crops = torch.cat([image[..., y0:y1, x0:x1] for y0, y1, x0, x1 in windows]).to(device)
        with autocast:
            generator = generator.freeze_statistics(crops) if freezes else freeze_instance_norms(generator, crops)
    output = torch.empty(1, 3, scale * height, scale * width)
    rows, cols = list(_tiles(height, block, halo, False)), list(_tiles(width, block, halo, False))
    bar = tqdm(total=len(rows) * len(cols), desc="tiles", disable=not progress, leave=False, dynamic_ncols=True)
    for y0, y1, wy0, wy1 in rows:
        for x0, x1, wx0, wx1 in cols:
            tile = run(generator, image[..., wy0:wy1, wx0:wx1])
            output[..., scale * y0:scale * y1, scale * x0:scale * x1] = \
                tile[..., scale * (y0 - wy0):scale * (y1 - wy0), scale * (x0 - wx0):scale * (x1 - wx0)]
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


__all__ = ["FrozenInstanceNorm", "calibration_windows", "freeze_instance_norms", "generate", "generate_one_shot",
           "generate_tiled", "has_instance_norm", "stylize", "tile_halo"]
