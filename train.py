#!/usr/bin/env python
"""Train a texnets generator from a YAML config (LightningCLI).

    python train.py --config configs/quickstart.yaml
    python train.py --config configs/quickstart.yaml --trainer.max_steps 200 --data.exemplar my.jpg
    python train.py --config configs/quickstart.yaml --ckpt_path checkpoints/quickstart/last.ckpt   # resume
    python train.py --config configs/quickstart.yaml --print_config                             # show everything

Everything a run writes goes to ``<output_dir>/<run_name>/`` (default ``checkpoints/<config name>/``):
``last.ckpt`` and periodic ``step=N.ckpt`` checkpoints, TensorBoard logs (``tensorboard --logdir
checkpoints``), the resolved ``config.yaml`` and ``report.json``. Sample from a checkpoint with
``synthesize.py --checkpoint checkpoints/<run>/last.ckpt``.
"""
from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
from jsonargparse import ArgumentError
from pytorch_lightning.callbacks import LearningRateMonitor
from pytorch_lightning.cli import LightningCLI
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.plugins.io import CheckpointIO

from texnets.callbacks import FinalStepCheckpoint, RunReport
from texnets.checkpoints import checked_metadata, read_checkpoint
from texnets.cli import main_guard
from texnets.errors import TexnetsError
from texnets.tasks.base import AtomicCheckpointIO, GeneratorTask

# Lightning warnings that say nothing actionable about a texnets run.
QUIET_WARNINGS = (
    r"Checkpoint directory .* exists and is not empty",    # train.py itself guards run folders
    r".*IterableDataset. has .__len__. defined",           # the noise stream has no workers to split
    r".*isinstance\(treespec, LeafSpec\)",                  # Lightning internals vs newer torch
    r"The number of training batches .* is smaller than the logging interval",
    r"You're resuming from a checkpoint that ended before the epoch ended",  # i.i.d. noise: nothing to restore
)


class TexnetsCLI(LightningCLI):
    """LightningCLI plus run folders, checkpointing, TensorBoard and a JSON report."""

    argv: list[str] = []

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--run_name", type=str | None, default=None,
                            help="folder name under output_dir (default: the first config file's name)")
        parser.add_argument("--output_dir", type=str, default="checkpoints", help="where run folders are created")
        parser.add_argument("--ckpt_path", type=str | None, default=None,
                            help="resume from this checkpoint (step, optimiser and learning rate included)")
        parser.add_argument("--checkpoint_every", type=int, default=100,
                            help="save last.ckpt and a step checkpoint every N optimiser steps")
        parser.add_argument("--overwrite", type=bool, default=False,
                            help="start afresh in a run folder that already holds checkpoints")

    def before_instantiate_classes(self) -> None:
        config = self.config
        if config.checkpoint_every < 1:
            raise TexnetsError("--checkpoint_every must be at least 1")
        if config.ckpt_path:
            # Refuse corrupt or foreign checkpoints in one line, before Lightning gets to them.
            checked_metadata(read_checkpoint(config.ckpt_path), config.ckpt_path)
        if config.run_name:
            run_dir = Path(config.output_dir) / config.run_name
        elif config.ckpt_path:
            run_dir = Path(config.ckpt_path).resolve().parent  # a resumed run continues in its own folder
        else:
            configs = [str(path) for path in (config.get("config") or []) if path]
            run_dir = Path(config.output_dir) / (Path(configs[0]).stem if configs else "run")  # the main config
        stale = sorted(run_dir.glob("*.ckpt")) if not config.ckpt_path else []
        if stale and not config.overwrite:
            raise TexnetsError(f"{run_dir} already holds a run: resume it with --ckpt_path {run_dir / 'last.ckpt'}, "
                               f"or pick another --run_name, or pass --overwrite true")
        if stale:
            # Overwriting means starting afresh: an old last.ckpt left beside the new run would be taken
            # for its result (and Lightning would name the new one last-v1.ckpt).
            for path in stale:
                path.unlink()
            print(f"--overwrite: removed {len(stale)} checkpoint(s) of the previous run in {run_dir}", file=sys.stderr)
        self.run_dir = run_dir

    def instantiate_trainer(self, **kwargs):
        trainer_config = self._get(self.config_init, "trainer", default={})
        run_dir = self.run_dir
        # No version counter: a run folder holds one run, so last.ckpt is always this run's latest.
        # FinalStepCheckpoint: also the last step when max_steps is not a multiple of checkpoint_every.
        checkpoint = FinalStepCheckpoint(dirpath=run_dir, filename="step={step}", auto_insert_metric_name=False,
                                         every_n_train_steps=self.config.checkpoint_every, save_top_k=-1,
                                         save_last=True, enable_version_counter=False)
        self.report = RunReport(run_dir / "report.json", extra={
            "command": " ".join(["train.py", *self.argv]), "run_dir": str(run_dir),
            "resumed_from": self.config.ckpt_path})
        callbacks = list(trainer_config.get("callbacks") or []) + [checkpoint, self.report]
        if trainer_config.get("logger") in (None, True):  # Lightning's default logger -> ours, in the run folder
            kwargs.setdefault("logger", TensorBoardLogger(save_dir=str(run_dir.parent), name=run_dir.name,
                                                          version="", default_hp_metric=True))
            callbacks.append(LearningRateMonitor(logging_interval="step"))
        kwargs["callbacks"] = callbacks
        plugins = trainer_config.get("plugins") or []
        plugins = list(plugins) if isinstance(plugins, (list, tuple)) else [plugins]
        if not any(isinstance(plugin, CheckpointIO) for plugin in plugins):
            plugins.append(AtomicCheckpointIO())  # a killed save never truncates last.ckpt
        kwargs["plugins"] = plugins
        kwargs.setdefault("default_root_dir", str(run_dir))
        return super().instantiate_trainer(**kwargs)

    def fit(self) -> None:
        self.trainer.fit(self.model, datamodule=self.datamodule, ckpt_path=self.config.ckpt_path)


def _one_line(message: str) -> str:
    """Condense jsonargparse's multi-line report to its informative lines."""
    noise = ("Does not validate against any of the Union subtypes", "Subtypes:", "Errors:", "Given value",
             "Expected a <class 'NoneType'>", "tip:")
    lines = [line.strip().lstrip("- ").strip() for line in message.splitlines()]
    return " ".join(line for line in lines if line and not line.startswith(noise))


def _texnets_cause(exc: BaseException | None) -> TexnetsError | None:
    """jsonargparse wraps errors raised while building classes; find ours inside the chain."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, TexnetsError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def build_cli(argv: list[str] | None) -> TexnetsCLI:
    TexnetsCLI.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return TexnetsCLI(
            model_class=GeneratorTask, subclass_mode_model=True,
            datamodule_class=pl.LightningDataModule, subclass_mode_data=True,
            run=False, args=argv, seed_everything_default=0,
            # Validation (and its TensorBoard sample grid) every trainer.val_check_interval steps, not per epoch.
            trainer_defaults={"check_val_every_n_epoch": None, "log_every_n_steps": 10},
            save_config_kwargs={"overwrite": True},  # a resumed run rewrites its config.yaml
            load_from_checkpoint_support=False,  # hparams = the task's own plain arguments (weights_only-safe)
            # Parse errors raise instead of printing the full usage; main() turns them into one line.
            parser_kwargs={"description": "Train a texnets generator from a YAML config.", "exit_on_error": False},
        )
    except ArgumentError as exc:
        raise TexnetsError(f"bad configuration: {_one_line(str(exc))} (see train.py --help)") from None
    except Exception as exc:
        cause = _texnets_cause(exc)
        if cause is not None:
            raise cause from None
        raise


@main_guard
def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    for message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    cli = build_cli(argv)
    cli.fit()
    if cli.trainer.is_global_zero:
        print(f"done in {time.perf_counter() - started:.0f} s; checkpoint: {cli.run_dir / 'last.ckpt'}",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
