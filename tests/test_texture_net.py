"""The Texture Networks generator: its sizes, padding and receptive margin, and its TorchScript form
(the training terms are in test_objectives.py)."""
import pytest
import torch

from helpers import random_eval_net
from texnets.errors import TexnetsError
from texnets.generators import TextureNet, TextureNetConfig, build_generator
from texnets.noise import NoiseSpec
from texnets.tiling import generate_one_shot


def test_reference_configuration_has_116835_parameters():
    # JorgeGtz Pyramid2D: 6 scales, 3 noise channels, step 8, BatchNorm after each conv and upsampling.
    net = TextureNet()
    assert net.config == TextureNetConfig(scales=6, noise_channels=3, channel_step=8, norm="batch")
    assert sum(p.numel() for p in net.parameters()) == 116_835
    # Instance norm has the same affine parameters and no running statistics.
    instance = TextureNet(norm="instance")
    assert sum(p.numel() for p in instance.parameters()) == 116_835
    assert not any(name.endswith("running_mean") for name, _ in instance.named_buffers())


@pytest.mark.parametrize("size", [(32, 32), (64, 96), (160, 32)])
def test_output_shape_follows_the_noise_at_any_valid_size(size):
    net = TextureNet().eval()
    with torch.no_grad():
        out = net(net.noise_spec.sample(2, size))
    assert out.shape == (2, 3, *size)
    assert torch.isfinite(out).all()


def test_sizes_must_be_multiples_of_the_coarsest_step():
    net = TextureNet()
    assert net.size_multiple == 32
    with pytest.raises(TexnetsError, match="multiple of 32"):
        net.noise_spec.shapes(1, (48, 64))
    assert NoiseSpec(3, 3).shapes(1, (12, 8)) == [(1, 3, 12, 8), (1, 3, 6, 4), (1, 3, 3, 2)]


def test_bad_hyper_parameters_are_one_line_errors():
    with pytest.raises(TexnetsError, match="norm"):
        TextureNetConfig(norm="group")
    with pytest.raises(TexnetsError, match="padding"):
        TextureNetConfig(padding="mirror")
    with pytest.raises(TexnetsError, match="unknown generator type"):
        build_generator("transformer9000", {})
    assert TextureNetConfig(padding="zero").padding == "zeros"


def test_receptive_margin_matches_the_gradient_support():
    net = random_eval_net(scales=3)
    size, centre = 64, 32
    worst = 0
    for offset in range(net.size_multiple):  # every alignment with the coarsest grid
        noise = [z.requires_grad_() for z in net.noise_spec.sample(1, (size, size))]
        net(noise)[0, :, centre + offset, centre + offset].sum().backward()
        for level, z in enumerate(noise):
            rows = (z.grad[0].abs().sum((0, 2)) > 0).nonzero().flatten()
            first, last = rows.min().item() * 2 ** level, (rows.max().item() + 1) * 2 ** level - 1
            worst = max(worst, centre + offset - first, last - centre - offset)
    assert worst == net.receptive_margin()


def test_circular_padding_wraps_seamlessly():
    net = random_eval_net(scales=4, padding="circular")
    with torch.no_grad():
        image = generate_one_shot(net, (64, 64), seed=1, samples=[0, 1])
    interior_x = (image[..., :, 1:] - image[..., :, :-1]).abs().mean()
    interior_y = (image[..., 1:, :] - image[..., :-1, :]).abs().mean()
    wrap_x = (image[..., :, 0] - image[..., :, -1]).abs().mean()
    wrap_y = (image[..., 0, :] - image[..., -1, :]).abs().mean()
    assert wrap_x <= 1.2 * interior_x and wrap_y <= 1.2 * interior_y
    # Zero padding does not wrap: its border differs from the opposite border far more.
    zeros = random_eval_net(scales=4, padding="zeros")
    image = generate_one_shot(zeros, (64, 64), seed=1, samples=[0, 1])
    assert (image[..., :, 0] - image[..., :, -1]).abs().mean() > 1.2 * (image[..., :, 1:] - image[..., :, :-1]).abs().mean()


def test_set_padding_changes_only_the_border():
    net = random_eval_net(scales=3, padding="zeros")
    noise = net.noise_spec.sample(1, (64, 64))
    with torch.no_grad():
        before = net(noise)
        after = net.set_padding("circular")(noise)
    margin = net.receptive_margin()
    assert torch.allclose(before[..., margin:-margin, margin:-margin], after[..., margin:-margin, margin:-margin])
    assert not torch.allclose(before, after)


def test_torchscript_matches_eager():
    import warnings
    net = random_eval_net(scales=4)
    noise = net.noise_spec.sample(2, (32, 64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.script(net)
    with torch.no_grad():
        assert torch.allclose(scripted(noise), net(noise))
