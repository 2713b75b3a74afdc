"""Perceptual-loss style transfer networks (Johnson, Alahi & Fei-Fei 2016): a :class:`TransferTask`
LightningModule and the :class:`ContentImageDataModule` that streams crops of a folder of photos.

The task owns the generator (:class:`~texnets.generators.TransformerNet`), one frozen VGG encoder
and a :class:`~texnets.losses.PerceptualCriterion` with three terms: content (feature reconstruction
of the input photo), style (any loss of the family against the style image, Gram by default) and
total variation. The style image's statistics are computed once in ``setup`` and kept as loss
buffers, so checkpoints carry them and a resumed run needs no style image.

Data. A content folder is walked lazily, one directory listing at a time in a shuffled order, so a
COCO-sized folder (80k+ files) starts training at once and no list of every file is ever held. Each
pass over the folder is an epoch; passes repeat until ``trainer.max_steps``, so a handful of photos
trains too (sampled with replacement through the repeated passes, each with new random crops).
Unreadable files are skipped with a counted warning. The first ``val_images`` files in sorted order
are held aside as a fixed validation batch, never trained on.
"""
from __future__ import annotations

import os
import random
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import kornia.augmentation
import pytorch_lightning as pl
import torch
import torchvision.transforms.v2 as T
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from texnets.errors import TexnetsError
from texnets.checkpoints import known_styles, load_generator
from texnets.generators.transformer_net import ConditionalInstanceNorm2d, TransformerNet, TransformerNetConfig
from texnets.images import load_image, read_image, resize
from texnets.losses import ContentLoss, PerceptualCriterion, PerStyleLoss, make_style_loss
from texnets.tasks.base import GeneratorTask
from texnets.temporal import Perturbation
from texnets.vgg import JOHNSON_CONTENT_LAYERS, JOHNSON_STYLE_LAYERS, VGGEncoder, check_layers

TRAIN_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
STYLE_SAMPLINGS = ("balanced", "random")   # TransferTask's style_sampling


# --------------------------------------------------------------------------------------------------
# Data

def walk_images(folder: Path, rng: random.Random | None = None) -> Iterator[Path]:
    """Image files under ``folder``, recursively, one directory listing at a time. With ``rng`` each
    directory's entries are shuffled (a different order every pass); without it they are sorted."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return  # an unreadable sub-folder is skipped like an unreadable file
    if rng is None:
        entries.sort(key=lambda entry: entry.name)
    else:
        rng.shuffle(entries)
    for entry in entries:
        try:
            if entry.is_dir():
                yield from walk_images(Path(entry.path), rng)
            elif entry.name.lower().endswith(TRAIN_SUFFIXES) and entry.is_file():
                yield Path(entry.path)
        except OSError:
            continue


class SkipCounter:
    """Counts unreadable images in this process and warns about the first few, then every 100th."""

    def __init__(self):
        self.count = 0

    def skip(self, path: Path, reason: str) -> None:
        self.count += 1
        if self.count <= 5 or self.count % 100 == 0:
            warnings.warn(f"skipped unreadable image {path} ({reason}); {self.count} skipped so far", stacklevel=2)


class ContentCrops(IterableDataset):
    """Random crops of the images under a folder, as (3, size, size) tensors, pass after pass.

    Every process (DataLoader worker × DDP rank) walks the folder in the same shuffled order for a
    given pass and keeps every ``shards``-th file, so processes see disjoint images.
    """

    def __init__(self, folder: str | os.PathLike | Sequence[str | os.PathLike], size: int, crop_scale: Sequence[float],
                 seed: int, exclude: Sequence[str] = (), rank: int = 0, world_size: int = 1, passes: int | None = None,
                 load_size: int | None = None):
        self.folders = [Path(f) for f in ([folder] if isinstance(folder, (str, os.PathLike)) else folder)]
        self.folder, self.size, self.seed = self.folders[0], int(size), int(seed)
        self.exclude, self.rank, self.world_size, self.passes = set(exclude), rank, world_size, passes
        if load_size:  # resize the shorter side, then a random crop (the AdaIN reference's 512 then 256)
            self.crop = T.Compose([T.Resize(int(load_size), antialias=True), T.RandomCrop(self.size)])
        else:
            self.crop = T.RandomResizedCrop(self.size, scale=tuple(crop_scale), ratio=(1.0, 1.0), antialias=True)
        self.draft = max(2 * self.size, int(load_size or 0))

    def _walk(self, rng: random.Random | None) -> Iterator[Path]:
        for folder in self.folders:
            yield from walk_images(folder, rng)

    def _crop(self, path: Path, skipped: SkipCounter) -> torch.Tensor | None:
        try:
            return self.crop(read_image(path, draft=self.draft))
        except TexnetsError as exc:
            skipped.skip(path, str(exc).split(" (")[0])
        except Exception as exc:  # noqa: BLE001 - a strange file must never end an epoch
            skipped.skip(path, f"{type(exc).__name__}: {exc}"[:120])
        return None

    def __iter__(self) -> Iterator[torch.Tensor]:
        worker = get_worker_info()
        workers, worker_id = (worker.num_workers, worker.id) if worker is not None else (1, 0)
        shards, shard = self.world_size * workers, self.rank * workers + worker_id
        torch.manual_seed(self.seed * 7919 + shard)  # the crops' randomness, per process
        skipped, epoch = SkipCounter(), 0
        while self.passes is None or epoch < self.passes:
            rng = random.Random(self.seed * 1_000_003 + epoch)  # the same order in every process
            paths = (path for path in self._walk(rng) if str(path) not in self.exclude)
            kept = seen = 0
            for index, path in enumerate(paths):
                seen += 1
                if index % shards == shard:
                    crop = self._crop(path, skipped)
                    if crop is not None:
                        kept += 1
                        yield crop
            if kept == 0 and 0 < seen < shards:  # fewer files than processes: every process uses them all
                for path in self._walk(rng):
                    crop = self._crop(path, skipped) if str(path) not in self.exclude else None
                    if crop is not None:
                        kept += 1
                        yield crop
            if kept == 0:
                raise TexnetsError(f"no readable training images in {', '.join(map(str, self.folders))} "
                                   f"({skipped.count} unreadable, {len(self.exclude)} held aside for validation)")
            epoch += 1


def hold_aside(paths: Iterator[Path], count: int, draft: int, what: str, purpose: str) -> list[str]:
    """The first ``count`` readable files of ``paths`` (read one past them, so that at least one readable file
    is always left for training: a folder of a handful keeps one, with a warning)."""
    readable = []
    for path in paths:
        if len(readable) > count:
            break
        try:
            read_image(path, draft=draft)
        except TexnetsError:
            continue
        readable.append(str(path))
    if 0 < len(readable) <= count:
        warnings.warn(f"only {len(readable)} readable {what}: holding aside {len(readable) - 1} {purpose} "
                      f"instead of {count}", stacklevel=3)
    return readable[:min(count, len(readable) - 1)] if readable else []


class ContentImageDataModule(pl.LightningDataModule):
    """A folder of content photos (recursive; jpg, png, webp) for training transfer networks.

    Args:
        folder: the content images, e.g. COCO train2014 (Johnson et al. 2016 used 80k COCO images).
        size: side of the square training crops.
        batch_size: crops per step.
        crop_scale: range of the fraction of the image area each random crop covers.
        flip: random horizontal flips, applied on the device with kornia.
        val_images: the first N images (sorted by path) are held aside as a fixed validation batch.
        val_size: side of the validation images (centre crops); default: ``size``.
        num_workers: DataLoader worker processes that decode images (0: decode in the training process).
        seed: seed of the crops and of the walking order.
        load_size: if set, resize each image's shorter side to this, then take a random ``size`` crop
            (instead of ``crop_scale``'s random resized crops).
    """

    def __init__(self, folder: str = "data/coco/train2014", size: int = 256, batch_size: int = 4,
                 crop_scale: list[float] = (0.3, 1.0), flip: bool = True, val_images: int = 4,
                 val_size: int | None = None, num_workers: int = 4, seed: int = 0, load_size: int | None = None):
        super().__init__()
        self.save_hyperparameters()
        if batch_size < 1 or size < 16 or val_images < 0 or num_workers < 0:
            raise TexnetsError("data.batch_size >= 1, data.size >= 16, data.val_images >= 0 and "
                               "data.num_workers >= 0, please")
        if not (len(crop_scale) == 2 and 0 < crop_scale[0] <= crop_scale[1] <= 1):
            raise TexnetsError(f"data.crop_scale must be [low, high] with 0 < low <= high <= 1, not {list(crop_scale)}")
        self.folder, self.size, self.batch_size = folder, int(size), int(batch_size)
        self.crop_scale, self.flip, self.val_images = [float(s) for s in crop_scale], flip, val_images
        # More decoding processes than cores only compete (the GPU config's 8 on a 2-core machine).
        self.val_size, self.num_workers, self.seed = int(val_size or size), min(num_workers, os.cpu_count() or 1), seed
        if load_size is not None and load_size < size:
            raise TexnetsError(f"data.load_size ({load_size}) must be at least data.size ({size})")
        self.load_size = load_size
        self._flip = kornia.augmentation.RandomHorizontalFlip(p=0.5)  # batched, on the training device
        self._val_paths: list[str] | None = None
        self._val_batch: torch.Tensor | None = None

    def _check_folder(self) -> Path:
        folder = Path(self.folder)
        if not folder.is_dir():
            hint = " (download COCO train2014, or pass --data.folder <your photos>)" if "coco" in str(folder) else ""
            raise TexnetsError(f"content folder not found: {folder}{hint}")
        return folder

    def validation_paths(self) -> list[str]:
        """The held-aside images: the first ``val_images`` readable files in sorted order, but never
        all of them: a folder of a handful of photos keeps at least one for training."""
        if self._val_paths is None:
            self._val_paths = hold_aside(walk_images(self._check_folder()), self.val_images, self.val_size,
                                         f"images in {self.folder}", "for validation")
        return self._val_paths

    def validation_batch(self) -> torch.Tensor:
        if self._val_batch is None:
            images = [T.functional.center_crop(resize(read_image(p, draft=self.val_size), self.val_size),
                                               [self.val_size, self.val_size]) for p in self.validation_paths()]
            self._val_batch = torch.stack(images) if images else torch.empty(0, 3, self.val_size, self.val_size)
        return self._val_batch

    def setup(self, stage: str) -> None:
        folder = self._check_folder()
        if next(walk_images(folder), None) is None:
            raise TexnetsError(f"no images ({', '.join(TRAIN_SUFFIXES)}) in {folder}")
        self.validation_paths()

    def summary(self) -> dict:
        return {"content": str(self.folder), "size": self.size, "batch_size": self.batch_size,
                "crop_scale": self.crop_scale, "val_images": self.validation_paths()}

    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        resumed_at = trainer.global_step if trainer is not None else 0
        # A resumed run draws new crops and a new order rather than replaying the first steps.
        seed = (self.seed * 1_000_003 + resumed_at) % 2**31
        crops = ContentCrops(self.folder, self.size, self.crop_scale, seed, self.validation_paths(), rank, world,
                             load_size=self.load_size)
        return DataLoader(self.training_set(crops, seed, rank, world), batch_size=self.batch_size,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0,
                          pin_memory=torch.cuda.is_available())

    def training_set(self, crops: ContentCrops, seed: int, rank: int, world: int) -> IterableDataset:
        """What the training DataLoader batches: the photos' crops here; a subclass may pair them."""
        return crops

    def val_dataloader(self) -> DataLoader:
        batch = self.validation_batch()
        return DataLoader([batch] if len(batch) else [], batch_size=None)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        if self.flip and self.trainer is not None and self.trainer.training:
            # Each tensor of a (content, style) pair is flipped on its own: independent augmentations.
            batch = tuple(self._flip(images) for images in batch) if isinstance(batch, (tuple, list)) else self._flip(batch)
        return batch


# --------------------------------------------------------------------------------------------------
# Task

class TransferTask(GeneratorTask):
    """Train a :class:`~texnets.generators.TransformerNet` to stylise photos in one forward pass.

    One style image trains Johnson et al.'s network. A list of style images trains one network for all of them
    with conditional instance norm (Dumoulin et al. 2017): each image of a batch gets a random style, is
    stylised with that style's row of scales and shifts, and is judged by that style's loss; the style
    statistics of every image are computed once and kept as loss buffers. ``extend`` adds styles to a trained
    network: its weights are loaded, everything but the new rows of scales and shifts is frozen (Dumoulin et
    al. 2017, section 4: a new style costs 2 × the norms' channels of parameters), and only the new styles train.

    Args:
        style: the style image, or a list of them: a path, ``builtin:<name>`` or an https URL (``#sha256=...``
            checked), downloaded once into the cache.
        style_size: resize each style image's shorter side to this before computing its statistics.
        generator: the generator's hyper-parameters (width, residual_blocks, upsample, output_range; ``styles``
            follows the number of style images).
        extend: a checkpoint of a trained transfer network to add the ``style`` images to (the others stay as
            they are).
        style_sampling: how a multi-style batch's images get their styles: ``balanced`` (every style as often as
            the batch allows, ⌊B/N⌋ or ⌈B/N⌉ times, shuffled) or ``random`` (each image its own random draw, as
            magenta's reference). At batch 4 with 4 styles a random draw leaves a given style out of a third of
            the steps ((3/4)^4); balanced batches train every style's row and judge the shared weights on every
            style at every step.
        loss: the style loss: ``gram`` (Johnson et al.), ``meanvar``, ``moments``, ``mmd`` or ``sw``.
        loss_options: extra options of that loss (e.g. ``{normalize: chw}`` for Gram).
        style_layers / content_layers: VGG layers of the two terms.
        style_layer_weights: per-layer weights of the style term (a list, ``inverse_channels`` or none).
        style_weight / content_weight / tv_weight: weights of the three terms (see the configs for
            their sources and units).
        encoder: options of ``texnets.vgg.VGGEncoder`` (``weights``, ``arch``, ``pooling``).
        lr: Adam learning rate.
        lr_step: if > 0, multiply the learning rate by ``lr_gamma`` every ``lr_step`` steps.
        lr_gamma: see ``lr_step``.
        channels_last: generator and encoder in channels_last memory layout (faster convolutions on GPUs).
        compile: compile generator and encoder with torch.compile when training starts (GPUs; the
            first steps then take a minute longer).
        temporal_weight: weight of the flow-free temporal term for video (0: off; see configs/starry.yaml).
        temporal: how the photos are disturbed for it (``texnets.temporal.Perturbation``: mode, noise,
            shift, motion, motion_scale).
    """

    def __init__(self, style: str | list[str] | None = None, style_size: int = 256,
                 generator: TransformerNetConfig | None = None, extend: str | None = None,
                 style_sampling: str = "balanced", loss: str = "gram", loss_options: dict | None = None,
                 style_layers: Sequence[str] = JOHNSON_STYLE_LAYERS, content_layers: Sequence[str] = JOHNSON_CONTENT_LAYERS,
                 style_layer_weights: list[float] | str | None = None,
                 style_weight: float = 5.0, content_weight: float = 1.0, tv_weight: float = 0.0,
                 encoder: dict | None = None, lr: float = 1e-3, lr_step: int = 0, lr_gamma: float = 0.5,
                 channels_last: bool = False, compile: bool = False, temporal_weight: float = 0.0,
                 temporal: Perturbation | None = None):
        super().__init__(channels_last=channels_last, bn_recalibration_batches=0, compile=compile,
                         temporal_weight=temporal_weight, temporal=temporal)
        new_styles = [style] if isinstance(style, str) else list(style or [])
        if not new_styles or not all(new_styles):
            raise TexnetsError("model.style is required: a path, builtin:<name> or an https URL of the style image "
                               "(or a list of them)")
        base = load_generator(extend) if extend else None
        if base is not None and base.model_type != "transformer_net":
            raise TexnetsError(f"model.extend: {extend} holds a {base.model_type.replace('_', '-')}; styles are added "
                               f"to transfer networks")
        self.base_styles = known_styles(base.metadata) if base is not None else []
        config = self.style_config(generator, base, len(self.base_styles) + len(new_styles))
        generator, temporal = asdict(config), self.perturbation.as_dict()   # plain data in the hyper-parameters
        self.save_hyperparameters()
        if lr <= 0 or lr_step < 0 or not 0 < lr_gamma <= 1 or min(style_weight, content_weight, tv_weight) < 0:
            raise TexnetsError("need lr > 0, lr_step >= 0, 0 < lr_gamma <= 1 and non-negative loss weights")
        if style_sampling not in STYLE_SAMPLINGS:
            raise TexnetsError(f"model.style_sampling must be one of {', '.join(STYLE_SAMPLINGS)}, not {style_sampling!r}")
        self.new_styles = new_styles
        encoder_options = dict(encoder or {})
        arch = encoder_options.get("arch", "vgg19")
        self.style_layers = check_layers(style_layers, arch)
        self.content_layers = check_layers(content_layers, arch)
        self.generator = TransformerNet(config)
        if base is not None:
            self.start_from(base.generator)
        encoder = VGGEncoder(check_layers([*self.style_layers, *self.content_layers], arch), **encoder_options)

        def style_loss():
            return make_style_loss(loss, self.style_layers, style_layer_weights, **(loss_options or {}))

        # One style: Johnson et al.'s loss as it always was (and its checkpoints' keys); several: one loss each.
        style_term = style_loss() if config.styles == 1 else PerStyleLoss([style_loss() for _ in new_styles])
        terms = {"content": (ContentLoss(self.content_layers), content_weight), "style": (style_term, style_weight)}
        self.criterion = PerceptualCriterion(encoder, terms, tv_weight=tv_weight)
        self._style_images: list[torch.Tensor] | None = None

    # -- styles --------------------------------------------------------------------------------------
    @staticmethod
    def style_config(generator, base, styles: int) -> TransformerNetConfig:
        """The generator's config: the YAML's, or the extended checkpoint's, with one style per style image."""
        if base is not None:
            config = TransformerNetConfig(**{**base.metadata["generator"], "styles": styles})
            given = generator if isinstance(generator, dict) else asdict(generator) if generator else {}
            differing = [f"{key} is {value!r} here but {getattr(config, key)!r} there"
                         for key, value in sorted(given.items())
                         if key != "styles" and hasattr(config, key) and getattr(config, key) != value]
            if differing:
                raise TexnetsError(f"model.generator differs from the network in model.extend ({'; '.join(differing)}): "
                                   f"use the config it was trained with")
            return config
        config, _ = GeneratorTask.generator_config(TransformerNetConfig, generator)
        if config.styles not in (1, styles):
            raise TexnetsError(f"model.generator.styles is {config.styles} but {styles} style images are given")
        return replace(config, styles=styles)

    def start_from(self, base: TransformerNet) -> None:
        """Load a trained network's weights, then train only the new styles' rows of scales and shifts: every
        other parameter is frozen and the gradient of the old rows is zeroed (Adam then leaves them as they are).
        A new row starts from the mean of the old ones."""
        old = len(self.base_styles)
        state = base.state_dict()
        for name, module in self.generator.named_modules():
            if isinstance(module, ConditionalInstanceNorm2d):
                for kind in ("weight", "bias"):
                    rows = state[f"{name}.{kind}"].reshape(old, -1)
                    state[f"{name}.{kind}"] = torch.cat([rows, rows.mean(0, keepdim=True).expand(
                        module.styles - old, -1)])
        self.generator.load_state_dict(state)
        for name, parameter in self.generator.named_parameters():
            conditional = isinstance(self.generator.get_submodule(name.rpartition(".")[0]), ConditionalInstanceNorm2d)
            parameter.requires_grad_(conditional)
            if conditional:
                parameter.register_hook(lambda grad: torch.cat([torch.zeros_like(grad[:old]), grad[old:]]))

    @property
    def styles(self) -> list[str]:
        """Every style the network knows, in index order (the extended network's first)."""
        return [*self.base_styles, *self.new_styles]

    @property
    def multi_style(self) -> bool:
        return self.generator.styles > 1

    def draw_styles(self, batch: int) -> torch.Tensor:
        """A trained style per image (``style_sampling``): indices into the network's styles (the new ones when
        extending)."""
        first, count = len(self.base_styles), self.generator.styles - len(self.base_styles)
        if self.hparams.style_sampling == "random":
            return first + torch.randint(count, (batch,))
        # batch = q*count + r: styles k..k+r-1 (mod count, k random) get q+1 images, the others q; shuffled.
        return first + (torch.randperm(batch) + torch.randint(count, ())) % count

    # -- wiring --------------------------------------------------------------------------------------
    @property
    def encoder(self) -> VGGEncoder:
        return self.criterion.encoder

    def style_images(self) -> list[torch.Tensor]:
        if self._style_images is None:
            self._style_images = [load_image(spec, self.hparams.style_size, what="style image")
                                  for spec in self.new_styles]
        return self._style_images

    def prepare_targets(self, stage: str) -> None:
        device = next(iter(self.encoder.buffers())).device
        term = self.criterion.terms["style"]
        losses = term.losses if isinstance(term, PerStyleLoss) else [term]
        with torch.no_grad():
            for loss, image in zip(losses, self.style_images()):
                loss.set_target(self.encoder(image.to(device, torch.float32), self.style_layers))

    def frozen_prefixes(self) -> tuple[str, ...]:
        return ("criterion.",)  # encoder weights, style statistics and the per-batch content targets

    def task_summary(self) -> dict:
        summary = {"styles": self.styles, "style_size": self.hparams.style_size, "loss": self.hparams.loss}
        if not self.multi_style:
            summary["style"] = self.hparams.style if isinstance(self.hparams.style, str) else self.styles[0]
        if self.hparams.extend:
            summary["extended"] = {"from": str(self.hparams.extend), "kept_styles": len(self.base_styles)}
        return summary

    # -- objective -----------------------------------------------------------------------------------
    def objective(self, content: torch.Tensor, stylised: torch.Tensor, styles: torch.Tensor | None = None):
        """Total loss and detached per-term / per-layer values for logging; ``styles``: each image's style index
        (multi-style networks)."""
        with torch.no_grad():
            self.criterion.terms["content"].set_target(self.encoder(content, self.content_layers))
        if self.multi_style:
            # The losses are indexed from the first trained style (the new ones when extending).
            self.criterion.terms["style"].set_assignment(styles - len(self.base_styles))
        return self.criterion(stylised)

    def forward(self, images: torch.Tensor, styles: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator(images, styles)

    def training_step(self, content: torch.Tensor, batch_idx: int) -> torch.Tensor:
        if self.channels_last:
            content = content.contiguous(memory_format=torch.channels_last)
        styles = self.draw_styles(content.shape[0]).to(content.device) if self.multi_style else None
        stylised = self.generator(content, styles)
        loss, logs = self.objective(content, stylised, styles)
        loss, logs = self.add_temporal_term(loss, logs, lambda images: self.generator(images, styles), content,
                                            stylised)
        return self.log_training_step(loss, logs, batch_size=content.shape[0])

    def validation_step(self, content: torch.Tensor, batch_idx: int) -> None:
        if not self.multi_style:
            stylised = self.generator(content)
            loss, logs = self.objective(content, stylised)
            _, logs = self.add_temporal_term(loss, logs, self.generator, content, stylised, seed=batch_idx)
            self.log_validation_step(logs, batch_size=content.shape[0])
            if batch_idx == 0:
                self.log_image_grid("stylised", stylised)
            return
        # Every trained style on the whole batch: per-style losses (val/style_<k>), their mean as the terms.
        per_style, grids = [], []
        for index in range(len(self.base_styles), self.generator.styles):
            styles = torch.full((content.shape[0],), index, device=content.device)
            stylised = self.generator(content, styles)
            per_style.append(self.objective(content, stylised, styles)[1])
            grids.append(stylised[:1])
        logs = {name: torch.stack([item[name] for item in per_style]).mean() for name in per_style[0]}
        logs.update({f"style_{len(self.base_styles) + k}": item["style"] for k, item in enumerate(per_style)})
        self.log_validation_step(logs, batch_size=content.shape[0])
        if batch_idx == 0:
            self.log_image_grid("stylised (first photo, each style)", torch.cat(grids))

    def on_fit_start(self) -> None:
        super().on_fit_start()
        if self.global_step == 0 and self._style_images is not None:  # (a resumed run may lack the images)
            for index, image in enumerate(self._style_images):
                self.log_image_grid("style" if len(self._style_images) == 1 else f"style/{index}", image, columns=1)
            validation_batch = self.data("validation_batch")
            if validation_batch is not None:
                self.log_image_grid("content", validation_batch())


__all__ = ["ContentCrops", "ContentImageDataModule", "TransferTask", "walk_images"]
