"""Shared fixtures."""
from pathlib import Path

import pytest

TINY_TEXTURE_CONFIG = """\
# A texture network small enough for a test: 3 scales, 32 px, two VGG layers, a 64 px exemplar.
seed_everything: 0
model:
  class_path: texnets.tasks.TextureTask
  init_args:
    generator: {scales: 3}
    layers: [relu1_1, relu2_1]
    lr: 0.1
    lr_step: 3
    lr_gamma: 0.5
data:
  class_path: texnets.tasks.NoiseDataModule
  init_args:
    exemplar: builtin:immunohistochemistry
    exemplar_size: 64
    size: 32
    batch_size: 2
    val_samples: 2
trainer:
  accelerator: cpu
  max_steps: 8
  val_check_interval: 4
  log_every_n_steps: 1
  enable_progress_bar: false
  enable_model_summary: false
checkpoint_every: 2
"""


@pytest.fixture
def texture_config(tmp_path) -> Path:
    """A tiny train.py config (TextureTask + NoiseDataModule); runs write under ``--output_dir``."""
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_TEXTURE_CONFIG)
    return path
