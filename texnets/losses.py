"""Every perceptual loss in texnets: the style-statistics family, content, total variation, and the
criterion that combines them over one shared encoder pass.

All feature losses share one call shape, ``loss(features) -> scalar``, where ``features`` is the
``{layer: tensor}`` dict the encoder returns. Target statistics are computed once by ``set_target``
and kept as buffers, so they follow ``.to(device)`` and are saved in (and restored from) checkpoints.
After each call, ``loss.last_layer_losses`` holds the detached per-layer terms for logging.

Which normalisation, and why (the anchors differ):
  * Gram: ``G = F Fᵀ / norm`` with ``norm = H·W`` ("hw") or ``C·H·W`` ("chw", Johnson et al. 2016 and
    the Ulyanov/JorgeGtz texture-network code). The layer term is the mean squared difference over
    the C×C entries. Gatys et al. 2015's E_l = 1/(4 C² M²) Σ(G-A)² with raw G is (C²/4) times our
    "chw" term; ``layer_weights="inverse_channels"`` adds Gatys et al. 2016's 1/C_l weighting.
  * MeanVar: per-channel mean and standard deviation, as in AdaIN's style loss (Huang & Belongie 2017).
  * Moments: per-channel moments up to ``order`` (in the spirit of Kalischek et al. 2021's CMD): ψ-weighted
    mean and deviation with ψ = min{1, 1/M1} from the exemplar, then standardised higher central moments.
  * MMD: squared maximum mean discrepancy over feature vectors; kernels are documented on the class.
  * Sliced Wasserstein: Heitz et al. CVPR 2021, random projections redrawn on every call.
  * MRF: Li & Wand 2016, each feature patch against its nearest exemplar patch (``MRFLoss``).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from texnets.errors import TexnetsError
from texnets.vgg import layer_channels

Features = Mapping[str, torch.Tensor]


def resolve_layer_weights(layers: Sequence[str], layer_weights=None) -> dict[str, float]:
    """``None``: 1 per layer; ``"inverse_channels"``: 1/C_l (Gatys et al. 2016); a dict or a list."""
    if layer_weights is None:
        return {layer: 1.0 for layer in layers}
    if layer_weights == "inverse_channels":
        return {layer: 1.0 / layer_channels(layer) for layer in layers}
    if isinstance(layer_weights, Mapping):
        unknown = set(layer_weights) - set(layers)
        if unknown:
            raise TexnetsError(f"layer weights name layers the loss does not use: {sorted(unknown)}")
        return {layer: float(layer_weights.get(layer, 1.0)) for layer in layers}
    if isinstance(layer_weights, str):
        raise TexnetsError(f"layer_weights must be None, 'inverse_channels', a dict or a list, not {layer_weights!r}")
    weights = [float(w) for w in layer_weights]
    if len(weights) != len(layers):
        raise TexnetsError(f"{len(weights)} layer weights given for {len(layers)} layers")
    return dict(zip(layers, weights))


def flatten_features(features: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H·W)."""
    return features.flatten(2)


def gram_matrix(features: torch.Tensor, normalize: str = "chw") -> torch.Tensor:
    """Batched Gram matrices (N, C, C) of (N, C, H, W) features, divided by H·W or C·H·W."""
    n, c, h, w = features.shape
    # Sums of H·W products lose too much in bf16/fp16: Gram matrices are at least float32.
    with torch.autocast(features.device.type, enabled=False):
        flat = flatten_features(features)
        flat = flat.to(torch.promote_types(flat.dtype, torch.float32))
        gram = torch.bmm(flat, flat.transpose(1, 2))
    if normalize == "hw":
        return gram / (h * w)
    if normalize == "chw":
        return gram / (c * h * w)
    raise TexnetsError(f"Gram normalisation must be 'hw' or 'chw', not {normalize!r}")


class FeatureLoss(nn.Module):
    """Base class: per-layer statistics of the target, kept as buffers, compared with the input's."""

    def __init__(self, layers: Sequence[str], layer_weights=None, target: Features | None = None):
        super().__init__()
        if not layers:
            raise TexnetsError(f"{type(self).__name__} needs at least one layer")
        self.layers = list(layers)
        self.layer_weights = resolve_layer_weights(self.layers, layer_weights)
        self.last_layer_losses: dict[str, torch.Tensor] = {}
        if target is not None:
            self.set_target(target)

    # Subclasses implement these two.
    def statistics(self, layer: str, features: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def layer_loss(self, layer: str, features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    persistent_targets = True  # content targets change every batch and are not worth checkpointing

    def set_target(self, target: Features) -> None:
        """Compute and store the target statistics, once. Several target images are averaged."""
        with torch.no_grad():
            for layer in self.layers:
                if layer not in target:
                    raise TexnetsError(f"target features lack layer {layer}")
                for key, value in self.statistics(layer, target[layer].detach()).items():
                    self.register_buffer(f"target_{layer}_{key}", value, persistent=self.persistent_targets)

    def target(self, layer: str, key: str) -> torch.Tensor:
        try:
            return getattr(self, f"target_{layer}_{key}")
        except AttributeError:
            raise TexnetsError(f"{type(self).__name__} has no target yet: call set_target first") from None

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A loss built without an exemplar can still be restored from a checkpoint: create the
        # target buffers the checkpoint holds before the default loader copies into them.
        for key, value in state_dict.items():
            if key.startswith(prefix + "target_") and "." not in key[len(prefix):]:
                self.register_buffer(key[len(prefix):], torch.empty_like(value))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, features: Features) -> torch.Tensor:
        terms = {layer: self.layer_loss(layer, features[layer]) for layer in self.layers}
        self.last_layer_losses = {layer: term.detach() for layer, term in terms.items()}
        return sum(self.layer_weights[layer] * term for layer, term in terms.items())


def _mean_over_targets(value: torch.Tensor) -> torch.Tensor:
    return value.mean(0, keepdim=True)


class GramLoss(FeatureLoss):
    """Gatys et al. 2015/2016: match Gram matrices (see the module docstring for the normalisation)."""

    def __init__(self, layers, layer_weights=None, target=None, normalize: str = "chw"):
        if normalize not in ("hw", "chw"):
            raise TexnetsError(f"Gram normalisation must be 'hw' or 'chw', not {normalize!r}")
        self.normalize = normalize
        super().__init__(layers, layer_weights, target)

    def statistics(self, layer, features):
        return {"gram": _mean_over_targets(gram_matrix(features, self.normalize))}

    def layer_loss(self, layer, features):
        gram = gram_matrix(features, self.normalize)
        return F.mse_loss(gram, self.target(layer, "gram").to(gram.dtype).expand_as(gram))


class MeanVarLoss(FeatureLoss):
    """Match per-channel mean and standard deviation (AdaIN's style loss, Huang & Belongie 2017).

    ``paired=True`` keeps one target per batch item instead of their average, so item i is compared with
    target image i (an arbitrary-style network's batch pairs every photo with its own style image); the
    targets then change every batch and are not checkpointed."""

    eps = 1e-5

    def __init__(self, layers, layer_weights=None, target=None, paired: bool = False):
        self.paired = paired
        self.persistent_targets = not paired
        super().__init__(layers, layer_weights, target)

    def statistics(self, layer, features):
        flat = flatten_features(features)
        reduce = (lambda value: value) if self.paired else _mean_over_targets
        return {"mean": reduce(flat.mean(2)), "std": reduce((flat.var(2, unbiased=False) + self.eps).sqrt())}

    def layer_loss(self, layer, features):
        flat = flatten_features(features)
        mean, std = flat.mean(2), (flat.var(2, unbiased=False) + self.eps).sqrt()
        return (F.mse_loss(mean, self.target(layer, "mean").expand_as(mean))
                + F.mse_loss(std, self.target(layer, "std").expand_as(std)))


class MomentLoss(FeatureLoss):
    """Match per-channel moments up to ``order`` (moment matching in the spirit of Kalischek et al. 2021).

    Orders 1 and 2 compare ψ·mean and ψ·standard deviation, with ψ = min{1, 1/M1} and M1 the
    exemplar's channel mean: strongly activated channels are scaled down so they do not drown the
    others. Orders k >= 3 compare central moments E[(x-μ)^k] divided by the exemplar's σ^k, i.e.
    skewness, kurtosis, ... on the exemplar's scale: scale-free, and still linear (so smooth) in the
    input's moments. Each order's term is the mean squared difference over channels.
    """

    eps = 1e-5

    def __init__(self, layers, layer_weights=None, target=None, order: int = 4):
        if order < 1:
            raise TexnetsError("moment order must be at least 1")
        self.order = order
        super().__init__(layers, layer_weights, target)

    def _moments(self, flat: torch.Tensor, psi: torch.Tensor, sigma: torch.Tensor) -> list[torch.Tensor]:
        mean = flat.mean(2)
        centred = flat - mean.unsqueeze(2)
        moments = [psi * mean]
        if self.order >= 2:
            moments.append(psi * (centred.pow(2).mean(2) + self.eps).sqrt())
        moments += [centred.pow(k).mean(2) / sigma.pow(k) for k in range(3, self.order + 1)]
        return moments

    def statistics(self, layer, features):
        flat = flatten_features(features)
        psi = torch.clamp(1.0 / flat.mean(2).clamp_min(1e-8), max=1.0)
        sigma = (flat.var(2, unbiased=False) + self.eps).sqrt()
        # Near-constant exemplar channels would blow the standardised moments up: floor σ relative
        # to the layer's typical deviation.
        sigma = torch.maximum(sigma, 0.1 * sigma.mean(1, keepdim=True))
        moments = self._moments(flat, psi, sigma)
        stats = {f"m{k}": _mean_over_targets(m) for k, m in enumerate(moments, start=1)}
        stats.update(psi=_mean_over_targets(psi), sigma=_mean_over_targets(sigma))
        return stats

    def layer_loss(self, layer, features):
        moments = self._moments(flatten_features(features), self.target(layer, "psi"), self.target(layer, "sigma"))
        return sum(F.mse_loss(m, self.target(layer, f"m{k}").expand_as(m)) for k, m in enumerate(moments, start=1))


def _sample_positions(flat: torch.Tensor, count: int, generator=None) -> torch.Tensor:
    """(N, C, M) -> (N, count, C): feature vectors at ``count`` random positions (all if fewer)."""
    m = flat.shape[2]
    if m > count:
        index = torch.randperm(m, device=flat.device, generator=generator)[:count]
        flat = flat[:, :, index]
    return flat.transpose(1, 2)


class MMDLoss(FeatureLoss):
    """Squared maximum mean discrepancy between the feature vectors of the input and the exemplar.

    Kernels (``kernel=``):
      * ``"gaussian"``: k(a, b) = exp(-‖a-b‖² / (2σ²)), with σ² fixed per layer at set_target to the
        mean squared pairwise distance among the exemplar's sampled features (scale-free default).
      * ``"poly"``: k(a, b) = (aᵀb / C)². Li et al. 2017 ("Demystifying Neural Style Transfer")
        showed matching Gram matrices is MMD with this kernel.
      * ``"linear"``: k(a, b) = aᵀb / C, i.e. matching the feature means.
    At most ``samples`` positions per image enter each call (redrawn every call), which keeps the
    kernel matrices small; the estimate is the biased (V-statistic) MMD².
    """

    kernels = ("gaussian", "poly", "linear")

    def __init__(self, layers, layer_weights=None, target=None, kernel: str = "gaussian", samples: int = 1024):
        if kernel not in self.kernels:
            raise TexnetsError(f"MMD kernel must be one of {self.kernels}, not {kernel!r}")
        self.kernel, self.samples = kernel, samples
        super().__init__(layers, layer_weights, target)

    def _kernel(self, a: torch.Tensor, b: torch.Tensor, sigma2: torch.Tensor | None) -> torch.Tensor:
        if self.kernel == "gaussian":
            return torch.exp(-torch.cdist(a, b).pow(2) / (2 * sigma2))
        dot = a @ b.transpose(-1, -2) / a.shape[-1]
        return dot.pow(2) if self.kernel == "poly" else dot

    def statistics(self, layer, features):
        generator = torch.Generator(device=features.device).manual_seed(0)  # same subsample every time
        samples = _sample_positions(flatten_features(features), self.samples, generator).reshape(
            1, -1, features.shape[1])
        sigma2 = torch.cdist(samples, samples).pow(2).mean().clamp_min(1e-8).reshape(1)
        k_yy = self._kernel(samples, samples, sigma2).mean().reshape(1)
        return {"samples": samples, "sigma2": sigma2, "k_yy": k_yy}

    def layer_loss(self, layer, features):
        x = _sample_positions(flatten_features(features), self.samples)
        y = self.target(layer, "samples").to(x.dtype).expand(x.shape[0], -1, -1)
        sigma2 = self.target(layer, "sigma2")
        k_xx = self._kernel(x, x, sigma2).mean((1, 2))
        k_xy = self._kernel(x, y, sigma2).mean((1, 2))
        return (k_xx + self.target(layer, "k_yy") - 2 * k_xy).mean()


class SlicedWassersteinLoss(FeatureLoss):
    """Sliced Wasserstein distance of Heitz et al. (CVPR 2021, "A Sliced Wasserstein Loss for Neural
    Texture Synthesis").

    Each call draws ``projections`` random unit directions (default: as many as channels), projects
    the input's and the exemplar's feature vectors, sorts the projections and compares them. When the
    input and the exemplar have different numbers of positions, the exemplar's sorted projections are
    resampled (linear interpolation of the quantile function) to the input's count, as Heitz et al.'s
    reference code does.
    """

    def __init__(self, layers, layer_weights=None, target=None, projections: int | None = None):
        self.projections = projections
        super().__init__(layers, layer_weights, target)

    def statistics(self, layer, features):
        flat = flatten_features(features)  # exemplars of different sizes cannot be averaged: keep the first
        return {"features": flat[:1]}

    def layer_loss(self, layer, features):
        flat = flatten_features(features)
        n, c, m = flat.shape
        directions = torch.randn(c, self.projections or c, device=flat.device, dtype=flat.dtype)
        directions = directions / directions.norm(dim=0, keepdim=True)
        x = torch.einsum("ncm,cp->npm", flat, directions).sort(dim=2).values
        target = self.target(layer, "features").to(flat.dtype)
        y = torch.einsum("ncm,cp->npm", target, directions).sort(dim=2).values
        if y.shape[2] != m:
            y = F.interpolate(y, size=m, mode="linear", align_corners=True)
        return F.mse_loss(x, y.expand_as(x))


class MRFLoss(FeatureLoss):
    """Li & Wand 2016's Markov random field loss ("Combining Markov Random Fields and Convolutional Neural
    Networks for Image Synthesis"): every ``patch_size``² patch of the input's feature map is matched to the
    exemplar patch with the highest normalised cross-correlation, and the term is the squared difference
    between the two, over all patches.

    Reference settings: 3×3 patches at stride 1, for the input and the exemplar alike (Li & Wand 2016,
    section 3). ``target_stride`` > 1 keeps every k-th exemplar patch only, which bounds memory on large
    exemplars (a texnets option; the loss of an image against itself is then no longer 0). The reference sums
    over patches; texnets takes
    the mean, like its other losses, so that one weight holds at every image size. Matching is a hard
    argmax: the gradient flows through the matched difference only, as in the reference. Memory grows with
    (input patches × exemplar patches): about 4k × 4k at relu3_1 of a 256² image.
    """

    def __init__(self, layers, layer_weights=None, target=None, patch_size: int = 3, target_stride: int = 1):
        if patch_size < 1 or target_stride < 1:
            raise TexnetsError("MRF patch_size and target_stride must be at least 1")
        self.patch_size, self.target_stride = int(patch_size), int(target_stride)
        super().__init__(layers, layer_weights, target)

    def _patches(self, features: torch.Tensor, stride: int) -> torch.Tensor:
        """(N, C, H, W) -> (N, P, C·k·k) patches; a map smaller than a patch is one line."""
        if min(features.shape[-2:]) < self.patch_size:
            raise TexnetsError(f"a {features.shape[-1]}x{features.shape[-2]} feature map is smaller than the "
                               f"{self.patch_size}x{self.patch_size} MRF patch: use a larger image or a shallower layer")
        return F.unfold(features, self.patch_size, stride=stride).transpose(1, 2)

    def statistics(self, layer, features):
        patches = self._patches(features[:1], self.target_stride)[0]  # several exemplars: the first
        return {"patches": patches, "unit": patches / patches.norm(dim=1, keepdim=True).clamp_min(1e-8)}

    def layer_loss(self, layer, features):
        target, unit = self.target(layer, "patches"), self.target(layer, "unit")
        dtype = torch.promote_types(features.dtype, target.dtype)  # bf16 under autocast: float32
        features, target, unit = features.to(dtype), target.to(dtype), unit.to(dtype)
        terms = []
        for item in self._patches(features, 1):  # one image at a time: the similarity matrix is P × P'
            with torch.no_grad():
                nearest = (item / item.norm(dim=1, keepdim=True).clamp_min(1e-8) @ unit.T).argmax(1)
            terms.append(F.mse_loss(item, target[nearest]))
        return torch.stack(terms).mean()


class ContentLoss(FeatureLoss):
    """Feature reconstruction (Gatys et al. 2016; Johnson et al. 2016; Mahendran & Vedaldi 2015):
    mean squared difference between feature maps. Targets are not checkpointed: they change with
    every content batch."""

    persistent_targets = False

    def statistics(self, layer, features):
        return {"features": features}

    def layer_loss(self, layer, features):
        target = self.target(layer, "features").to(features.dtype)
        if target.shape[0] == 1:
            target = target.expand_as(features)
        return F.mse_loss(features, target)


class TotalVariation(nn.Module):
    """Total variation of images (N, C, H, W): mean of |Δx|^p + |Δy|^p over neighbouring pixels.

    Written by hand, not kornia.losses.total_variation: kornia sums absolute differences (p=1) per
    image, while the regulariser of Mahendran & Vedaldi 2015 uses p=2 and a size-independent mean
    keeps one weight valid at every resolution.
    """

    def __init__(self, power: float = 2.0):
        super().__init__()
        self.power = power

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        dx = (images[..., :, 1:] - images[..., :, :-1]).abs().pow(self.power)
        dy = (images[..., 1:, :] - images[..., :-1, :]).abs().pow(self.power)
        return dx.mean() + dy.mean()


STYLE_LOSSES = {
    "gram": GramLoss,
    "meanvar": MeanVarLoss,
    "moments": MomentLoss,
    "mmd": MMDLoss,
    "sw": SlicedWassersteinLoss,
    "mrf": MRFLoss,
}


def make_style_loss(name: str, layers: Sequence[str], layer_weights=None, target: Features | None = None,
                    **options) -> FeatureLoss:
    """Build a style loss by name (``gram``, ``meanvar``, ``moments``, ``mmd``, ``sw``)."""
    try:
        cls = STYLE_LOSSES[name.lower()]
    except KeyError:
        raise TexnetsError(f"unknown loss {name!r}; choose one of {', '.join(STYLE_LOSSES)}") from None
    try:
        return cls(layers, layer_weights, target, **options)
    except TypeError as exc:
        raise TexnetsError(f"bad option for the {name} loss: {exc}") from None


class GuidedLoss(nn.Module):
    """Spatial control (Gatys et al. 2017, section 4, "guided Gram matrices"): a Gram loss computed on the
    features inside one region of the image only. ``guide`` is a (1, 1, H, W) map in [0, 1] at the image's
    size; at each layer it is resized to the feature map (area averaging), the features are multiplied by it
    and rescaled by 1/√mean(guide²), so the region's Gram matrix has the scale of a whole image's and can be
    compared with a style image's plain Gram matrix."""

    def __init__(self, loss: FeatureLoss, guide: torch.Tensor):
        super().__init__()
        if not isinstance(loss, GramLoss):
            raise TexnetsError("spatial control (masks) guides Gram matrices: use --loss gram with --mask")
        self.loss, self.layers = loss, loss.layers
        self.register_buffer("guide", guide.float(), persistent=False)

    @property
    def last_layer_losses(self) -> dict[str, torch.Tensor]:
        return self.loss.last_layer_losses

    def forward(self, features: Features) -> torch.Tensor:
        guided = {}
        for layer in self.layers:
            value = features[layer]
            guide = F.adaptive_avg_pool2d(self.guide, value.shape[-2:]).to(value.dtype)
            guided[layer] = value * guide / guide.pow(2).mean().clamp_min(1e-8).sqrt()
        return self.loss(guided)


class PerStyleLoss(nn.Module):
    """Several styles in one batch (Dumoulin et al. 2017): one style loss per style image, each image of the batch
    judged by the loss of its own style. ``set_assignment(indices)`` names each image's style before the forward
    pass, as a content loss is given each batch's targets. The value is the mean over the batch's images, so a
    batch of one style equals that style's own loss."""

    def __init__(self, losses: Sequence[FeatureLoss]):
        super().__init__()
        if not losses:
            raise TexnetsError("PerStyleLoss needs at least one style loss")
        self.losses = nn.ModuleList(losses)
        self.layers = list(losses[0].layers)
        self.assignment: torch.Tensor | None = None
        self.last_layer_losses: dict[str, torch.Tensor] = {}

    def set_assignment(self, indices: torch.Tensor) -> None:
        if bool((indices < 0).any()) or bool((indices >= len(self.losses)).any()):
            raise TexnetsError(f"style indices must be in 0..{len(self.losses) - 1}")
        self.assignment = indices.reshape(-1)

    def forward(self, features: Features) -> torch.Tensor:
        if self.assignment is None:
            raise TexnetsError("PerStyleLoss needs each image's style: call set_assignment first")
        batch = self.assignment.numel()
        total, per_layer = 0.0, {layer: 0.0 for layer in self.layers}
        for style, loss in enumerate(self.losses):
            members = (self.assignment == style).nonzero().flatten()
            if members.numel() == 0:
                continue
            members = members.to(features[self.layers[0]].device)
            share = members.numel() / batch
            total = total + share * loss({layer: features[layer].index_select(0, members) for layer in self.layers})
            for layer, value in loss.last_layer_losses.items():
                per_layer[layer] = per_layer[layer] + share * value
        self.last_layer_losses = per_layer
        return total


class PerceptualCriterion(nn.Module):
    """Weighted sum of feature losses and total variation over one encoder pass.

    ``terms`` maps a name (e.g. ``"style"``, ``"content"``) to a ``(loss, weight)`` pair. The
    encoder is run once on the union of the layers all terms need. ``forward`` returns the total and
    a dict of detached values for logging: each term, and each term's per-layer values.
    """

    def __init__(self, encoder: nn.Module, terms: Mapping[str, tuple[FeatureLoss | GuidedLoss, float]],
                 tv_weight: float = 0.0, tv_power: float = 2.0):
        super().__init__()
        self.encoder = encoder
        self.terms = nn.ModuleDict({name: loss for name, (loss, _) in terms.items()})
        self.weights = {name: float(weight) for name, (_, weight) in terms.items()}
        self.tv_weight = float(tv_weight)
        self.tv = TotalVariation(tv_power)
        self.layers = sorted({layer for loss in self.terms.values() for layer in loss.layers})

    def features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.encoder(images, self.layers)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, float | torch.Tensor]]:
        features = self.features(images)
        total = images.new_zeros(())
        logs: dict[str, torch.Tensor] = {}
        for name, loss in self.terms.items():
            value = loss(features)
            total = total + self.weights[name] * value
            logs[name] = value.detach()
            for layer, term in loss.last_layer_losses.items():
                logs[f"{name}/{layer}"] = term
        if self.tv_weight:
            tv = self.tv(images)
            total = total + self.tv_weight * tv
            logs["tv"] = tv.detach()
        logs["total"] = total.detach()
        return total, logs


def is_finite(value: torch.Tensor) -> bool:
    return bool(torch.isfinite(value).all())


__all__ = [
    "ContentLoss", "FeatureLoss", "GramLoss", "GuidedLoss", "MMDLoss", "MRFLoss", "MeanVarLoss", "MomentLoss",
    "PerStyleLoss", "PerceptualCriterion", "STYLE_LOSSES", "SlicedWassersteinLoss", "TotalVariation", "gram_matrix",
    "is_finite", "make_style_loss", "resolve_layer_weights",
]
