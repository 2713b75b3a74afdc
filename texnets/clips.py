"""Synthetic video clips with known motion: a camera window moving across a still photo.

The clean test of temporal consistency: the motion between frames is exact (no flow estimation error), so
the warping error of a stylised clip measures the stylisation's flicker alone. Each frame is the photo seen
through a window of ``size`` whose pose changes linearly with time:

* ``pan``: the window slides right by ``speed`` and down by half that, in pixels per frame (whole pixels for
  an even speed, so warping along the motion is exact and only flicker remains);
* ``zoom``: the window shrinks, so the view zooms in and the frame's edges move by ``speed`` pixels per frame;
* ``rotate``: the window turns, its corners moving by ``speed`` pixels per frame.

Frames get light camera-like noise (signal-dependent shot noise plus read noise, ``noise`` = its standard
deviation at mid-grey, a fresh draw per frame) and are quantised to 8 bits, as a camera writes them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from texnets.errors import TexnetsError
from texnets.images import resize
from texnets.quality import quantize
from texnets.temporal import pixel_grid

MOTIONS = ("pan", "zoom", "rotate")


@dataclass
class SyntheticClip:
    """frames (T, 3, H, W) in [0, 1] (noisy, 8-bit), clean (the same without noise), backward (T-1, 2, H, W):
    frame t+1's backward flow into frame t, visible (T-1, 1, H, W): 1 where that point is inside frame t."""

    frames: torch.Tensor
    clean: torch.Tensor
    backward: torch.Tensor
    visible: torch.Tensor
    motion: str
    speed: float
    noise: float


def _poses(motion: str, frames: int, size: tuple[int, int], speed: float):
    """(centre offset (x, y), scale, angle) of each frame's window, relative to the first."""
    height, width = size
    poses = []
    for t in range(frames):
        if motion == "pan":
            poses.append(((speed * t, 0.5 * speed * t), 1.0, 0.0))
        elif motion == "zoom":
            poses.append(((0.0, 0.0), (1 - speed / (width / 2)) ** t, 0.0))
        else:
            poses.append(((0.0, 0.0), 1.0, t * speed / math.hypot(width / 2, height / 2)))
    return poses


def _window_coords(size, centre, scale, angle, dtype=torch.float32) -> torch.Tensor:
    """(H, W, 2) photo coordinates (x, y) of a window's pixels: centre + scale * R(angle) (p - o)."""
    height, width = size
    ys, xs = torch.meshgrid(torch.arange(height, dtype=dtype), torch.arange(width, dtype=dtype), indexing="ij")
    dx, dy = xs - (width - 1) / 2, ys - (height - 1) / 2
    cos, sin = math.cos(angle), math.sin(angle)
    return torch.stack([centre[0] + scale * (cos * dx - sin * dy), centre[1] + scale * (sin * dx + cos * dy)], -1)


def _to_window(points: torch.Tensor, size, centre, scale, angle) -> torch.Tensor:
    """Inverse of _window_coords: photo coordinates -> window pixel coordinates."""
    height, width = size
    cos, sin = math.cos(angle), math.sin(angle)
    dx, dy = (points[..., 0] - centre[0]) / scale, (points[..., 1] - centre[1]) / scale
    return torch.stack([cos * dx + sin * dy + (width - 1) / 2, -sin * dx + cos * dy + (height - 1) / 2], -1)


def camera_noise(frames: torch.Tensor, noise: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shot plus read noise, standard deviation ``noise`` at mid-grey, then 8-bit quantisation."""
    if noise > 0:
        std = noise * torch.sqrt((frames + 0.25) / 0.75)
        frames = frames + std * torch.randn(frames.shape, generator=generator)
    return quantize(frames)


def make_clip(photo: torch.Tensor, frames: int = 12, size: tuple[int, int] = (112, 160), motion: str = "pan",
              speed: float = 2.0, noise: float = 0.01, seed: int = 0) -> SyntheticClip:
    """A clip of ``frames`` frames of ``size`` (H, W) moving across ``photo`` (3, H, W) in [0, 1]; the photo is
    resized so the whole path fits with a small margin (the first frame shows most of it)."""
    if motion not in MOTIONS:
        raise TexnetsError(f"motion must be one of {', '.join(MOTIONS)}, not {motion!r}")
    if frames < 2 or min(size) < 16 or speed < 0:
        raise TexnetsError("a synthetic clip needs at least 2 frames of at least 16x16 and a speed >= 0")
    if motion == "zoom" and speed >= size[1] / 2:
        raise TexnetsError(f"a zoom of {speed} pixels per frame would close a window {size[1]} pixels wide")
    poses = _poses(motion, frames, size, speed)
    corners = torch.cat([_window_coords(size, *pose)[[0, 0, -1, -1], [0, -1, 0, -1]] for pose in poses])
    low, high = corners.min(0).values, corners.max(0).values
    extent = (high - low) * 1.04 + 2  # photo pixels the path covers, with a margin for bilinear sampling
    factor = max(float(extent[0]) / photo.shape[-1], float(extent[1]) / photo.shape[-2])
    photo = resize(photo.unsqueeze(0), (max(2, math.ceil(photo.shape[-2] * factor)),
                                        max(2, math.ceil(photo.shape[-1] * factor)))).clamp(0, 1)
    offset = torch.tensor([photo.shape[-1] - 1, photo.shape[-2] - 1], dtype=torch.float32) / 2 - (low + high) / 2
    poses = [((centre[0] + float(offset[0]), centre[1] + float(offset[1])), scale, angle)
             for centre, scale, angle in poses]
    pixel_size = torch.tensor([photo.shape[-1] - 1, photo.shape[-2] - 1], dtype=torch.float32)
    grids = torch.stack([_window_coords(size, *pose) / pixel_size * 2 - 1 for pose in poses])
    clean = F.grid_sample(photo.expand(frames, -1, -1, -1), grids, mode="bicubic", padding_mode="border",
                          align_corners=True).clamp(0, 1)
    backward, visible = [], []
    pixels = pixel_grid(*size)[0]
    for before, after in zip(poses, poses[1:]):
        seen_before = _to_window(_window_coords(size, *after), size, *before)  # frame t+1's pixels in frame t
        backward.append(seen_before.permute(2, 0, 1) - pixels)
        inside = ((seen_before[..., 0] >= 0) & (seen_before[..., 0] <= size[1] - 1) &
                  (seen_before[..., 1] >= 0) & (seen_before[..., 1] <= size[0] - 1))
        visible.append(inside.unsqueeze(0).float())
    generator = torch.Generator().manual_seed(seed)
    return SyntheticClip(frames=camera_noise(clean, noise, generator), clean=clean, backward=torch.stack(backward),
                         visible=torch.stack(visible), motion=motion, speed=speed, noise=noise)


__all__ = ["MOTIONS", "SyntheticClip", "camera_noise", "make_clip"]
