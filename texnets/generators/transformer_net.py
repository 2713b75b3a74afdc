"""Johnson et al. 2016's image transformation network ("Perceptual Losses for Real-Time Style Transfer
and Super-Resolution", supplementary material; layout of jcjohnson/fast-neural-style's
``c9s1-32,d64,d128,R128×5,u64,u32,c9s1-3`` and of pytorch/examples' ``TransformerNet``):

    9×9 conv 32 ─ 3×3/2 conv 64 ─ 3×3/2 conv 128 ─ 5 × residual(3×3 conv 128, 3×3 conv 128)
        ─ up×2 + 3×3 conv 64 ─ up×2 + 3×3 conv 32 ─ 9×9 conv 3

Every convolution pads by reflection; every one but the last is followed by an InstanceNorm with
affine parameters (Ulyanov et al. 2016's instance normalisation, which fast-neural-style adopted)
and a ReLU (none after a residual block's second convolution). At width 1 this is 1,679,235
parameters, the reference count; ``width`` scales every channel count (0.5 for a ~4× cheaper net).

Upsampling is nearest-neighbour ×2 followed by a 3×3 convolution ("resize-convolution", Odena et al.
2016), which avoids the checkerboard artefacts of transposed convolutions; ``upsample="transposed"``
keeps the paper's fractionally-strided convolutions (same parameter count) for comparison.

Many styles in one network (Dumoulin, Shlens & Kudlur 2017, "A Learned Representation for Artistic Style"):
with ``styles`` = N > 1 every InstanceNorm becomes a :class:`ConditionalInstanceNorm2d` holding an N×C table of
scales and shifts, one row per style, and everything else is shared. ``net(images, styles)`` picks a row per
image (an index) or mixes rows (a convex combination of the tables, per image), and ``with_style`` bakes one
choice into an ordinary single-style network for inference, tiling and export. With N = 1 the network is the
original one, parameter for parameter and key for key.

Any H×W works: the input is reflect-padded to a multiple of 4 (two stride-2 stages) and the output is
cropped back, so the output always has the input's size. The output is
``0.5 + output_range · tanh(conv)`` (fast-neural-style's ``-tanh_constant 150`` on 0..255 pixels:
output_range = 150/255), so it stays near [0, 1] without clamping during training.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from texnets.errors import TexnetsError
from texnets.generators.base import Generator
from texnets.generators.convolutions import FewOutputsConv2d

UPSAMPLINGS = ("nearest", "transposed")


@dataclass
class TransformerNetConfig:
    """Hyper-parameters of :class:`TransformerNet`; what a checkpoint stores to rebuild it.

    Args:
        width: channel multiplier; 1.0 is the reference (32, 64, 128 channels).
        residual_blocks: number of residual blocks at the bottleneck (5 in Johnson et al. 2016).
        upsample: ``nearest`` (resize-convolution, no checkerboard) or ``transposed`` (the paper's).
        output_range: half-range of the tanh output around mid-grey, in [0, 1] image units
            (fast-neural-style: 150 on a 0..255 scale); 0 gives an unbounded linear output.
        styles: styles the network knows (Dumoulin et al. 2017's conditional instance norm when above 1).
    """

    width: float = 1.0
    residual_blocks: int = 5
    upsample: str = "nearest"
    output_range: float = 150.0 / 255.0
    styles: int = 1

    def __post_init__(self):
        if self.upsample not in UPSAMPLINGS:
            raise TexnetsError(f"generator upsample must be one of {', '.join(UPSAMPLINGS)}, not {self.upsample!r}")
        if not 0 < self.width <= 8:
            raise TexnetsError(f"generator width must be in (0, 8], not {self.width}")
        if self.residual_blocks < 0 or self.output_range < 0:
            raise TexnetsError("generator residual_blocks and output_range must not be negative")
        if self.styles < 1:
            raise TexnetsError(f"generator styles must be at least 1, not {self.styles}")

    def channels(self, reference: int) -> int:
        return max(1, int(round(reference * self.width)))


def instance_norm(channels: int) -> nn.Module:
    """The transfer networks' normalisation: InstanceNorm with affine parameters (Ulyanov et al. 2016)."""
    return nn.InstanceNorm2d(channels, affine=True)


class ConditionalInstanceNorm2d(nn.Module):
    """Instance normalisation whose scale and shift are a mix of ``styles`` learnt rows (Dumoulin et al. 2017, eq. 5):
    ``γ_s · (x − μ) / σ + β_s`` with ``(γ_s, β_s) = mix @ (Γ, Β)`` for a per-image ``mix`` of shape (B, N).

    The mix is set by the owning :class:`TransformerNet` just before its forward pass (``mix`` attribute) and cleared
    after it: the layers between are ``nn.Sequential`` stacks that pass one tensor along, and the state-dict keys stay
    those of the single-style network (``weight`` and ``bias``, now N×C)."""

    def __init__(self, channels: int, styles: int, eps: float = 1e-5):
        super().__init__()
        self.styles, self.eps = styles, eps
        self.weight = nn.Parameter(torch.ones(styles, channels))
        self.bias = nn.Parameter(torch.zeros(styles, channels))
        self.mix: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mix is None:
            raise RuntimeError("ConditionalInstanceNorm2d runs inside TransformerNet.forward, which sets the style mix")
        mix = self.mix.to(self.weight.dtype)
        scale, shift = (mix @ self.weight).to(x.dtype), (mix @ self.bias).to(x.dtype)
        return F.instance_norm(x, eps=self.eps) * scale[:, :, None, None] + shift[:, :, None, None]

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, styles={self.styles}, eps={self.eps}"


class ConvLayer(nn.Sequential):
    """Reflection padding + convolution (+ normalisation unless ``norm`` is False, + ReLU unless ``relu`` is)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, relu: bool = True, norm: bool = True,
                 norm_layer: Callable[[int], nn.Module] = instance_norm):
        # The RGB output layer is computed by space-to-depth on CPUs (texnets.generators.convolutions: 2.3x faster).
        convolution = FewOutputsConv2d if cout <= 4 and stride == 1 else nn.Conv2d
        layers: list[nn.Module] = [nn.ReflectionPad2d(kernel // 2), convolution(cin, cout, kernel, stride)]
        if norm:
            layers.append(norm_layer(cout))
        if relu:
            layers.append(nn.ReLU())
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    """x + norm(conv(ReLU(norm(conv(x))))), the variant of Gross & Wilber that fast-neural-style uses (InstanceNorm)."""

    def __init__(self, channels: int, norm_layer: Callable[[int], nn.Module] = instance_norm):
        super().__init__()
        self.body = nn.Sequential(ConvLayer(channels, channels, 3, norm_layer=norm_layer),
                                  ConvLayer(channels, channels, 3, relu=False, norm_layer=norm_layer))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpsampleConv(nn.Module):
    """×2 upsampling then a 3×3 convolution, normalisation and ReLU. ``nearest``: resize-convolution;
    ``transposed``: a stride-2 transposed convolution with the same weights' shape."""

    def __init__(self, cin: int, cout: int, mode: str, norm_layer: Callable[[int], nn.Module] = instance_norm):
        super().__init__()
        self.nearest = mode == "nearest"
        if self.nearest:
            self.conv = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3))
        else:
            self.conv = nn.Sequential(nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1))
        self.norm = norm_layer(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.nearest:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return F.relu(self.norm(self.conv(x)))


class TransformerNet(Generator):
    """``net(images) -> stylised images``: (N, 3, H, W) in [0, 1] to the same shape."""

    model_type = "transformer_net"
    config_class = TransformerNetConfig
    size_multiple = 4  # two stride-2 stages; other sizes are padded internally

    def __init__(self, config: TransformerNetConfig | None = None, **overrides):
        super().__init__()
        self.config = config = self.resolve_config(config, overrides)
        self.styles = config.styles
        norm = instance_norm if config.styles == 1 else partial(ConditionalInstanceNorm2d, styles=config.styles)
        c32, c64, c128 = config.channels(32), config.channels(64), config.channels(128)
        self.encoder = nn.Sequential(ConvLayer(3, c32, 9, norm_layer=norm),
                                     ConvLayer(c32, c64, 3, stride=2, norm_layer=norm),
                                     ConvLayer(c64, c128, 3, stride=2, norm_layer=norm))
        self.residuals = nn.Sequential(*[ResidualBlock(c128, norm) for _ in range(config.residual_blocks)])
        self.decoder = nn.Sequential(UpsampleConv(c128, c64, config.upsample, norm),
                                     UpsampleConv(c64, c32, config.upsample, norm),
                                     ConvLayer(c32, 3, 9, relu=False, norm=False))
        self.output_range = float(config.output_range)

    def receptive_margin(self) -> int:
        """Input pixels of context, on each side, that one output pixel can depend on (for tiling).

        Walks an output pixel's dependency interval back through the layers, for each of its four
        alignments with the stride-4 grid, and returns the widest reach (57 px at the reference depth;
        an upper bound for transposed upsampling).
        """
        worst = 0
        for p in range(4):
            lo, hi = p - 4, p + 4                            # the last 9×9 conv
            for _ in range(2):                               # the two ×2 upsampling stages: a 3×3 conv, then
                lo, hi = (lo - 1) // 2, (hi + 1) // 2        # nearest (i reads i // 2), or a transposed 3×3/2
            lo, hi = lo - 2 * self.config.residual_blocks, hi + 2 * self.config.residual_blocks
            for _ in range(2):                               # the two 3×3 stride-2 convs
                lo, hi = 2 * lo - 1, 2 * hi + 1
            lo, hi = lo - 4, hi + 4                          # the first 9×9 conv
            worst = max(worst, p - lo, hi - p)
        return worst

    # -- styles --------------------------------------------------------------------------------------
    @torch.jit.unused
    def style_weights(self, styles: Optional[torch.Tensor], batch: int) -> torch.Tensor:
        """(batch, N) mixing weights from ``styles``: None (style 0), indices (B,) or (1,), or weights (B, N) or
        (N,). The checks that catch a user's mistake (range, convexity) are ``check_style_weights``'s."""
        if styles is None:
            styles = torch.zeros(1, dtype=torch.long)
        if not styles.is_floating_point():
            styles = F.one_hot(styles.reshape(-1).long(), self.styles).float()
        styles = styles.reshape(-1, self.styles)
        return styles.expand(batch, -1) if styles.shape[0] == 1 else styles

    @torch.jit.unused
    def _stylised(self, images, styles):
        # type: (Tensor, Optional[Tensor]) -> Tensor
        # (a type comment: TorchScript reads an unused method's real annotations, which are strings in this module)
        mix = self.style_weights(styles, images.shape[0]).to(images.device)
        norms = [m for m in self.modules() if isinstance(m, ConditionalInstanceNorm2d)]
        for norm in norms:
            norm.mix = mix
        try:
            return self._transform(images)
        finally:
            for norm in norms:
                norm.mix = None

    def with_style(self, weights: torch.Tensor | Sequence[float] | int) -> TransformerNet:
        """An ordinary single-style TransformerNet that computes this network with one fixed style: an index or a
        convex combination of the N style rows (every image then gets the same mix). Tiling, compilation, ONNX and
        TorchScript export then work as for any single-style network."""
        weights = check_style_weights(weights, self.styles)
        baked = TransformerNet(self.resolve_config(self.config, {"styles": 1}))
        state = self.state_dict()
        for name, module in self.named_modules():
            if isinstance(module, ConditionalInstanceNorm2d):
                state[f"{name}.weight"] = weights @ module.weight.detach()
                state[f"{name}.bias"] = weights @ module.bias.detach()
        baked.load_state_dict(state)
        return baked.train(self.training)

    def forward(self, images: torch.Tensor, styles: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Stylise ``images``; a multi-style network takes ``styles`` (see ``style_weights``; default style 0)."""
        if self.styles > 1:
            return self._stylised(images, styles)
        return self._transform(images)

    def _transform(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2], images.shape[-1]
        # Caffe-like mean-centred input (the network reads "0..255 minus the mean" in fast-neural-style);
        # the first InstanceNorm makes the scale immaterial, the centring keeps reflection padding neutral.
        # Always padded (by 0 to 3 pixels), without a Python branch, so ONNX tracing keeps the padding
        # for every input size.
        x = F.pad(images - 0.5, [0, (4 - width % 4) % 4, 0, (4 - height % 4) % 4], mode="reflect")
        x = self.decoder(self.residuals(self.encoder(x)))
        x = x[..., :height, :width]
        if self.output_range > 0:
            return 0.5 + self.output_range * torch.tanh(x)
        return 0.5 + x


def check_style_weights(weights: torch.Tensor | Sequence[float] | int, styles: int) -> torch.Tensor:
    """A style index or mixing weights -> an (N,) float tensor, or a one-line TexnetsError: an index out of range,
    a wrong length, negative weights, or weights that do not sum to 1."""
    if isinstance(weights, int):
        if not 0 <= weights < styles:
            raise TexnetsError(f"style index {weights} is out of range: this network knows {styles} style"
                               f"{'s' if styles > 1 else ''} (0 to {styles - 1})")
        return F.one_hot(torch.tensor(weights), styles).float()
    weights = torch.as_tensor(weights, dtype=torch.float32).reshape(-1)
    if weights.numel() != styles:
        raise TexnetsError(f"{weights.numel()} mixing weights for a network of {styles} styles")
    if bool((weights < 0).any()) or abs(float(weights.sum()) - 1) > 1e-3:
        raise TexnetsError(f"mixing weights must be non-negative and sum to 1 (a convex combination), not "
                           f"{', '.join(f'{w:g}' for w in weights.tolist())} (sum {float(weights.sum()):g})")
    return weights


__all__ = ["ConditionalInstanceNorm2d", "ConvLayer", "ResidualBlock", "TransformerNet", "TransformerNetConfig",
           "UPSAMPLINGS", "UpsampleConv", "check_style_weights", "instance_norm"]
