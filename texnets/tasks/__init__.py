"""Training tasks: one LightningModule (and its data) per kind of generator, on a shared base.

``train.py`` names them in configs by class path, e.g. ``texnets.tasks.TextureTask`` with
``texnets.tasks.NoiseDataModule``, or ``texnets.tasks.SolidTextureTask`` with ``texnets.tasks.SliceDataModule``.
"""
from texnets.tasks.arbitrary import AdaINTask, ContentStyleDataModule, WCTTask
from texnets.tasks.base import AtomicCheckpointIO, GeneratorTask, NonFiniteLossError
from texnets.tasks.prior import DeepImagePriorDataModule, DeepImagePriorTask
from texnets.tasks.solid import SliceDataModule, SolidTextureTask
from texnets.tasks.super_resolution import SuperResolutionTask
from texnets.tasks.texture import NoiseDataModule, TextureTask
from texnets.tasks.transfer import ContentImageDataModule, TransferTask

__all__ = ["AdaINTask", "AtomicCheckpointIO", "ContentImageDataModule", "ContentStyleDataModule", "DeepImagePriorDataModule",
           "DeepImagePriorTask", "GeneratorTask", "NoiseDataModule", "NonFiniteLossError", "SliceDataModule",
           "SolidTextureTask", "SuperResolutionTask", "TextureTask", "TransferTask", "WCTTask"]
