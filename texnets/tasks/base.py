"""What every generator task shares: checkpoint metadata, the non-finite-loss guard, logging helpers,
channels_last, DDP hygiene, and an atomic checkpoint writer.

A task subclasses :class:`GeneratorTask`, owns a ``generator`` (a plain ``nn.Module`` from
``texnets.generators`` with ``model_type`` and ``config_dict()``), and implements
``prepare_targets(stage)`` (compute exemplar statistics once) plus the usual Lightning steps.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.plugins.io import TorchCheckpointIO
from torchvision.utils import make_grid

from texnets.checkpoints import METADATA_KEY, checkpoint_metadata, save_atomically
from texnets.errors import TexnetsError
from texnets.temporal import Perturbation, perturbation_penalty


class NonFiniteLossError(TexnetsError):
    """The loss became NaN or infinite; training stops before the bad step touches any checkpoint."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint writer that never leaves a half-written ``last.ckpt``.

    Lightning serialises to memory first, but its fsspec transaction stages the file in the system
    temp folder and then *moves* it, a plain copy when that folder is on another filesystem, so a
    SIGKILL during the copy truncates the checkpoint. Here the temporary file sits beside the
    target and is renamed onto it (``texnets.checkpoints.save_atomically``).
    """

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        if storage_options is not None or "://" in str(path):  # remote storage: fsspec's business
            return super().save_checkpoint(checkpoint, path, storage_options)
        save_atomically(checkpoint, path)


@torch.no_grad()
def recalibrate_batch_norm(module: nn.Module, inputs: Iterable) -> bool:
    """Recompute every BatchNorm's running statistics as the exact average over ``inputs`` (batches
    fed to ``module`` in training mode; a tuple is passed as the positional arguments); return False
    when the module has no BatchNorm.

    Running statistics kept with momentum 0.1 trail weights that are still moving, so eval-mode
    samples (what synthesize.py makes) come out worse than the training batches. Only eval mode
    reads these statistics: recalibrating never changes training itself.
    """
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return False
    momenta, was_training = [m.momentum for m in norms], module.training
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average
    module.train()
    for batch in inputs:
        module(*batch) if isinstance(batch, tuple) else module(batch)
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    module.train(was_training)
    return True


class GeneratorTask(pl.LightningModule):
    """Base LightningModule of every texnets generator task."""

    generator: torch.nn.Module

    def __init__(self, channels_last: bool = False, bn_recalibration_batches: int = 0, compile: bool = False,
                 temporal_weight: float = 0.0, temporal: Perturbation | dict | None = None):
        super().__init__()
        self.channels_last = channels_last
        self.compile_modules = compile
        self.bn_recalibration_batches = bn_recalibration_batches
        self._recalibrated_at: int | None = None
        if temporal_weight < 0:
            raise TexnetsError(f"model.temporal_weight must be >= 0, not {temporal_weight}")
        self.temporal_weight = temporal_weight
        try:
            self.perturbation = temporal if isinstance(temporal, Perturbation) else Perturbation(**(temporal or {}))
        except TypeError as exc:  # an unknown key: one line naming it
            raise TexnetsError(f"model.temporal: {exc}".replace("Perturbation.__init__() ", "")) from None

    # -- subclasses ----------------------------------------------------------------------------------
    def prepare_targets(self, stage: str) -> None:
        """Compute the fixed loss targets (exemplar statistics) once, before training."""

    def configure_data(self, datamodule) -> None:
        """Hand the attached DataModule what it needs from the model. Called in ``setup``, before any
        dataloader is built, so the DataModule never looks the task up: the two meet in one direction only,
        task to DataModule. By default a noise-driven task gives a DataModule that draws noise its
        generator's noise spec."""
        spec = getattr(self, "noise_spec", None)
        if spec is not None and hasattr(datamodule, "noise_spec"):
            datamodule.noise_spec = spec

    def frozen_prefixes(self) -> tuple[str, ...]:
        """Module names whose buffers are identical on every process and never change (encoder
        weights, exemplar statistics): DDP must not broadcast them at every step."""
        return ("encoder.",)

    def task_summary(self) -> dict:
        """Plain facts about the task's set-up recorded in checkpoints (e.g. loss, layers); the DataModule's
        own ``summary()`` (exemplar, size) is added by ``training_summary``."""
        return {}

    def calibration_inputs(self, batches: int) -> Iterable:
        """``batches`` fresh generator inputs for BatchNorm recalibration (none by default)."""
        return []

    # -- what every task shares ----------------------------------------------------------------------
    @staticmethod
    def generator_config(config_class: type, generator) -> tuple[Any, dict]:
        """The generator's config object from what the YAML gave (a mapping, None or the object itself),
        and its plain-dict form. A task rebinds its ``generator`` argument to the dict before calling
        ``save_hyperparameters()``, so hyper-parameters and checkpoints stay weights_only-loadable."""
        config = generator if isinstance(generator, config_class) else config_class(**(generator or {}))
        return config, asdict(config)

    @property
    def datamodule(self) -> pl.LightningDataModule | None:
        """The DataModule of the trainer running this task; None for a task used on its own (tests,
        notebooks), which is then given its targets directly (``set_exemplar`` and the like)."""
        return getattr(self._trainer, "datamodule", None) if self._trainer is not None else None

    def data(self, method: str) -> Callable | None:
        """The attached DataModule's ``method`` (e.g. ``exemplar_image``), or None where there is none."""
        return getattr(self.datamodule, method, None)

    def training_summary(self) -> dict:
        """What the checkpoint records of the training set-up: the task's facts and its DataModule's."""
        summary = self.task_summary()
        if self.temporal_weight > 0:
            summary["temporal"] = {"weight": self.temporal_weight, **self.perturbation.as_dict()}
        describe = self.data("summary")
        if describe is not None:
            summary.update(describe())
        return summary

    # -- set-up --------------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        # Runs before a checkpoint is restored. The targets are loss buffers, saved in every checkpoint,
        # so a resumed run can do without the exemplar or style image (moved, or a URL while offline):
        # a failure is kept until on_load_checkpoint has shown whether the checkpoint supplies them.
        if self.datamodule is not None:
            self.configure_data(self.datamodule)
        self._missing_targets: TexnetsError | None = None
        try:
            self.prepare_targets(stage)
        except TexnetsError as exc:
            self._missing_targets = exc
        # Runs before Lightning wraps the module in DistributedDataParallel, which reads this list.
        self._ddp_params_and_buffers_to_ignore = [
            name for name, _ in self.named_buffers() if name.startswith(self.frozen_prefixes())]

    def on_fit_start(self) -> None:
        if getattr(self, "_missing_targets", None) is not None:
            raise self._missing_targets  # not resuming: the image is needed after all
        if self.channels_last:
            self.convert_to_channels_last()
        if self.compile_modules:
            # In place (nn.Module.compile), so state-dict keys and checkpoints are unchanged.
            for module in (self.generator, getattr(self, "encoder", None)):
                if module is not None:
                    module.compile()

    def convert_to_channels_last(self) -> None:
        # Convolutions with channels_last weights produce channels_last outputs, so converting the
        # module is enough; the (small) noise inputs need not be converted.
        self.to(memory_format=torch.channels_last)

    # -- BatchNorm statistics for sampling -----------------------------------------------------------
    def recalibrate(self) -> None:
        """Recalibrate the generator's BatchNorm statistics (``bn_recalibration_batches`` > 0), at
        most once per step: before validation, so the sample grid shows what synthesize.py will make,
        and before checkpoints, so they hold statistics that match their weights."""
        if not self.bn_recalibration_batches or self._recalibrated_at == self.global_step:
            return
        recalibrate_batch_norm(self.generator, self.calibration_inputs(self.bn_recalibration_batches))
        self._recalibrated_at = self.global_step

    def on_validation_start(self) -> None:
        self.recalibrate()

    # -- checkpoints ---------------------------------------------------------------------------------
    @property
    def model_type(self) -> str:
        return self.generator.model_type

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.bn_recalibration_batches:
            self.recalibrate()
            # Lightning collected the state dict before calling this hook: refresh the statistics.
            for name, value in self.generator.state_dict().items():
                checkpoint["state_dict"][f"generator.{name}"] = value.detach().clone()
        checkpoint[METADATA_KEY] = checkpoint_metadata(self.model_type, self.generator.config_dict(),
                                                       training=self.training_summary())

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Refuse, in one line, a checkpoint that cannot continue this run (before Lightning's
        state-dict loader would raise a wall of missing keys)."""
        meta = checkpoint.get(METADATA_KEY)
        if not isinstance(meta, dict):
            raise TexnetsError("this checkpoint was not written by a texnets task (no model type recorded)")
        if meta.get("model_type") != self.model_type:
            raise TexnetsError(f"the checkpoint holds a {meta.get('model_type')!r} model, "
                               f"but this run trains a {self.model_type!r}")
        ours, theirs = self.generator.config_dict(), meta.get("generator", {})
        # A hyper-parameter added since the checkpoint was written takes its default there (e.g. styles: 1).
        defaults = asdict(self.generator.config_class()) if hasattr(self.generator, "config_class") else {}
        theirs = {**{key: value for key, value in defaults.items() if key not in theirs}, **theirs}
        differing = sorted(key for key in set(ours) | set(theirs) if ours.get(key) != theirs.get(key))
        if differing:
            details = ", ".join(f"{key}={theirs.get(key)!r} (config: {ours.get(key)!r})" for key in differing)
            raise TexnetsError(f"the checkpoint's generator differs from the configured one: {details}")
        if getattr(self, "_missing_targets", None) is not None:
            warnings.warn(f"{self._missing_targets}; resuming with the loss targets stored in the checkpoint",
                          stacklevel=2)
            self._missing_targets = None

    # -- optimisation --------------------------------------------------------------------------------
    def configure_optimizers(self):
        """Adam on the generator (the encoder has no parameters: its weights are buffers), with the
        learning rate times ``lr_gamma`` every ``lr_step`` steps when the task has a positive ``lr_step``, or
        divided by ``1 + lr_decay · step`` when it has a positive ``lr_decay`` (pytorch-AdaIN's inverse decay)."""
        optimizer = torch.optim.Adam(self.generator.parameters(), lr=self.hparams.lr)
        if self.hparams.get("lr_decay"):
            decay = float(self.hparams.lr_decay)
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (1.0 + decay * step))
        elif self.hparams.get("lr_step"):
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=self.hparams.lr_step,
                                                        gamma=self.hparams.lr_gamma)
        else:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # -- numerical safety ----------------------------------------------------------------------------
    def check_finite(self, loss: torch.Tensor) -> None:
        """Stop training with one clear line when the loss is NaN or infinite.

        The decision is shared by all processes, so under DDP every rank stops at the same step
        (a lone rank raising would leave the others waiting in the gradient all-reduce). Raising
        here, before backward and the optimiser step, means no checkpoint ever holds the bad state.
        """
        bad = not bool(torch.isfinite(loss.detach()).all())
        bad = self.trainer.strategy.reduce_boolean_decision(bad, all=False) if self._trainer is not None else bad
        if bad:
            step = self.trainer.global_step if self._trainer is not None else "?"
            last = getattr(self.trainer.checkpoint_callback, "last_model_path", "") if self._trainer else ""
            where = f"; the last good checkpoint is {last}" if last else ""
            raise NonFiniteLossError(f"the training loss became {float(loss.detach().float())} at step {step}; "
                                     f"training stopped (try a lower learning rate){where}")

    # -- video: the flow-free temporal term ----------------------------------------------------------
    def add_temporal_term(self, loss: torch.Tensor, logs: dict, generate: Callable[[torch.Tensor], torch.Tensor],
                          inputs: torch.Tensor, outputs: torch.Tensor, seed: int | None = None):
        """With ``temporal_weight`` > 0, add the penalty on how much ``generate``'s output changes when its
        input is disturbed the way consecutive frames differ (``texnets.temporal.perturbation_penalty``), and
        log it as ``temporal``. ``seed`` fixes the disturbance (validation, so its values compare over time)."""
        if self.temporal_weight <= 0:
            return loss, logs
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        penalty = perturbation_penalty(generate, inputs, outputs, self.perturbation, generator)
        loss = loss + self.temporal_weight * penalty
        return loss, {**logs, "temporal": penalty.detach(), "total": loss.detach()}

    # -- logging -------------------------------------------------------------------------------------
    def log_losses(self, prefix: str, logs: Mapping[str, torch.Tensor], batch_size: int, **kwargs) -> None:
        """Log ``{name: value}`` as ``prefix/name`` (total loss in ``prefix/loss``)."""
        values = {f"{prefix}/{'loss' if name == 'total' else name}": value.float() for name, value in logs.items()}
        self.log_dict(values, batch_size=batch_size, **kwargs)

    def log_training_step(self, loss: torch.Tensor, logs: Mapping[str, torch.Tensor], batch_size: int) -> torch.Tensor:
        """The end every training step shares: stop on a non-finite loss (before backward), log each term as
        ``train/<name>`` and the total on the progress bar; returns ``loss`` for Lightning."""
        self.check_finite(loss)
        self.log_losses("train", logs, batch_size=batch_size)
        self.log("loss", logs["total"].float(), prog_bar=True, logger=False, batch_size=batch_size)
        return loss

    def log_validation_step(self, logs: Mapping[str, torch.Tensor], batch_size: int) -> None:
        """Each term as ``val/<name>``, averaged over processes, and the total as ``hp_metric``: TensorBoard's
        HPARAMS tab shows the hyper-parameters against it."""
        self.log_losses("val", logs, batch_size=batch_size, sync_dist=True)
        self.log("hp_metric", logs["total"].float(), batch_size=batch_size, sync_dist=True)

    def log_image_grid(self, tag: str, images: torch.Tensor, columns: int = 4) -> None:
        """Show a batch of images (clamped to [0, 1]) in TensorBoard, from rank zero only."""
        logger = self.logger
        if not isinstance(logger, TensorBoardLogger) or self.global_rank != 0 or images.shape[0] == 0:
            return
        grid = make_grid(images.detach().float().clamp(0, 1).cpu(), nrow=columns, padding=2, pad_value=1.0)
        logger.experiment.add_image(tag, grid, global_step=self.global_step)


__all__ = ["AtomicCheckpointIO", "GeneratorTask", "NonFiniteLossError", "recalibrate_batch_norm"]
