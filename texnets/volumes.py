"""On-demand solid textures: any block of the unbounded volume a :class:`SolidTextureNet` defines,
computed on its own, and whole volumes written block by block with bounded memory.

The noise of every pyramid level is ``NoiseSpec.hashed_window``: a pure function of (seed, sample,
level, channel, integer coordinates). The generator is unpadded and, in eval mode, local (BatchNorm
with running statistics), and ``solid_layout`` gives each block exactly the noise windows and crop
offsets that a one-shot pass would use around it. So a volume assembled from blocks is the volume
made in one call, voxel for voxel, up to float rounding: convolution libraries sum in an order that
depends on the tensor's shape. With ``exact=True`` (CPU: oneDNN off, the native convolutions,
about 2.5x slower) the floats agree to ~1e-6 and the uint8 volumes are identical; with oneDNN (the
default) they agree to ~1e-5, which moves a few voxels in 100,000 by one uint8 step, invisibly.

Volumes are stored as ``.npy`` arrays of shape (D, H, W, 3) (z, y, x, RGB), uint8. The file is
written slab by slab (``block`` voxels of z at a time), so peak memory is one slab plus one block's
activations, whatever the volume's size; it goes to a temporary file renamed at the end.
"""
from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from texnets.errors import TexnetsError
from texnets.generators.solid_net import AXES, SolidTextureNet
from texnets.images import atomic_path, from_uint8, save_image


def block_noise(net: SolidTextureNet, origin: Sequence[int], size: Sequence[int], seed: int,
                samples: Sequence[int] = (0,), device=None) -> tuple[list[torch.Tensor], list[list[int]]]:
    """The hashed noise windows and crop offsets that generate block [origin, origin + size)."""
    layout = net.layout(origin, size)
    spec = net.noise_spec
    noise = [spec.hashed_window(seed, level, window, samples, device=device)
             for level, window in enumerate(layout.noise_windows)]
    return noise, [list(offset) for offset in layout.offsets]


@torch.no_grad()
def generate_block(net: SolidTextureNet, origin: Sequence[int], size: Sequence[int], seed: int = 0,
                   samples: Sequence[int] = (0,), device=None, precision: str = "fp32",
                   exact: bool = False) -> torch.Tensor:
    """The (N, 3, D, H, W) block [origin, origin + size) of the volumes ``samples`` of ``seed``,
    in [0, 1] (unclamped). ``net`` should be in eval mode (see the module docstring)."""
    device = torch.device(device) if device is not None else next(net.parameters()).device
    noise, offsets = block_noise(net, origin, size, seed, samples, device)
    with _precision(device, precision), _exact(exact):
        return net(noise, offsets).float()


def _precision(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    if dtype is None:
        raise TexnetsError(f"precision must be fp32, bf16 or fp16, not {precision!r}")
    return torch.autocast(device.type, dtype=dtype)


def _exact(exact: bool):
    # oneDNN picks its blocking (and so its summation order) from the tensor's shape; the native
    # convolutions' order barely depends on it (see the module docstring).
    return torch.backends.mkldnn.flags(enabled=False) if exact else contextlib.nullcontext()


def volume_to_uint8(volume: torch.Tensor, staging: dict | None = None) -> np.ndarray:
    """(3, D, H, W) floats in [0, 1] -> (D, H, W, 3) uint8, rounded; converted on the volume's device,
    so only a quarter of the bytes cross to the host (and, from a channels_last_3d network, the
    permutation is free).

    From a GPU, pass a ``staging`` dict to reuse one page-locked host buffer across calls: a copy into
    pageable memory runs at a few GB/s (30 ms for a 256³ volume on an H100 machine), into pinned
    memory at PCIe speed (1 ms). The returned array is then a view of that buffer, valid until the
    next call with the same ``staging``.
    """
    converted = volume.clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 3, 0).contiguous()
    if staging is None or converted.device.type != "cuda":
        return converted.cpu().numpy()
    buffer = staging.get("buffer")
    if buffer is None or buffer.numel() < converted.numel():
        buffer = staging["buffer"] = torch.empty(converted.numel(), dtype=torch.uint8, pin_memory=True)
    host = buffer[:converted.numel()].view(converted.shape)
    host.copy_(converted)
    return host.numpy()


def volume_blocks(size: Sequence[int], block: int) -> list[tuple[tuple[int, int, int], tuple[int, int, int]]]:
    """(offset, size) of the blocks that tile a volume of ``size``, z-major, each at most ``block``."""
    if block < 1:
        raise TexnetsError("--block must be at least 1")
    ranges = [[(start, min(block, extent - start)) for start in range(0, extent, block)] for extent in size]
    return [((z, y, x), (dz, dy, dx)) for z, dz in ranges[0] for y, dy in ranges[1] for x, dx in ranges[2]]


def check_volume_size(size: Sequence[int]) -> tuple[int, int, int]:
    given = tuple(int(s) for s in size)
    size = given * 3 if len(given) == 1 else given
    if len(size) != 3 or any(s < 1 for s in size):
        raise TexnetsError(f"a solid texture's --size is D H W (or one edge for a cube), each at least 1, "
                           f"not {' '.join(map(str, given))}")
    return size


def generate_volume(net: SolidTextureNet, size: Sequence[int], origin: Sequence[int] = (0, 0, 0), seed: int = 0,
                    sample: int = 0, block: int = 128, device=None, precision: str = "fp32", exact: bool = False,
                    path: str | Path | None = None, progress: bool = False) -> dict:
    """Generate the volume [origin, origin + size) block by block.

    With ``path``, the (D, H, W, 3) uint8 volume is streamed into that ``.npy`` file (atomically) and
    only the three orthogonal centre slices are returned; without it, the whole array is returned
    under ``"volume"``. Either way ``"slices"`` maps ``z``, ``y`` and ``x`` to the centre slice
    perpendicular to that axis, (rows, columns, 3) uint8: z → (y, x), y → (z, x), x → (z, y).
    """
    size = check_volume_size(size)
    if len(origin) != 3:
        raise TexnetsError(f"--origin takes 3 coordinates (z y x), not {len(origin)}")
    origin = tuple(int(o) for o in origin)
    depth, height, width = size
    centre = (depth // 2, height // 2, width // 2)
    slices = {"z": np.zeros((height, width, 3), np.uint8), "y": np.zeros((depth, width, 3), np.uint8),
              "x": np.zeros((depth, height, 3), np.uint8)}
    blocks = volume_blocks(size, block)
    staging: dict = {}   # one pinned host buffer for all blocks (GPU only)
    bar = tqdm(total=len(blocks), desc="blocks", unit="block", disable=not progress, dynamic_ncols=True)

    def slabs():
        """Yield (z0, slab) with slab (dz, H, W, 3) uint8, z-slab after z-slab."""
        for z0 in range(0, depth, block):
            dz = min(block, depth - z0)
            slab = None
            for (bz, by, bx), (sz, sy, sx) in blocks:
                if bz != z0:
                    continue
                part = volume_to_uint8(generate_block(net, (origin[0] + bz, origin[1] + by, origin[2] + bx),
                                                      (sz, sy, sx), seed, (sample,), device, precision, exact)[0],
                                       staging)
                if (sy, sx) == (height, width):
                    slab = part   # one block spans the slab: no copy
                else:
                    slab = np.empty((dz, height, width, 3), np.uint8) if slab is None else slab
                    slab[:, by:by + sy, bx:bx + sx] = part
                bar.update()
            slices["y"][z0:z0 + dz] = slab[:, centre[1]]
            slices["x"][z0:z0 + dz] = slab[:, :, centre[2]]
            if z0 <= centre[0] < z0 + dz:
                slices["z"] = slab[centre[0] - z0].copy()
            yield z0, slab

    result: dict = {"size": list(size), "origin": list(origin), "seed": seed, "sample": sample, "block": block,
                    "blocks": len(blocks)}
    try:
        if path is None:
            volume = np.empty((*size, 3), np.uint8)
            for z0, slab in slabs():
                volume[z0:z0 + slab.shape[0]] = slab
            result["volume"] = volume
        else:
            path = Path(path)
            if path.suffix.lower() != ".npy":
                raise TexnetsError(f"a solid texture is written as a .npy volume, not {path.suffix or 'no suffix'}")
            with atomic_path(path) as tmp, open(tmp, "wb") as handle:
                np.lib.format.write_array_header_1_0(
                    handle, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False,
                             "shape": (*size, 3)})
                for _, slab in slabs():
                    handle.write(memoryview(np.ascontiguousarray(slab)).cast("B"))
            result["output"] = str(path)
    finally:
        bar.close()
    result["slices"] = slices
    return result


def slice_preview(slices: dict[str, np.ndarray], gap: int = 4) -> torch.Tensor:
    """The three orthogonal slices side by side (z, y, x), on white, as a (3, H, W) image in [0, 1]."""
    panels = [from_uint8(slices[axis]) for axis in AXES]
    height = max(p.shape[1] for p in panels)
    width = sum(p.shape[2] for p in panels) + gap * (len(panels) - 1)
    canvas = torch.ones(3, height, width)
    x = 0
    for panel in panels:
        canvas[:, :panel.shape[1], x:x + panel.shape[2]] = panel
        x += panel.shape[2] + gap
    return canvas


def save_slice_preview(slices: dict[str, np.ndarray], path: str | Path) -> Path:
    save_image(slice_preview(slices).unsqueeze(0), path)
    return Path(path)


__all__ = ["block_noise", "check_volume_size", "generate_block", "generate_volume", "save_slice_preview",
           "slice_preview", "volume_blocks", "volume_to_uint8"]
