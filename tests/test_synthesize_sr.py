"""synthesize.py with super-resolution networks: an image, a folder or a video in, exactly factor x each size out (odd
sides too), equal to the network's output; tiles match the one-shot output; --export and --backend onnxruntime give
the same images; a wrong factor, an input too small, --preserve-color and --factor on another family are one line
and write nothing."""
import functools
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import synthesize
from helpers import call_main, gradient_frames, make_clip, make_sr_checkpoint, make_transfer_checkpoint, one_error_line
from texnets.checkpoints import load_generator
from texnets.export import MANIFEST_FILE, TORCHSCRIPT_FILE
from texnets.images import read_image, resize
from texnets.video import probe_video

run = functools.partial(call_main, synthesize.main)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_sr_checkpoint(tmp_path_factory.mktemp("sr") / "last.ckpt")


@pytest.fixture(scope="module")
def generator(checkpoint):
    return load_generator(checkpoint).generator


def save_photo(source: Path, target: Path, size) -> Path:
    image = resize(read_image(source), tuple(size))
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(target)
    return target


def expected_pixels(generator, source: Path) -> np.ndarray:
    with torch.no_grad():
        output = generator(read_image(source).unsqueeze(0)).clamp(0, 1)
    return (output[0] * 255).round().permute(1, 2, 0).numpy().astype(np.int16)


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(np.int16)


def test_an_image_becomes_exactly_factor_times_its_size(checkpoint, generator, small_photos, tmp_path, capsys):
    source = save_photo(small_photos[0], tmp_path / "small.png", (23, 31))   # odd sides
    out = tmp_path / "large.png"
    code, err = run(["--checkpoint", checkpoint, "--input", source, "--output", out, "--factor", 4], capsys)
    assert code == 0, err
    assert Image.open(out).size == (124, 92)
    assert np.abs(pixels(out) - expected_pixels(generator, source)).max() <= 1
    report = (tmp_path / "large.json").read_text()
    assert '"factor": 4' in report and '"output_size": [\n    124,\n    92\n  ]' in report


def test_a_folder_is_mirrored_with_every_image_enlarged(checkpoint, small_photos, tmp_path, capsys):
    folder = tmp_path / "photos"
    save_photo(small_photos[0], folder / "a.png", (20, 28))
    save_photo(small_photos[1], folder / "sub" / "b.jpg", (33, 17))
    code, err = run(["--checkpoint", checkpoint, "--input", folder, "--output", tmp_path / "out", "--quiet"], capsys)
    assert code == 0, err
    assert Image.open(tmp_path / "out" / "a.png").size == (112, 80)
    assert Image.open(tmp_path / "out" / "sub" / "b.jpg").size == (68, 132)


def test_tiles_match_the_one_shot_output(checkpoint, small_photos, tmp_path, capsys):
    source = save_photo(small_photos[2], tmp_path / "small.png", (44, 52))
    one_shot, tiled = tmp_path / "one.png", tmp_path / "tiled.png"
    assert run(["--checkpoint", checkpoint, "--input", source, "--output", one_shot], capsys)[0] == 0
    assert run(["--checkpoint", checkpoint, "--input", source, "--output", tiled, "--block", 16], capsys)[0] == 0
    # BatchNorm with running statistics is local, so every tile's window reproduces its pixels (float rounding).
    assert np.abs(pixels(one_shot) - pixels(tiled)).max() <= 1


def test_a_video_is_enlarged_frame_by_frame(checkpoint, tmp_path, capsys):
    clip = make_clip(tmp_path / "clip.mp4", gradient_frames(4), audio=False)   # 64x48, 12 fps
    out = tmp_path / "large.mp4"
    code, err = run(["--checkpoint", checkpoint, "--input", clip, "--output", out, "--batch-size", 2, "--quiet"],
                    capsys)
    assert code == 0, err
    info = probe_video(out)
    assert (info.width, info.height, info.frames, info.fps) == (256, 192, 4, Fraction(12))


def test_export_and_onnxruntime_give_the_same_images(checkpoint, generator, small_photos, tmp_path, capsys):
    source = save_photo(small_photos[3], tmp_path / "small.png", (24, 30))
    code, err = run(["--checkpoint", checkpoint, "--export", tmp_path / "export"], capsys)
    assert code == 0, err
    scripted = torch.jit.load(str(tmp_path / "export" / TORCHSCRIPT_FILE))
    image = read_image(source).unsqueeze(0)
    with torch.no_grad():
        assert torch.allclose(scripted(image), generator(image), atol=1e-5)
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    out = tmp_path / "ort.png"
    code, err = run(["--checkpoint", checkpoint, "--input", source, "--output", out, "--backend", "onnxruntime",
                     "--device", "cpu"], capsys)
    assert code == 0, err
    assert np.abs(pixels(out) - expected_pixels(generator, source)).max() <= 1


@pytest.fixture(scope="module")
def matched_checkpoint(tmp_path_factory) -> Path:
    return make_sr_checkpoint(tmp_path_factory.mktemp("sr_matched") / "last.ckpt", postprocess="histogram_matching")


def test_histogram_matching_follows_the_checkpoint_and_can_be_turned_off(matched_checkpoint, generator, small_photos,
                                                                         tmp_path, capsys):
    source = save_photo(small_photos[1], tmp_path / "small.png", (28, 36))
    matched, raw, tiled = tmp_path / "matched.png", tmp_path / "raw.png", tmp_path / "tiled.png"
    assert run(["--checkpoint", matched_checkpoint, "--input", source, "--output", matched], capsys)[0] == 0
    assert '"histogram_matching": true' in (tmp_path / "matched.json").read_text()
    code, err = run(["--checkpoint", matched_checkpoint, "--input", source, "--output", raw, "--no-histogram-match"],
                    capsys)
    assert code == 0, err
    assert '"histogram_matching": false' in (tmp_path / "raw.json").read_text()
    assert np.abs(pixels(raw) - expected_pixels(generator, source)).max() <= 1   # the network alone
    # Matched: each channel of the x4 output has the input's distribution, which the raw output lacks.
    quantiles = np.array([0.1, 0.5, 0.9])
    expected = np.quantile(pixels(source), quantiles, axis=(0, 1))
    assert np.abs(np.quantile(pixels(matched), quantiles, axis=(0, 1)) - expected).max() <= 6
    assert np.abs(np.quantile(pixels(raw), quantiles, axis=(0, 1)) - expected).max() > 20
    # Matched once the tiles are assembled (a global mapping): the same image as one pass.
    assert run(["--checkpoint", matched_checkpoint, "--input", source, "--output", tiled, "--block", 16], capsys)[0] == 0
    assert np.abs(pixels(tiled) - pixels(matched)).max() <= 1
    code, err = run(["--checkpoint", matched_checkpoint, "--export", tmp_path / "export"], capsys)
    assert code == 0, err
    assert "not in the exported graph" in (tmp_path / "export" / MANIFEST_FILE).read_text()


@pytest.mark.parametrize("size, extra, message", [
    ((20, 20), ["--factor", "2"], "--factor 2: this network was trained for x4 only"),
    ((6, 20), [], "a 20x6 low-resolution input is too small: at least 8 pixels per side"),
    ((20, 20), ["--preserve-color"], "--preserve-color is for style transfer"),
    ((20, 20), ["--size", "64", "64"], "a super-resolution network makes 4x the input's size"),
])
def test_bad_requests_are_one_line_and_write_nothing(checkpoint, small_photos, tmp_path, capsys, size, extra, message):
    source = save_photo(small_photos[0], tmp_path / "in" / "small.png", size)
    out = tmp_path / "out" / "large.png"
    code, err = run(["--checkpoint", checkpoint, "--input", source, "--output", out, *extra], capsys)
    assert code == 2
    assert message in one_error_line(err)
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_factor_on_another_family_and_no_input_are_one_line(checkpoint, tmp_path, capsys):
    transfer = make_transfer_checkpoint(tmp_path / "transfer.ckpt")
    code, err = run(["--checkpoint", transfer, "--input", "x.png", "--factor", 4], capsys)
    assert code == 2 and "--factor is for super-resolution checkpoints" in one_error_line(err)
    code, err = run(["--checkpoint", transfer, "--input", "x.png", "--no-histogram-match"], capsys)
    assert code == 2 and "--no-histogram-match is for super-resolution checkpoints" in one_error_line(err)
    code, err = run(["--checkpoint", checkpoint], capsys)
    assert code == 2 and "enlarges photos x4: pass --input" in one_error_line(err)
