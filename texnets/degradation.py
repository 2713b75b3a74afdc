"""How super-resolution inputs are made from high-resolution photos, as Johnson et al. 2016 made theirs
(section 4.2: "we blur with a Gaussian kernel of width σ = 1.0 and downsample with bicubic interpolation"), on
whatever device the photos are on, so training can make them on the fly.
"""
from __future__ import annotations

import math

import kornia
import torch

from texnets.errors import TexnetsError

BLUR_SIGMA = 1.0   # Johnson et al. 2016, section 4.2


def crop_to_multiple(images: torch.Tensor, factor: int) -> torch.Tensor:
    """The top-left part of ``images`` whose sides are multiples of ``factor`` (so the ×factor output fits exactly)."""
    height, width = images.shape[-2:]
    return images[..., : height - height % factor, : width - width % factor]


def low_resolution(images: torch.Tensor, factor: int, sigma: float = BLUR_SIGMA) -> torch.Tensor:
    """(N, 3, H, W) in [0, 1], sides multiples of ``factor`` -> (N, 3, H/factor, W/factor): a Gaussian blur of std
    ``sigma`` pixels (0: none), then bicubic downsampling (no antialiasing: the blur is the paper's low-pass)."""
    height, width = images.shape[-2:]
    if height % factor or width % factor:
        raise TexnetsError(f"a {width}x{height} image cannot be downsampled x{factor} exactly: crop it to a multiple "
                           f"of {factor} first (texnets.degradation.crop_to_multiple)")
    if sigma > 0:
        size = 2 * math.ceil(3 * sigma) + 1   # ±3σ: the kernel holds all but 0.3% of the Gaussian's mass
        images = kornia.filters.gaussian_blur2d(images, (size, size), (sigma, sigma), border_type="reflect")
    small = kornia.geometry.transform.resize(images, (height // factor, width // factor), interpolation="bicubic",
                                             align_corners=False, antialias=False)
    return small.clamp(0, 1)   # bicubic overshoots at edges; a photo's pixels stay in [0, 1]


def bicubic_upscale(images: torch.Tensor, factor: int) -> torch.Tensor:
    """The baseline every super-resolution method is compared with: bicubic interpolation ×factor, clamped to
    [0, 1] (bicubic overshoots at edges)."""
    return torch.nn.functional.interpolate(images, scale_factor=factor, mode="bicubic",
                                           align_corners=False).clamp(0, 1)


__all__ = ["BLUR_SIGMA", "bicubic_upscale", "crop_to_multiple", "low_resolution"]
