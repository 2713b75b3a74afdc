"""Deep Image Prior (Ulyanov, Vedaldi, Lempitsky 2018): restore one degraded image by fitting a
randomly initialised :class:`~texnets.generators.SkipNet` to it from a fixed noise input. The
network's structure is the only prior; no training data is involved.

One fitting loop, three degradations (``task``):

* ``denoise``: MSE between the output and the noisy image;
* ``super_resolve``: MSE between the output, area-downsampled by ``data.factor``, and the low-resolution
  image (the reference code uses a Lanczos-2 downsampler; area averaging is the simpler operator the
  issue asks for);
* ``inpaint``: MSE on the known pixels only (white in the mask).

The reference settings (Adam, lr 0.01, input noise perturbed by σ = 1/30 at every step, an exponential
moving average of the outputs) come from the authors' code, DmitryUlyanov/deep-image-prior.

DIP fits the noise too if run long enough. With a ground-truth image (``data.clean``) the task
evaluates PSNR/SSIM every ``eval_every`` steps and keeps the best output; without one it keeps the
(averaged) output of the last step, so ``trainer.max_steps`` is the stopping point. At the end of
training ``restored.png`` and ``restored.json`` (PSNR per evaluated step, best step, wall time) are
written into the run folder.

The network's sides must be multiples of 2^levels: the noise input is made that big (centred padding)
and the output cropped back to the image, so any image size works and no pixel outside the image
enters the loss.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from texnets.errors import TexnetsError
from texnets.generators.skip_net import SkipNet, SkipNetConfig
from texnets.images import load_image, resize, save_image, save_json
from texnets.degradation import bicubic_upscale, low_resolution
from texnets.quality import psnr_ssim, quantize
from texnets.tasks.base import GeneratorTask

TASKS = ("denoise", "super_resolve", "inpaint")
SR_DEGRADATIONS = ("area", "blur_bicubic")   # what super-resolution assumes made the low-resolution image
BERNOULLI_MASK = "bernoulli:"
# A mask pixel is "binary" when within this distance of black or white (JPEG ringing around edges).
MASK_TOLERANCE = 0.1


# --------------------------------------------------------------------------------------------------
# Data

@dataclass
class RestorationImages:
    """What one DIP run fits and is judged against; every tensor is (1, 3, H, W) in [0, 1]."""

    degraded: torch.Tensor               # the loss target: noisy, low-resolution or damaged image
    output_size: tuple[int, int]         # (H, W) of the restored image (factor × degraded for super-resolution)
    clean: torch.Tensor | None = None    # ground truth at output_size
    mask: torch.Tensor | None = None     # inpainting: 1 = known pixel, 0 = to fill in
    factor: int = 1                      # super-resolution factor (output / degraded size)
    ground_truth: str | None = None      # where the ground truth came from, for the report
    notes: list[str] = field(default_factory=list)


def _size_text(image: torch.Tensor) -> str:
    return f"{image.shape[-1]}x{image.shape[-2]}"


def area_downsample(image: torch.Tensor, factor: int) -> torch.Tensor:
    """The super-resolution degradation: each factor×factor block becomes its mean (area resampling)."""
    return F.avg_pool2d(image, factor) if factor > 1 else image


class DeepImagePriorDataModule(pl.LightningDataModule):
    """The image to restore (plus optional ground truth and mask) and one dummy item per step.

    Args:
        image: the degraded input: a path or ``builtin:<name>`` (noisy image, low-resolution image, or
            damaged photo). ``null`` synthesises it from ``clean``: noise of ``add_noise_sigma`` for
            denoising, area downsampling by ``factor`` for super-resolution, the mask for inpainting.
        clean: the ground truth (same size as the restored image): enables PSNR/SSIM and best-output keeping.
        mask: inpainting only: a binary image of the same size as ``image`` (white = known, black = fill
            in), or ``bernoulli:<p>`` to drop each pixel with probability p (fixed seed). A synthetic
            mask drops pixels of ``image`` itself, which is then the ground truth if ``clean`` is not given.
        factor: super-resolution only: the restored image is ``factor`` times larger than ``image``.
        add_noise_sigma: denoising from ``clean`` (``image: null``): Gaussian noise of σ = add_noise_sigma/255,
            clipped to [0, 1], with a fixed seed.
        max_size: cap the restored image's longer side, downscaling every image to match (a noisy input
            loses some of its noise when downscaled; synthesise the noise after downscaling instead).
        seed: seed of the synthetic noise and mask.
    """

    def __init__(self, image: str | None = None, clean: str | None = None, mask: str | None = None,
                 factor: int = 1, add_noise_sigma: float | None = None, max_size: int | None = None,
                 seed: int = 0):
        super().__init__()
        self.save_hyperparameters()
        if factor < 1:
            raise TexnetsError(f"data.factor must be a positive integer, not {factor}")
        if add_noise_sigma is not None and add_noise_sigma <= 0:
            raise TexnetsError(f"data.add_noise_sigma must be positive (in 0..255 units), not {add_noise_sigma}")
        if max_size is not None and max_size < 1:
            raise TexnetsError(f"data.max_size must be positive, not {max_size}")
        self.image, self.clean, self.mask, self.factor = image, clean, mask, int(factor)
        self.add_noise_sigma, self.max_size, self.seed = add_noise_sigma, max_size, seed
        self._loaded: dict[str, RestorationImages] = {}

    # -- loading -------------------------------------------------------------------------------------
    def _check_options(self, task: str) -> None:
        if task not in TASKS:
            raise TexnetsError(f"unknown Deep Image Prior task {task!r}; choose one of {', '.join(TASKS)}")
        if task == "super_resolve" and self.factor < 2:
            raise TexnetsError("super-resolution needs data.factor of 2 or more (e.g. --data.factor 4)")
        if task != "super_resolve" and self.factor != 1:
            raise TexnetsError(f"data.factor is for super-resolution; the {task} task restores at the input size")
        if self.mask is not None and task != "inpaint":
            raise TexnetsError(f"data.mask is for inpainting; the {task} task uses no mask")
        if task == "inpaint" and self.mask is None:
            raise TexnetsError("inpainting needs data.mask: a binary image (white = known) or bernoulli:<p>")
        if self.add_noise_sigma is not None and task != "denoise":
            raise TexnetsError(f"data.add_noise_sigma is for denoising; the {task} task adds no noise")
        if self.add_noise_sigma is not None and self.image is not None:
            raise TexnetsError("data.add_noise_sigma synthesises the noisy input from data.clean: "
                               "use it with --data.image null")
        if self.image is None and self.clean is None:
            raise TexnetsError("give the image to restore as data.image (or a clean photo as data.clean to "
                               "degrade it synthetically with --data.image null)")
        if task == "denoise" and self.image is None and self.add_noise_sigma is None:
            raise TexnetsError("nothing to denoise: give data.image, or data.add_noise_sigma to add noise to data.clean")

    def _load_mask(self, size: tuple[int, int]) -> tuple[torch.Tensor, bool]:
        """The mask at ``size`` (native size of the image) and whether it is synthetic."""
        spec = str(self.mask)
        if spec.startswith(BERNOULLI_MASK):
            try:
                missing = float(spec[len(BERNOULLI_MASK):])
            except ValueError:
                missing = -1.0
            if not 0 < missing < 1:
                raise TexnetsError(f"mask {spec!r}: write bernoulli:<p> with 0 < p < 1, the fraction of pixels dropped")
            # As the reference's get_bernoulli_mask (utils/inpainting_utils.py), but one draw per pixel.
            generator = torch.Generator().manual_seed(self.seed + 1)
            known = (torch.rand((1, 1, *size), generator=generator) >= missing).float()
            return known.expand(1, 3, *size).contiguous(), True
        mask = load_image(spec, what="mask")
        if tuple(mask.shape[-2:]) != tuple(size):
            raise TexnetsError(f"the mask is {_size_text(mask)} but the image is {size[1]}x{size[0]}; "
                               f"they must be the same size")
        between = ((mask > MASK_TOLERANCE) & (mask < 1 - MASK_TOLERANCE)).float().mean().item()
        if between > 0:
            raise TexnetsError(f"the mask {spec} is not binary: {100 * between:.2g}% of its values are grey "
                               f"(use white for known pixels, black for the ones to fill in)")
        mask = (mask > 0.5).float()
        if not mask.any():
            raise TexnetsError(f"the mask {spec} is all black: no pixel is known (white = known)")
        return mask, False

    def load(self, task: str) -> RestorationImages:
        """Load, check and (if asked) degrade the images for ``task``; cached."""
        if task in self._loaded:
            return self._loaded[task]
        self._check_options(task)
        factor = self.factor
        image = load_image(self.image, what="image") if self.image is not None else None
        clean = load_image(self.clean, what="clean image") if self.clean is not None else None

        # Sizes, checked at native resolution, before any resizing hides a mismatch.
        if image is not None:
            output_size = (image.shape[-2] * factor, image.shape[-1] * factor)
            if clean is not None and tuple(clean.shape[-2:]) != output_size:
                why = f"{factor} times the {_size_text(image)} image" if factor > 1 else "the image's size"
                raise TexnetsError(f"the clean image is {_size_text(clean)} but should be "
                                   f"{output_size[1]}x{output_size[0]} ({why})")
        else:
            output_size = tuple(clean.shape[-2:])
        degraded_size = (output_size[0] // factor, output_size[1] // factor)
        mask = synthetic_mask = None
        if task == "inpaint":
            mask, synthetic_mask = self._load_mask(degraded_size)

        # Downscale everything together when the restored image would be bigger than max_size.
        resized = self.max_size is not None and max(output_size) > self.max_size
        if resized:
            scale = self.max_size / max(output_size)
            degraded_size = tuple(max(1, round(side * scale / factor)) for side in output_size)
            output_size = (degraded_size[0] * factor, degraded_size[1] * factor)
            image = resize(image, degraded_size) if image is not None else None
            clean = resize(clean, output_size) if clean is not None else None
            mask = (resize(mask, output_size) > 0.5).float() if mask is not None else None
        if image is None and (output_size[0] % factor or output_size[1] % factor):
            # Refused rather than cropped: cropping would silently change the ground truth.
            height, width = output_size[0] // factor * factor, output_size[1] // factor * factor
            raise TexnetsError(f"×{factor} super-resolution needs the clean image's sides to be multiples of "
                               f"{factor}, not {output_size[1]}x{output_size[0]}; crop it to {width}x{height}")

        notes = []
        if resized:
            notes.append(f"downscaled to a {output_size[1]}x{output_size[0]} output (data.max_size {self.max_size})")
        ground_truth = self.clean if clean is not None else None
        if image is None:  # synthesise the degraded input from the clean photo
            if task == "denoise":
                # As the reference's get_noisy_image (utils/denoising_utils.py): x + σ·N(0, 1), clipped to [0, 1].
                generator = torch.Generator().manual_seed(self.seed)
                noise = torch.randn(clean.shape, generator=generator) * (self.add_noise_sigma / 255)
                image = (clean + noise).clamp(0, 1)
                notes.append(f"noisy input synthesised from the clean image: sigma {self.add_noise_sigma}/255, "
                             f"seed {self.seed}")
            elif task == "super_resolve":
                image = area_downsample(clean, factor)
                notes.append(f"low-resolution input synthesised from the clean image: area downsampling ×{factor}")
            else:
                image = clean * mask
                notes.append("damaged input synthesised from the clean image and the mask")
        elif task == "inpaint" and synthetic_mask and clean is None:
            clean, ground_truth = image, f"{self.image} (the pixels the synthetic mask drops are known)"
        if task == "inpaint":
            image = image * mask  # the loss never sees unknown pixels; zeroing them keeps logs honest
        loaded = RestorationImages(image.contiguous(), tuple(output_size), clean, mask, factor, ground_truth, notes)
        self._loaded[task] = loaded
        return loaded

    def summary(self) -> dict:
        return {"image": self.image, "clean": self.clean, "mask": self.mask, "factor": self.factor,
                "add_noise_sigma": self.add_noise_sigma, "max_size": self.max_size, "seed": self.seed}

    # -- Lightning -----------------------------------------------------------------------------------
    def train_dataloader(self) -> DataLoader:
        # The "dataset" is one image the task already holds: one dummy item per optimiser step.
        trainer = self.trainer
        steps = trainer.max_steps if trainer is not None and trainer.max_steps > 0 else 10**6
        length = steps * (trainer.accumulate_grad_batches if trainer is not None else 1)
        return DataLoader(range(length), batch_size=None)


# --------------------------------------------------------------------------------------------------
# The fitting loop

class DeepImagePriorTask(GeneratorTask):
    """Fit a :class:`~texnets.generators.SkipNet` to one degraded image (Deep Image Prior).

    Args:
        task: ``denoise``, ``super_resolve`` or ``inpaint`` (the degradation the loss models).
        generator: the skip network's hyper-parameters (see ``SkipNetConfig``).
        lr: Adam learning rate.
        reg_noise_std: standard deviation of the Gaussian perturbation added to the fixed noise input at
            every step (0 disables it).
        input_scale: the fixed input is uniform noise in [0, input_scale).
        ema_decay: weight of the exponential moving average of the outputs; the average is the output
            kept and evaluated (0 keeps the raw output of each step).
        eval_every: with a ground-truth image, compute PSNR/SSIM every this many steps (and at the last);
            the best output among these is kept.
        snapshot_every: show the current output in TensorBoard every this many steps.
        seed: seed of the fixed noise input.
        degradation: super-resolution's degradation model: ``area`` downsampling, or ``blur_bicubic`` (a Gaussian
            blur of ``blur_sigma`` pixels then bicubic downsampling, as texnets' super-resolution networks train).
    """

    def __init__(self, task: str = "denoise", generator: SkipNetConfig | None = None,
                 lr: float = 0.01,                  # LR = 0.01 (Adam) in every reference notebook
                 reg_noise_std: float = 1 / 30,     # reg_noise_std = 1./30. (denoising.ipynb)
                 input_scale: float = 0.1,          # get_noise(..., noise_type='u', var=1./10) (utils/common_utils.py)
                 ema_decay: float = 0.99,           # exp_weight = 0.99 (denoising.ipynb)
                 eval_every: int = 10, snapshot_every: int = 250, seed: int = 0,
                 degradation: str = "area", blur_sigma: float = 1.0,
                 channels_last: bool = False, compile: bool = False):
        super().__init__(channels_last=channels_last, compile=compile)
        config, generator = self.generator_config(SkipNetConfig, generator)
        self.save_hyperparameters()
        if task not in TASKS:
            raise TexnetsError(f"unknown Deep Image Prior task {task!r}; choose one of {', '.join(TASKS)}")
        if lr <= 0 or reg_noise_std < 0 or input_scale <= 0 or not 0 <= ema_decay < 1:
            raise TexnetsError("need lr > 0, reg_noise_std >= 0, input_scale > 0 and 0 <= ema_decay < 1")
        if eval_every < 1 or snapshot_every < 1:
            raise TexnetsError("eval_every and snapshot_every must be at least 1")
        if degradation not in SR_DEGRADATIONS:
            raise TexnetsError(f"model.degradation must be one of {', '.join(SR_DEGRADATIONS)}, not {degradation!r}")
        self.task = task
        self.generator = SkipNet(config)
        self.images: RestorationImages | None = None
        self._crop = (0, 0)
        self._average: torch.Tensor | None = None     # moving average of the outputs (what is kept)
        self._best: dict | None = None                # {"step", "psnr", "ssim", "image"} of the best evaluation
        self.history: list[dict] = []                 # one entry per evaluated step
        self._started: float | None = None

    # -- targets -------------------------------------------------------------------------------------
    def prepare_targets(self, stage: str) -> None:
        load = self.data("load")
        if load is None:
            raise TexnetsError("DeepImagePriorTask needs a DeepImagePriorDataModule")
        self.set_images(load(self.task))

    def set_images(self, images: RestorationImages) -> None:
        """Fit these images (instead of asking the data module); creates the fixed noise input."""
        self.images = images
        height, width = images.output_size
        padded = self.generator.padded_size(height, width)
        self._crop = ((padded[0] - height) // 2, (padded[1] - width) // 2)  # centred: free margins on all sides
        generator = torch.Generator().manual_seed(self.hparams.seed)
        net_input = torch.rand((1, self.generator.config.input_channels, *padded), generator=generator)
        # Buffers follow the module to its device; not persistent: rebuilt from the images and the seed.
        device = next(self.generator.parameters()).device
        for name, tensor in (("net_input", net_input * self.hparams.input_scale), ("target_degraded", images.degraded),
                             ("target_mask", images.mask), ("target_clean", images.clean)):
            self.register_buffer(name, None if tensor is None else tensor.float().to(device), persistent=False)

    def frozen_prefixes(self) -> tuple[str, ...]:
        return ("net_input", "target_")

    def task_summary(self) -> dict:
        summary = {"task": self.task}
        if self.images is not None:
            summary["size"] = list(self.images.output_size)
        return summary

    # -- the loss ------------------------------------------------------------------------------------
    def forward(self, net_input: torch.Tensor | None = None) -> torch.Tensor:
        """The restored image: the network's output for ``net_input`` (default: the fixed input), cropped."""
        output = self.generator(self.net_input if net_input is None else net_input)
        top, left = self._crop
        height, width = self.images.output_size
        return output[..., top:top + height, left:left + width]

    def data_loss(self, restored: torch.Tensor) -> torch.Tensor:
        """MSE between the degradation of ``restored`` and the degraded image, as in each reference notebook."""
        if self.task == "super_resolve":
            return F.mse_loss(self.degrade(restored), self.target_degraded)
        if self.task == "inpaint":
            # mse(out * mask, img * mask) (inpainting.ipynb): unknown pixels contribute nothing.
            return F.mse_loss(restored * self.target_mask, self.target_degraded * self.target_mask)
        return F.mse_loss(restored, self.target_degraded)

    def degrade(self, restored: torch.Tensor) -> torch.Tensor:
        """Super-resolution's degradation model: area downsampling, or the blur + bicubic that made the inputs of
        texnets' super-resolution networks (``texnets.degradation``), so DIP can be compared with them fairly."""
        if self.hparams.degradation == "blur_bicubic":
            return low_resolution(restored, self.images.factor, self.hparams.blur_sigma)
        return area_downsample(restored, self.images.factor)

    # -- training ------------------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        super().on_fit_start()
        if self.global_step == 0:
            self.log_image_grid("input", self.target_degraded, columns=1)
            if self.target_clean is not None:
                self.log_image_grid("ground_truth", self.target_clean, columns=1)

    def on_train_start(self) -> None:
        self._started = time.perf_counter()

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        net_input = self.net_input
        if self.hparams.reg_noise_std > 0:
            # A fresh perturbation of the fixed input each step (denoising.ipynb: net_input_saved + noise * σ).
            net_input = net_input + torch.randn_like(net_input) * self.hparams.reg_noise_std
        restored = self(net_input)
        loss = self.data_loss(restored)
        self.log_training_step(loss, {"total": loss.detach()}, batch_size=1)
        self._update_average(restored.detach())

        step = self.global_step + 1  # this step's output, counted from 1 (the reference's iteration i + 1)
        last = self.trainer.max_steps > 0 and step >= self.trainer.max_steps
        if self.target_clean is not None and (step % self.hparams.eval_every == 0 or step == 1 or last):
            metrics = self._evaluate(step, restored.detach(), float(loss.detach()))
            self.log_dict({f"train/{name}": value for name, value in metrics.items()}, batch_size=1)
        if step % self.hparams.snapshot_every == 0 or last:
            self.log_image_grid("restored", self._average, columns=1)
        return loss

    def _update_average(self, restored: torch.Tensor) -> None:
        # out_avg = out_avg * exp_weight + out * (1 - exp_weight), starting from the first output (denoising.ipynb).
        decay = self.hparams.ema_decay
        if self._average is None or decay == 0:
            self._average = restored.clone()
        else:
            self._average = self._average.to(restored.device).mul_(decay).add_(restored, alpha=1 - decay)

    @torch.no_grad()
    def _evaluate(self, step: int, raw: torch.Tensor | None, loss: float | None) -> dict:
        """PSNR/SSIM of the kept (averaged) output, 8-bit as saved; keeps it when it is the best so far."""
        kept = quantize(self._average)
        clean = self.target_clean.to(kept.device)
        psnr, ssim = (float(value[0]) for value in psnr_ssim(kept, clean))
        metrics = {"psnr": psnr, "ssim": ssim}
        if raw is not None:
            metrics["psnr_raw"] = float(psnr_ssim(quantize(raw), clean)[0][0])
        self.history.append({"step": step, "loss": loss, **metrics})
        if self._best is None or psnr > self._best["psnr"]:
            self._best = {"step": step, "psnr": psnr, "ssim": ssim, "image": kept.cpu()}
        return metrics

    # -- checkpoints: the average, the best output and the history continue after a resume ------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["deep_image_prior"] = {
            "average": None if self._average is None else self._average.detach().cpu(),
            "best": self._best, "history": list(self.history)}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if getattr(self, "_missing_targets", None) is not None:
            raise self._missing_targets  # the images are not stored in checkpoints: a resume needs them
        super().on_load_checkpoint(checkpoint)
        state = checkpoint.get("deep_image_prior") or {}
        self._average, self._best = state.get("average"), state.get("best")
        self.history = list(state.get("history") or [])

    # -- the result ----------------------------------------------------------------------------------
    def on_train_end(self) -> None:
        if self._average is None or not self.trainer.is_global_zero:
            return
        step = self.global_step
        if self.target_clean is not None and (not self.history or self.history[-1]["step"] != step):
            self._evaluate(step, None, None)  # the run stopped between evaluations
        folder = Path(getattr(self.trainer.checkpoint_callback, "dirpath", None) or self.trainer.default_root_dir)
        report = self.result_report(step)
        kept = self._best["image"] if report["kept"] == "best_psnr" else quantize(self._average)
        save_image(kept, folder / "restored.png")
        save_json(report, folder / "restored.json")

    def result_report(self, step: int) -> dict:
        images = self.images
        ground_truth = images.clean is not None
        final = self.history[-1] if ground_truth and self.history else None
        report = {
            "task": self.task, "steps": step, "size": list(images.output_size),
            "ground_truth": ground_truth, "ground_truth_source": images.ground_truth,
            "kept": "best_psnr" if ground_truth else "final",
            "kept_step": self._best["step"] if ground_truth else step,
            "best": {key: self._best[key] for key in ("step", "psnr", "ssim")} if ground_truth else None,
            "final": {key: final[key] for key in ("step", "psnr", "ssim")} if final else None,
            "input_psnr": self.input_psnr(), "history": self.history,
            "wall_seconds": round(time.perf_counter() - self._started, 3) if self._started else None,
            "notes": list(images.notes),
            "data": self.training_summary(),
        }
        if not ground_truth:
            report["notes"].append(f"no ground truth: restored.png is the averaged output of the last step ({step}); "
                                   f"Deep Image Prior fits the degradation too if run long, so trainer.max_steps "
                                   f"is the stopping point")
        return report

    @torch.no_grad()
    def input_psnr(self) -> dict | None:
        """The degraded input's PSNR against the ground truth (bicubic upsampling for super-resolution)."""
        if self.target_clean is None:
            return None
        degraded, clean = self.target_degraded, self.target_clean
        what = "the degraded input"
        if self.task == "super_resolve":
            degraded = bicubic_upscale(degraded, self.images.factor)
            what = "bicubic upsampling of the low-resolution input"
        psnr, ssim = psnr_ssim(quantize(degraded), clean)
        return {"of": what, "psnr": float(psnr[0]), "ssim": float(ssim[0])}


__all__ = ["DeepImagePriorDataModule", "DeepImagePriorTask", "RestorationImages", "TASKS", "area_downsample"]
