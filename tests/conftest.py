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


TINY_SOLID_CONFIG = """\
# A solid-texture network small enough for a test: 3 scales, 32² slices, two VGG layers, 32 px exemplars.
seed_everything: 0
model:
  class_path: texnets.tasks.SolidTextureTask
  init_args:
    generator: {scales: 3}
    layers: [relu1_1, relu2_1]
    lr: 0.05
    bn_recalibration_batches: 2
data:
  class_path: texnets.tasks.SliceDataModule
  init_args:
    exemplars: [builtin:immunohistochemistry]
    axes: [x, y, z]
    slice_size: 32
    slices_per_axis: 2
    exemplar_size: 32
    val_size: 16
trainer:
  accelerator: cpu
  max_steps: 8
  val_check_interval: 4
  log_every_n_steps: 1
  enable_progress_bar: false
  enable_model_summary: false
checkpoint_every: 4
"""


@pytest.fixture
def solid_config(tmp_path) -> Path:
    """A tiny train.py config (SolidTextureTask + SliceDataModule); runs write under ``--output_dir``."""
    path = tmp_path / "tiny_solid.yaml"
    path.write_text(TINY_SOLID_CONFIG)
    return path


@pytest.fixture(scope="module")
def solid_checkpoint(tmp_path_factory) -> Path:
    """A checkpoint as a SolidTextureTask writes it, around ``helpers.calibrated_net()`` (3 scales)."""
    import torch

    from helpers import calibrated_net
    from texnets.checkpoints import checkpoint_metadata

    net = calibrated_net()
    path = tmp_path_factory.mktemp("solid") / "last.ckpt"
    state = {f"generator.{key}": value for key, value in net.state_dict().items()}
    torch.save({"state_dict": state, "global_step": 5,
                "texnets": checkpoint_metadata(net.model_type, net.config_dict(), training={"size": [24, 24, 24]})},
               path)
    return path


# --------------------------------------------------------------------------------------------------
# Transfer networks: real photos and paintings from ../shared/data (never copied into the repository).

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` with ``content/`` photos and ``styles/starry_night.jpg``; skips when absent."""
    if not (SHARED_DATA / "styles" / "starry_night.jpg").is_file() or not any((SHARED_DATA / "content").glob("*.jpg")):
        pytest.skip(f"the shared photos and paintings are not at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def small_photos(shared_data, tmp_path_factory) -> list[Path]:
    """Six of the shared content photos, downscaled to at most 96 px (fast to decode), as .jpg and .png
    files in a temporary folder; tests copy or link them into folders of their own."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    sources = sorted((shared_data / "content").glob("*.jpg"))[:4] + sorted((shared_data / "content").glob("*.png"))[:2]
    paths = []
    for source in sources:
        with Image.open(source) as image:
            image = image.convert("RGB")
            image.thumbnail((96, 96))
            target = folder / source.name
            image.save(target)
        paths.append(target)
    return paths


@pytest.fixture(scope="session")
def small_style(shared_data, tmp_path_factory) -> Path:
    """The Starry Night downscaled to 96 px on its longer side, in a temporary folder."""
    from PIL import Image

    target = tmp_path_factory.mktemp("style") / "starry_small.png"
    with Image.open(shared_data / "styles" / "starry_night.jpg") as image:
        image = image.convert("RGB")
        image.thumbnail((96, 96))
        image.save(target)
    return target


# --------------------------------------------------------------------------------------------------
# Run folders as train.py writes them (checkpoints, TensorBoard events, config, report), trained once per
# session at a tiny size, for tests that need a real checkpoint of each model type.

TINY_TRANSFER_ARGS = (  # configs/starry.yaml at a size a test can afford: 32 px crops, a quarter-width net
    "--config", "configs/starry.yaml", "--data.size", "32", "--model.style_size", "64", "--data.num_workers", "0",
    "--data.val_images", "2", "--trainer.accelerator", "cpu", "--trainer.precision", "32-true",
    "--model.channels_last", "false", "--model.generator.width", "0.25")
TINY_SR_ARGS = (  # the CPU super-resolution recipe at a test's size: 32 px patches, an 8-channel network
    "--data.size", "32", "--data.val_size", "32", "--data.val_images", "1", "--model.generator.channels", "8",
    "--model.generator.residual_blocks", "1")
TINY_ARBITRARY_ARGS = (  # the CPU configs of AdaIN and WCT at a test's size: 32 px crops, eighth-width decoders
    "--data.size", "32", "--data.load_size", "48", "--data.batch_size", "2", "--data.val_images", "1",
    "--model.generator.width", "0.125")


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory) -> dict:
    """``{"texture": run_dir, "solid": run_dir, "transfer", "adain", "wct", "sr", "multistyle": run_dir or None}``:
    two steps of training each, in-process through train.py; the photo-trained runs need ../shared/data (None without
    it)."""
    import os

    import train

    repo = Path(__file__).resolve().parents[1]
    root = tmp_path_factory.mktemp("runs")
    quiet = ["--trainer.max_steps", "2", "--trainer.enable_progress_bar", "false",
             "--trainer.enable_model_summary", "false", "--output_dir", str(root)]
    (root / "tiny.yaml").write_text(TINY_TEXTURE_CONFIG)
    (root / "tiny_solid.yaml").write_text(TINY_SOLID_CONFIG)
    jobs = {"texture": ["--config", str(root / "tiny.yaml")], "solid": ["--config", str(root / "tiny_solid.yaml")]}
    if (SHARED_DATA / "styles" / "starry_night.jpg").is_file():
        jobs["transfer"] = [*TINY_TRANSFER_ARGS, "--model.style", str(SHARED_DATA / "styles" / "starry_night.jpg"),
                            "--data.folder", str(SHARED_DATA / "content")]
        jobs["adain"] = ["--config", "configs/adain_huang2017.yaml", "--config", "configs/adain_cpu.yaml",
                         *TINY_ARBITRARY_ARGS, "--data.content", str(SHARED_DATA / "content"),
                         "--data.styles", str(SHARED_DATA / "styles")]
        jobs["wct"] = ["--config", "configs/wct_li2017.yaml", "--config", "configs/wct_cpu.yaml", *TINY_ARBITRARY_ARGS,
                       "--data.content", str(SHARED_DATA / "content")]
        jobs["sr"] = ["--config", "configs/sr_johnson2016.yaml", "--config", "configs/sr_cpu.yaml", *TINY_SR_ARGS,
                      "--data.folder", str(SHARED_DATA / "content")]
        styles = ", ".join(str(SHARED_DATA / "styles" / name) for name in ("starry_night.jpg", "udnie.jpg"))
        jobs["multistyle"] = ["--config", "configs/multistyle_dumoulin2017.yaml", "--config",
                              "configs/multistyle_cpu.yaml", *TINY_TRANSFER_ARGS[2:], "--model.style", f"[{styles}]",
                              "--data.folder", str(SHARED_DATA / "content")]
    runs = {"transfer": None, "adain": None, "wct": None, "sr": None, "multistyle": None}
    cwd = os.getcwd()
    os.chdir(repo)  # the config paths above are the repository's
    try:
        for name, args in jobs.items():
            assert train.main([*args, *quiet, "--run_name", name]) == 0, name
            runs[name] = root / name
    finally:
        os.chdir(cwd)
    return runs
