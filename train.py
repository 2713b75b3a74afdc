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

from texnets.cli import main_guard
from texnets.training import build_cli, fit, quiet_lightning


@main_guard
def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    quiet_lightning()
    cli = build_cli(argv)
    fit(cli)
    if cli.trainer.is_global_zero:
        print(f"done in {time.perf_counter() - started:.0f} s; checkpoint: {cli.run_dir / 'last.ckpt'}",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
