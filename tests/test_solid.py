"""Solid textures (issue 5): the unpadded 3D generator, training through 2D slices with train.py,
synthesize.py's .npy + slice preview, and bad input (on-demand blocks and volumes are in test_volumes.py)."""
import functools
import json
import statistics
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import synthesize
import train
from texnets.checkpoints import load_generator
from texnets.errors import TexnetsError
from texnets.generators import SolidTextureNet
from texnets.generators.solid_net import solid_layout
from texnets.tasks import SliceDataModule
from texnets.tasks.solid import parse_axes, volume_slices
from texnets.volumes import generate_block
from helpers import call_main, make_texture_checkpoint, one_error_line

SHARED_SOLID = Path(__file__).resolve().parents[2] / "shared" / "data" / "solid"


run_synthesize = functools.partial(call_main, synthesize.main)


run_train = functools.partial(call_main, train.main)


# -- generator -------------------------------------------------------------------------------------
def test_the_reference_generator_has_84963_parameters_and_makes_blocks_of_any_size():
    net = SolidTextureNet().eval()
    assert sum(p.numel() for p in net.parameters()) == 84_963   # Gutiérrez et al.'s MultiScaleGen3D(ch_step=4)
    for origin, size in [((0, 0, 0), (1, 5, 7)), ((-9, 3, 1000), (3, 4, 9)), ((5, -70, 2), (8, 1, 8))]:
        volume = generate_block(net, origin, size, seed=0)
        assert volume.shape == (1, 3, *size)
        assert torch.isfinite(volume).all()


def reference_margin(scale: int, scales: int = 6) -> int:
    """The reference code's dep_values(scale): noise voxels each level needs beyond the block."""
    if scale == 0:
        return 4
    inner = -(-(reference_margin(scale - 1, scales) - 2) // 2)
    return inner + (2 if scale == scales - 1 else 4)


def test_noise_windows_match_the_reference_code_for_aligned_blocks():
    layout = solid_layout(6, (0, 0, 0), (64, 64, 64))
    for level, window in enumerate(layout.noise_windows):
        expected = (64 >> level) + 2 * reference_margin(level)   # sample_on_demand.py's size_input
        assert [b - a for a, b in window] == [expected] * 3, level


# -- training --------------------------------------------------------------------------------------
def test_train_py_lowers_the_slice_loss_and_synthesize_py_samples_the_checkpoint(solid_config, tmp_path, capsys):
    # The task's default lr (0.1), not the tiny config's 0.05, which lowers the loss only ~3% in 8 steps.
    code, err = run_train(["--config", solid_config, "--output_dir", tmp_path / "runs", "--model.lr", 0.1], capsys)
    assert code == 0, err
    run_dir = tmp_path / "runs" / "tiny_solid"
    report = json.loads((run_dir / "report.json").read_text())
    assert report["final_step"] == 8
    # Medians of the first and last three steps: ~0.85x measured on any seed or thread count, 1.0 untrained.
    losses = [loss for _, loss in report["loss_history"]]
    assert statistics.median(losses[-3:]) < 0.95 * statistics.median(losses[:3]), losses
    loaded = load_generator(run_dir / "last.ckpt")
    assert loaded.model_type == "solid_texture_net" and loaded.metadata["training"]["axes"] == ["x", "y", "z"]
    logged = {tag for tag in _tensorboard_tags(run_dir)}
    assert {"train/style_x", "train/style_y", "train/style_z", "val/style_z"} <= logged
    assert "centre_slices_zyx" in _tensorboard_tags(run_dir, images=True)

    output = tmp_path / "out" / "solid.npy"
    code, err = run_synthesize(["--checkpoint", run_dir / "last.ckpt", "--size", 16, 24, 20, "--origin", 7, -3, 100,
                                "--seed", 5, "--block", 12, "--output", output], capsys)
    assert code == 0, err
    volume = np.load(output)
    assert volume.shape == (16, 24, 20, 3) and volume.dtype == np.uint8
    with Image.open(output.with_name("solid_slices.png")) as preview:
        assert preview.size == (20 + 20 + 24 + 8, 24)
    result = json.loads(output.with_suffix(".json").read_text())
    assert result["model_type"] == "solid_texture_net" and result["origin"] == [7, -3, 100]
    assert "per volume" in err


def _tensorboard_tags(run_dir: Path, images: bool = False) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    tags = set()
    for events in run_dir.glob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        tags |= set(accumulator.Tags()["images" if images else "scalars"])
    return tags


def test_a_solid_run_resumes_and_refuses_a_texture_checkpoint(solid_config, texture_config, tmp_path, capsys):
    runs = tmp_path / "runs"
    code, err = run_train(["--config", solid_config, "--output_dir", runs, "--trainer.max_steps", 4], capsys)
    assert code == 0, err
    code, err = run_train(["--config", solid_config, "--ckpt_path", runs / "tiny_solid" / "last.ckpt",
                           "--trainer.max_steps", 5, "--trainer.val_check_interval", 1], capsys)
    assert code == 0, err
    resumed = json.loads((runs / "tiny_solid" / "report.json").read_text())
    assert resumed["start_step"] == 4 and resumed["final_step"] == 5

    code, err = run_train(["--config", texture_config, "--output_dir", runs, "--trainer.max_steps", 2], capsys)
    assert code == 0, err
    code, err = run_train(["--config", solid_config, "--ckpt_path", runs / "tiny" / "last.ckpt"], capsys)
    assert code == 2 and "holds a 'texture_net' model" in one_error_line(err)


def test_a_nan_loss_stops_solid_training_with_one_line(solid_config, tmp_path, capsys):
    code, err = run_train(["--config", solid_config, "--output_dir", tmp_path, "--model.lr", "1e30"], capsys)
    assert code == 2 and "the training loss became" in one_error_line(err)


# -- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides, message", [
    (["--data.exemplars", "[builtin:brick, builtin:grass, builtin:gravel, builtin:brick]"], "1 to 3 images"),
    (["--data.exemplars", "[builtin:brick, builtin:grass]"], "2 exemplars for 3 axes"),
    (["--data.axes", "[x, w]"], "data.axes must list"),
    (["--data.axes", "[x, x]"], "data.axes must list"),
    (["--data.exemplars", "[missing.png]"], "image not found: missing.png"),
    (["--data.slice_size", "0"], "must be at least 1"),
    (["--model.generator.channel_stepp", "4"], "channel_stepp"),
])
def test_bad_solid_configs_are_refused_with_one_line(solid_config, tmp_path, capsys, overrides, message):
    code, err = run_train(["--config", solid_config, "--output_dir", tmp_path, *overrides], capsys)
    assert code == 2 and message in one_error_line(err)


def test_exemplars_of_different_sizes_are_brought_to_one_scale(tmp_path):
    paths = []
    for index, size in enumerate([(40, 40), (96, 64), (50, 70)]):
        path = tmp_path / f"e{index}.png"
        Image.fromarray(np.random.default_rng(index).integers(0, 255, (*size, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    data = SliceDataModule(paths, axes=["z", "x", "y"], slice_size=32)
    images = data.exemplar_images()
    assert list(images) == ["z", "x", "y"]
    assert [min(image.shape[-2:]) for image in images.values()] == [32, 32, 32]
    shared = SliceDataModule("builtin:brick", slice_size=32).exemplar_images()
    assert shared["x"] is shared["y"] is shared["z"]   # one image, one encoder pass for all axes
    assert parse_axes(["Z", "x"]) == ("z", "x")


def test_volume_slices_follow_the_axis_convention():
    volume = torch.arange(2 * 3 * 4).float().view(1, 1, 2, 3, 4).expand(1, 3, 2, 3, 4)
    assert volume_slices(volume, "z").shape == (1, 3, 3, 4)   # (y, x)
    assert volume_slices(volume, "y").shape == (1, 3, 2, 4)   # (z, x)
    assert volume_slices(volume, "x", 0).shape == (1, 3, 2, 3)   # (z, y)


@pytest.mark.parametrize("argv, message", [
    (["--size", "0"], "each at least 1"),
    (["--size", "8", "8"], "D H W"),
    (["--output", "x.png"], "written as a .npy volume"),
    (["--input", "photo.jpg"], "takes no --input"),
    (["--tile"], "takes no --input, and --tile does not apply"),
    (["--block", "0"], "--block must be at least 1"),
])
def test_bad_synthesize_arguments_for_solids_give_one_line(solid_checkpoint, tmp_path, capsys, argv, message):
    argv = [a if a != "x.png" else tmp_path / "x.png" for a in argv]
    if "--output" not in argv:
        argv += ["--output", tmp_path / "v.npy"]
    code, err = run_synthesize(["--checkpoint", solid_checkpoint, *argv], capsys)
    assert code == 2 and message in one_error_line(err)
    assert not list(tmp_path.iterdir())   # nothing half-written


def test_origin_is_refused_for_a_texture_checkpoint(tmp_path, capsys):
    texture = make_texture_checkpoint(tmp_path / "texture.ckpt")
    code, err = run_synthesize(["--checkpoint", texture, "--origin", 1, 2, 3, "--output", tmp_path / "t.png"], capsys)
    assert code == 2 and "--origin is for solid textures" in one_error_line(err)


@pytest.mark.skipif(not (SHARED_SOLID / "brown016.png").exists(), reason="../shared/data/solid is absent")
def test_the_shared_solid_exemplars_load_for_all_three_axes():
    data = SliceDataModule([str(SHARED_SOLID / name) for name in ("brown016.png", "tomatoes.png", "terrazzo.png")],
                           slice_size=32)
    assert all(image.shape == (1, 3, 32, 32) for image in data.exemplar_images().values())


def test_layout_refuses_empty_blocks():
    with pytest.raises(TexnetsError, match="positive size"):
        solid_layout(6, (0, 0, 0), (0, 4, 4))
