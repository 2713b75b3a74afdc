"""Lightning callbacks shared by every training run: the JSON run report (what ran, how long, how the
loss moved, why it stopped), a one-line notice when a run resumes, and checkpointing that keeps the
final step."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

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


__all__ = ["RunReport"]
