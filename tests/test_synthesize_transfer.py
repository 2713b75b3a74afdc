"""synthesize.py with transfer networks: photos, folders and videos in, stylised files of the same size
out, with a JSON report and timings; --max-size, --preserve-color and --block; the export round trip
(TorchScript, ONNX, safetensors); and one-line refusals that write nothing."""
import functools
import json
from fractions import Fraction
from pathlib import Path

import kornia.color
import numpy as np
import pytest
import torch
from PIL import Image

import synthesize
from helpers import (call_main, gradient_frames, make_clip, make_texture_checkpoint, make_transfer_checkpoint,
                     one_error_line, pixels)
from texnets.checkpoints import load_generator
from texnets.export import MANIFEST_FILE, ONNX_FILE, TORCHSCRIPT_FILE, WEIGHTS_FILE, load_exported_weights
from texnets.generators import TransformerNet
from texnets.images import read_image, resize
from texnets.tiling import freeze_instance_norms, stylize
from texnets.video import probe_video, read_frames


run = functools.partial(call_main, synthesize.main)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_transfer_checkpoint(tmp_path_factory.mktemp("ckpt") / "last.ckpt")


@pytest.fixture(scope="module")
def generator(checkpoint) -> TransformerNet:
    return load_generator(checkpoint).generator


def save_photo(source: Path, target: Path, size) -> Path:
    """``source`` resized to exactly (H, W) = ``size``, written to ``target`` (format from its suffix)."""
    image = resize(read_image(source), tuple(size))
    array = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(target)
    return target


def as_uint8(image: torch.Tensor) -> np.ndarray:
    return (image[0].clamp(0, 1) * 255).round().permute(1, 2, 0).numpy().astype(np.int16)


def test_an_image_in_gives_a_stylised_image_of_the_same_size(checkpoint, generator, small_photos, tmp_path, capsys):
    source = save_photo(small_photos[0], tmp_path / "in" / "photo.png", (45, 61))  # odd sides
    out = tmp_path / "out" / "stylised.png"
    code, err = run(["--checkpoint", checkpoint, "--input", source, "--output", out], capsys)
    assert code == 0, err
    assert Image.open(out).size == (61, 45)
    assert "ms per image" in err
    with torch.no_grad():
        expected = generator(read_image(source).unsqueeze(0))
    assert np.abs(pixels(out) - as_uint8(expected)).max() <= 1  # exactly what the network makes
    assert pixels(out).std() > 5
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["model_type"] == "transformer_net" and report["checkpoint_step"] == 5
    assert report["outputs"] == [str(out)] and report["size"] == [61, 45]
    assert report["ms_per_item"] > 0 and report["precision"] == "fp32" and report["preserve_color"] is False
    assert sorted(p.name for p in out.parent.iterdir()) == ["stylised.json", "stylised.png"]


@pytest.mark.slow  # inductor compiles two graphs on the CPU: one to two minutes on 2 cores
def test_compile_stylises_an_image_and_a_clip_like_eager(checkpoint, generator, small_photos, tmp_path, capsys):
    """--compile for real (torch.compile with inductor on the CPU), through synthesize.py: the compiled
    network is called, not asked for its truth value (TransformerNet has no len()), and its frames match
    the eager network's."""
    source = save_photo(small_photos[0], tmp_path / "photo.png", (40, 48))
    out = tmp_path / "out.png"
    code, err = run(["--checkpoint", checkpoint, "--input", source, "--output", out, "--compile"], capsys)
    assert code == 0, err
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["compile"] is True and report["backend"] == "compile"
    with torch.no_grad():
        expected = generator(read_image(source).unsqueeze(0))
    assert np.abs(pixels(out) - as_uint8(expected)).max() <= 1
    clip = make_clip(tmp_path / "clip.mp4", gradient_frames(4), audio=False)
    code, err = run(["--checkpoint", checkpoint, "--input", clip, "--output", tmp_path / "out.mp4", "--compile",
                     "--batch-size", 2], capsys)
    assert code == 0, err
    assert probe_video(tmp_path / "out.mp4").frames == 4


def test_onnxruntime_backend_stylises_a_folder_like_eager(checkpoint, generator, small_photos, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    folder = tmp_path / "photos"
    sources = [save_photo(photo, folder / f"{index}.png", (40, 52)) for index, photo in enumerate(small_photos[:2])]
    out = tmp_path / "out"
    code, err = run(["--checkpoint", checkpoint, "--input", folder, "--output", out, "--backend", "onnxruntime",
                     "--device", "cpu", "--quiet"], capsys)
    assert code == 0, err
    assert "(fp32, onnxruntime)" in err
    for source in sources:
        with torch.no_grad():
            expected = generator(read_image(source).unsqueeze(0))
        assert np.abs(pixels(out / source.name) - as_uint8(expected)).max() <= 1
    report = json.loads((out / "report.json").read_text())
    assert report["backend"] == "onnxruntime" and report["compile"] is False


def test_a_backend_for_a_texture_network_is_one_line(tmp_path, capsys):
    texture = make_texture_checkpoint(tmp_path / "texture.ckpt")
    code, err = run(["--checkpoint", texture, "--backend", "onnxruntime", "--output", tmp_path / "t.png"], capsys)
    assert code == 2 and "--backend onnxruntime is for networks that stylise photos" in one_error_line(err)
    assert not (tmp_path / "t.png").exists()


def test_max_size_downscales_the_longer_side(checkpoint, small_photos, tmp_path, capsys):
    source = save_photo(small_photos[1], tmp_path / "tall.png", (90, 60))
    out = tmp_path / "small.jpg"
    code, err = run(["--checkpoint", checkpoint, "--input", source, "--output", out, "--max-size", 40], capsys)
    assert code == 0, err
    assert Image.open(out).size == (27, 40) and Image.open(out).format == "JPEG"
    assert json.loads(out.with_suffix(".json").read_text())["size"] == [27, 40]
    # An input already small enough is left alone.
    code, err = run(["--checkpoint", checkpoint, "--input", source, "--output", tmp_path / "same.png",
                     "--max-size", 90], capsys)
    assert code == 0 and Image.open(tmp_path / "same.png").size == (60, 90)


def test_preserve_color_keeps_the_input_chrominance(checkpoint, small_photos, tmp_path, capsys):
    source = save_photo(small_photos[2], tmp_path / "photo.png", (48, 64))
    plain, kept = tmp_path / "plain.png", tmp_path / "kept.png"
    assert run(["--checkpoint", checkpoint, "--input", source, "--output", plain], capsys)[0] == 0
    code, err = run(["--checkpoint", checkpoint, "--input", source, "--output", kept, "--preserve-color"], capsys)
    assert code == 0, err

    def ycbcr(path):
        return kornia.color.rgb_to_ycbcr(read_image(path).unsqueeze(0))

    original, preserved, stylised = ycbcr(source), ycbcr(kept), ycbcr(plain)
    assert (preserved[:, 1:] - original[:, 1:]).abs().mean() < 0.01  # the photo's colours...
    assert (stylised[:, 1:] - original[:, 1:]).abs().mean() > 0.02  # ... which the plain output loses
    assert (preserved[:, :1] - stylised[:, :1]).abs().mean() < 0.01  # with the stylised luminance
    assert json.loads(kept.with_suffix(".json").read_text())["preserve_color"] is True


def test_a_folder_is_mirrored_and_broken_files_are_skipped(checkpoint, small_photos, tmp_path, capsys):
    source = tmp_path / "photos"
    save_photo(small_photos[0], source / "a.png", (40, 48))
    save_photo(small_photos[1], source / "sub" / "b.jpg", (36, 52))
    save_photo(small_photos[2], source / "sub" / "deeper" / "c.webp", (32, 32))
    (source / "sub" / "broken.jpg").write_bytes(small_photos[0].read_bytes()[:300])
    (source / "notes.txt").write_text("not an image, and not listed")
    out = tmp_path / "stylised"
    code, err = run(["--checkpoint", checkpoint, "--input", source, "--output", out, "--quiet"], capsys)
    assert code == 0, err
    assert "skipped" in err and "broken.jpg" in err
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["a.png", "report.json", "sub/b.jpg", "sub/deeper/c.webp"]
    assert Image.open(out / "sub" / "b.jpg").size == (52, 36) and Image.open(out / "sub/deeper/c.webp").size == (32, 32)
    report = json.loads((out / "report.json").read_text())
    assert report["images"] == 3 and report["skipped"] == [str(source / "sub" / "broken.jpg")]
    assert "3 images" in err and "ms per image" in err


def test_a_video_keeps_its_frames_rate_and_audio(checkpoint, generator, tmp_path, capsys):
    clip = make_clip(tmp_path / "clip.mp4", gradient_frames())  # 10 frames, 64x48, 12 fps, AAC audio
    out = tmp_path / "stylised.mp4"
    code, err = run(["--checkpoint", checkpoint, "--input", clip, "--output", out, "--batch-size", 4, "--quiet"],
                    capsys)
    assert code == 0, err
    assert "ms per frame" in err
    info = probe_video(out)
    assert (info.width, info.height, info.fps, info.has_audio) == (64, 48, Fraction(12), True)
    frames = torch.cat(list(read_frames(out, batch_size=4)))
    assert frames.shape[0] == 10  # counted by decoding
    with torch.no_grad():
        expected = generator(torch.cat(list(read_frames(clip, batch_size=10)))).clamp(0, 1)
    # The stylised frames, in order: H.264 blurs the untrained net's fine texture (~0.055 mean error), yet
    # each decoded frame is closest to its own stylised frame.
    errors = (frames[:, None] - expected[None]).abs().mean(dim=(2, 3, 4))
    assert errors.diagonal().max() < 0.08, errors.diagonal()
    assert torch.equal(errors.argmin(dim=1), torch.arange(10)), errors
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["frames"] == 10 and report["video"]["audio"] == "copied" and report["outputs"] == [str(out)]


@pytest.fixture
def large_photo(shared_data, tmp_path) -> Path:
    return save_photo(sorted((shared_data / "content").glob("kodim*.png"))[1], tmp_path / "large.png", (120, 164))


def stylise_whole_and_tiled(checkpoint, source, tmp_path, capsys, block=48):
    whole, tiled = tmp_path / "whole.png", tmp_path / "tiled.png"
    assert run(["--checkpoint", checkpoint, "--input", source, "--output", whole], capsys)[0] == 0
    code, err = run(["--checkpoint", checkpoint, "--input", source, "--output", tiled, "--block", block], capsys)
    assert code == 0, err
    return pixels(whole), pixels(tiled)


def test_tiles_with_a_small_block_keep_the_size_and_resemble_one_pass(
        checkpoint, generator, large_photo, shared_data, tmp_path, capsys):
    whole, tiled = stylise_whole_and_tiled(checkpoint, large_photo, tmp_path, capsys)
    assert tiled.shape == whole.shape == (120, 164, 3)
    image = read_image(large_photo).unsqueeze(0)
    assert np.abs(tiled - as_uint8(stylize(generator, image, block=48))).max() <= 1  # the tiled path ran
    # Instance-norm statistics from calibration windows are not the whole photo's, so the result is not
    # identical; it is still much closer than with another photo's statistics.
    other = resize(read_image(sorted((shared_data / "content").glob("kodim*.png"))[4]), (120, 164)).unsqueeze(0)
    with torch.no_grad():
        alien = as_uint8(freeze_instance_norms(generator, other)(image))
    difference, baseline = np.abs(tiled - whole).mean(), np.abs(alien - whole).mean()
    assert 0 < difference < 0.75 * baseline, (difference, baseline)
    assert np.corrcoef(tiled.ravel(), whole.ravel())[0, 1] > 0.7


def test_tiles_with_a_small_block_are_close_to_one_pass(checkpoint, large_photo, tmp_path, capsys):
    whole, tiled = stylise_whole_and_tiled(checkpoint, large_photo, tmp_path, capsys)
    assert np.abs(tiled - whole).mean() < 0.05 * 255


@pytest.fixture(scope="module")
def export_dir(checkpoint, tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("export") / "starry"
    assert synthesize.main(["--checkpoint", str(checkpoint), "--export", str(directory)]) == 0
    return directory


def onnx_session(export_dir):
    ort = pytest.importorskip("onnxruntime")
    if not (export_dir / ONNX_FILE).exists():
        pytest.skip("the onnx package is not installed, so no ONNX file was exported")
    return ort.InferenceSession(str(export_dir / ONNX_FILE), providers=["CPUExecutionProvider"])


def test_export_round_trip(export_dir, generator):
    assert {p.name for p in export_dir.iterdir()} >= {TORCHSCRIPT_FILE, WEIGHTS_FILE, MANIFEST_FILE, "report.json"}
    manifest = json.loads((export_dir / MANIFEST_FILE).read_text())
    assert manifest["model_type"] == "transformer_net" and manifest["config"]["width"] == 0.25
    assert "images" in manifest["usage"]["inputs"] and manifest["step"] == 5
    torch.manual_seed(3)
    images = torch.rand(2, 3, 40, 52)
    with torch.no_grad():
        expected = generator(images)
        scripted = torch.jit.load(str(export_dir / TORCHSCRIPT_FILE))
        assert torch.allclose(scripted(images), expected, atol=1e-4)
        assert torch.allclose(scripted(images[:1, :, :37, :45]), generator(images[:1, :, :37, :45]), atol=1e-4)
        assert torch.allclose(load_exported_weights(export_dir)(images), expected, atol=1e-6)
    session = onnx_session(export_dir)
    (output,) = session.run(None, {"images": images.numpy()})
    assert output.shape == (2, 3, 40, 52)
    assert np.allclose(output, expected.numpy(), atol=1e-4)


def test_exported_onnx_handles_sizes_that_are_not_multiples_of_4(export_dir, generator):
    session = onnx_session(export_dir)
    images = torch.rand(1, 3, 41, 53)
    (output,) = session.run(None, {"images": images.numpy()})
    with torch.no_grad():
        expected = generator(images).numpy()
    assert output.shape == expected.shape and np.allclose(output, expected, atol=1e-4)


def test_export_and_stylise_in_one_command(checkpoint, small_photos, tmp_path, capsys):
    source = save_photo(small_photos[3], tmp_path / "photo.png", (32, 40))
    code, err = run(["--checkpoint", checkpoint, "--input", source, "--output", tmp_path / "out.png",
                     "--export", tmp_path / "export"], capsys)
    assert code == 0, err
    assert (tmp_path / "out.png").exists() and (tmp_path / "export" / TORCHSCRIPT_FILE).exists()
    assert "exported to" in err
    assert json.loads((tmp_path / "out.json").read_text())["export"]["torchscript"].endswith(TORCHSCRIPT_FILE)


@pytest.mark.parametrize("case", ["missing input", "not an image", "undecodable video", "size", "texture net",
                                  "tiny image", "video to png", "no input", "output is the input folder"])
def test_bad_inputs_are_refused_with_one_line_and_write_nothing(case, checkpoint, small_photos, tmp_path, capsys):
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    output, extra, ckpt = outputs / "x.png", [], checkpoint
    if case == "missing input":
        source, message = inputs / "missing.jpg", "input not found"
    elif case == "not an image":
        source = inputs / "notes.png"
        source.write_text("just text\n")
        message = "not an image file"
    elif case == "undecodable video":
        source = inputs / "x.mp4"
        source.write_bytes(b"this is not a video, just some text\n" * 20)
        output, message = outputs / "x.mp4", "cannot decode video"
    elif case == "size":
        source = save_photo(small_photos[0], inputs / "photo.png", (32, 32))
        extra, message = ["--size", 64, 64], "--size, --count, --tile and --origin are for noise-driven generators"
    elif case == "texture net":
        source = save_photo(small_photos[0], inputs / "photo.png", (32, 32))
        ckpt = make_texture_checkpoint(tmp_path / "texture.ckpt")
        message = "a texture network makes images from noise and takes no --input"
    elif case == "tiny image":
        source = save_photo(small_photos[0], inputs / "tiny.png", (12, 20))
        message = "at least 16 pixels per side"
    elif case == "video to png":
        source = make_clip(inputs / "clip.mp4", gradient_frames(3), audio=False)
        message = "a video input needs a video --output"
    elif case == "no input":
        source, message = None, "pass --input IMAGE, FOLDER or VIDEO"
    else:
        source = inputs
        save_photo(small_photos[0], inputs / "photo.png", (32, 32))
        output, message = inputs, "--output must differ from the input folder"
    before = sorted(inputs.rglob("*"))
    argv = ["--checkpoint", ckpt, "--output", output, *extra] + (["--input", source] if source else [])
    code, err = run(argv, capsys)
    assert code == 2
    assert message in one_error_line(err), err
    assert not outputs.exists() or not list(outputs.rglob("*"))
    assert sorted(inputs.rglob("*")) == before  # nothing written beside the inputs either


def test_temporal_blend_writes_a_steadier_video_and_reports_its_cost(checkpoint, tmp_path, capsys):
    pytest.importorskip("cv2", reason="--temporal blend needs opencv-python-headless (requirements.txt installs it)")
    from texnets.clips import make_clip as synthetic_clip
    from texnets.evaluation.video import evaluate_video
    from texnets.images import load_image
    from texnets.video import write_video
    clip = synthetic_clip(load_image("builtin:coffee")[0], frames=8, size=(48, 64), noise=0.02)
    source = write_video(tmp_path / "clip.mp4", [clip.frames], fps=12)["path"]
    plain, blended = tmp_path / "plain.mp4", tmp_path / "blended.mp4"
    assert run(["--checkpoint", checkpoint, "--input", source, "--output", plain, "--quiet"], capsys)[0] == 0
    code, err = run(["--checkpoint", checkpoint, "--input", source, "--output", blended, "--temporal", "blend",
                     "--temporal-strength", 0.7, "--batch-size", 3, "--quiet"], capsys)
    assert code == 0, err
    assert "temporal blend" in err and "ms per frame" in err
    report = json.loads(blended.with_suffix(".json").read_text())
    assert report["temporal"]["blended_frames"] == 7 and report["temporal"]["strength"] == 0.7
    assert report["temporal"]["ms_per_frame"] > 0 and "DIS" in report["temporal"]["flow"]
    assert probe_video(blended).frames == 8
    # Blending along the motion carries the previous frame forward: the flicker falls (measured 0.38x at 1 and 2
    # threads).
    assert evaluate_video(source, blended)["warping_error"] < 0.9 * evaluate_video(source, plain)["warping_error"]


@pytest.mark.parametrize("argv, message", [
    (["--temporal", "blend"], "the --input must be a video"),
    (["--temporal", "blend", "--temporal-strength", "1.5"], "--temporal-strength"),
])
def test_temporal_options_that_cannot_apply_are_one_line(checkpoint, small_photos, tmp_path, argv, message, capsys):
    source = small_photos[0] if "video" in message else make_clip(tmp_path / "clip.mp4", gradient_frames(4), audio=False)
    code, err = run(["--checkpoint", checkpoint, "--input", source, "--output", tmp_path / f"out{source.suffix}", *argv],
                    capsys)
    assert code == 2 and message in one_error_line(err), err
    assert not list(tmp_path.glob("out*"))


def test_temporal_with_a_texture_network_is_one_line(tmp_path, capsys):
    texture = make_texture_checkpoint(tmp_path / "texture.ckpt")
    code, err = run(["--checkpoint", texture, "--input", tmp_path / "clip.mp4", "--temporal", "blend", "--output",
                     tmp_path / "t.png"], capsys)
    assert code == 2 and "--temporal is for networks that stylise videos" in one_error_line(err)


@pytest.mark.parametrize("argv, message", [
    (["--temporal", "blend", "--export", "EXPORT"], "pass --input VIDEO"),
    (["--flow", "raft"], "are for --temporal blend"),
    (["--temporal-strength", "0.8"], "are for --temporal blend"),
])
def test_temporal_options_without_a_video_to_blend_are_one_line(checkpoint, tmp_path, argv, message, capsys):
    argv = [str(tmp_path / "export") if arg == "EXPORT" else arg for arg in argv]
    code, err = run(["--checkpoint", checkpoint, *argv], capsys)
    assert code == 2 and message in one_error_line(err), err
    assert not (tmp_path / "export").exists()
