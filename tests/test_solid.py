"""Solid textures (issue 5): the unpadded 3D generator, on-demand blocks that assemble into the one-shot
volume, training through 2D slices with train.py, synthesize.py's .npy + slice preview, and bad input."""
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
from texnets.checkpoints import checkpoint_metadata, load_generator
from texnets.errors import TexnetsError
from texnets.export import TORCHSCRIPT_FILE, export_generator
from texnets.generators import SolidTextureNet
from texnets.generators.solid_net import solid_layout
from texnets.tasks import SliceDataModule
from texnets.tasks.base import recalibrate_batch_norm
from texnets.tasks.solid import parse_axes, slab_batch, volume_slices
from texnets.volumes import block_noise, generate_block, generate_volume, slice_preview, volume_to_uint8
from helpers import call_main, make_texture_checkpoint, one_error_line

SHARED_SOLID = Path(__file__).resolve().parents[2] / "shared" / "data" / "solid"


def calibrated_net(**config) -> SolidTextureNet:
    """A random generator whose BatchNorm statistics are exact averages over a few slab batches and
    whose output is in [0, 1] units (output_scale 1), so volumes are textured rather than flat grey."""
    torch.manual_seed(0)
    net = SolidTextureNet(**{"scales": 3, "output_scale": 1.0, **config})
    generator = torch.Generator().manual_seed(0)
    recalibrate_batch_norm(net, (tuple(slab_batch(net.noise_spec, axis, 24, 2, (1, 2, 3), generator))
                                 for axis in "xyz"))
    return net.eval()


@pytest.fixture(scope="module")
def solid_checkpoint(tmp_path_factory) -> Path:
    net = calibrated_net()
    path = tmp_path_factory.mktemp("solid") / "last.ckpt"
    state = {f"generator.{key}": value for key, value in net.state_dict().items()}
    torch.save({"state_dict": state, "global_step": 5,
                "texnets": checkpoint_metadata(net.model_type, net.config_dict(), training={"size": [24, 24, 24]})},
               path)
    return path


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


def test_a_volume_assembled_from_eight_blocks_equals_the_one_shot_volume_voxel_for_voxel():
    # 128³ in one call against eight 64³ blocks computed on their own, at an unaligned origin. With
    # exact=True (native convolutions) the floats agree to ~1e-6 and the uint8 volumes are identical.
    net = calibrated_net(scales=6, channel_step=2)
    origin = (-37, 5, 1001)
    whole = generate_block(net, origin, (128, 128, 128), seed=3, exact=True)
    assembled = torch.empty_like(whole)
    for z in (0, 64):
        for y in (0, 64):
            for x in (0, 64):
                assembled[..., z:z + 64, y:y + 64, x:x + 64] = generate_block(
                    net, (origin[0] + z, origin[1] + y, origin[2] + x), (64, 64, 64), seed=3, exact=True)
    torch.testing.assert_close(assembled, whole, rtol=0, atol=5e-6)
    assert np.array_equal(volume_to_uint8(assembled[0]), volume_to_uint8(whole[0]))
    assert whole.clamp(0, 1).std() > 0.05   # a textured volume, not a constant that would trivially agree


def test_blocks_agree_to_float_rounding_on_the_fast_path_and_seeds_differ():
    net = calibrated_net(scales=6)
    whole = generate_block(net, (3, -17, 8), (32, 32, 32), seed=1)
    assembled = torch.empty_like(whole)
    for z in (0, 16):
        for y in (0, 16):
            for x in (0, 16):
                assembled[..., z:z + 16, y:y + 16, x:x + 16] = generate_block(
                    net, (3 + z, -17 + y, 8 + x), (16, 16, 16), seed=1)
    # oneDNN's blocking depends on the block's shape: float rounding differs, nothing more.
    torch.testing.assert_close(assembled, whole, rtol=0, atol=5e-5)
    assert np.abs(volume_to_uint8(assembled[0]).astype(int) - volume_to_uint8(whole[0])).max() <= 1
    other_seed = generate_block(net, (3, -17, 8), (32, 32, 32), seed=2)
    other_sample = generate_block(net, (3, -17, 8), (32, 32, 32), seed=1, samples=[1])
    assert (other_seed - whole).abs().mean() > 0.01
    assert (other_sample - whole).abs().mean() > 0.01


def test_hashed_noise_windows_agree_where_they_overlap():
    net = SolidTextureNet(scales=3)
    noise_a, _ = block_noise(net, (0, 0, 0), (8, 8, 8), seed=4)
    noise_b, _ = block_noise(net, (4, 4, 4), (8, 8, 8), seed=4)
    # Level 0 windows start 4 voxels before each block: b's window is a's shifted by 4.
    assert torch.equal(noise_a[0][..., 4:, 4:, 4:], noise_b[0][..., :-4, :-4, :-4])


def test_streamed_npy_equals_the_in_memory_volume_and_the_preview_holds_its_centre_slices(tmp_path):
    net = calibrated_net()
    size = (20, 24, 28)   # blocks of 16 do not divide it
    in_memory = generate_volume(net, size, origin=(5, 6, 7), seed=2, block=16)
    streamed = generate_volume(net, size, origin=(5, 6, 7), seed=2, block=16, path=tmp_path / "v.npy")
    on_disk = np.load(tmp_path / "v.npy")
    assert on_disk.shape == (20, 24, 28, 3) and on_disk.dtype == np.uint8
    assert np.array_equal(on_disk, in_memory["volume"])
    assert not list(tmp_path.glob(".*tmp"))
    slices = streamed["slices"]
    assert np.array_equal(slices["z"], on_disk[10]) and np.array_equal(slices["y"], on_disk[:, 12])
    assert np.array_equal(slices["x"], on_disk[:, :, 14])
    preview = slice_preview(slices)
    assert preview.shape == (3, 24, 24 + 28 + 28 + 2 * 4)


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


def test_torchscript_export_reproduces_a_block(solid_checkpoint, tmp_path):
    generator = load_generator(solid_checkpoint).generator
    files = export_generator(generator, tmp_path / "export")
    assert "onnx" not in files   # offsets would be frozen into a traced graph: not exported
    scripted = torch.jit.load(str(tmp_path / "export" / TORCHSCRIPT_FILE))
    noise, offsets = block_noise(generator, (3, 1, -2), (6, 7, 8), seed=0)
    with torch.no_grad():
        torch.testing.assert_close(scripted(noise, offsets), generator(noise, offsets))
    manifest = json.loads((tmp_path / "export" / "generator.json").read_text())
    assert "solid_layout" in manifest["usage"]["inputs"]


@pytest.mark.skipif(not (SHARED_SOLID / "brown016.png").exists(), reason="../shared/data/solid is absent")
def test_the_shared_solid_exemplars_load_for_all_three_axes():
    data = SliceDataModule([str(SHARED_SOLID / name) for name in ("brown016.png", "tomatoes.png", "terrazzo.png")],
                           slice_size=32)
    assert all(image.shape == (1, 3, 32, 32) for image in data.exemplar_images().values())


def test_layout_refuses_empty_blocks():
    with pytest.raises(TexnetsError, match="positive size"):
        solid_layout(6, (0, 0, 0), (0, 4, 4))
