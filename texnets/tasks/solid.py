"""Solid-texture training (Gutiérrez et al. 2020, "On Demand Solid Texture Synthesis Using Deep 3D
Networks"): a :class:`SolidTextureTask` LightningModule and the :class:`SliceDataModule` that feeds it.

The 3D generator is never compared with a volume: at each step it generates thin slabs, one voxel
thick, perpendicular to each configured axis, and the style loss compares those 2D slices with that
axis's 2D exemplar through the shared VGG encoder. Because the generator is unpadded
(``texnets.generators.solid_net``), a one-voxel slab costs a fraction of a whole volume, which is
what makes the method train fast. Axes are named by the slice's normal, and a volume tensor is
(N, 3, D, H, W) = z, y, x, so the slices perpendicular to z are (y, x) images, to y (z, x) images
and to x (z, y) images.
"""
from __future__ import annotations

from collections.abc import Sequence

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from texnets.errors import TexnetsError
from texnets.generators.solid_net import AXES, SolidTextureNet, SolidTextureNetConfig, solid_layout
from texnets.images import load_image
from texnets.losses import make_style_loss
from texnets.noise import NoiseSpec
from texnets.tasks.base import GeneratorTask
from texnets.tasks.objectives import normalize_gradients
from texnets.vgg import ULYANOV_STYLE_LAYERS, VGGEncoder, check_layers

SolidBatch = tuple[list[torch.Tensor], list[list[int]]]   # the generator's (noise, offsets)


def parse_axes(axes: Sequence[str] | str) -> tuple[str, ...]:
    """``["x", "y", "z"]`` (any order, any subset, case-insensitive) -> a checked tuple."""
    names = [axes] if isinstance(axes, str) else list(axes)
    names = [str(name).strip().lower() for name in names]
    if not names or len(names) > 3 or any(name not in AXES for name in names) or len(set(names)) != len(names):
        raise TexnetsError(f"data.axes must list 1 to 3 different axes among x, y and z, not {list(axes)}")
    return tuple(names)


def slab_size(axis: str, edge: int) -> tuple[int, int, int]:
    """(D, H, W) of a one-voxel-thick ``edge``² slab perpendicular to ``axis``."""
    size = [edge, edge, edge]
    size[AXES.index(axis)] = 1
    return tuple(size)


def volume_slices(volume: torch.Tensor, axis: str, index: int | None = None) -> torch.Tensor:
    """Slices of an (N, 3, D, H, W) volume perpendicular to ``axis`` at ``index`` (default: the
    centre), as (N, 3, rows, columns) images."""
    dim = 2 + AXES.index(axis)
    index = volume.shape[dim] // 2 if index is None else index
    return volume.select(dim, index)


def slab_batch(spec: NoiseSpec, axis: str, edge: int, batch: int, origin: Sequence[int],
               generator: torch.Generator | None = None) -> SolidBatch:
    """Uniform noise (``torch.rand``, as in the reference) and crop offsets for ``batch`` slabs
    perpendicular to ``axis`` at ``origin``. Only the origin modulo 2^(K-1) matters for i.i.d. noise:
    it sets how the slab sits on the coarse grids, and training sees every alignment."""
    layout = solid_layout(spec.scales, origin, slab_size(axis, edge))
    noise = [torch.rand(shape, generator=generator) for shape in layout.noise_shapes(batch, spec.channels)]
    return noise, [list(offset) for offset in layout.offsets]


def random_origin(spec: NoiseSpec, generator: torch.Generator) -> list[int]:
    return torch.randint(0, 2 ** (spec.scales - 1), (3,), generator=generator).tolist()


class SolidTextureTask(GeneratorTask):
    """Train a :class:`~texnets.generators.SolidTextureNet` whose slices look like 2D exemplars.

    Args:
        generator: the generator's hyper-parameters (scales, noise_channels, channel_step, ...).
        loss: any style loss of ``texnets.losses`` (``gram``, ``meanvar``, ``moments``, ``mmd``, ``sw``).
        loss_options: extra options of that loss, e.g. ``{normalize: chw}`` for the Gram matrix.
        layers: VGG layers the loss is computed on.
        layer_weights: per-layer weights (a list, one per layer), ``inverse_channels``, or none (all 1).
        normalize_gradients: divide the gradient reaching each loss layer by its L1 norm (Ulyanov's
            trick; the solid-texture reference code does not use it).
        encoder: options of ``texnets.vgg.VGGEncoder`` (``weights``, ``pooling``, ``arch``, ``preprocessing``).
        lr: Adam learning rate.
        lr_step: multiply the learning rate by ``lr_gamma`` every ``lr_step`` steps (0: constant).
        lr_gamma: see ``lr_step``.
        channels_last: channels_last(_3d) memory layout for encoder and generator (GPU speed-up).
        bn_recalibration_batches: before validation and checkpoints, recompute the BatchNorm running
            statistics over this many fresh slab batches (0: keep the momentum averages).
        compile: ``torch.compile`` generator and encoder (GPU runs).
    """

    def __init__(self, generator: SolidTextureNetConfig | None = None, loss: str = "gram",
                 loss_options: dict | None = None, layers: Sequence[str] = ULYANOV_STYLE_LAYERS,
                 layer_weights: list[float] | str | None = None, normalize_gradients: bool = False,
                 encoder: dict | None = None, lr: float = 0.1, lr_step: int = 0, lr_gamma: float = 1.0,
                 channels_last: bool = False, bn_recalibration_batches: int = 10, compile: bool = False):
        super().__init__(channels_last=channels_last, bn_recalibration_batches=bn_recalibration_batches,
                         compile=compile)
        config, generator = self.generator_config(SolidTextureNetConfig, generator)
        self.save_hyperparameters()
        encoder_options = dict(encoder or {})
        self.style_layers = check_layers(layers, encoder_options.get("arch", "vgg19"))
        if lr <= 0 or lr_step < 0 or not 0 < lr_gamma <= 1:
            raise TexnetsError("need lr > 0, lr_step >= 0 and 0 < lr_gamma <= 1")
        self.generator = SolidTextureNet(config)
        self.encoder = VGGEncoder(self.style_layers, **encoder_options)
        # One loss (one set of exemplar statistics) per axis; an axis that is not trained keeps none.
        self.styles = nn.ModuleDict({axis: make_style_loss(loss, self.style_layers, layer_weights,
                                                           **(loss_options or {})) for axis in AXES})
        self._exemplars: dict[str, torch.Tensor] | None = None

    # -- wiring --------------------------------------------------------------------------------------
    @property
    def noise_spec(self) -> NoiseSpec:
        return self.generator.noise_spec

    @property
    def axes(self) -> tuple[str, ...]:
        if self._exemplars is not None:
            return tuple(self._exemplars)
        datamodule = self.datamodule
        return datamodule.axes if datamodule is not None else AXES

    def set_exemplars(self, exemplars: dict[str, torch.Tensor]) -> None:
        """Use these (1, 3, H, W) images, keyed by axis, instead of asking the data module."""
        self._exemplars = {axis: exemplars[axis] for axis in parse_axes(list(exemplars))}

    def prepare_targets(self, stage: str) -> None:
        exemplars = self._exemplars
        if exemplars is None:
            exemplar_images = self.data("exemplar_images")
            if exemplar_images is None:
                raise TexnetsError("SolidTextureTask needs exemplars: use a SliceDataModule or call set_exemplars()")
            exemplars = exemplar_images()
        encoder_device = next(iter(self.encoder.buffers())).device
        computed: dict[int, dict] = {}   # one encoder pass per distinct image (often one for all axes)
        with torch.no_grad():
            for axis, image in exemplars.items():
                if id(image) not in computed:
                    computed[id(image)] = self.encoder(image.to(encoder_device, torch.float32), self.style_layers)
                self.styles[axis].set_target(computed[id(image)])

    def frozen_prefixes(self) -> tuple[str, ...]:
        return ("encoder.", "styles.")

    def convert_to_channels_last(self) -> None:
        # Volumes are 5D: the generator takes the 3D layout, the 2D encoder the usual one.
        self.generator.to(memory_format=torch.channels_last_3d)
        self.encoder.to(memory_format=torch.channels_last)

    def calibration_inputs(self, batches: int):
        datamodule = self.datamodule
        edge, batch = (datamodule.slice_size, datamodule.slices_per_axis) if datamodule is not None else (32, 4)
        generator = torch.Generator().manual_seed(self.global_step)
        for index in range(batches):
            axis = self.axes[index % len(self.axes)]
            noise, offsets = slab_batch(self.noise_spec, axis, edge, batch, random_origin(self.noise_spec, generator),
                                        generator)
            yield [n.to(self.device) for n in noise], offsets

    def task_summary(self) -> dict:
        return {"loss": self.hparams.loss, "layers": list(self.style_layers), "axes": list(self.axes)}

    # -- objective -----------------------------------------------------------------------------------
    def slice_loss(self, images: torch.Tensor, axis: str, normalize: bool) -> torch.Tensor:
        features = self.encoder(images, self.style_layers)
        if normalize:
            features = normalize_gradients(features, self.styles[axis].layer_weights)
        return self.styles[axis](features)

    def forward(self, noise: list[torch.Tensor], offsets: list[list[int]]) -> torch.Tensor:
        return self.generator(noise, offsets)

    def training_step(self, batch: dict[str, SolidBatch], batch_idx: int) -> torch.Tensor:
        losses = {}
        for axis, (noise, offsets) in batch.items():
            slabs = self.generator(noise, offsets)
            losses[axis] = self.slice_loss(volume_slices(slabs, axis, 0), axis, self.hparams.normalize_gradients)
        # The mean over axes: the reference's 1/(batch·axes) weighting with a per-sample mean loss.
        loss = torch.stack(list(losses.values())).mean()
        logs = {f"style_{axis}": value.detach() for axis, value in losses.items()}
        logs["total"] = loss.detach()
        return self.log_training_step(loss, logs, batch_size=next(iter(batch.values()))[0][0].shape[0])

    def validation_step(self, batch: SolidBatch, batch_idx: int) -> None:
        # A fixed volume in eval mode: what synthesize.py makes. Its centre slices are scored per axis.
        noise, offsets = batch
        volume = self.generator(noise, offsets)
        logs = {f"style_{axis}": self.slice_loss(volume_slices(volume, axis), axis, False).detach()
                for axis in self.axes}
        logs["total"] = torch.stack(list(logs.values())).mean()
        self.log_validation_step(logs, batch_size=volume.shape[0])
        if batch_idx == 0:
            self.log_image_grid("centre_slices_zyx", torch.cat([volume_slices(volume[:1], axis) for axis in AXES]),
                                columns=3)

    def on_fit_start(self) -> None:
        super().on_fit_start()
        exemplar_images = self.data("exemplar_images")
        if self.global_step == 0 and exemplar_images is not None:
            images = exemplar_images()
            self.log_image_grid("exemplars", torch.cat(list(images.values())), columns=len(images))


class SliceStream(IterableDataset):
    """Training batches for solid textures: each item maps every axis to a slab batch (noise and
    crop offsets), at a random alignment with the coarse grids. Seeded per rank and resume step."""

    def __init__(self, spec: NoiseSpec, axes: Sequence[str], edge: int, batch: int, length: int, seed: int):
        self.spec, self.axes, self.edge, self.batch, self.length, self.seed = spec, tuple(axes), edge, batch, length, seed

    def __len__(self) -> int:
        return self.length

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed)
        for _ in range(self.length):
            yield {axis: slab_batch(self.spec, axis, self.edge, self.batch, random_origin(self.spec, generator),
                                    generator) for axis in self.axes}


class SliceDataModule(pl.LightningDataModule):
    """Slab noise for a :class:`SolidTextureTask`, and its 2D exemplars.

    Args:
        exemplars: 1 to 3 images (path, ``builtin:<name>`` or URL): one per axis in ``axes``, or one
            image for every axis.
        axes: the axes whose perpendicular slices are trained, among ``x``, ``y`` and ``z``.
        slice_size: edge of the training slices (the reference: 128² slices of a 128³ volume).
        slices_per_axis: slices per axis per step (the reference: 8).
        exemplar_size: every exemplar's shorter side is resized to this (default: ``slice_size``), so
            exemplars of different sizes are compared at one scale.
        val_size: edge of the fixed validation volume whose centre slices TensorBoard shows.
        seed: seed of the training noise and of the fixed validation volume.
    """

    def __init__(self, exemplars: list[str] | str = "builtin:immunohistochemistry",
                 axes: list[str] | None = None, slice_size: int = 128, slices_per_axis: int = 8,
                 exemplar_size: int | None = None, val_size: int = 64, seed: int = 0):
        super().__init__()
        self.save_hyperparameters()
        self.exemplars = [exemplars] if isinstance(exemplars, str) else [str(e) for e in exemplars]
        self.axes = parse_axes(axes if axes is not None else ["x", "y", "z"])
        if not 1 <= len(self.exemplars) <= 3:
            raise TexnetsError(f"data.exemplars takes 1 to 3 images (one per axis), not {len(self.exemplars)}")
        if len(self.exemplars) not in (1, len(self.axes)):
            raise TexnetsError(f"{len(self.exemplars)} exemplars for {len(self.axes)} axes "
                               f"({', '.join(self.axes)}): give one exemplar per axis, or one for all")
        if slice_size < 1 or slices_per_axis < 1 or val_size < 1:
            raise TexnetsError("data.slice_size, data.slices_per_axis and data.val_size must be at least 1")
        self.slice_size, self.slices_per_axis, self.val_size, self.seed = slice_size, slices_per_axis, val_size, seed
        self.exemplar_size = exemplar_size or slice_size
        self._images: dict[str, torch.Tensor] | None = None
        self._val_batch: SolidBatch | None = None
        self.noise_spec: NoiseSpec | None = None  # set by the task it trains (configure_data), or explicitly

    def exemplar_images(self) -> dict[str, torch.Tensor]:
        """axis -> (1, 3, H, W) exemplar, shorter side ``exemplar_size`` (an image given once is shared)."""
        if self._images is None:
            loaded: dict[str, torch.Tensor] = {}
            for spec in self.exemplars:
                if spec not in loaded:
                    loaded[spec] = load_image(spec, self.exemplar_size, what="exemplar")
            per_axis = self.exemplars * len(self.axes) if len(self.exemplars) == 1 else self.exemplars
            self._images = {axis: loaded[spec] for axis, spec in zip(self.axes, per_axis)}
        return self._images

    def summary(self) -> dict:
        return {"exemplars": self.exemplars, "axes": list(self.axes), "slice_size": self.slice_size,
                "slices_per_axis": self.slices_per_axis, "exemplar_size": self.exemplar_size,
                "size": [self.slice_size] * 3}

    def _spec(self) -> NoiseSpec:
        if self.noise_spec is None:
            raise TexnetsError("SliceDataModule feeds a SolidTextureTask (no noise spec found)")
        return self.noise_spec

    def setup(self, stage: str) -> None:
        self.exemplar_images()  # fail early, with the image error, before any training

    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        steps = trainer.max_steps if trainer.max_steps > 0 else 10**6
        seed = (self.seed * 1_000_003 + trainer.global_rank * 7919 + trainer.global_step) % 2**63
        stream = SliceStream(self._spec(), self.axes, self.slice_size, self.slices_per_axis,
                             steps * trainer.accumulate_grad_batches, seed)
        return DataLoader(stream, batch_size=None, num_workers=0)

    def val_dataloader(self) -> DataLoader:
        if self._val_batch is None:
            spec = self._spec()
            layout = solid_layout(spec.scales, (0, 0, 0), (self.val_size,) * 3)
            generator = torch.Generator().manual_seed(10_000 + self.seed)
            noise = [torch.rand(shape, generator=generator) for shape in layout.noise_shapes(1, spec.channels)]
            self._val_batch = (noise, [list(offset) for offset in layout.offsets])
        return DataLoader([self._val_batch], batch_size=None)


__all__ = ["SliceDataModule", "SliceStream", "SolidTextureTask", "parse_axes", "slab_batch", "volume_slices"]
