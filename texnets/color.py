"""Colour control.

* Colour preservation (Gatys et al. 2017, "Controlling Perceptual Factors in Neural Style Transfer"): stylise the
  luminance only and keep the content's chrominance. Colour spaces come from kornia (YCbCr, as in the paper's
  luminance-only transfer).
* Histogram matching (Johnson et al. 2016, section 4.2: super-resolution's post-processing): each channel of an
  output takes the distribution of the same channel of its input. The quantile mapping is kornia's.
"""
from __future__ import annotations

import kornia.color
import torch
from kornia.contrib import histogram_matching
import torch.nn.functional as F


def luminance(images: torch.Tensor) -> torch.Tensor:
    """The Y channel (N, 1, H, W) of RGB images in [0, 1]."""
    return kornia.color.rgb_to_ycbcr(images)[:, :1]


def match_luminance(style_y: torch.Tensor, content_y: torch.Tensor) -> torch.Tensor:
    """Shift and scale the style's luminance to the content's mean and deviation (Gatys et al. 2017)."""
    return ((style_y - style_y.mean()) / (style_y.std() + 1e-6) * content_y.std() + content_y.mean()).clamp(0, 1)


def keep_content_colors(stylised: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The stylised image's luminance with the content's chrominance, at the content's size."""
    y = luminance(stylised.float())
    if y.shape[-2:] != content.shape[-2:]:
        y = F.interpolate(y, size=content.shape[-2:], mode="bilinear", align_corners=False)
    chroma = kornia.color.rgb_to_ycbcr(content.float().to(y.device))[:, 1:]
    return kornia.color.ycbcr_to_rgb(torch.cat([y, chroma], 1)).clamp(0, 1)


def match_histograms(images: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
    """Each image's channels mapped onto the histograms of its reference's channels (N, C, H, W each; the sizes
    may differ: a super-resolution output against its low-resolution input). kornia matches one histogram per
    call, so the loop over images and channels is here."""
    if images.shape[:2] != references.shape[:2]:
        raise ValueError(f"histogram matching pairs images with references: {tuple(images.shape[:2])} against "
                         f"{tuple(references.shape[:2])}")
    references = references.to(images.device, images.dtype)
    return torch.stack([torch.stack([histogram_matching(image[channel], reference[channel])
                                     for channel in range(image.shape[0])])
                        for image, reference in zip(images, references)])


__all__ = ["keep_content_colors", "luminance", "match_histograms", "match_luminance"]
