"""Pieces of the training objective that the loss modules do not provide, shared by the generator tasks:
Ulyanov's per-layer gradient normalisation and the Improved Texture Networks diversity term."""
from __future__ import annotations

from collections.abc import Mapping

import torch


class _NormalizeGradient(torch.autograd.Function):
    """Identity forward; backward rescales the incoming gradient to L1 norm ``scale``."""

    @staticmethod
    def forward(ctx, features: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return features.view_as(features)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        norm = grad.detach().float().abs().sum().clamp_min(1e-12)  # float32 even under bf16 autocast
        return grad * (ctx.scale / norm).to(grad.dtype), None


def normalize_gradients(features: Mapping[str, torch.Tensor],
                        scales: Mapping[str, float] | None = None) -> dict[str, torch.Tensor]:
    """Return ``features`` unchanged, except that the gradient each one receives *from the loss
    computed on it* is divided by its L1 norm (then multiplied by ``scales[layer]``, default 1).

    This is Ulyanov et al.'s trick (``-normalize_gradients`` in texture_nets; ``Normalize_gradients``
    in the JorgeGtz reimplementation): every loss layer pushes equally hard, whatever the scale of its
    Gram matrices. Only the loss branch is rescaled; the gradient flowing back from deeper layers
    through the encoder is added unchanged, as in the reference code where the loss module rescales
    its own gradInput before adding gradOutput. Because the loss's own weights cancel in the
    normalisation, pass them as ``scales`` to keep them.
    """
    scales = scales or {}
    return {layer: _NormalizeGradient.apply(value, float(scales.get(layer, 1.0))) for layer, value in features.items()}


def diversity_entropy(features: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Kozachenko-Leonenko entropy estimate of a batch, up to constants: the mean log distance from
    each sample's features to its nearest neighbour in the batch.

    Ulyanov et al. 2017 ("Improved Texture Networks") subtract λ times this from the loss so
    that a batch of samples cannot collapse onto one texture. Distances are root-mean-square over
    feature entries, so the value does not depend on the layer's size. Needs a batch of two or more.
    """
    flat = features.float().flatten(1)
    n = flat.shape[0]
    if n < 2:
        return flat.new_zeros(())
    squared = flat.pow(2).sum(1)
    # Squared distances from the Gram matrix (no N×N×D difference tensor); the diagonal is masked out.
    d2 = (squared[:, None] + squared[None, :] - 2 * flat @ flat.T).clamp_min(0) / flat.shape[1]
    d2 = d2.masked_fill(torch.eye(n, dtype=torch.bool, device=flat.device), float("inf"))
    return 0.5 * torch.log(d2.min(dim=1).values + eps).mean()


__all__ = ["diversity_entropy", "normalize_gradients"]
