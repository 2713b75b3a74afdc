"""Tiled generation and stylisation (texnets.tiling): noise-driven tiles that equal the one-shot image for
every padding and norm, and instance-norm tiles that share frozen statistics without seams; for transfer
networks, frozen instance norms that reproduce one pass exactly in tiles, calibrated tiles close to one pass
and free of seams, calibration windows on the stride grid, and refusal of bad tile blocks."""
import pytest
import torch

from helpers import photo, random_eval_net, randomise_norms
from texnets.errors import TexnetsError
from texnets.generators import TransformerNet
from texnets.tiling import (calibration_windows, freeze_instance_norms, generate, generate_one_shot, generate_tiled,
                            has_instance_norm, stylize, tile_halo)


@pytest.mark.parametrize("padding", ["circular", "zeros", "reflect"])
@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_tiled_generation_equals_one_shot(padding, norm):
    net = random_eval_net(scales=3, padding=padding, norm=norm)
    assert tile_halo(net) % net.size_multiple == 0 and tile_halo(net) >= net.receptive_margin()
    one_shot = generate_one_shot(net, (96, 64), seed=5, samples=[2])
    # For instance norm, the calibration window covers the whole image here, so statistics match too.
    tiled = generate_tiled(net, (96, 64), seed=5, sample=2, block=16, calibration=128)
    assert torch.allclose(tiled, one_shot, atol=1e-5), (tiled - one_shot).abs().max()
    assert one_shot.std() > 1e-2  # the comparison is not between two constant images
    assert torch.allclose(generate(net, (96, 64), 5, [2], block=32), one_shot, atol=1e-5)


def test_instance_norm_tiles_share_frozen_statistics_without_seams():
    net = random_eval_net(scales=3, norm="instance")
    # Calibration on a quarter of the image: not bit-identical, but close and seam-free.
    tiled = generate_tiled(net, (128, 128), seed=0, block=32, calibration=64)
    one_shot = generate_one_shot(net, (128, 128), seed=0, samples=[0])
    assert (tiled - one_shot).abs().mean() < 0.25 * one_shot.std()
    seam = (tiled[..., :, 32] - tiled[..., :, 31]).abs().mean()
    interior = (tiled[..., :, 1:] - tiled[..., :, :-1]).abs().mean()
    assert seam <= 1.3 * interior


@pytest.fixture(scope="module")
def scene(small_photos) -> torch.Tensor:
    """A real photo at 150x206 (neither side a multiple of 4)."""
    return photo(small_photos[0], (150, 206))


@pytest.fixture(scope="module")
def net() -> TransformerNet:
    torch.manual_seed(0)
    return randomise_norms(TransformerNet(width=0.25), seed=3).eval()


def test_frozen_norms_reproduce_one_pass_and_tiles_reproduce_it_exactly(net, scene):
    with torch.no_grad():
        whole = net(scene)
    frozen = freeze_instance_norms(net, scene)
    assert not has_instance_norm(frozen) and has_instance_norm(net)  # a copy: the original is untouched
    with torch.no_grad():
        assert torch.allclose(frozen(scene), whole, atol=1e-5)
    # With the statistics fixed, every tile sees its whole receptive field: tiles match one pass.
    for block in (32, 48, 100):
        tiled = stylize(frozen, scene, block=block)
        assert tiled.shape == scene.shape
        assert torch.allclose(tiled, whole, atol=1e-5), (block, (tiled - whole).abs().max())
    # Small enough to fit in one block: one pass of the unmodified net.
    assert torch.allclose(stylize(net, scene, block=256), whole, atol=1e-6)


def test_calibrated_tiles_are_close_to_one_pass_and_have_no_seams(net, shared_data):
    # Calibration windows have borders of their own, so their statistics approach the whole photo's only
    # when they are large: a 384x256 photo in 128 px tiles (at 48 px on a 150x206 photo, an untrained net
    # differs by ~0.09, mostly through the windows' reflection-padded borders).
    kodaks = sorted((shared_data / "content").glob("kodim*.png"))
    scene, other = photo(kodaks[0], (256, 384)), photo(kodaks[3], (256, 384))
    block = 128
    with torch.no_grad():
        whole = net(scene)
        alien = freeze_instance_norms(net, other)(scene)  # statistics of another photo, for scale
    tiled = stylize(net, scene, block=block)  # instance norms calibrated on four 128x128 windows of the photo
    assert tiled.shape == scene.shape
    difference, baseline = (tiled - whole).abs().mean(), (alien - whole).abs().mean()
    assert 0 < difference < 0.06 and difference < 0.35 * baseline, (difference, baseline)
    assert torch.corrcoef(torch.stack([tiled.flatten(), whole.flatten()]))[0, 1] > 0.9
    for dim, other_dim, length in ((-1, -2, scene.shape[-1]), (-2, -1, scene.shape[-2])):
        boundaries = [b - 1 for b in range(block, length, block)]  # the step from b-1 to b crosses a seam
        inside = [i for i in range(length - 1) if i not in boundaries]
        # No edge in the image at the tile boundaries...
        steps = tiled.diff(dim=dim).abs().mean(dim=(0, 1, other_dim))  # mean step between neighbouring columns/rows
        assert steps[boundaries].mean() <= 1.5 * steps[inside].mean(), (dim, steps[boundaries], steps[inside].mean())
        # ... and no jump there in the (smooth) deviation from one pass, which per-tile statistics would cause
        # (1.2 and 1.8 when each window normalises itself; about 1 with shared statistics).
        jumps = (tiled - whole).diff(dim=dim).abs().mean(dim=(0, 1, other_dim))
        assert jumps[boundaries].mean() <= 1.3 * jumps[inside].mean(), (dim, jumps[boundaries], jumps[inside].mean())


def test_calibration_windows_cover_the_image_on_the_stride_grid():
    windows = calibration_windows(150, 206, 48, 4)
    assert len(windows) == 4
    for y0, y1, x0, x1 in windows:
        assert y0 % 4 == 0 and x0 % 4 == 0 and y1 - y0 == 48 and x1 - x0 == 48 and y1 <= 150 and x1 <= 206
    assert calibration_windows(40, 30, 48, 4) == [(0, 40, 0, 30)]  # one window when the image fits


def test_bad_tile_blocks_are_refused(net, scene):
    for block in (30, 8):
        with pytest.raises(TexnetsError, match="multiple of 4 and at least 16"):
            stylize(net, scene, block=block)
