"""A convolution with very few output channels (an RGB output layer), recast so that CPUs run it efficiently.

oneDNN vectorises a CPU convolution across output channels, so a 9×9 convolution from 32 channels to 3 (the last
layer of a Johnson network) runs at about a fifth of the speed per FLOP of the network's 3×3 convolutions: 0.23 s
of every training step at 256² × batch 4 on 2 cores, forward and backward (BENCHMARKS.md, the parts of a step).

Space-to-depth makes it a wider one. With ``s`` = 2, the input's 2×2 pixel blocks become channels
(``pixel_unshuffle``: C → 4C), each of the output's four pixel phases becomes an output channel (O → 4O), and the
9×9 kernel becomes a 5×5 kernel over the half-resolution grid whose taps are the original weights, rearranged,
with zeros where a phase's window does not reach. ``pixel_shuffle`` puts the phases back. The sum of products is
the same; only its order differs, so outputs and gradients match the plain convolution to float tolerance
(tests/test_convolutions.py), and the parameters are the plain convolution's own (state dicts are unchanged).
Measured: 0.10 s instead of 0.23 s for that layer's forward and backward.

Used on CPU tensors only. GPUs (cuDNN, where it was not measured), TorchScript and ONNX export run the plain
convolution, so exported graphs are the usual ones.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PHASES = 2   # 2×2 blocks: 32 -> 128 input channels and 3 -> 12 output channels for a Johnson output layer


def space_to_depth_kernel(weight: torch.Tensor, stride: int = PHASES) -> torch.Tensor:
    """(O, C, k, k) weights as the (O·s², C·s², m, m) kernel that computes the same convolution on
    ``pixel_unshuffle(x, s)`` with output phases as channels; m = ceil((k + s - 1) / s)."""
    out_channels, in_channels, size, _ = weight.shape
    taps = -(-(size + stride - 1) // stride)
    span = taps * stride

    def split_axis(tensor: torch.Tensor, dim: int) -> torch.Tensor:
        # Output phase a reads input offset s·q + b - a of the original kernel (zero outside 0..k-1): pad a in
        # front, then fold the axis into (q, b). The phases are stacked in front.
        phases = []
        for phase in range(stride):
            padding = [0, 0] * tensor.dim()
            last = 2 * (tensor.dim() - 1 - dim)          # F.pad lists the last dimension first
            padding[last], padding[last + 1] = phase, span - size - phase
            padded = F.pad(tensor, padding)
            phases.append(padded.unflatten(dim, (taps, stride)))
        return torch.stack(phases)

    kernel = split_axis(split_axis(weight, 2), 5)         # (a', a, O, C, q, b, q', b')
    kernel = kernel.permute(2, 1, 0, 3, 5, 7, 4, 6)        # (O, a, a', C, b, b', q, q'): pixel_(un)shuffle's order
    return kernel.reshape(out_channels * stride ** 2, in_channels * stride ** 2, taps, taps)


class FewOutputsConv2d(nn.Conv2d):
    """``nn.Conv2d`` computed by space-to-depth on CPU tensors of even height and width, for a square kernel of odd
    size without stride, padding, dilation or groups (so the output's sides are even too); otherwise plain."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting():
            return self._conv_forward(x, self.weight, self.bias)
        if not self._recast(x):
            return self._conv_forward(x, self.weight, self.bias)
        return self._space_to_depth_forward(x)

    @torch.jit.unused
    def _recast(self, x: torch.Tensor) -> bool:
        return (x.device.type == "cpu" and not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export()
                and x.shape[-1] % PHASES == 0 and x.shape[-2] % PHASES == 0 and self.stride == (1, 1)
                and self.kernel_size[0] == self.kernel_size[1] and self.kernel_size[0] % 2 == 1   # even outputs
                and self.padding == (0, 0) and self.dilation == (1, 1) and self.groups == 1)

    @torch.jit.unused
    def _space_to_depth_forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.repeat_interleave(PHASES ** 2)
        output = F.conv2d(F.pixel_unshuffle(x, PHASES), space_to_depth_kernel(self.weight), bias)
        return F.pixel_shuffle(output, PHASES)


__all__ = ["FewOutputsConv2d", "space_to_depth_kernel"]
