"""Arbitrary-style networks: :class:`AdaINTask` (Huang & Belongie 2017) and :class:`WCTTask` (Li et al. 2017),
and the :class:`ContentStyleDataModule` that feeds them (content, style) pairs, or photos alone.

AdaIN trains its decoder so that decoding AdaIN(content, style) gives an image whose relu4_1 features
are that target (content loss) and whose relu1_1..relu4_1 per-channel means and deviations are the
style's (MeanVar style loss), each photo against its own style image. WCT trains one decoder per level
to invert the encoder (pixel + feature reconstruction); it never sees a style.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision.transforms.v2 as T
from torch.utils.data import DataLoader, IterableDataset

from texnets.errors import TexnetsError
from texnets.feature_transforms import FeatureStatistics, adain
from texnets.generators.adain_net import AdaINNet, AdaINNetConfig
from texnets.generators.wct_net import WCTNet, WCTNetConfig
from texnets.images import read_image, resize
from texnets.losses import ContentLoss, PerceptualCriterion, make_style_loss
from texnets.tasks.base import GeneratorTask
from texnets.temporal import Perturbation
from texnets.tasks.transfer import TRAIN_SUFFIXES, ContentCrops, ContentImageDataModule, hold_aside, walk_images
from texnets.vgg import HUANG_STYLE_LAYERS, check_layers


# --------------------------------------------------------------------------------------------------
# Data

class PairedCrops(IterableDataset):
    """(content crop, style crop) pairs: two crop streams walked side by side, each repeating its folder."""

    def __init__(self, content: ContentCrops, style: ContentCrops):
        self.content, self.style = content, style

    def __iter__(self):
        return zip(iter(self.content), iter(self.style))


class ContentStyleDataModule(ContentImageDataModule):
    """Photos and style images for arbitrary-style networks: batches of (content, style) pairs, or of photos
    alone when ``styles`` is None (WCT's decoders need no style).

    Args:
        content: folder of photos, walked recursively and lazily (COCO in both papers).
        styles: folder, or list of folders, of style images (WikiArt in Huang & Belongie 2017).
        held_out_styles: the first N style images (sorted by path) are never trained on: they pair with the
            validation photos, so the validation loss and grid show styles the network has not seen.
        Other arguments: as :class:`~texnets.tasks.ContentImageDataModule` (``load_size`` then ``size``: the
            reference's resize to 512 and random 256 crop).
    """

    def __init__(self, content: str = "data/coco/train2014", styles: str | list[str] | None = None, size: int = 256,
                 load_size: int | None = 512, batch_size: int = 8, crop_scale: list[float] = (0.3, 1.0),
                 flip: bool = True, held_out_styles: int = 2, val_images: int = 4, val_size: int | None = None,
                 num_workers: int = 4, seed: int = 0):
        super().__init__(folder=content, size=size, batch_size=batch_size, crop_scale=crop_scale, flip=flip,
                         val_images=val_images, val_size=val_size, num_workers=num_workers, seed=seed,
                         load_size=load_size)
        if held_out_styles < 0:
            raise TexnetsError("data.held_out_styles must not be negative")
        self.styles = [styles] if isinstance(styles, (str, os.PathLike)) else list(styles or [])
        self.held_out_styles = held_out_styles
        self._held_out: list[str] | None = None

    def _style_paths(self) -> Iterator[Path]:
        """The style files in sorted order, lazily: a WikiArt-sized tree is never listed whole."""
        missing = [folder for folder in self.styles if not Path(folder).is_dir()]
        if missing:
            raise TexnetsError(f"style folder not found: {missing[0]} (pass --data.styles <folder of paintings>)")
        return (path for folder in self.styles for path in walk_images(Path(folder)))

    def held_out_style_paths(self) -> list[str]:
        """The styles held aside: the first ``held_out_styles`` readable files, but never all of them."""
        if self._held_out is None:
            if next(self._style_paths(), None) is None:
                raise TexnetsError(f"no style images ({', '.join(TRAIN_SUFFIXES)}) in {', '.join(self.styles)}")
            self._held_out = hold_aside(self._style_paths(), self.held_out_styles, self.val_size, "style images",
                                        "as unseen styles")
        return self._held_out

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if self.styles:
            self.held_out_style_paths()

    def summary(self) -> dict:
        summary = super().summary()
        if self.styles:
            summary.update(styles=[str(folder) for folder in self.styles], held_out_styles=self.held_out_style_paths(),
                           load_size=self.load_size)
        return summary

    def training_set(self, crops: ContentCrops, seed: int, rank: int, world: int) -> IterableDataset:
        if not self.styles:
            return crops
        styles = ContentCrops(self.styles, self.size, self.crop_scale, seed + 1, self.held_out_style_paths(), rank,
                              world, load_size=self.load_size)
        return PairedCrops(crops, styles)

    def validation_styles(self) -> torch.Tensor:
        """One style per validation photo, cycling through the held-out styles (the first seen ones when
        none are held out), centre-cropped to the validation size."""
        paths = self.held_out_style_paths() or [str(next(self._style_paths()))]
        count = len(self.validation_batch())
        side = self.val_size
        images = [T.functional.center_crop(resize(read_image(paths[i % len(paths)], draft=side), side), [side, side])
                  for i in range(count)]
        return torch.stack(images) if images else torch.empty(0, 3, side, side)

    def val_dataloader(self) -> DataLoader:
        if not self.styles:
            return super().val_dataloader()
        content = self.validation_batch()
        return DataLoader([(content, self.validation_styles())] if len(content) else [], batch_size=None)


# --------------------------------------------------------------------------------------------------
# Tasks

class AdaINTask(GeneratorTask):
    """Train an :class:`~texnets.generators.AdaINNet`'s decoder (Huang & Belongie 2017, §6).

    Args:
        generator: the network's hyper-parameters (layer, width, encoder_weights).
        style_layers: layers of the MeanVar style loss (relu1_1..relu4_1 in the paper).
        style_weight / content_weight: weights of the two terms (λ = 10 and 1 in the paper).
        lr: Adam learning rate.
        lr_decay: the reference's inverse decay, lr / (1 + lr_decay · step); 0 keeps it constant.
        channels_last / compile: as every task (GPU speed).
        temporal_weight / temporal: the flow-free temporal term for video, as for ``TransferTask`` (off by default).
    """

    def __init__(self, generator: AdaINNetConfig | None = None, style_layers: Sequence[str] = HUANG_STYLE_LAYERS,
                 style_weight: float = 10.0, content_weight: float = 1.0, lr: float = 1e-4, lr_decay: float = 5e-5,
                 channels_last: bool = False, compile: bool = False, temporal_weight: float = 0.0,
                 temporal: Perturbation | None = None):
        super().__init__(channels_last=channels_last, compile=compile, temporal_weight=temporal_weight,
                         temporal=temporal)
        config, generator = self.generator_config(AdaINNetConfig, generator)
        temporal = self.perturbation.as_dict()  # plain data in the hyper-parameters (weights_only checkpoints)
        self.save_hyperparameters()
        if lr <= 0 or lr_decay < 0 or min(style_weight, content_weight) < 0:
            raise TexnetsError("need lr > 0, lr_decay >= 0 and non-negative loss weights")
        self.generator = AdaINNet(config)
        self.layer = config.layer
        self.style_layers = check_layers(style_layers)
        self.loss_layers = check_layers([*self.style_layers, self.layer])
        if self.loss_layers[-1] != self.layer:
            raise TexnetsError(f"style layers must not be deeper than the AdaIN layer {self.layer}: "
                               f"{', '.join(self.style_layers)}")
        terms = {"content": (ContentLoss([self.layer]), content_weight),
                 "style": (make_style_loss("meanvar", self.style_layers, paired=True), style_weight)}
        # One encoder serves the network and its loss: the generator's own frozen VGG.
        self.criterion = PerceptualCriterion(self.generator.encoder, terms)

    @property
    def encoder(self):
        return self.generator.encoder

    def frozen_prefixes(self) -> tuple[str, ...]:
        return ("generator.encoder.", "criterion.")

    def task_summary(self) -> dict:
        return {"layer": self.layer, "style_layers": self.style_layers, "style_weight": self.hparams.style_weight}

    def objective(self, content: torch.Tensor, style: torch.Tensor, seed: int | None = None):
        """Decode AdaIN(content, style); return (output, loss, logs) against that target and the styles, plus
        the temporal term when it is on (``seed``: a fixed disturbance, for validation)."""
        with torch.no_grad():
            style_features = self.encoder(style, self.loss_layers)
            statistics = FeatureStatistics.of(style_features[self.layer])
            target = adain(self.encoder(content, [self.layer])[self.layer], statistics)
            self.criterion.terms["content"].set_target({self.layer: target})
            self.criterion.terms["style"].set_target(style_features)
        output = self.generator.decoder(target)
        loss, logs = self.criterion(output)

        def restyle(photos: torch.Tensor) -> torch.Tensor:  # the same styles on disturbed photos
            with torch.no_grad():
                features = adain(self.encoder(photos, [self.layer])[self.layer], statistics)
            return self.generator.decoder(features)

        loss, logs = self.add_temporal_term(loss, logs, restyle, content, output, seed=seed)
        return output, loss, logs

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        content, style = batch
        if self.channels_last:
            content, style = (x.contiguous(memory_format=torch.channels_last) for x in (content, style))
        _, loss, logs = self.objective(content, style)
        return self.log_training_step(loss, logs, batch_size=content.shape[0])

    def validation_step(self, batch, batch_idx: int) -> None:
        content, style = batch
        output, _, logs = self.objective(content, style, seed=batch_idx)
        self.log_validation_step(logs, batch_size=content.shape[0])
        if batch_idx == 0:  # rows of (photo, held-out style, output)
            self.log_image_grid("content_style_output", torch.stack([content, style, output], 1).flatten(0, 1), 3)


class WCTTask(GeneratorTask):
    """Train a :class:`~texnets.generators.WCTNet`'s decoders to invert the encoder (Li et al. 2017, §3.1):
    for each level, ‖I_out − I_in‖² + λ‖Φ(I_out) − Φ(I_in)‖², both as means over elements; the levels'
    decoders are independent, so training them together is training each alone on the same photos.

    Args:
        generator: the network's hyper-parameters (levels, width, encoder_weights).
        pixel_weight / feature_weight: the two terms' weights (λ = 1 in the paper).
        relative_features: divide each level's feature term by the target features' mean square. Li et al.
            used the *normalised* VGG (mean activation 1 per channel), where pixel and feature errors are of
            one order; texnets' Caffe VGG reads 0..255 pixels and its relu5_1 features are ~10⁴× larger, so
            without this the pixel term would vanish and λ = 1 would not mean what the paper meant.
        lr: Adam learning rate.
        lr_decay: inverse decay as for AdaIN; 0 keeps it constant.
    """

    def __init__(self, generator: WCTNetConfig | None = None, pixel_weight: float = 1.0, feature_weight: float = 1.0,
                 relative_features: bool = True, lr: float = 1e-4, lr_decay: float = 0.0, channels_last: bool = False,
                 compile: bool = False):
        super().__init__(channels_last=channels_last, compile=compile)
        config, generator = self.generator_config(WCTNetConfig, generator)
        self.save_hyperparameters()
        if lr <= 0 or lr_decay < 0 or min(pixel_weight, feature_weight) < 0:
            raise TexnetsError("need lr > 0, lr_decay >= 0 and non-negative loss weights")
        self.generator = WCTNet(config)

    @property
    def encoder(self):
        return self.generator.encoder

    def frozen_prefixes(self) -> tuple[str, ...]:
        return ("generator.encoder.",)

    def task_summary(self) -> dict:
        return {"levels": list(self.generator.levels), "pixel_weight": self.hparams.pixel_weight,
                "feature_weight": self.hparams.feature_weight}

    def objective(self, content: torch.Tensor):
        """Every level's reconstruction of ``content``; (reconstructions, total, logs)."""
        with torch.no_grad():
            targets = self.encoder(content, self.generator.levels)
        outputs, logs, total = {}, {}, 0.0
        for level in self.generator.levels:
            output = outputs[level] = self.generator.decoders[level](targets[level])
            pixel = F.mse_loss(output, content)
            feature = F.mse_loss(self.encoder(output, [level])[level], targets[level])
            if self.hparams.relative_features:
                feature = feature / targets[level].pow(2).mean().clamp_min(1e-8)
            logs[f"pixel/{level}"], logs[f"feature/{level}"] = pixel.detach(), feature.detach()
            total = total + self.hparams.pixel_weight * pixel + self.hparams.feature_weight * feature
        logs["total"] = total.detach()
        return outputs, total, logs

    def training_step(self, content: torch.Tensor, batch_idx: int) -> torch.Tensor:
        if self.channels_last:
            content = content.contiguous(memory_format=torch.channels_last)
        _, loss, logs = self.objective(content)
        return self.log_training_step(loss, logs, batch_size=content.shape[0])

    def validation_step(self, content: torch.Tensor, batch_idx: int) -> None:
        outputs, _, logs = self.objective(content)
        self.log_validation_step(logs, batch_size=content.shape[0])
        if batch_idx == 0:  # rows of (photo, its reconstruction at each level, fine to coarse)
            columns = [content, *(outputs[level] for level in reversed(self.generator.levels))]
            self.log_image_grid("reconstructions", torch.stack(columns, 1).flatten(0, 1), len(columns))


__all__ = ["AdaINTask", "ContentStyleDataModule", "PairedCrops", "WCTTask"]
