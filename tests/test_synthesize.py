"""synthesize.py: sampling round trips, tiling through the CLI, seamless output, the export round trip,
and refusal of bad checkpoints."""
import functools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import synthesize
import train
from helpers import call_main, make_texture_checkpoint, one_error_line, pixels
from texnets.checkpoints import CHECKPOINT_FORMAT, load_generator
from texnets.export import TORCHSCRIPT_FILE, load_exported_weights
from texnets.tiling import generate_one_shot


run = functools.partial(call_main, synthesize.main)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_texture_checkpoint(tmp_path_factory.mktemp("ckpt") / "last.ckpt")


def test_round_trip_sizes_seeds_counts_and_report(checkpoint, tmp_path, capsys):
    out = tmp_path / "samples" / "tex.png"
    code, err = run(["--checkpoint", checkpoint, "--size", 64, 96, "--count", 3, "--seed", 4, "--output", out,
                     "--quiet"], capsys)
    assert code == 0, err
    files = [tmp_path / "samples" / f"tex_{i:03d}.png" for i in range(3)]
    assert all(Image.open(f).size == (96, 64) for f in files)
    assert not np.array_equal(pixels(files[0]), pixels(files[1]))  # each sample its own noise
    assert "ms per sample" in err
    report = json.loads((tmp_path / "samples" / "tex.json").read_text())
    assert report["model_type"] == "texture_net" and report["checkpoint_step"] == 7
    assert report["outputs"] == [str(f) for f in files] and len(report["seconds"]) == 3
    assert report["size"] == [64, 96] and report["wraps"] is True and report["tiled"] is False

    # The same seed reproduces the same image, and it is the generator's output for the hashed noise.
    again = tmp_path / "again.png"
    assert run(["--checkpoint", checkpoint, "--size", 64, 96, "--seed", 4, "--output", again], capsys)[0] == 0
    assert np.array_equal(pixels(again), pixels(files[0]))
    expected = generate_one_shot(load_generator(checkpoint).generator, (64, 64 + 32), 4, [0])
    expected = (expected[0].clamp(0, 1) * 255).round().permute(1, 2, 0).numpy()
    assert np.abs(pixels(again) - expected).max() <= 1


def test_large_outputs_are_tiled_without_changing_a_pixel(checkpoint, tmp_path, capsys):
    whole, tiled = tmp_path / "whole.png", tmp_path / "tiled.png"
    assert run(["--checkpoint", checkpoint, "--size", 96, 128, "--output", whole], capsys)[0] == 0
    code, err = run(["--checkpoint", checkpoint, "--size", 96, 128, "--block", 32, "--output", tiled, "--quiet"],
                    capsys)
    assert code == 0 and "(tiled)" in err
    assert np.abs(pixels(whole) - pixels(tiled)).max() <= 1
    assert pixels(whole).std() > 5  # not a flat image


def test_tile_flag_makes_a_zero_padded_generator_wrap(tmp_path, capsys):
    zeros = make_texture_checkpoint(tmp_path / "zeros.ckpt", padding="zeros", scales=4)
    circular = tampered(tmp_path / "circular.ckpt", zeros, lambda d: d["texnets"]["generator"].update(padding="circular"))
    plain, tiled, reference = tmp_path / "plain.png", tmp_path / "tiled.png", tmp_path / "reference.png"
    assert run(["--checkpoint", zeros, "--size", 64, 64, "--output", plain], capsys)[0] == 0
    assert run(["--checkpoint", zeros, "--size", 64, 64, "--tile", "--output", tiled], capsys)[0] == 0
    assert run(["--checkpoint", circular, "--size", 64, 64, "--output", reference], capsys)[0] == 0
    # --tile gives exactly the circularly padded generator's output, which wraps around...
    assert np.array_equal(pixels(tiled), pixels(reference))
    image = pixels(tiled)
    assert np.abs(image[:, 0] - image[:, -1]).mean() <= 1.2 * np.abs(np.diff(image, axis=1)).mean()
    assert json.loads(tiled.with_suffix(".json").read_text())["wraps"] is True
    assert json.loads(plain.with_suffix(".json").read_text())["wraps"] is False
    # ... and differs from the zero-padded output only within the receptive margin of the border.
    margin = load_generator(zeros).generator.receptive_margin()
    assert not np.array_equal(pixels(plain), image)
    assert np.array_equal(pixels(plain)[margin:-margin, margin:-margin], image[margin:-margin, margin:-margin])


def test_export_round_trip_runs_without_texnets(checkpoint, tmp_path, capsys):
    export = tmp_path / "export"
    code, err = run(["--checkpoint", checkpoint, "--export", export], capsys)
    assert code == 0, err
    assert {p.name for p in export.iterdir()} >= {"generator.torchscript.pt", "generator.safetensors",
                                                  "generator.json", "report.json"}
    generator = load_generator(checkpoint).generator
    noise = generator.noise_spec.sample(2, (32, 64))
    torch.save(noise, tmp_path / "noise.pt")
    with torch.no_grad():
        expected = generator(noise)

    # A separate Python with only torch: load the TorchScript file, run it, prove texnets was not imported.
    script = (f"import sys, torch; net = torch.jit.load({str(export / TORCHSCRIPT_FILE)!r}); "
              f"noise = torch.load({str(tmp_path / 'noise.pt')!r}); "
              f"torch.save(net(noise), {str(tmp_path / 'out.pt')!r}); "
              f"assert not any(m.startswith('texnets') for m in sys.modules)")
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert torch.allclose(torch.load(tmp_path / "out.pt"), expected, atol=1e-5)

    reloaded = load_exported_weights(export)
    with torch.no_grad():
        assert torch.allclose(reloaded(noise), expected, atol=1e-6)
    manifest = json.loads((export / "generator.json").read_text())
    assert manifest["model_type"] == "texture_net" and manifest["config"]["scales"] == 3

    # ONNX (when onnx is installed): one input per noise level, any size, the same image.
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(export / "generator.onnx"))
    onnx_out = session.run(None, {f"noise{k}": level.numpy() for k, level in enumerate(noise)})[0]
    assert onnx_out.shape == (2, 3, 32, 64)
    assert np.abs(onnx_out - expected.numpy()).max() < 1e-4


def test_train_then_synthesize(texture_config, tmp_path, capsys):
    assert train.main(["--config", str(texture_config), "--output_dir", str(tmp_path), "--trainer.max_steps", "2"]) == 0
    out = tmp_path / "from_training.png"
    code, err = run(["--checkpoint", tmp_path / "tiny" / "last.ckpt", "--output", out], capsys)
    assert code == 0, err
    assert Image.open(out).size == (32, 32)  # the training size is the default


def corrupt(path: Path) -> Path:
    torch.save({"state_dict": {"w": torch.zeros(1000)}}, path)
    path.write_bytes(path.read_bytes()[:200])
    return path


class NotAllowed:
    pass


def tampered(path: Path, source: Path, change) -> Path:
    data = torch.load(source, weights_only=True)
    change(data)
    torch.save(data, path)
    return path


def test_bad_checkpoints_are_refused_with_one_line(checkpoint, tmp_path, capsys):
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(3)}}, foreign)
    pickled = tmp_path / "pickled.ckpt"
    torch.save({"texnets": NotAllowed()}, pickled)
    cases = [
        (tmp_path / "missing.ckpt", "checkpoint not found"),
        (corrupt(tmp_path / "corrupt.ckpt"), "corrupt or truncated"),
        (foreign, "not a texnets checkpoint"),
        (pickled, "refusing to load it (weights_only=True)"),
        (tampered(tmp_path / "alien.ckpt", checkpoint, lambda d: d["texnets"].update(model_type="alien_net")),
         "'alien_net' model, which this texnets"),
        (tampered(tmp_path / "future.ckpt", checkpoint, lambda d: d["texnets"].update(format=CHECKPOINT_FORMAT + 1)),
         "upgrade texnets"),
        (tampered(tmp_path / "mismatch.ckpt", checkpoint, lambda d: d["texnets"]["generator"].update(channel_step=4)),
         "do not fit a texture_net"),
        (tmp_path, "expected a checkpoint file, got a directory"),
    ]
    for path, message in cases:
        code, err = run(["--checkpoint", path, "--output", tmp_path / "x.png"], capsys)
        assert code == 2 and message in one_error_line(err), (path, err)
    assert not (tmp_path / "x.png").exists()


def test_bad_sizes_and_counts_are_refused(checkpoint, tmp_path, capsys):
    code, err = run(["--checkpoint", checkpoint, "--size", 30, 64, "--output", tmp_path / "x.png"], capsys)
    assert code == 2 and "e.g. --size 32 64" in one_error_line(err)
    code, err = run(["--checkpoint", checkpoint, "--count", 0, "--output", tmp_path / "x.png"], capsys)
    assert code == 2 and "--count" in one_error_line(err)
