"""Per-image optimisation baselines: Gatys texture synthesis, Gatys style transfer and
Mahendran & Vedaldi feature inversion. Each optimises the pixels of one image against a
``PerceptualCriterion`` built from the shared encoder and losses; ``optimize.py`` is their CLI.

Defaults, with their sources:
  * texture layers relu1_1, pool1..pool4 and average pooling: Gatys et al. 2015 ("Texture Synthesis
    Using Convolutional Neural Networks"), whose best results used conv1_1 and pool1-4 of an
    average-pooled VGG19 (their conv1_1 is rectified, hence relu1_1 here).
  * style layers relu1_1..relu5_1, content layer relu4_2, init from the content image, L-BFGS:
    Gatys et al. 2016 ("Image Style Transfer Using Convolutional Neural Networks").
  * luminance-only transfer for colour preservation: Gatys et al. 2017 ("Controlling Perceptual
    Factors in Neural Style Transfer"), section 5.
  * inversion with a TV (β=2) regulariser: Mahendran & Vedaldi 2015 ("Understanding Deep Image
    Representations by Inverting Them").
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from texnets.color import keep_content_colors, luminance, match_luminance
from texnets.errors import TexnetsError
from texnets.images import fit_mask, resize
from texnets.losses import ContentLoss, GuidedLoss, PerceptualCriterion, make_style_loss
from texnets.vgg import (GATYS_CONTENT_LAYERS, GATYS_STYLE_LAYERS, GATYS_TEXTURE_LAYERS, VGGEncoder, check_layers,
                         layer_names)

OPTIMIZERS = ("lbfgs", "adam", "sgd")
# SGD's step is in loss units per pixel, so its rate depends on the loss's scale: 1e-5 is the largest of
# 1e-6, 1e-5, 1e-4, 1e-3 that did not diverge on Gram texture synthesis at the default weights (texnets).
DEFAULT_LR = {"lbfgs": 1.0, "adam": 0.02, "sgd": 1e-5}
SGD_MOMENTUM = 0.9  # the usual heavy-ball momentum (Sutskever et al. 2013)


@dataclass
class OptimResult:
    image: torch.Tensor                   # (1, 3, H, W) in [0, 1], on the CPU
    losses: dict[str, float]              # final values: total, each term, each term's layers
    first_losses: dict[str, float]        # values at step 0, to see how far the run got
    steps: int
    seconds: float
    history: list[float] = field(default_factory=list)  # total loss per step
    stopped: str | None = None            # why the run ended early, if it did
    threshold_step: int | None = None     # the step at which the loss fell under ``stop_below``, if it did

    @property
    def seconds_per_step(self) -> float:
        return self.seconds / max(self.steps, 1)

    def report(self) -> dict:
        """The run's part of a JSON report (optimize.py's and the studio's)."""
        return {"steps": self.steps, "wall_seconds": round(self.seconds, 4),
                "seconds_per_step": round(self.seconds_per_step, 5), "first_losses": self.first_losses,
                "final_losses": self.losses, "stopped_early": self.stopped,
                "stopped_below_threshold_at_step": self.threshold_step}


def _floats(logs: dict) -> dict[str, float]:
    return {key: float(value) for key, value in logs.items()}


def optimize_pixels(init: torch.Tensor, criterion: PerceptualCriterion, steps: int, optimizer: str = "lbfgs",
                    lr: float | None = None, progress: bool | str = True,
                    on_step: Callable[[int, torch.Tensor], None] | None = None,
                    stop_below: float | None = None, stop_fraction: float | None = None,
                    monitor: Callable[[int, torch.Tensor, float], bool | None] | None = None) -> OptimResult:
    """Minimise ``criterion`` over the pixels of ``init`` for ``steps`` iterations.

    One step is one L-BFGS iteration (one function evaluation), one Adam update or one SGD (momentum 0.9)
    update. Pixels are clamped to [0, 1] after every step. A non-finite loss stops the run and returns the
    last image whose loss was finite, with ``stopped`` saying so. With ``stop_below`` the run ends at the first
    step whose loss is under it (the course studies' threshold stop), with ``threshold_step`` saying when;
    ``stop_fraction`` sets that threshold relative to the first step's loss instead. ``monitor(step, image, loss)``
    is called after every step (the studio's live view); when it returns True the run ends there, keeping that
    image, with ``stopped`` saying so (the studio's Stop button).
    """
    if optimizer not in OPTIMIZERS:
        raise TexnetsError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if steps < 1:
        raise TexnetsError("--steps must be at least 1")
    if stop_below is not None and not stop_below > 0:
        raise TexnetsError(f"--stop-below must be a positive loss value, not {stop_below}")
    if stop_fraction is not None and not 0 < stop_fraction < 1:
        raise TexnetsError(f"a relative stop must be in (0, 1), not {stop_fraction}")
    lr = DEFAULT_LR[optimizer] if lr is None else lr
    pixels = init.detach().clone().clamp(0, 1).requires_grad_(True)
    if optimizer == "lbfgs":
        # max_iter=1 makes one .step() one iteration, so progress and snapshots count iterations;
        # the curvature history persists across calls in the optimiser state.
        opt = torch.optim.LBFGS([pixels], lr=lr, max_iter=1, history_size=50)
    elif optimizer == "sgd":
        opt = torch.optim.SGD([pixels], lr=lr, momentum=SGD_MOMENTUM)
    else:
        opt = torch.optim.Adam([pixels], lr=lr)

    last: dict = {}

    def closure():
        opt.zero_grad(set_to_none=True)
        loss, logs = criterion(pixels)
        last["loss"], last["logs"] = loss.detach(), logs
        if torch.isfinite(loss):
            loss.backward()
        return loss

    best_image = pixels.detach().clone()
    last_finite = best_image.clone()  # the last image whose loss was evaluated and finite
    first, history, stopped, threshold_step = None, [], None, None
    bar = tqdm(range(steps), desc=progress if isinstance(progress, str) else "optimising",
               disable=not progress, leave=False, dynamic_ncols=True)
    start = time.perf_counter()
    step = 0
    for step in bar:
        evaluated = pixels.detach().clone()  # the step's closure scores this image, then updates the pixels
        opt.step(closure)
        if not torch.isfinite(last["loss"]):
            # The current pixels are those whose loss was just found non-finite: go back one step.
            stopped = f"non-finite loss at step {step}; kept the last image with a finite loss"
            warnings.warn(stopped, stacklevel=2)
            best_image.copy_(last_finite)
            break
        last_finite = evaluated
        history.append(float(last["loss"]))
        first = first or _floats(last["logs"])
        final_logs = last["logs"]
        with torch.no_grad():
            pixels.clamp_(0, 1)
            best_image.copy_(pixels)
        bar.set_postfix(loss=f"{history[-1]:.4g}", refresh=False)
        if on_step is not None:
            on_step(step + 1, best_image)
        if monitor is not None and monitor(step + 1, best_image, history[-1]):
            stopped = f"stopped at step {step + 1} on request"
            break
        if stop_fraction is not None and stop_below is None:
            stop_below = stop_fraction * history[0]
        if stop_below is not None and history[-1] < stop_below:
            threshold_step = step + 1
            break
    seconds = time.perf_counter() - start
    if first is None:
        raise TexnetsError("the loss was not finite at the first step; check the inputs and weights")
    # The logged losses belong to the image *before* the last update; evaluate the returned image.
    with torch.no_grad():
        _, final_logs = criterion(best_image)
    return OptimResult(image=best_image.cpu(), losses=_floats(final_logs), first_losses=first,
                       steps=len(history), seconds=seconds, history=history, stopped=stopped,
                       threshold_step=threshold_step)


def noise_like(shape: Sequence[int], seed: int | None, device) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return torch.rand(tuple(shape), generator=generator).to(device)


def encoder_arch(encoder: VGGEncoder | dict | None) -> str:
    return encoder.arch if isinstance(encoder, VGGEncoder) else (encoder or {}).get("arch", "vgg19")


def make_encoder(layers: Sequence[str], encoder: VGGEncoder | dict | None, device) -> VGGEncoder:
    """Reuse an encoder that reaches ``layers``, or build one from ``encoder`` options."""
    if isinstance(encoder, VGGEncoder):
        check_layers(layers, encoder.arch)
        if set(layers) - set(encoder.body.keys()):
            raise TexnetsError(f"the given encoder stops at {encoder.layers[-1]}; it cannot return {layers}")
        return encoder.to(device)
    return VGGEncoder(layers, **(encoder or {})).to(device)


def texture_criterion(exemplar: torch.Tensor, layers: Sequence[str] = GATYS_TEXTURE_LAYERS, loss: str = "gram",
                      encoder: VGGEncoder | dict | None = None, layer_weights=None,
                      loss_options: dict | None = None, device="cpu") -> PerceptualCriterion:
    layers = check_layers(layers, encoder_arch(encoder))
    enc = make_encoder(layers, encoder, device)
    with torch.no_grad():
        target = enc(exemplar.to(device), layers)
    style = make_style_loss(loss, layers, layer_weights, target, **(loss_options or {})).to(device)
    return PerceptualCriterion(enc, {"style": (style, 1.0)})


def synthesize_texture(exemplar: torch.Tensor, size: tuple[int, int], layers: Sequence[str] = GATYS_TEXTURE_LAYERS,
                       loss: str = "gram", steps: int = 300, optimizer: str = "lbfgs", lr: float | None = None,
                       seed: int | None = 0, encoder: VGGEncoder | dict | None = None, layer_weights=None,
                       loss_options: dict | None = None, device="cpu", progress: bool | str = True,
                       on_step=None, stop_below: float | None = None, stop_fraction: float | None = None,
                       monitor=None) -> OptimResult:
    """Gatys et al. 2015: optimise white noise until its feature statistics match the exemplar's."""
    check_depth(size, layers)
    criterion = texture_criterion(exemplar, layers, loss, encoder, layer_weights, loss_options, device)
    init = noise_like((1, 3, *size), seed, device)
    return optimize_pixels(init, criterion, steps, optimizer, lr, progress, on_step, stop_below, stop_fraction, monitor)


def check_depth(size: Sequence[int], layers: Sequence[str]) -> None:
    """One line when an image is too small for a layer: each pooling halves the map, and a map that would be
    empty (or a 1×1 map whose statistics mean nothing) makes no loss."""
    names = layer_names("vgg19")  # VGG16's layer names are a subset, with the same poolings
    for layer in layers:
        poolings = sum(name.startswith("pool") for name in names[:names.index(layer) + 1]) if layer in names else 0
        smallest = 2 ** (poolings + 1)
        if min(size) < smallest:
            raise TexnetsError(f"a {size[-1]}x{size[-2]} image is too small for {layer}: its feature map would be "
                               f"under 2x2; use --size {smallest} or more, or a shallower layer")


def check_guides(masks: Sequence[torch.Tensor], count: int, size: Sequence[int]) -> list[torch.Tensor]:
    """The masks of spatial control: one per style, each at the content's size (or its shape, scaled); a warning
    when they leave more than 1% of the image uncovered (those pixels keep only the content loss) or overlap."""
    if len(masks) != count:
        raise TexnetsError(f"{len(masks)} masks given for {count} style image{'s' * (count > 1)}: one mask per style")
    guides = [fit_mask(mask, size, f"mask {index + 1}") for index, mask in enumerate(masks)]
    inside = torch.stack([guide > 0.5 for guide in guides]).sum(0)
    uncovered, overlapping = float((inside == 0).float().mean()), float((inside > 1).float().mean())
    if uncovered > 0.01:
        warnings.warn(f"the masks leave {uncovered:.0%} of the image uncovered: there only the content loss applies",
                      stacklevel=3)
    if overlapping > 0.01:
        warnings.warn(f"the masks overlap on {overlapping:.0%} of the image: there the styles compete", stacklevel=3)
    return guides


def transfer_style(content: torch.Tensor, style: torch.Tensor | Sequence[torch.Tensor],
                   content_layers: Sequence[str] = GATYS_CONTENT_LAYERS,
                   style_layers: Sequence[str] = GATYS_STYLE_LAYERS, loss: str = "gram", content_weight: float = 1.0,
                   style_weight: float = 1e4, tv_weight: float = 0.0, steps: int = 300,
                   optimizer: str = "lbfgs", lr: float | None = None, init: str = "content",
                   seed: int | None = 0, scales: int = 1, preserve_color: bool = False,
                   encoder: VGGEncoder | dict | None = None, layer_weights="inverse_channels",
                   loss_options: dict | None = None, device="cpu", progress: bool | str = True,
                   on_step=None, stop_below: float | None = None, style_weights: Sequence[float] | None = None,
                   masks: Sequence[torch.Tensor] | None = None, monitor=None) -> OptimResult:
    """Gatys et al. 2016 style transfer; ``scales > 1`` runs coarse to fine, each scale starting from
    the upsampled result of the previous one; ``preserve_color`` transfers luminance only. ``stop_below``
    ends each scale once its loss falls under the threshold.

    Several style images (Gatys et al. 2017): with ``style_weights`` alone, one style term per image, weighted;
    the weighted sum of squared Gram distances is smallest at the weighted mean of the styles' Gram matrices, so
    this blends the styles. With ``masks`` (one per style, at the content's size), each style's Gram matrices
    are matched inside its region only (``texnets.losses.GuidedLoss``)."""
    if init not in ("content", "noise"):
        raise TexnetsError(f"--init must be 'content' or 'noise', not {init!r}")
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    if style_weights is None:
        style_weights = [1.0 / len(styles)] * len(styles)
    if len(style_weights) != len(styles) or min(style_weights) < 0 or sum(style_weights) <= 0:
        raise TexnetsError(f"--style-weights: one non-negative weight per style image ({len(styles)}), "
                           f"not {list(style_weights)}")
    style_weights = [w / sum(style_weights) for w in style_weights]
    guides = check_guides(masks, len(styles), content.shape[-2:]) if masks is not None else None
    original_content = content
    if preserve_color:
        content_y = luminance(content)
        styles = [match_luminance(luminance(s), content_y).expand(-1, 3, -1, -1) for s in styles]
        content = content_y.expand(-1, 3, -1, -1)
    arch = encoder_arch(encoder)
    content_layers, style_layers = check_layers(content_layers, arch), check_layers(style_layers, arch)
    check_depth(content.shape[-2:], [*content_layers, *style_layers])
    enc = make_encoder(check_layers([*content_layers, *style_layers], arch), encoder, device)

    height, width = content.shape[-2:]
    image, result, total_seconds, total_steps = None, None, 0.0, 0
    for scale in range(scales - 1, -1, -1):
        size = [max(16, height >> scale), max(16, width >> scale)]
        content_s = resize(content[0], size).unsqueeze(0).to(device)
        with torch.no_grad():
            content_target = enc(content_s, content_layers)
        terms = {"content": (ContentLoss(content_layers, target=content_target), content_weight)}
        for index, (style_k, weight_k) in enumerate(zip(styles, style_weights)):
            style_s = style_k.to(device)
            if scale:
                style_s = resize(style_k[0], max(16, min(style_k.shape[-2:]) >> scale)).unsqueeze(0).to(device)
            with torch.no_grad():
                style_target = enc(style_s, style_layers)
            term = make_style_loss(loss, style_layers, layer_weights, style_target, **(loss_options or {})).to(device)
            if guides is not None:
                term = GuidedLoss(term, resize(guides[index][0], size).unsqueeze(0)).to(device)
            terms["style" if len(styles) == 1 else f"style_{index + 1}"] = (term, style_weight * weight_k)
        criterion = PerceptualCriterion(enc, terms, tv_weight=tv_weight)
        if image is not None:
            start = F.interpolate(image.to(device), size=size, mode="bilinear", align_corners=False)
        elif init == "content":
            start = content_s
        else:
            start = noise_like((1, 3, *size), seed, device)
        label = progress if isinstance(progress, str) or not progress else f"scale {scales - scale}/{scales}"
        result = optimize_pixels(start, criterion, steps, optimizer, lr, label, on_step, stop_below,
                                 monitor=monitor)
        image, total_seconds, total_steps = result.image, total_seconds + result.seconds, total_steps + result.steps
        if result.stopped:
            break
    result.seconds, result.steps = total_seconds, total_steps
    if preserve_color:
        result.image = keep_content_colors(result.image, original_content.cpu())
    return result


def invert_features(target: torch.Tensor, layers: Sequence[str], tv_weight: float = 0.0, steps: int = 300,
                    optimizer: str = "lbfgs", lr: float | None = None, seed: int | None = 0,
                    encoder: VGGEncoder | dict | None = None, device="cpu", progress: bool | str = True,
                    on_step=None, stop_below: float | None = None, stop_fraction: float | None = None,
                    init: torch.Tensor | None = None) -> OptimResult:
    """Mahendran & Vedaldi 2015: find an image, from noise (or from ``init``), whose features at ``layers``
    match the target's."""
    arch = encoder_arch(encoder)
    layers = check_layers(layers, arch)
    check_depth(target.shape[-2:], layers)
    enc = make_encoder(layers, encoder, device)
    with torch.no_grad():
        features = enc(target.to(device), layers)
    criterion = PerceptualCriterion(enc, {"content": (ContentLoss(layers, target=features), 1.0)},
                                    tv_weight=tv_weight)
    start = noise_like(target.shape, seed, device) if init is None else init.to(device)
    return optimize_pixels(start, criterion, steps, optimizer, lr, progress, on_step, stop_below, stop_fraction)
