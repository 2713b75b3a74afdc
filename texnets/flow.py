"""Optical flow between video frames, offline: OpenCV's DIS flow by default, torchvision's RAFT where its
weights are already in the torch hub cache (never downloaded here).

Every estimator is called as ``estimate(a, b)`` on (B, 3, H, W) frames in [0, 1] and returns the (B, 2, H, W)
flow in pixels with a(p) ~ b(p + flow(p)) (the ``texnets.temporal`` convention: ``warp(b, flow)`` lines b up
with a). Flow is a well-kept library's job, so texnets only adapts the conventions.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from texnets.color import luminance
from texnets.errors import TexnetsError

FLOW_METHODS = ("dis", "raft")
MIN_FLOW_SIDE = 16  # DIS refuses frames under 12 pixels a side; texnets' networks want 16 anyway
VIDEO_EXTRA = 'pip install "texnets[video]" (opencv-python-headless)'


def _gray_uint8(frames: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) [0, 1] -> (B, H, W) uint8 luma (Rec. 601, as OpenCV's own grey conversion)."""
    luma = luminance(frames.float().clamp(0, 1))[:, 0]
    return luma.mul(255).round().clamp(0, 255).to(torch.uint8).cpu().numpy()


class DISFlow:
    """Dense Inverse Search flow (Kroeger et al. 2016) from OpenCV: fast on a CPU, no weights.

    ``preset``: ``ultrafast``, ``fast`` or ``medium`` (OpenCV's presets; medium is the most accurate)."""

    PRESETS = ("ultrafast", "fast", "medium")

    def __init__(self, preset: str = "medium"):
        try:
            import cv2
        except ImportError:
            raise TexnetsError(f"optical flow needs OpenCV: {VIDEO_EXTRA}") from None
        if preset not in self.PRESETS:
            raise TexnetsError(f"DIS preset must be one of {', '.join(self.PRESETS)}, not {preset!r}")
        self._cv2 = cv2
        self._dis = cv2.DISOpticalFlow_create(getattr(cv2, f"DISOPTICAL_FLOW_PRESET_{preset.upper()}"))
        self.label = f"DIS optical flow (OpenCV {cv2.__version__}, {preset} preset)"

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if min(a.shape[-2:]) < MIN_FLOW_SIDE:
            raise TexnetsError(f"optical flow needs frames of at least {MIN_FLOW_SIDE} pixels a side, not "
                               f"{a.shape[-1]}x{a.shape[-2]}")
        # OpenCV's calc(I0, I1) returns flow with I0(p) ~ I1(p + flow(p)): exactly this module's convention.
        try:
            flows = [self._dis.calc(first, second, None) for first, second in zip(_gray_uint8(a), _gray_uint8(b))]
        except self._cv2.error as exc:
            raise TexnetsError(f"DIS optical flow failed: {str(exc).strip().splitlines()[-1][:200]}") from None
        return torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2).to(a.device, torch.float32)


class RAFTFlow:
    """RAFT (Teed & Deng 2020) from torchvision, with weights already in the torch hub cache: a learned
    estimator, more accurate on large motion, labelled as such in every report."""

    def __init__(self, large: bool = False, device=None):
        from torchvision.models import optical_flow
        builder = optical_flow.raft_large if large else optical_flow.raft_small
        weights = (optical_flow.Raft_Large_Weights if large else optical_flow.Raft_Small_Weights).DEFAULT
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
        if not cached.is_file():
            raise TexnetsError(f"RAFT's weights are not in the torch hub cache ({cached}) and nothing is downloaded "
                               "here; use --flow dis")
        self.model = builder(weights=weights, progress=False).eval().to(device or "cpu")
        self.label = f"RAFT ({'large' if large else 'small'}, torchvision {weights.name} weights; learned)"

    @torch.no_grad()
    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        height, width = a.shape[-2:]
        pad = (0, -width % 8, 0, -height % 8)  # RAFT needs sides divisible by 8
        device = next(self.model.parameters()).device
        first, second = (F.pad(x.to(device) * 2 - 1, pad, mode="replicate") for x in (a, b))
        flow = self.model(first, second)[-1]  # raft(a, b): a(p) ~ b(p + flow(p)), as here
        return flow[..., :height, :width].to(a.device, torch.float32)


def flow_estimator(method: str = "dis", device=None):
    """The estimator named on a command line (``--flow``)."""
    if method == "dis":
        return DISFlow()
    if method == "raft":
        return RAFTFlow(device=device)
    raise TexnetsError(f"--flow must be one of {', '.join(FLOW_METHODS)}, not {method!r}")


__all__ = ["DISFlow", "FLOW_METHODS", "MIN_FLOW_SIDE", "RAFTFlow", "flow_estimator"]
