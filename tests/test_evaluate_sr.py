"""evaluate.py sr: bicubic, super-resolution checkpoints and Deep Image Prior enlarge the same degraded photos; the
report, table, grid and per-method images are written; bicubic scores as it should against a plain reference
computation; wrong checkpoints, factors and outputs are one line."""
import functools
import json
import re

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import evaluate
from helpers import call_main, make_sr_checkpoint, make_transfer_checkpoint, one_error_line
from texnets.degradation import low_resolution
from texnets.evaluation.super_resolution import load_photos
from texnets.images import load_image
from texnets.quality import psnr_ssim, quantize

run = functools.partial(call_main, evaluate.main)
RANDOM_LPIPS = "--lpips-random-backbone"   # LPIPS' formula without its backbone weights: tests only


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("sr")
    (root / "feature").mkdir()
    (root / "pixel").mkdir()
    return (make_sr_checkpoint(root / "feature" / "last.ckpt"),
            make_sr_checkpoint(root / "pixel" / "last.ckpt", loss="pixel"))


def test_networks_bicubic_and_dip_in_one_table(checkpoints, small_photos, tmp_path, capsys):
    out = tmp_path / "sr.png"
    code, err = run(["sr", "--reference", small_photos[0], "builtin:astronaut", "--checkpoint", *checkpoints,
                     "--methods", "bicubic", "dip", "--dip-steps", 2, "--size", 32, RANDOM_LPIPS, "--output", out],
                    capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "sr.json").read_text())
    labels = [method["label"] for method in report["methods"]]
    assert labels == ["bicubic", "perceptual net", "per-pixel net", "Deep Image Prior"]
    for method in report["methods"]:
        assert len(method["scores"]) == 2 and len(method["seconds"]) == 2
        assert all(-1 <= score["ssim"] <= 1 and score["feature_distance"] > 0 and "lpips" in score
                   for score in method["scores"])
    table = (tmp_path / "sr.md").read_text()
    assert "relu2_2 below bicubic's" in table and "| perceptual net |" in table and "2 steps" in table
    assert Image.open(out).size[0] > 5 * 32   # input, four methods, original
    written = sorted(p.name for p in (tmp_path / "sr_images" / "per-pixel_net").iterdir())
    assert written == sorted(["astronaut.png", small_photos[0].stem + ".png"])


def test_bicubic_scores_match_a_direct_computation(tmp_path, capsys):
    code, err = run(["sr", "--reference", "builtin:coffee", "--size", 48, "--factor", 2, RANDOM_LPIPS,
                     "--output", tmp_path / "bicubic.json"], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "bicubic.json").read_text())
    image = load_image("builtin:coffee", 48)
    left = (image.shape[-1] - 48) // 2
    original = image[..., :48, left:left + 48]
    upscaled = F.interpolate(low_resolution(original, 2), scale_factor=2, mode="bicubic").clamp(0, 1)
    psnr, _ = psnr_ssim(quantize(upscaled), original)
    assert report["methods"][0]["scores"][0]["psnr"] == pytest.approx(float(psnr[0]), abs=1e-4)
    assert report["factor"] == 2 and report["photos"][0]["size"] == [48, 48]


def test_photos_are_cropped_to_a_multiple_of_the_factor():
    photos = load_photos(["builtin:astronaut"], 8, None, 1.0)
    height, width = photos[0].original.shape[-2:]
    assert height % 8 == 0 and width % 8 == 0
    assert photos[0].low_resolution.shape[-2:] == (height // 8, width // 8)
    assert torch.equal(photos[0].low_resolution, low_resolution(photos[0].original, 8, 1.0))


def test_bad_requests_are_one_line(checkpoints, tmp_path, capsys):
    transfer = make_transfer_checkpoint(tmp_path / "transfer.ckpt")
    cases = [
        (["--checkpoint", transfer], "holds a transformer-net, not a super-resolution network"),
        (["--checkpoint", checkpoints[0], "--factor", 2], "--factor 2: the checkpoints were trained for x4 only"),
        (["--factor", 3], "--factor must be 2, 4 or 8"),
        (["--output", tmp_path / "sr.txt"], "--output must be an image (.png, .jpg) or a report (.json, .md)"),
        (["--size", 16], "too small for x4: at least 32 pixels per side"),
        (["--held-aside"], "--held-aside reads the photos a checkpoint's run held aside"),
    ]
    for extra, message in cases:
        argv = ["sr", "--reference", "builtin:astronaut", "--size", 64, "--output", tmp_path / "sr.md", *extra]
        code, err = run(argv, capsys)
        assert code == 2, (extra, err)
        assert message in one_error_line(err), (extra, err)
    assert not (tmp_path / "sr.md").exists()


def test_held_aside_reads_the_photos_the_run_never_trained_on(small_photos, tmp_path, capsys):
    checkpoint = make_sr_checkpoint(tmp_path / "last.ckpt", held_aside=small_photos[1:3])
    code, err = run(["sr", "--held-aside", "--checkpoint", checkpoint, "--size", 32, RANDOM_LPIPS,
                     "--output", tmp_path / "sr.json"], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "sr.json").read_text())
    assert [photo["name"] for photo in report["photos"]] == [small_photos[1].stem, small_photos[2].stem]
    assert re.search(r"\| perceptual net \|.*\| [0-2]/2 \|", (tmp_path / "sr.md").read_text())   # counted over both


def test_networks_are_scored_as_their_checkpoint_post_processes_and_unmatched_on_request(tmp_path, capsys):
    for run_folder in ("matched", "raw"):
        (tmp_path / run_folder).mkdir()
    checkpoint = make_sr_checkpoint(tmp_path / "matched" / "last.ckpt", postprocess="histogram_matching")
    raw = make_sr_checkpoint(tmp_path / "raw" / "last.ckpt")
    code, err = run(["sr", "--reference", "builtin:coffee", "--checkpoint", checkpoint, raw, "--size", 48,
                     "--unmatched", RANDOM_LPIPS, "--output", tmp_path / "sr.json"], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "sr.json").read_text())
    methods = {method["label"]: method for method in report["methods"]}
    # The same weights: one checkpoint matches its histograms, the other records no post-processing.
    assert list(methods) == ["bicubic", "perceptual net (matched)", "perceptual net (matched), unmatched",
                             "perceptual net (raw)"]
    assert methods["perceptual net (matched), unmatched"]["scores"] == methods["perceptual net (raw)"]["scores"]
    assert methods["perceptual net (matched)"]["scores"] != methods["perceptual net (raw)"]["scores"]
    assert "histogram-matched" in methods["perceptual net (matched)"]["note"]
    matched = load_image(str(tmp_path / "sr_images" / "perceptual_net_(matched)" / "coffee.png"))
    photo = load_photos(["builtin:coffee"], 4, 48, 1.0)[0]
    for channel in range(3):   # the saved output carries the low-resolution input's distribution
        assert abs(float(matched[0, channel].median() - photo.low_resolution[0, channel].median())) < 0.03
