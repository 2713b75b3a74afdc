"""texnets.dream through optimize.py dream: feature matching lowers its loss from the photo, activation
maximisation raises the activations, and a mode without its input is one line."""
import functools

import torch

import optimize
from helpers import call_main_out, one_error_line
from texnets import dream
from texnets.images import load_image
from texnets.vgg import VGGEncoder

run = functools.partial(call_main_out, optimize.main)


def test_feature_matching_lowers_its_loss_from_the_photo():
    content, style = load_image("builtin:coffee", 48), load_image("builtin:immunohistochemistry", 48)
    result = dream.dream_match(content, style, ["relu3_1"], steps=15, progress=False)
    assert result.losses["total"] < 0.5 * result.first_losses["total"]
    assert result.image.shape == content.shape


def test_activation_maximisation_raises_the_activation():
    image = load_image("builtin:coffee", 48)
    result = dream.dream_maximise(image, ["relu2_1"], steps=4, octaves=2, jitter=4, progress=False)
    encoder = VGGEncoder(["relu2_1"])
    with torch.no_grad():
        before = encoder(image, ["relu2_1"])["relu2_1"].pow(2).mean()
        after = encoder(result.image, ["relu2_1"])["relu2_1"].pow(2).mean()
    assert after > 1.2 * before and result.image.shape == image.shape
    assert result.image.min() >= 0 and result.image.max() <= 1


def test_dream_cli_both_modes_and_the_missing_style(tmp_path, capsys):
    code, stdout, err = run(["dream", "--content", "builtin:coffee", "--style", "builtin:brick", "--layers", "relu3_1",
                             "--size", "32", "--steps", "3", "--output", tmp_path / "m.png", "--quiet"], capsys)
    assert code == 0 and (tmp_path / "m.png").is_file(), err
    code, stdout, err = run(["dream", "--content", "builtin:coffee", "--mode", "maximise", "--layers", "relu2_1",
                             "--octaves", "2", "--size", "32", "--steps", "2", "--output", tmp_path / "x.png",
                             "--quiet"], capsys)
    assert code == 0 and (tmp_path / "x.png").is_file(), err
    code, _, err = run(["dream", "--content", "builtin:coffee", "--output", tmp_path / "bad.png"], capsys)
    assert code == 2 and "dream --mode match needs --style" in one_error_line(err)
    assert not (tmp_path / "bad.png").exists()
