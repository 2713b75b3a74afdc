"""Feature transforms of the arbitrary-style networks: AdaIN (Huang & Belongie 2017) and the whitening and
colouring transform, WCT (Li et al. 2017), with spatial masks, style interpolation and the content/style
trade-off α.

Every transform works on encoder features (N, C, H, W). The style side is summarised once
(``FeatureStatistics``): a video or a folder then pays for the style image one time only. A mask
(N, 1, H, W) in [0, 1], at the content features' resolution, restricts the *content* statistics to a
region, so each region is renormalised by its own statistics (Huang & Belongie 2017 §7.2, "spatial
control"); ``combine`` then blends the regions.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from texnets.errors import TexnetsError

ADAIN_EPS = 1e-5  # Huang & Belongie's reference code (calc_mean_std: var + 1e-5)
# Eigenvalues of a covariance below this are treated as zero (PytorchWCT and the authors' Torch code drop
# singular values under 1e-5). Features of VGG's deeper layers are rank-deficient (more channels than
# independent directions in one image): whitening would divide by ~0 there and amplify noise without bound.
WCT_EIGENVALUE_FLOOR = 1e-5


def _weighted_mean(features: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean (N, C, 1, 1) over the masked region, and the mask's total weight (N, 1, 1, 1)."""
    if mask is None:
        mask = features.new_ones(features.shape[0], 1, *features.shape[-2:])
    total = mask.sum((2, 3), keepdim=True).clamp_min(1e-8)
    return (features * mask).sum((2, 3), keepdim=True) / total, total


def mean_std(features: torch.Tensor, mask: torch.Tensor | None = None,
             eps: float = ADAIN_EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation (N, C, 1, 1), over the region ``mask`` weights."""
    features = features.float()
    mean, total = _weighted_mean(features, mask)
    weight = 1.0 if mask is None else mask
    var = (((features - mean) ** 2) * weight).sum((2, 3), keepdim=True) / total
    return mean, (var + eps).sqrt()


def _covariance(features: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean (N, C, 1) and covariance (N, C, C), in float64, over the masked region."""
    features = features.double()
    mask = None if mask is None else mask.double()
    mean, total = _weighted_mean(features, mask)
    centred = (features - mean).flatten(2)
    weighted = centred if mask is None else centred * mask.flatten(2)
    count = total.flatten(1)  # (N, 1)
    # The unbiased estimate, as the reference code (divides by H·W - 1); a one-pixel region is kept finite.
    cov = weighted @ centred.transpose(1, 2) / (count - 1).clamp_min(1.0).unsqueeze(-1)
    return mean.flatten(2), cov


def _matrix_power(cov: torch.Tensor, power: float, floor: float) -> torch.Tensor:
    """cov^power over the eigenvalues above ``floor`` (the rest are dropped: see WCT_EIGENVALUE_FLOOR).

    float64 throughout: eigenvectors of nearly equal eigenvalues are ill-conditioned, and in float32 the
    whitened features' covariance drifts visibly from the identity on 512-channel layers."""
    values, vectors = torch.linalg.eigh(cov)
    keep = values > floor
    scaled = torch.where(keep, values.clamp_min(floor) ** power, torch.zeros_like(values))
    return vectors @ torch.diag_embed(scaled) @ vectors.transpose(1, 2)


@dataclass
class FeatureStatistics:
    """One image's features at one layer, summarised for a transform: per-channel mean and std (AdaIN), and
    for WCT the colouring matrix Σ^½ (the style side) and the whitening matrix Σ^-½ (the content side).
    Computed once per style image; a content image's are recomputed per call unless frozen (tiling)."""

    mean: torch.Tensor                       # (N, C, 1, 1), float32
    std: torch.Tensor                        # (N, C, 1, 1), float32
    colouring: torch.Tensor | None = None    # (N, C, C), float64
    whitening: torch.Tensor | None = None    # (N, C, C), float64
    wct_mean: torch.Tensor | None = None     # (N, C, 1), float64

    @classmethod
    def of(cls, features: torch.Tensor, wct: bool = False, mask: torch.Tensor | None = None, pooled: bool = False,
           floor: float = WCT_EIGENVALUE_FLOOR) -> FeatureStatistics:
        """Statistics of ``features`` over ``mask``'s region; ``pooled``: the batch's items are windows of
        one image and share one set of statistics (how tiles are calibrated)."""
        if pooled:
            features = features.transpose(0, 1).flatten(1)[None, :, :, None]
            mask = None if mask is None else mask.transpose(0, 1).flatten(1)[None, :, :, None]
        mean, std = mean_std(features, mask)
        if not wct:
            return cls(mean, std)
        wct_mean, cov = _covariance(features, mask)
        return cls(mean, std, _matrix_power(cov, 0.5, floor), _matrix_power(cov, -0.5, floor), wct_mean)


def adain(content: torch.Tensor, style: FeatureStatistics, mask: torch.Tensor | None = None,
          frozen: FeatureStatistics | None = None) -> torch.Tensor:
    """Adaptive instance normalisation: the content features renormalised to the style's per-channel mean
    and standard deviation; the content's own statistics are taken over ``mask``'s region, or ``frozen``."""
    mean, std = (frozen.mean, frozen.std) if frozen is not None else mean_std(content, mask)
    return ((content.float() - mean) / std * style.std.to(content.device) + style.mean.to(content.device)).to(content.dtype)


def wct(content: torch.Tensor, style: FeatureStatistics, mask: torch.Tensor | None = None,
        frozen: FeatureStatistics | None = None) -> torch.Tensor:
    """Whitening and colouring: centre the content features, whiten them with their covariance's
    eigendecomposition (Σc^-½), colour them with the style's (Σs^½) and add the style's mean. The result's
    covariance is the style's (over the masked region, on the directions the content spans)."""
    if style.colouring is None:
        raise TexnetsError("these style statistics were computed without the colouring matrix (wct=True)")
    n, c, h, w = content.shape
    own = frozen if frozen is not None else FeatureStatistics.of(content, wct=True, mask=mask)
    centred = content.double().flatten(2) - own.wct_mean
    coloured = style.colouring.to(content.device) @ (own.whitening @ centred) + style.wct_mean.to(content.device)
    return coloured.view(n, c, h, w).to(content.dtype)


def resize_mask(mask: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """A (N, 1, H, W) mask at a feature map's size (area averaging keeps soft edges soft)."""
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask
    if mask.shape[-1] >= size[-1]:  # shrinking (the usual case: pixels to a feature map)
        return F.adaptive_avg_pool2d(mask, tuple(size))
    return F.interpolate(mask, size=tuple(size), mode="bilinear", align_corners=False)


def region_weights(count: int, size: Sequence[int], weights: Sequence[float] | None = None,
                   masks: Sequence[torch.Tensor] | None = None) -> list[torch.Tensor | float]:
    """Each style's share of every position: ``weights`` (summing to 1) everywhere, or within the masks,
    masks × weights renormalised so that where masks overlap the shares sum to 1. Where no mask covers a
    position the photo's own features stay (the shares there are all 0)."""
    weights = [1.0 / count] * count if weights is None else list(weights)
    if masks is None:
        return weights
    resized = [resize_mask(m, size) * w for m, w in zip(masks, weights)]
    total = torch.stack(resized).sum(0)
    return [m / total.clamp_min(1e-8) for m in resized]


def combine(content: torch.Tensor, transform, styles: Sequence[FeatureStatistics], weights=None, masks=None,
            alpha: float = 1.0, frozen: FeatureStatistics | None = None) -> torch.Tensor:
    """α-blend of the photo's features with the styles' transforms, mixed by weight and region:

        out = α Σ_k s_k · T(content; style_k, mask_k) + (1 - α Σ_k s_k) · content

    with ``s_k`` from ``region_weights`` (so with no masks Σ_k s_k = 1 and out = α T + (1 - α) content,
    Huang & Belongie's content-style trade-off and style interpolation; Li et al. 2017 blend the same way).
    ``transform`` is ``adain`` or ``wct``; ``frozen`` are content statistics to use instead of the
    content's own (tiles of one image; not with masks)."""
    shares = region_weights(len(styles), content.shape[-2:], weights, masks)
    mixed = torch.zeros_like(content, dtype=torch.float32)
    covered = 0.0
    for index, (style, share) in enumerate(zip(styles, shares)):
        mask = None if masks is None else resize_mask(masks[index], content.shape[-2:])
        mixed = mixed + share * transform(content, style, mask, frozen).float()
        covered = covered + share
    return (alpha * mixed + (1 - alpha * covered) * content.float()).to(content.dtype)


def check_blend(count: int, weights: Sequence[float] | None, masks: Sequence | None, alpha: float) -> list[float] | None:
    """Validate α, style weights and masks against the number of styles; weights are normalised to sum 1."""
    if not 0.0 <= alpha <= 1.0:
        raise TexnetsError(f"alpha must be in [0, 1] (0: the photo, 1: full style), not {alpha}")
    if weights is not None:
        if len(weights) != count:
            raise TexnetsError(f"{len(weights)} style weights given for {count} style image{'s' * (count > 1)}")
        if min(weights) < 0 or sum(weights) <= 0:
            raise TexnetsError(f"style weights must be non-negative with a positive sum, not {list(weights)}")
        weights = [float(w) / sum(weights) for w in weights]
    if masks is not None and len(masks) != count:
        raise TexnetsError(f"{len(masks)} masks given for {count} style image{'s' * (count > 1)}: one mask per style")
    return weights


__all__ = ["ADAIN_EPS", "FeatureStatistics", "WCT_EIGENVALUE_FLOOR", "adain", "check_blend", "combine", "mean_std",
           "region_weights", "resize_mask", "wct"]
