"""Training tasks: one LightningModule (and its data) per kind of generator, on a shared base.

``train.py`` names them in configs by class path, e.g. ``texnets.tasks.TextureTask`` with
``texnets.tasks.NoiseDataModule``.
"""
from texnets.tasks.base import AtomicCheckpointIO, GeneratorTask, NonFiniteLossError
from texnets.tasks.texture import NoiseDataModule, TextureTask
from texnets.tasks.transfer import ContentImageDataModule, TransferTask

__all__ = ["AtomicCheckpointIO", "ContentImageDataModule", "GeneratorTask", "NoiseDataModule", "NonFiniteLossError",
           "TextureTask", "TransferTask"]
