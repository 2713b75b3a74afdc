"""Texture Networks training (Ulyanov et al. 2016; instance norm and diversity from Ulyanov et al. 2017):
a :class:`TextureTask` LightningModule and the :class:`NoiseDataModule` whose "dataset" is noise.

The task owns the generator, the frozen VGG encoder and the style loss. The exemplar comes from the
data module (``data.exemplar``); its statistics are computed once in ``setup`` and kept as loss
buffers, so they are checkpointed and a resumed run does not need to recompute them. The encoder's
weights are non-persistent buffers and stay out of the checkpoints.
"""
from __future__ import annotations

from collections.abc import Sequence

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, IterableDataset

from texnets.errors import TexnetsError
from texnets.generators.texture_net import TextureNet, TextureNetConfig
from texnets.images import load_image
from texnets.losses import make_style_loss
from texnets.noise import NoiseSpec, check_size
from texnets.tasks.base import GeneratorTask
from texnets.tasks.objectives import diversity_entropy, normalize_gradients
from texnets.vgg import ULYANOV_STYLE_LAYERS, VGGEncoder, check_layers


class TextureTask(GeneratorTask):
    """Train a :class:`~texnets.generators.TextureNet` to turn noise into samples of one texture.

    Args:
        generator: the generator's hyper-parameters (scales, noise_channels, channel_step, norm, padding).
        loss: any style loss of ``texnets.losses`` (``gram``, ``meanvar``, ``moments``, ``mmd``, ``sw``).
        loss_options: extra options of that loss, e.g. ``{normalize: chw}`` for the Gram matrix.
        layers: VGG layers the loss is computed on.
        layer_weights: per-layer weights (a list, one per layer), ``inverse_channels``, or none (all 1).
        normalize_gradients: divide the gradient reaching each loss layer by its L1 norm (Ulyanov's trick).
        diversity_weight: weight λ of the Improved Texture Networks diversity term (0 disables it).
            With ``normalize_gradients`` its gradient is normalised too, to L1 norm λ, so λ is
            relative to the push of one style layer.
        diversity_layer: VGG layer whose features the diversity term compares.
        encoder: options of ``texnets.vgg.VGGEncoder`` (``weights``, ``pooling``, ``arch``, ``preprocessing``).
        lr: Adam learning rate.
        lr_step: multiply the learning rate by ``lr_gamma`` every ``lr_step`` optimiser steps.
        lr_gamma: see ``lr_step``.
        channels_last: run generator and encoder in channels_last memory layout (GPU speed-up).
        bn_recalibration_batches: before validation and before each checkpoint, recompute the
            generator's BatchNorm running statistics over this many fresh noise batches (0: keep the
            momentum-0.1 running averages, as the reference code does). Eval-mode samples, what
            synthesize.py makes, then match the training batches' quality; training is unaffected.
    """

    def __init__(self, generator: TextureNetConfig | None = None, loss: str = "gram",
                 loss_options: dict | None = None, layers: Sequence[str] = ULYANOV_STYLE_LAYERS,
                 layer_weights: list[float] | str | None = None, normalize_gradients: bool = True,
                 diversity_weight: float = 0.0, diversity_layer: str = "relu4_1",
                 encoder: dict | None = None, lr: float = 0.1, lr_step: int = 300, lr_gamma: float = 0.8,
                 channels_last: bool = False, bn_recalibration_batches: int = 20):
        super().__init__(channels_last=channels_last, bn_recalibration_batches=bn_recalibration_batches)
        config, generator = self.generator_config(TextureNetConfig, generator)
        self.save_hyperparameters()  # reads the (re-bound) init arguments
        encoder_options = dict(encoder or {})
        arch = encoder_options.get("arch", "vgg19")
        self.style_layers = check_layers(layers, arch)
        self.diversity_weight = float(diversity_weight)
        self.diversity_layer = diversity_layer
        encoder_layers = self.style_layers + ([diversity_layer] if self.diversity_weight else [])
        self.encoder_layers = check_layers(encoder_layers, arch)
        if lr <= 0 or lr_step < 1 or not 0 < lr_gamma <= 1:
            raise TexnetsError("need lr > 0, lr_step >= 1 and 0 < lr_gamma <= 1")

        self.generator = TextureNet(config)
        self.encoder = VGGEncoder(self.encoder_layers, **encoder_options)
        self.style = make_style_loss(loss, self.style_layers, layer_weights, **(loss_options or {}))
        self._exemplar: torch.Tensor | None = None

    # -- wiring --------------------------------------------------------------------------------------
    @property
    def noise_spec(self) -> NoiseSpec:
        return self.generator.noise_spec

    def set_exemplar(self, image: torch.Tensor) -> None:
        """Use this (1, 3, H, W) image in [0, 1] instead of asking the data module for one."""
        self._exemplar = image

    def prepare_targets(self, stage: str) -> None:
        exemplar = self._exemplar
        if exemplar is None:
            exemplar_image = self.data("exemplar_image")
            if exemplar_image is None:
                raise TexnetsError("TextureTask needs an exemplar: use a NoiseDataModule or call set_exemplar()")
            exemplar = exemplar_image()
        # Computed once, in float32, before Lightning moves the module to its device (they follow it).
        encoder_device = next(iter(self.encoder.buffers())).device
        with torch.no_grad():
            features = self.encoder(exemplar.to(encoder_device, torch.float32), self.style_layers)
        self.style.set_target(features)

    def frozen_prefixes(self) -> tuple[str, ...]:
        return ("encoder.", "style.")

    def calibration_inputs(self, batches: int):
        datamodule = self.datamodule
        batch_size, size = (datamodule.batch_size, datamodule.size) if datamodule is not None else (4, (64, 64))
        generator = torch.Generator().manual_seed(self.global_step)
        for _ in range(batches):
            yield self.noise_spec.sample(batch_size, size, generator=generator, device=self.device)

    def task_summary(self) -> dict:
        return {"loss": self.hparams.loss, "layers": list(self.style_layers)}

    # -- objective -----------------------------------------------------------------------------------
    def objective(self, images: torch.Tensor, normalize: bool | None = None):
        """Total loss and detached per-term / per-layer values for logging."""
        normalize = self.hparams.normalize_gradients if normalize is None else normalize
        features = self.encoder(images, self.encoder_layers)
        style_features = {layer: features[layer] for layer in self.style_layers}
        if normalize:
            style_features = normalize_gradients(style_features, self.style.layer_weights)
        style = self.style(style_features)
        logs = {"style": style.detach()}
        logs.update({f"style/{layer}": value for layer, value in self.style.last_layer_losses.items()})
        total = style
        if self.diversity_weight:
            diversity_features = features[self.diversity_layer]
            if normalize:  # then the weight is relative to one style layer's (unit) gradient
                diversity_features = normalize_gradients({"d": diversity_features}, {"d": self.diversity_weight})["d"]
            entropy = diversity_entropy(diversity_features)
            total = total - self.diversity_weight * entropy
            logs["diversity"] = entropy.detach()
        logs["total"] = total.detach()
        return total, logs

    def forward(self, noise: list[torch.Tensor]) -> torch.Tensor:
        return self.generator(noise)

    def training_step(self, noise: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        images = self.generator(noise)
        loss, logs = self.objective(images)
        return self.log_training_step(loss, logs, batch_size=images.shape[0])

    def validation_step(self, noise: list[torch.Tensor], batch_idx: int) -> None:
        # Fixed noise, generator in eval mode: exactly what synthesize.py will produce.
        images = self.generator(noise)
        _, logs = self.objective(images, normalize=False)
        self.log_validation_step(logs, batch_size=images.shape[0])
        if batch_idx == 0:
            self.log_image_grid("samples", images)

    def on_fit_start(self) -> None:
        super().on_fit_start()
        if self.global_step == 0 and self._exemplar_for_display() is not None:
            self.log_image_grid("exemplar", self._exemplar_for_display(), columns=1)

    def _exemplar_for_display(self):
        if self._exemplar is not None:
            return self._exemplar
        exemplar_image = self.data("exemplar_image")
        return exemplar_image() if exemplar_image is not None else None


class NoiseStream(IterableDataset):
    """An endless-feeling stream of noise pyramids: each item is one whole batch (finest level first).

    ``length`` batches per pass, so progress bars know the run's length. The seed depends on the
    process rank (DDP ranks draw different noise) and on the step the run resumes from.
    """

    def __init__(self, spec: NoiseSpec, batch_size: int, size: Sequence[int], length: int, seed: int):
        self.spec, self.batch_size, self.size, self.length, self.seed = spec, batch_size, tuple(size), length, seed

    def __len__(self) -> int:
        return self.length

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed)
        for _ in range(self.length):
            yield self.spec.sample(self.batch_size, self.size, generator=generator)


class NoiseDataModule(pl.LightningDataModule):
    """Noise in the shape the task's generator consumes, plus the exemplar image.

    Args:
        exemplar: the texture to learn: a path, ``builtin:<name>`` (see texnets.images) or a URL.
        size: training output size: one int (square) or [H, W] ([D, H, W] for solid textures).
        batch_size: samples per step.
        exemplar_size: resize the exemplar's shorter side to this; default: the training size.
        val_samples: number of fixed validation samples (the TensorBoard sample grid).
        seed: seed of the training noise stream and of the fixed validation noise.
    """

    def __init__(self, exemplar: str = "builtin:immunohistochemistry", size: int | list[int] = 256,
                 batch_size: int = 10, exemplar_size: int | None = None, val_samples: int = 4, seed: int = 0):
        super().__init__()
        self.save_hyperparameters()
        self.exemplar = exemplar
        self.size = tuple(size) if isinstance(size, (list, tuple)) else (int(size), int(size))
        if batch_size < 1 or val_samples < 0:
            raise TexnetsError("data.batch_size must be at least 1 and data.val_samples at least 0")
        self.batch_size, self.val_samples, self.seed = batch_size, val_samples, seed
        self.exemplar_size = exemplar_size or min(self.size[-2:])
        self.noise_spec: NoiseSpec | None = None  # set explicitly, or by the task it trains (configure_data)
        self._exemplar: torch.Tensor | None = None
        self._val_noise: list[torch.Tensor] | None = None

    def exemplar_image(self) -> torch.Tensor:
        if self._exemplar is None:
            self._exemplar = load_image(self.exemplar, self.exemplar_size, what="exemplar")
        return self._exemplar

    def summary(self) -> dict:
        return {"exemplar": self.exemplar, "size": list(self.size), "batch_size": self.batch_size,
                "exemplar_size": self.exemplar_size}

    def _spec(self) -> NoiseSpec:
        spec = self.noise_spec
        if spec is None:
            raise TexnetsError("NoiseDataModule needs a noise spec: train a TextureTask with it, or set .noise_spec")
        check_size(self.size, spec.scales)
        return spec

    def setup(self, stage: str) -> None:
        self.exemplar_image()  # fail early, with the image error, before any training

    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        steps = trainer.max_steps if trainer is not None and trainer.max_steps > 0 else 10**6
        length = steps * (trainer.accumulate_grad_batches if trainer is not None else 1)
        rank = trainer.global_rank if trainer is not None else 0
        resumed_at = trainer.global_step if trainer is not None else 0
        # Different noise per rank and per resume point; reproducible for a given run.
        seed = (self.seed * 1_000_003 + rank * 7919 + resumed_at) % 2**63
        stream = NoiseStream(self._spec(), self.batch_size, self.size, length, seed)
        return DataLoader(stream, batch_size=None, num_workers=0)

    def val_dataloader(self) -> DataLoader:
        if self._val_noise is None:
            generator = torch.Generator().manual_seed(10_000 + self.seed)
            self._val_noise = self._spec().sample(max(self.val_samples, 1), self.size, generator=generator)
        # One fixed batch; a list holding it is a map-style dataset of length one.
        return DataLoader([self._val_noise] if self.val_samples else [], batch_size=None)


__all__ = ["NoiseDataModule", "NoiseStream", "TextureTask"]
