"""Lightning callbacks shared by every training run: the JSON run report (what ran, how long, how the
loss moved, why it stopped), a one-line notice when a run resumes, checkpointing that keeps the final
step, and the console display (a progress bar counted in steps, a model summary without empty columns)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint, ModelSummary, TQDMProgressBar
from pytorch_lightning.callbacks.progress.tqdm_progress import Tqdm
from pytorch_lightning.utilities.model_summary.model_summary import _format_summary_table

from texnets.cli import environment
from texnets.images import save_json


def _current_lr(trainer: pl.Trainer) -> float | None:
    if not trainer.optimizers:
        return None
    return float(trainer.optimizers[0].param_groups[0]["lr"])


class FinalStepCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint, plus a checkpoint of the last step when training ends between two
    ``every_n_train_steps`` saves.

    Lightning writes last.ckpt at train end only if it never wrote one, so a 300-step run saving every
    250 steps would end with last.ckpt at step 250 and lose its last 50 steps. A run stopped by an
    error (a NaN loss, Ctrl-C) does not reach ``on_train_end``, so its last good checkpoint is kept.
    The private helpers are ModelCheckpoint's own save path (stable across Lightning 2.x)."""

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._should_skip_saving_checkpoint(trainer):  # skips when this step is already saved
            candidates = self._monitor_candidates(trainer)
            self._save_topk_checkpoint(trainer, candidates)
            self._save_last_checkpoint(trainer, candidates)
        super().on_train_end(trainer, pl_module)


class StepProgressBar(TQDMProgressBar):
    """One bar over the optimiser steps of the whole run (``train 1200/40000``), resumed runs included.

    texnets runs are bounded by ``max_steps`` with ``max_epochs=-1``, and a noise stream has no epochs at
    all, so Lightning's per-epoch bar reads "Epoch 0/-2", restarts at every pass over a photo folder and
    shows "Epoch 6/3" after a resume. Lightning has no option to count in steps; this subclass changes only
    the training bar's total, start and description (validation bars are Lightning's own)."""

    def init_train_tqdm(self) -> Tqdm:
        trainer = self.trainer
        return Tqdm(desc="train", total=trainer.max_steps if trainer.max_steps > 0 else None,
                    initial=trainer.global_step, position=2 * self.process_position, disable=self.is_disabled,
                    leave=True, dynamic_ncols=True, file=sys.stdout, smoothing=0, bar_format=self.BAR_FORMAT)

    def on_train_epoch_start(self, trainer: pl.Trainer, *_) -> None:
        pass  # one bar for the whole run, not one per epoch

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        bar = self.train_progress_bar
        if self._should_update(trainer.global_step, bar.total) or trainer.global_step == trainer.max_steps:
            bar.n = trainer.global_step
            bar.set_postfix(self.get_metrics(trainer, pl_module))  # refreshes the bar

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.train_progress_bar.disable:
            self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module))


class CompactModelSummary(ModelSummary):
    """Lightning's model summary without the FLOPs column when nothing was counted.

    Lightning counts FLOPs only through a module's ``example_input_array``. A texnets task has no single
    example input (noise pyramids, photo batches, slices), so the column and its "Total FLOPs: 0" line
    would say nothing, and Lightning has no option to leave them out."""

    @staticmethod
    def summarize(summary_data, total_parameters, trainable_parameters, model_size, total_training_modes,
                  total_flops, **summarize_kwargs) -> None:
        if not total_flops:
            summary_data = [column for column in summary_data if column[0] != "FLOPs"]
        table = _format_summary_table(total_parameters, trainable_parameters, model_size, total_training_modes,
                                      total_flops, *summary_data)
        if not total_flops:
            table = table.rsplit("\n", 1)[0]  # the "Total Flops" line is always last
        print(table, file=sys.stderr)


class RunReport(pl.Callback):
    """Record the training loss of every step and write ``report.json`` when the run ends (also
    when it fails: the report then says why). ``extra`` is merged into the report (e.g. arguments).

    On a resumed run it prints one line with the step and learning rate it continues from.
    """

    def __init__(self, path: str | Path, extra: dict | None = None, max_points: int = 2000):
        self.path = Path(path)
        self.extra = dict(extra or {})
        self.max_points = max_points
        self.losses: list[tuple[int, float]] = []
        self.start_time: float | None = None
        self.start_step = 0
        self.start_lr: float | None = None
        self.stopped: str | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        self.start_time = time.perf_counter()
        self.start_step, self.start_lr = trainer.global_step, _current_lr(trainer)
        if self.start_step and trainer.is_global_zero:
            print(f"resuming at step {self.start_step} with learning rate {self.start_lr:.6g}", file=sys.stderr)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor):
            self.losses.append((trainer.global_step, float(loss.detach().float())))

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self.stopped = f"{type(exception).__name__}: {exception}".splitlines()[0]
        self.write(trainer)

    def on_fit_end(self, trainer, pl_module) -> None:
        self.write(trainer)

    def summary(self, trainer) -> dict:
        seconds = time.perf_counter() - self.start_time if self.start_time else 0.0
        steps = trainer.global_step - self.start_step
        head = [value for _, value in self.losses[:10]]
        tail = [value for _, value in self.losses[-10:]]
        stride = max(1, len(self.losses) // self.max_points)
        callback = trainer.checkpoint_callback
        return {
            "start_step": self.start_step, "final_step": trainer.global_step, "steps": steps,
            "seconds": round(seconds, 3), "seconds_per_step": round(seconds / steps, 4) if steps else None,
            "start_lr": self.start_lr, "final_lr": _current_lr(trainer),
            "loss_first": head[0] if head else None, "loss_last": tail[-1] if tail else None,
            "loss_first10_mean": sum(head) / len(head) if head else None,
            "loss_last10_mean": sum(tail) / len(tail) if tail else None,
            "loss_history": self.losses[::stride],
            # Learning rates are final_lr above (LearningRateMonitor's entries can be stale after a resume).
            "metrics": {key: float(value) for key, value in trainer.callback_metrics.items()
                        if isinstance(value, torch.Tensor) and value.numel() == 1 and not key.startswith("lr-")},
            "last_checkpoint": getattr(callback, "last_model_path", None) or None,
            "stopped": self.stopped,
            "environment": environment(),
        }

    def write(self, trainer) -> None:
        if trainer.is_global_zero:
            save_json({**self.extra, **self.summary(trainer)}, self.path)


__all__ = ["CompactModelSummary", "FinalStepCheckpoint", "RunReport", "StepProgressBar"]
