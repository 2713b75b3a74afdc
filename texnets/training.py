"""The training command behind ``train.py``: a LightningCLI with texnets' run folders (one run per folder,
--overwrite, nothing left by a run that fails before its first checkpoint), checkpointing, TensorBoard,
the console display, the JSON run report, and configuration errors in one line."""
from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

import pytorch_lightning as pl
from jsonargparse import ArgumentError
from pytorch_lightning.callbacks import LearningRateMonitor
from pytorch_lightning.cli import LightningCLI
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.plugins.io import CheckpointIO

from texnets.callbacks import CompactModelSummary, FinalStepCheckpoint, RunReport, StepProgressBar
from texnets.checkpoints import checked_metadata, read_checkpoint
from texnets.errors import TexnetsError
from texnets.tasks.base import AtomicCheckpointIO, GeneratorTask

# Lightning warnings that say nothing actionable about a texnets run.
QUIET_WARNINGS = (
    r"Checkpoint directory .* exists and is not empty",    # train.py itself guards run folders
    r".*IterableDataset. has .__len__. defined",           # the noise stream has no workers to split
    r".*isinstance\(treespec, LeafSpec\)",                  # Lightning internals vs newer torch
    r"The number of training batches .* is smaller than the logging interval",
    r"You're resuming from a checkpoint that ended before the epoch ended",  # i.i.d. noise: nothing to restore
    r"Found \d+ module\(s\) in eval mode at the start of training",  # the frozen VGG encoder, by design
)
# Lightning's info lines that have no option to turn them off and say nothing about the run: an advert, and
# the notice that our own summary callback replaces its default one.
QUIET_LOG_LINES = ("💡 Tip:", "Trainer already configured with model summary callbacks")
# What a run writes into its folder (and all --overwrite removes): nothing else there is touched.
RUN_FILES = ("*.ckpt", "events.out.tfevents.*", "hparams.yaml", "config.yaml", "report.json")


def run_files(run_dir: Path) -> set[Path]:
    return {path for pattern in RUN_FILES for path in run_dir.glob(pattern)}


class _DropLines(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).lstrip().startswith(QUIET_LOG_LINES)


_QUIET = _DropLines()  # one instance: addFilter ignores a filter already there, so main() can run again


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
            # for its result (and Lightning would name the new one last-v1.ckpt), and old event files would
            # mix the two runs' curves in TensorBoard.
            previous = run_files(run_dir)
            for path in previous:
                path.unlink()
            print(f"--overwrite: removed the previous run in {run_dir} ({len(stale)} checkpoint(s), "
                  f"{len(previous) - len(stale)} other file(s))", file=sys.stderr)
        self.run_dir = run_dir
        self.created_dirs = [folder for folder in (run_dir, run_dir.parent) if not folder.exists()]
        self.files_before = run_files(run_dir)

    def discard_failed_run(self) -> None:
        """After a run that failed before its first checkpoint, remove what it wrote (event file, report,
        config), so the folder does not hold a run that is not there and the next try starts clean."""
        run_dir = getattr(self, "run_dir", None)
        if run_dir is None or not run_dir.is_dir() or any(run_dir.glob("*.ckpt")):
            return
        for path in run_files(run_dir) - self.files_before:
            path.unlink(missing_ok=True)
        for folder in self.created_dirs:  # the run folder first, then checkpoints/ if this run made it
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()

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
        # The display: Lightning adds its own bar and summary unless one is given; ours count steps and drop the
        # empty FLOPs column (texnets.callbacks says why). Lightning refuses a bar when the bar is disabled.
        if trainer_config.get("enable_progress_bar") is not False and not any(
                isinstance(callback, pl.callbacks.ProgressBar) for callback in callbacks):
            callbacks.append(StepProgressBar())
        if trainer_config.get("enable_model_summary") is not False and not any(
                isinstance(callback, pl.callbacks.ModelSummary) for callback in callbacks):
            callbacks.append(CompactModelSummary())
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
            # allow_abbrev=False: "--trainer.max_step 3" is an error, not silently max_steps.
            parser_kwargs={"description": "Train a texnets generator from a YAML config.", "exit_on_error": False,
                           "allow_abbrev": False},
        )
    except ArgumentError as exc:
        raise TexnetsError(f"bad configuration: {_one_line(str(exc))} (see train.py --help)") from None
    except Exception as exc:
        cause = _texnets_cause(exc)
        if cause is not None:
            raise cause from None
        raise


def quiet_lightning() -> None:
    """Silence the Lightning warnings and info lines listed above (process-wide; calling it again is harmless)."""
    for message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    for name in ("pytorch_lightning", "lightning.pytorch"):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(_QUIET)


def fit(cli: TexnetsCLI) -> None:
    """Train; a run that fails before its first checkpoint is removed before the error goes on."""
    try:
        cli.fit()
    except BaseException:
        cli.discard_failed_run()
        raise


__all__ = ["QUIET_WARNINGS", "TexnetsCLI", "build_cli", "fit", "quiet_lightning"]
