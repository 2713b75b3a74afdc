"""Perceptual-loss super-resolution (Johnson, Alahi & Fei-Fei 2016, section 4.2): a :class:`SuperResolutionTask`
that trains a :class:`~texnets.generators.SuperResolutionNet` on crops of a folder of photos.

The data are the transfer networks' (:class:`~texnets.tasks.ContentImageDataModule`): high-resolution crops. Each
step makes their low-resolution inputs on the fly, on the training device, as the paper made its own (Gaussian blur,
then bicubic downsampling: ``texnets.degradation.low_resolution``), so one folder of photos serves every factor.

Two objectives from one config, the paper's pair:

* ``loss: feature``: feature reconstruction at relu2_2 (the shared ``ContentLoss``, Johnson et al.'s ℓ_feat) plus
  total variation, the perceptual network;
* ``loss: pixel``: mean squared error on pixels, the per-pixel baseline the paper compares against (same network,
  data and schedule; ``pixel_tv_weight`` adds total variation in the pixel loss's units, 0 by default: a TV weight
  sized for relu2_2 features, about 1e7 times larger, would flatten every output).

The paper's post-processing, histogram matching of each output channel onto the low-resolution input's
(``histogram_matching``, on by default), is not part of the network: training never sees it, the checkpoint records
it, and synthesize.py and evaluate.py sr apply it to the assembled output (``texnets.color.match_histograms``).

Validation logs PSNR and SSIM (8-bit, as saved) and the relu2_2 distance of the held-aside photos whatever the
objective, so the two runs' curves compare in TensorBoard; with histogram matching on, PSNR and SSIM are those of the
matched output (what synthesize.py writes), and ``psnr_unmatched`` is the network's own.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from texnets.color import match_histograms
from texnets.degradation import BLUR_SIGMA, bicubic_upscale, low_resolution
from texnets.errors import TexnetsError
from texnets.generators.sr_net import SuperResolutionNet, SuperResolutionNetConfig
from texnets.losses import ContentLoss, PerceptualCriterion
from texnets.quality import psnr_ssim, quantize
from texnets.tasks.base import GeneratorTask
from texnets.vgg import JOHNSON_CONTENT_LAYERS, VGGEncoder, check_layers

SR_LOSSES = ("feature", "pixel")


class SuperResolutionTask(GeneratorTask):
    """Train a :class:`~texnets.generators.SuperResolutionNet` to enlarge photos ×factor in one forward pass.

    Args:
        generator: the network's hyper-parameters (factor, channels, residual_blocks, upsample, norm, output_range).
        loss: ``feature`` (relu2_2 reconstruction, the perceptual network) or ``pixel`` (per-pixel MSE, the baseline).
        feature_layers: VGG layers of the feature reconstruction loss (Johnson et al. 2016: relu2_2).
        feature_weight / pixel_weight: weights of the data terms (see the configs for units and sources).
        tv_weight: total variation's weight beside the feature loss (in its units: relu2_2 MSE on Caffe's scale).
        pixel_tv_weight: total variation's weight beside the pixel loss (0: the plain per-pixel baseline).
        blur_sigma: std of the Gaussian blur, in high-resolution pixels, before bicubic downsampling.
        encoder: options of ``texnets.vgg.VGGEncoder`` (``weights``, ``arch``, ``pooling``).
        lr / lr_step / lr_gamma: Adam's learning rate and its optional step decay.
        bn_recalibration_batches: recompute the BatchNorm statistics over the last this many training batches
            before validation and checkpoints (0: the momentum-0.1 running averages, as the paper).
        histogram_matching: post-process outputs by matching their histograms to the inputs' (the paper's
            section 4.2); recorded in checkpoints for synthesize.py and evaluate.py sr.
        channels_last / compile: as for the other tasks (GPU speed-ups).
    """

    def __init__(self, generator: SuperResolutionNetConfig | None = None, loss: str = "feature",
                 feature_layers: Sequence[str] = JOHNSON_CONTENT_LAYERS, feature_weight: float = 1.0,
                 pixel_weight: float = 1.0, tv_weight: float = 0.0, pixel_tv_weight: float = 0.0,
                 blur_sigma: float = BLUR_SIGMA,
                 encoder: dict | None = None, lr: float = 1e-3, lr_step: int = 0, lr_gamma: float = 0.5,
                 bn_recalibration_batches: int = 0, histogram_matching: bool = True, channels_last: bool = False,
                 compile: bool = False):
        super().__init__(channels_last=channels_last, bn_recalibration_batches=bn_recalibration_batches,
                         compile=compile)
        config, generator = self.generator_config(SuperResolutionNetConfig, generator)
        self.save_hyperparameters()
        if loss not in SR_LOSSES:
            raise TexnetsError(f"model.loss must be one of {', '.join(SR_LOSSES)} for super-resolution, not {loss!r}")
        weights = (feature_weight, pixel_weight, tv_weight, pixel_tv_weight)
        if lr <= 0 or lr_step < 0 or not 0 < lr_gamma <= 1 or min(weights) < 0:
            raise TexnetsError("need lr > 0, lr_step >= 0, 0 < lr_gamma <= 1 and non-negative loss weights")
        if blur_sigma < 0:
            raise TexnetsError(f"model.blur_sigma must be >= 0, not {blur_sigma}")
        if bn_recalibration_batches < 0:
            raise TexnetsError(f"model.bn_recalibration_batches must be >= 0, not {bn_recalibration_batches}")
        self.loss_name, self.blur_sigma = loss, float(blur_sigma)
        self.histogram_matching = bool(histogram_matching)
        # The last training inputs, which BatchNorm recalibration runs the current network on (no extra I/O).
        self._recent_inputs: deque[torch.Tensor] = deque(maxlen=max(1, bn_recalibration_batches))
        encoder_options = dict(encoder or {})
        self.feature_layers = check_layers(feature_layers, encoder_options.get("arch", "vgg19"))
        self.generator = SuperResolutionNet(config)
        encoder = VGGEncoder(self.feature_layers, **encoder_options)
        # The feature term is always built: the pixel baseline reports it too, without training on it.
        self.criterion = PerceptualCriterion(encoder, {"feature": (ContentLoss(self.feature_layers), feature_weight)},
                                             tv_weight=tv_weight)

    # -- wiring --------------------------------------------------------------------------------------
    @property
    def encoder(self) -> VGGEncoder:
        return self.criterion.encoder

    @property
    def factor(self) -> int:
        return self.generator.factor

    def configure_data(self, datamodule) -> None:
        """The high-resolution crops must divide by the factor, so each low-resolution input is exact."""
        for name in ("size", "val_size"):
            size = getattr(datamodule, name, None)
            if size is not None and size % self.factor:
                raise TexnetsError(f"data.{name} ({size}) must be a multiple of the factor {self.factor}: e.g. "
                                   f"{max(self.factor, size // self.factor * self.factor)}")
        if getattr(datamodule, "size", None) is not None:
            self.generator.check_input((datamodule.size // self.factor,) * 2)

    def frozen_prefixes(self) -> tuple[str, ...]:
        return ("criterion.",)

    def task_summary(self) -> dict:
        return {"task": "super_resolution", "factor": self.factor, "loss": self.loss_name,
                "degradation": {"blur_sigma": self.blur_sigma, "downsampling": "bicubic"},
                "postprocess": "histogram_matching" if self.histogram_matching else "none"}

    def calibration_inputs(self, batches: int) -> list[torch.Tensor]:
        return list(self._recent_inputs)[-batches:]

    def recalibrate(self) -> None:
        """Exact BatchNorm statistics for eval mode (what synthesize.py runs) over the last training inputs: with
        batches of 4, the momentum-0.1 running averages move so much from step to step that the eval-mode output of
        a checkpoint can be worse than bicubic on a photo where the step before was better. Skipped until there are
        inputs (a resumed run, before its first step)."""
        if self._recent_inputs:
            super().recalibrate()

    def degrade(self, high_resolution: torch.Tensor) -> torch.Tensor:
        return low_resolution(high_resolution, self.factor, self.blur_sigma)

    # -- objective -----------------------------------------------------------------------------------
    def objective(self, high_resolution: torch.Tensor, restored: torch.Tensor, report_features: bool = True):
        """Total loss and detached per-term values for logging. The perceptual network trains on the feature term;
        the pixel baseline never runs VGG in training, and reports the feature term only when ``report_features``
        (validation), without backpropagating through it."""
        pixel = F.mse_loss(restored, high_resolution)
        if self.loss_name == "feature" or report_features:
            with torch.no_grad():
                self.criterion.terms["feature"].set_target(self.encoder(high_resolution, self.feature_layers))
        if self.loss_name == "feature":
            loss, logs = self.criterion(restored)
        else:
            logs = {}
            if report_features:
                with torch.no_grad():
                    _, logs = self.criterion(restored.detach())
            tv = self.criterion.tv(restored)
            loss = self.hparams.pixel_weight * pixel + self.hparams.pixel_tv_weight * tv
            logs.update({"tv": tv.detach(), "total": loss.detach()})
        logs["pixel"] = pixel.detach()
        return loss, logs

    def forward(self, low_resolution_images: torch.Tensor) -> torch.Tensor:
        return self.generator(low_resolution_images)

    def training_step(self, high_resolution: torch.Tensor, batch_idx: int) -> torch.Tensor:
        inputs = self.degrade(high_resolution)
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        if self.bn_recalibration_batches:
            self._recent_inputs.append(inputs.detach())
        loss, logs = self.objective(high_resolution, self.generator(inputs), report_features=False)
        return self.log_training_step(loss, logs, batch_size=high_resolution.shape[0])

    def validation_step(self, high_resolution: torch.Tensor, batch_idx: int) -> None:
        inputs = self.degrade(high_resolution)
        restored = self.generator(inputs)
        _, logs = self.objective(high_resolution, restored)
        output = restored.clamp(0, 1)
        if self.histogram_matching:
            logs["psnr_unmatched"] = psnr_ssim(quantize(output), high_resolution)[0].mean()
            output = match_histograms(output, inputs)
        psnr, ssim = psnr_ssim(quantize(output), high_resolution)
        bicubic = bicubic_upscale(inputs, self.factor)
        logs.update({"psnr": psnr.mean(), "ssim": ssim.mean(),
                     "psnr_bicubic": psnr_ssim(quantize(bicubic), high_resolution)[0].mean()})
        self.log_validation_step(logs, batch_size=high_resolution.shape[0])
        if batch_idx == 0:
            # Rows of three: bicubic, the network (post-processed as synthesize.py writes it), the original.
            rows = torch.stack([bicubic, output, high_resolution], 1).flatten(0, 1)
            self.log_image_grid("bicubic | network | original", rows, columns=3)


__all__ = ["SR_LOSSES", "SuperResolutionTask"]
