"""DeepDream on the frozen VGG, in two modes (``optimize.py dream``):

* **Feature matching** (the course's "DeepDream with a VGG prior"): start from a content image and make its
  features at one deep layer (default the last convolution, conv5_4) equal, position by position, to a style
  image's, with a squared error. Unlike a Gram loss this comparison is spatial, so the deep layer's layout
  is imposed; the shallow layers, left free, keep the photo's fine detail. It is feature inversion
  (``texnets.optim.invert_features``) started from the photo instead of noise.
* **Activation maximisation** (Mordvintsev, Olah & Tyka 2015, "Inceptionism"; the reference notebook's
  settings): gradient ascent on the squared activations of the chosen layers, with the gradient normalised
  by its mean magnitude, a random jitter (circular shift) before every step, and octaves: the image is
  processed from a 1/scale^(octaves-1) copy up to full size, each octave's added detail carried to the next.
"""
from __future__ import annotations

import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from texnets.errors import TexnetsError
from texnets.images import resize
from texnets.optim import OptimResult, encoder_arch, invert_features, make_encoder
from texnets.vgg import VGGEncoder, check_layers

DREAM_MATCH_LAYERS = ("conv5_4",)     # the course variant: the last convolution of VGG19
DREAM_MAXIMISE_LAYERS = ("relu4_2",)  # texnets: a VGG19 layer of mid-level parts (Inceptionism used inception_4c)
OCTAVES = 4                           # Inceptionism notebook: octave_n = 4
OCTAVE_SCALE = 1.4                    # Inceptionism notebook: octave_scale = 1.4
JITTER = 32                           # Inceptionism notebook: jitter = 32 px
STEP_SIZE = 1.5 / 255                 # Inceptionism notebook: step_size 1.5 on 0..255 pixels


def dream_match(content: torch.Tensor, style: torch.Tensor, layers: Sequence[str] = DREAM_MATCH_LAYERS,
                steps: int = 300, optimizer: str = "lbfgs", lr: float | None = None,
                encoder: VGGEncoder | dict | None = None, device="cpu", progress: bool | str = True, on_step=None,
                stop_below: float | None = None) -> OptimResult:
    """Feature matching from the photo: ``content``'s features at ``layers`` pulled onto ``style``'s (the style
    image resized to the photo's size, so the two maps align position by position)."""
    target = resize(style[0], tuple(content.shape[-2:])).unsqueeze(0)
    return invert_features(target, layers, steps=steps, optimizer=optimizer, lr=lr, encoder=encoder, device=device,
                           progress=progress, on_step=on_step, stop_below=stop_below, init=content)


def _ascend(image: torch.Tensor, encoder: VGGEncoder, layers: list[str], steps: int, step_size: float, jitter: int,
            generator: torch.Generator, history: list[float], bar) -> torch.Tensor:
    image = image.detach().clone()
    for _ in range(steps):
        dy, dx = (int(torch.randint(-jitter, jitter + 1, (1,), generator=generator)) for _ in range(2))
        shifted = torch.roll(image, (dy, dx), dims=(-2, -1)).requires_grad_(True)
        features = encoder(shifted, layers)
        objective = sum(features[layer].pow(2).mean() for layer in layers)
        (gradient,) = torch.autograd.grad(objective, shifted)
        with torch.no_grad():
            step = step_size / gradient.abs().mean().clamp_min(1e-12) * gradient
            image = torch.roll(shifted + step, (-dy, -dx), dims=(-2, -1)).clamp(0, 1)
        history.append(float(objective.detach()))
        bar.update()
    return image


def dream_maximise(image: torch.Tensor, layers: Sequence[str] = DREAM_MAXIMISE_LAYERS, steps: int = 10,
                   octaves: int = OCTAVES, octave_scale: float = OCTAVE_SCALE, step_size: float = STEP_SIZE,
                   jitter: int = JITTER, seed: int = 0, encoder: VGGEncoder | dict | None = None, device="cpu",
                   progress: bool | str = True) -> OptimResult:
    """Gradient ascent on the squared activations of ``layers``, ``steps`` per octave. ``history`` holds the
    objective (mean squared activation, summed over layers) at every step: it rises."""
    if octaves < 1 or octave_scale <= 1 or steps < 1:
        raise TexnetsError("dream needs --octaves >= 1, --octave-scale > 1 and --steps >= 1")
    layers = check_layers(layers, encoder_arch(encoder))
    encoder = make_encoder(layers, encoder, device)
    height, width = image.shape[-2:]
    sizes = [(max(16, round(height / octave_scale ** k)), max(16, round(width / octave_scale ** k)))
             for k in range(octaves)][::-1]  # coarse to fine
    base = [resize(image[0], size).unsqueeze(0).to(device) for size in sizes]
    generator = torch.Generator().manual_seed(seed)
    history: list[float] = []
    bar = tqdm(total=steps * octaves, desc=progress if isinstance(progress, str) else "dreaming",
               disable=not progress, leave=False, dynamic_ncols=True)
    start, detail = time.perf_counter(), torch.zeros_like(base[0])
    for octave, original in enumerate(base):
        if octave:
            detail = F.interpolate(detail, size=original.shape[-2:], mode="bilinear", align_corners=False)
        dreamed = _ascend((original + detail).clamp(0, 1), encoder, layers, steps, step_size, jitter, generator,
                          history, bar)
        detail = dreamed - original
    bar.close()
    seconds = time.perf_counter() - start
    first, last = {"total": history[0]}, {"total": history[-1]}
    return OptimResult(image=dreamed.detach().cpu(), losses=last, first_losses=first, steps=len(history),
                       seconds=seconds, history=history)


__all__ = ["DREAM_MATCH_LAYERS", "DREAM_MAXIMISE_LAYERS", "dream_match", "dream_maximise"]
