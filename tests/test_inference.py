"""Running a transfer network on images (texnets.inference): a Stylizer returns the generator's own output,
clamped to [0, 1], at the input's size, in one pass or in tiles; it downscales inputs whose longer side
exceeds max_size (never below 16 px), refuses bad options and too-small images with one-line errors, and
gives every output a suffix it can be saved under."""
from pathlib import Path

import pytest
import torch

from helpers import randomise_norms
from texnets.errors import TexnetsError
from texnets.generators import TransformerNet
from texnets.inference import Stylizer, output_suffix


def test_a_stylizer_returns_the_generators_clamped_output_at_the_input_size():
    torch.manual_seed(0)
    net = randomise_norms(TransformerNet(width=0.25)).eval()
    images = torch.rand(2, 3, 20, 28)
    stylizer = Stylizer(net, block=None)
    out = stylizer(images)
    with torch.no_grad():
        expected = net(images).clamp(0, 1)
    assert out.shape == images.shape and out.dtype == torch.float32
    assert torch.allclose(out, expected, atol=1e-6)
    assert not torch.allclose(out[0], out[1])  # each image its own output
    assert len(stylizer.network_seconds) == 1  # one network call recorded
    tiled = Stylizer(net, block=16)(images)  # sides longer than the block: tiles, one image at a time
    assert tiled.shape == images.shape and tiled.min() >= 0 and tiled.max() <= 1


def test_large_inputs_are_downscaled_and_bad_options_and_tiny_images_refused():
    net = TransformerNet(width=0.25)
    stylizer = Stylizer(net, max_size=32)
    assert stylizer.downscale(torch.rand(1, 3, 48, 96)).shape == (1, 3, 16, 32)
    assert stylizer.downscale(torch.rand(1, 3, 30, 20)).shape == (1, 3, 30, 20)  # small enough: left alone
    assert stylizer.downscale(torch.rand(1, 3, 20, 200)).shape == (1, 3, 16, 32)  # never below 16 px
    with pytest.raises(TexnetsError, match="--precision must be one of fp32, bf16, fp16"):
        Stylizer(net, precision="fp8")
    with pytest.raises(TexnetsError, match="--max-size must be at least 16"):
        Stylizer(net, max_size=8)
    with pytest.raises(TexnetsError, match="at least 16 pixels per side"):
        Stylizer(net)(torch.rand(1, 3, 12, 40))
    suffixes = [output_suffix(Path(name)) for name in ("a.JPG", "b.webp", "c.tif", "d")]
    assert suffixes == [".jpg", ".webp", ".png", ".png"]  # unsavable or missing suffixes become .png
