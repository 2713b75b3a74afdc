"""Temporal consistency of stylised video: warping along motion, the warping error, the flow-free training
penalty, and the motion-compensated blend at inference.

Conventions, used by every function here and by ``texnets.flow`` and ``texnets.clips``:

* A flow field is (B, 2, H, W) in pixels; channel 0 moves along x (columns), channel 1 along y (rows).
* ``warp(image, flow)`` samples ``image`` at p + flow(p). With the *backward* flow of frame t+1 (for each of
  its pixels, where that point was in frame t), ``warp(frame_t, flow)`` lines frame t up with frame t+1.
* A visibility mask is (B, 1, H, W) in {0, 1}: 1 where the pixel is seen in both frames.

The warping error follows Lai et al. 2018 ("Learning Blind Video Temporal Consistency", section 4.1): warp one
frame along the motion onto the next and compare them on the pixels visible in both. texnets reports the
mean absolute difference on 0..255 (the unit in which flicker was first measured here) and Lai et al.'s
mean squared difference on [0, 1].
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import kornia.filters
import kornia.geometry.transform
import torch
import torch.nn.functional as F

from texnets.errors import TexnetsError

# Forward-backward consistency (Sundaram, Brox & Keutzer 2010, the test Ruder et al. 2016 use for their
# occlusion masks): a pixel is reliable when following the backward flow and then the forward flow comes back
# within 0.01 * (|w|^2 + |w'|^2) + 0.5 squared pixels.
CONSISTENCY_RELATIVE = 0.01
CONSISTENCY_ABSOLUTE = 0.5


def pixel_grid(height: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(1, 2, H, W): each pixel's own (x, y) coordinates."""
    ys, xs = torch.meshgrid(torch.arange(height, device=device, dtype=dtype),
                            torch.arange(width, device=device, dtype=dtype), indexing="ij")
    return torch.stack([xs, ys]).unsqueeze(0)


def check_flow(images: torch.Tensor, flow: torch.Tensor) -> None:
    if flow.ndim != 4 or flow.shape[1] != 2 or flow.shape[-2:] != images.shape[-2:]:
        raise ValueError(f"flow must be (B, 2, H, W) matching images {tuple(images.shape)}, got {tuple(flow.shape)}")


def warp(images: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear") -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``images`` (B, C, H, W) at p + ``flow``(p); return the warped images and a (B, 1, H, W) mask of
    the pixels whose sample point lies inside the frame (outside, the border is repeated and the mask is 0)."""
    check_flow(images, flow)
    height, width = images.shape[-2:]
    coords = pixel_grid(height, width, images.device, flow.dtype) + flow
    # kornia's remap is grid_sample in pixel coordinates; align_corners=True makes pixel centres exact.
    warped = kornia.geometry.transform.remap(images, coords[:, 0], coords[:, 1], mode=mode, padding_mode="border",
                                             align_corners=True)
    inside = ((coords[:, 0] >= 0) & (coords[:, 0] <= width - 1) & (coords[:, 1] >= 0) & (coords[:, 1] <= height - 1))
    return warped, inside.unsqueeze(1).to(images.dtype)


def consistency_mask(backward: torch.Tensor, forward: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) mask of frame t+1's pixels whose motion is reliable: ``backward`` maps frame t+1 into
    frame t, ``forward`` frame t into frame t+1; the two must undo each other and stay inside the frame."""
    forward_there, inside = warp(forward, backward)
    mismatch = (backward + forward_there).square().sum(1, keepdim=True)
    scale = backward.square().sum(1, keepdim=True) + forward_there.square().sum(1, keepdim=True)
    return (mismatch <= CONSISTENCY_RELATIVE * scale + CONSISTENCY_ABSOLUTE).to(backward.dtype) * inside


def warping_error(previous: torch.Tensor, current: torch.Tensor, backward: torch.Tensor,
                  mask: torch.Tensor | None = None, squared: bool = False) -> torch.Tensor:
    """Per pair (B,): how much ``current`` differs from ``previous`` warped onto it along ``backward``, over the
    pixels visible in both (``mask`` times the in-frame mask). Mean absolute difference on 0..255, or with
    ``squared`` Lai et al. 2018's mean squared difference on [0, 1]. NaN for a pair with no visible pixel."""
    warped, inside = warp(previous, backward)
    visible = inside if mask is None else inside * mask
    difference = (current - warped).square() if squared else (current - warped).abs() * 255.0
    per_pixel = difference.mean(1, keepdim=True)
    return (per_pixel * visible).sum((1, 2, 3)) / visible.sum((1, 2, 3))


# --------------------------------------------------------------------------------------------------
# Training: the flow-free penalty

PERTURBATION_MODES = ("noise", "warp", "compound")


@dataclass
class Perturbation:
    """How a training photo is disturbed the way consecutive video frames differ (see configs/starry.yaml for
    the sources of the defaults).

    Args:
        mode: ``noise`` (sensor noise only: the noise-resilience term), ``warp`` (motion only) or ``compound``
            (both: Wang et al. 2020's compound regularisation).
        noise: standard deviation of the added Gaussian noise on [0, 1] pixels, drawn in [noise, 2 * noise] as
            Wang et al.'s reference code does (theirs once per batch; here once per image).
        shift: largest global shift in pixels (uniform in [-shift, shift] on each axis, sub-pixel).
        motion: standard deviation in pixels of a smooth random flow added to the shift.
        motion_scale: the distance in pixels over which that random flow varies.
    """

    mode: str = "compound"
    noise: float = 0.01
    shift: float = 2.0
    motion: float = 1.0
    motion_scale: int = 64

    def __post_init__(self):
        if self.mode not in PERTURBATION_MODES:
            raise TexnetsError(f"temporal.mode must be one of {', '.join(PERTURBATION_MODES)}, not {self.mode!r}")
        if min(self.noise, self.shift, self.motion) < 0 or self.motion_scale < 1:
            raise TexnetsError("temporal.noise, shift and motion must be >= 0 and motion_scale >= 1")

    @property
    def moves(self) -> bool:
        return self.mode in ("warp", "compound") and (self.shift > 0 or self.motion > 0)

    @property
    def adds_noise(self) -> bool:
        return self.mode in ("noise", "compound") and self.noise > 0

    def as_dict(self) -> dict:
        return asdict(self)


def random_flow(batch: int, height: int, width: int, shift: float, motion: float, motion_scale: int,
                generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """(B, 2, H, W): a global sub-pixel shift per image plus a smooth random field (Gaussian values on a coarse
    grid, interpolated bicubically), the kind of motion consecutive frames show."""
    # Drawn where the batch lives (no host-to-device copy per step), unless a seeded CPU generator is given.
    where = "cpu" if generator is not None else device
    flow = (torch.rand(batch, 2, 1, 1, generator=generator, device=where) * 2 - 1) * shift
    flow = flow.expand(batch, 2, height, width).clone()
    if motion > 0:
        grid = (max(2, round(height / motion_scale) + 1), max(2, round(width / motion_scale) + 1))
        coarse = torch.randn(batch, 2, *grid, generator=generator, device=where) * motion
        flow += F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=True)
    return flow.to(device)


def perturb(content: torch.Tensor, perturbation: Perturbation, generator: torch.Generator | None = None):
    """Disturb a batch of photos: returns (perturbed photos, flow or None, in-frame mask or None)."""
    flow = inside = None
    moved = content
    if perturbation.moves:
        batch, _, height, width = content.shape
        flow = random_flow(batch, height, width, perturbation.shift, perturbation.motion, perturbation.motion_scale,
                           generator, content.device).to(content.dtype)
        moved, inside = warp(content, flow)
    if perturbation.adds_noise:
        where = "cpu" if generator is not None else content.device
        std = perturbation.noise * (1 + torch.rand(content.shape[0], 1, 1, 1, generator=generator, device=where))
        noise = torch.randn(content.shape, generator=generator, device=where) * std
        moved = (moved + noise.to(content.device, content.dtype)).clamp(0, 1)
    return moved, flow, inside


def perturbation_penalty(generate: Callable[[torch.Tensor], torch.Tensor], content: torch.Tensor,
                         output: torch.Tensor, perturbation: Perturbation,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """The flow-free temporal term: mean |G(W(x) + n) - W(G(x))| on [0, 1] pixels, over the pixels that stay
    in the frame, where W is a random motion and n sensor noise (Wang et al. 2020, eq. 9; with ``noise`` mode
    W is the identity: G(x + n) against G(x)). Gradients flow through both outputs, as in their code."""
    moved, flow, inside = perturb(content, perturbation, generator)
    target = output if flow is None else warp(output, flow)[0]
    difference = (generate(moved) - target).abs().mean(1, keepdim=True)
    if inside is None:
        return difference.mean()
    return (difference * inside).sum() / inside.sum().clamp_min(1.0)


# --------------------------------------------------------------------------------------------------
# Inference: blending along the motion

# The scale (Gaussian sigma, pixels) at which a blended frame gets the current frame's local contrast back:
# about a brush stroke of a Johnson network at its training size (texnets: measured in bench_temporal).
CONTRAST_SIGMA = 2.0


def match_local_contrast(image: torch.Tensor, reference: torch.Tensor, sigma: float = CONTRAST_SIGMA,
                         most: float = 3.0) -> torch.Tensor:
    """``image`` with the local standard deviation of ``reference`` around its own local mean (per channel,
    Gaussian windows of ``sigma``); the gain is capped at ``most``.

    Why: averaging two frames whose strokes disagree lowers the strokes' contrast (two partly independent
    patterns average to a flatter one), which is exactly what a style loss penalises; restoring the current
    frame's contrast keeps the motion-compensated structure and the stroke energy.
    """
    size = 2 * round(2 * sigma) + 1

    def blur(x: torch.Tensor) -> torch.Tensor:
        return kornia.filters.gaussian_blur2d(x, (size, size), (sigma, sigma), border_type="reflect")

    mean, reference_mean = blur(image), blur(reference)
    spread = blur((image - mean).square()).clamp_min(1e-8).sqrt()
    reference_spread = blur((reference - reference_mean).square()).clamp_min(1e-8).sqrt()
    return (mean + (image - mean) * (reference_spread / spread).clamp(max=most)).clamp(0, 1)


class TemporalBlender:
    """Blend each stylised frame with the previous output warped along the input's motion, where the motion is
    reliable (the forward-backward consistency mask M): b_t = S_t + strength * M * (W(out_t-1) - S_t); then,
    with ``keep_contrast`` (the default), out_t is b_t with S_t's local contrast (``match_local_contrast``).

    Feed it consecutive batches in order; it keeps the previous frame between batches and starts afresh when
    the frame size changes. ``estimate`` is a ``texnets.flow`` estimator: estimate(a, b) gives the flow with
    a(p) ~ b(p + flow(p)).
    """

    def __init__(self, estimate: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], strength: float = 0.5,
                 keep_contrast: bool = True):
        if not 0 <= strength < 1:
            raise TexnetsError(f"--temporal-strength must be in [0, 1), not {strength}")
        self.estimate, self.strength, self.keep_contrast = estimate, strength, keep_contrast
        self.label = getattr(estimate, "label", type(estimate).__name__)
        self.previous_input: torch.Tensor | None = None
        self.previous_output: torch.Tensor | None = None
        self.reliable_fraction: list[float] = []

    def __call__(self, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) input frames and their stylised frames (same size) -> the blended frames."""
        if inputs.shape != outputs.shape:
            raise TexnetsError(f"temporal blending needs stylised frames of the input's size: {tuple(outputs.shape)} "
                               f"against {tuple(inputs.shape)}")
        blended = []
        for frame, stylised in zip(inputs.split(1), outputs.split(1)):
            if self.previous_input is not None and self.previous_input.shape == frame.shape and self.strength > 0:
                backward = self.estimate(frame, self.previous_input)
                forward = self.estimate(self.previous_input, frame)
                mask = consistency_mask(backward, forward)
                carried, _ = warp(self.previous_output, backward)
                blended_frame = stylised + self.strength * mask * (carried - stylised)
                stylised = match_local_contrast(blended_frame, stylised) if self.keep_contrast else blended_frame
                self.reliable_fraction.append(float(mask.mean()))
            self.previous_input, self.previous_output = frame, stylised
            blended.append(stylised)
        return torch.cat(blended)

    def summary(self) -> dict:
        fractions = self.reliable_fraction
        return {"strength": self.strength, "keep_contrast": self.keep_contrast, "blended_frames": len(fractions),
                "reliable_pixels": round(sum(fractions) / len(fractions), 4) if fractions else None}


__all__ = ["Perturbation", "TemporalBlender", "consistency_mask", "match_local_contrast", "perturb",
           "perturbation_penalty", "pixel_grid", "random_flow", "warp", "warping_error"]
