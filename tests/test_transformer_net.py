"""TransformerNet (Johnson et al. 2016): the reference parameter count, any input size, the output
range, a receptive margin that bounds the real one, one-line config errors; tiled stylisation that
reproduces one pass exactly with frozen instance norms and shows no seams with calibrated ones; and
colour preservation."""
import kornia.color
import pytest
import torch
from torch import nn

from texnets.color import keep_content_colors, luminance
from texnets.errors import TexnetsError
from texnets.generators import TransformerNet, TransformerNetConfig, build_generator
from texnets.images import read_image, resize
from texnets.tiling import calibration_windows, freeze_instance_norms, has_instance_norm, stylize


def count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def randomise_norms(net: TransformerNet, seed: int = 0) -> TransformerNet:
    """Non-trivial InstanceNorm affine parameters (a fresh net has weight 1, bias 0)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.InstanceNorm2d):
                module.weight.copy_(1 + 0.5 * torch.randn(module.weight.shape, generator=generator))
                module.bias.copy_(0.3 * torch.randn(module.bias.shape, generator=generator))
    return net


def photo(path, size) -> torch.Tensor:
    """A real photo as a (1, 3, H, W) tensor of exactly ``size``."""
    return resize(read_image(path), tuple(size)).unsqueeze(0)


def test_parameter_count_matches_the_reference():
    reference = TransformerNet()
    assert count(reference) == 1_679_235
    assert count(TransformerNet(width=0.5)) < count(reference) / 3  # channels halve, weights quarter
    transposed = TransformerNet(upsample="transposed")
    assert count(transposed) == count(reference)
    assert any(isinstance(m, nn.ConvTranspose2d) for m in transposed.modules())
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in reference.modules())
    assert count(TransformerNet(residual_blocks=3)) < count(reference)
    # Hyper-parameters round-trip through the plain dict a checkpoint stores.
    rebuilt = build_generator("transformer_net", TransformerNet(width=0.5, upsample="transposed").config_dict())
    assert rebuilt.config == TransformerNetConfig(width=0.5, upsample="transposed")


@pytest.mark.parametrize("upsample", ["nearest", "transposed"])
@pytest.mark.parametrize("size", [(33, 47), (17, 16), (64, 64), (16, 21)])
def test_output_has_the_input_size_and_stays_in_range(size, upsample):
    torch.manual_seed(0)
    net = randomise_norms(TransformerNet(width=0.25, upsample=upsample, output_range=0.2)).eval()
    images = torch.rand(2, 3, *size)
    with torch.no_grad():
        out = net(images)
    assert out.shape == images.shape
    assert out.min() >= 0.5 - 0.2 and out.max() <= 0.5 + 0.2
    assert out.std() > 1e-3  # not a constant
    assert not torch.allclose(out[0], out[1])  # each item its own output


def margin_reach(net: TransformerNet, size: int, centre: int) -> int:
    """The farthest input pixel (Chebyshev distance) with a nonzero gradient on output (centre, centre)."""
    torch.manual_seed(1)
    image = torch.rand(1, 3, size, size)
    frozen = freeze_instance_norms(net, image)  # local in eval mode: the margin then means something
    image.requires_grad_(True)
    frozen(image)[0, :, centre, centre].sum().backward()
    reached = (image.grad.abs().sum((0, 1)) > 0).nonzero()
    assert len(reached), "the centre output does not depend on the input at all"
    return int((reached - centre).abs().max())


@pytest.mark.parametrize("upsample", ["nearest", "transposed"])
def test_receptive_margin_is_a_tight_upper_bound(upsample):
    torch.manual_seed(0)
    net = randomise_norms(TransformerNet(width=0.25, upsample=upsample)).eval()
    margin = net.receptive_margin()
    size = 2 * margin + 24
    # Every alignment of the centre with the stride-4 grid (the reach differs between them).
    reaches = [margin_reach(net, size, size // 2 + offset) for offset in range(4)]
    assert max(reaches) <= margin, (reaches, margin)
    assert max(reaches) > margin - 8, (reaches, margin)  # and not wildly loose

    # The same by perturbation: one pixel just beyond the margin leaves the centre output bit-identical,
    # one just inside changes it.
    torch.manual_seed(2)
    image = torch.rand(1, 3, size, size)
    frozen = freeze_instance_norms(net, image)
    centre = size // 2
    with torch.no_grad():
        base = frozen(image)[..., centre, centre]
        outside = image.clone()
        outside[..., centre, centre + margin + 1] += 0.5
        assert torch.equal(frozen(outside)[..., centre, centre], base)
        inside = image.clone()
        inside[..., centre, centre + 4] += 0.5
        assert not torch.allclose(frozen(inside)[..., centre, centre], base)


@pytest.mark.parametrize("overrides, message", [
    ({"upsample": "bilinear"}, "upsample must be one of nearest, transposed"),
    ({"width": 0}, "width must be in (0, 8]"),
    ({"width": -0.5}, "width must be in (0, 8]"),
    ({"residual_blocks": -1}, "must not be negative"),
    ({"output_range": -0.1}, "must not be negative"),
])
def test_bad_hyper_parameters_raise_one_line_errors(overrides, message):
    with pytest.raises(TexnetsError) as error:
        TransformerNet(**overrides)
    assert message in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(TexnetsError, match="unknown transformer-net hyper-parameter"):
        TransformerNet.from_config({"width": 0.25, "scales": 3})


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


def test_keep_content_colors_takes_the_chrominance_of_the_content(small_photos):
    content = photo(small_photos[1], (48, 64))
    stylised = photo(small_photos[2], (48, 64))  # another photo stands in for a stylised one
    out = keep_content_colors(stylised, content)
    assert out.shape == content.shape and out.min() >= 0 and out.max() <= 1
    ycc_out, ycc_content = kornia.color.rgb_to_ycbcr(out), kornia.color.rgb_to_ycbcr(content)
    assert (ycc_out[:, 1:] - ycc_content[:, 1:]).abs().mean() < 0.01
    assert (luminance(out) - luminance(stylised)).abs().mean() < 0.01
    assert (luminance(out) - luminance(content)).abs().mean() > 0.05  # the luminance is the stylised one
    # A stylised image of another size: its luminance is resized to the content's size.
    half = keep_content_colors(stylised[..., ::2, ::2], content)
    assert half.shape == content.shape
    assert (kornia.color.rgb_to_ycbcr(half)[:, 1:] - ycc_content[:, 1:]).abs().mean() < 0.01
