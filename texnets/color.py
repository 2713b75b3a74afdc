"""Colour preservation (Gatys et al. 2017, "Controlling Perceptual Factors in Neural Style Transfer"):
stylise the luminance only and keep the content's chrominance. Colour spaces come from kornia
(YCbCr, as in the paper's luminance-only transfer)."""
from __future__ import annotations

import kornia.color
import torch
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


__all__ = ["keep_content_colors", "luminance", "match_luminance"]
