"""TransformerNet (Johnson et al. 2016): the reference parameter count, any input size, the output
range, a receptive margin that bounds the real one and one-line config errors; with several styles (conditional
instance norm, Dumoulin et al. 2017) one style is today's network key for key, an index, a one-hot mix and the baked
network agree, and mixing is linear in the tables (tiled stylisation is in test_tiling.py, colour preservation in
test_color.py)."""
import json
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from helpers import randomise_norms
from texnets.errors import TexnetsError
from texnets.generators import TransformerNet, TransformerNetConfig, build_generator
from texnets.generators.transformer_net import ConditionalInstanceNorm2d
from texnets.tiling import freeze_instance_norms


def count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


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


# --------------------------------------------------------------------------------------------------
# Conditional instance norm (Dumoulin et al. 2017): styles > 1

def multi_style_net(styles: int = 3) -> TransformerNet:
    """A quarter-width network of ``styles`` styles whose rows of scales and shifts all differ."""
    torch.manual_seed(0)
    net = TransformerNet(width=0.25, styles=styles).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, ConditionalInstanceNorm2d):
                module.weight.copy_(1 + 0.4 * torch.randn(module.weight.shape, generator=generator))
                module.bias.copy_(0.3 * torch.randn(module.bias.shape, generator=generator))
    return net


def test_one_style_is_the_original_network_key_for_key():
    layout = json.loads((Path(__file__).parent / "data" / "transformer_net_format1.json").read_text())
    stored = {key[len("generator."):]: spec["shape"] for key, spec in layout["state_dict"].items()
              if key.startswith("generator.")}
    net = TransformerNet(TransformerNetConfig(**{**layout["texnets"]["generator"], "styles": 1}))
    assert {key: list(value.shape) for key, value in net.state_dict().items()} == stored
    assert not any(isinstance(m, ConditionalInstanceNorm2d) for m in TransformerNet(width=0.25).modules())


def test_each_style_is_a_row_of_every_norm_and_nothing_else_grows():
    single, multi = TransformerNet(width=0.25), TransformerNet(width=0.25, styles=4)
    norm_channels = sum(m.weight.numel() for m in single.modules() if isinstance(m, nn.InstanceNorm2d))
    extra = sum(p.numel() for p in multi.parameters()) - sum(p.numel() for p in single.parameters())
    assert extra == 3 * 2 * norm_channels   # three more rows of scales and shifts, Dumoulin et al.'s 2 x C per style


def test_an_index_a_one_hot_mix_and_the_baked_network_agree():
    net, image = multi_style_net(), torch.rand(1, 3, 36, 44)
    with torch.no_grad():
        by_index = net(image, torch.tensor([2]))
        assert torch.allclose(net(image, torch.tensor([0.0, 0.0, 1.0])), by_index, atol=1e-6)
        assert torch.allclose(net.with_style(2)(image), by_index, atol=1e-5)
        assert not torch.allclose(net(image, torch.tensor([1])), by_index, atol=1e-3)   # the styles differ
        assert torch.allclose(net(image), net(image, torch.tensor([0])))                 # default: style 0


def test_mixing_is_linear_in_the_tables_and_per_image():
    net, weights = multi_style_net(), torch.tensor([0.2, 0.5, 0.3])
    baked = net.with_style(weights)
    conditional = [m for m in net.modules() if isinstance(m, ConditionalInstanceNorm2d)]
    plain = [m for m in baked.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(conditional) == len(plain) > 0
    for c, p in zip(conditional, plain):
        assert torch.allclose(p.weight, weights @ c.weight) and torch.allclose(p.bias, weights @ c.bias)
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        batch = net(images, torch.stack([weights, torch.tensor([0.0, 1.0, 0.0])]))
        assert torch.allclose(batch[:1], baked(images[:1]), atol=1e-5)
        assert torch.allclose(batch[1:], net(images[1:], torch.tensor([1])), atol=1e-6)


@pytest.mark.parametrize("weights, message", [
    (3, "style index 3 is out of range: this network knows 3 styles"),
    (-1, "style index -1 is out of range"),
    ([0.5, 0.6, 0.0], "must be non-negative and sum to 1"),
    ([1.5, -0.5, 0.0], "must be non-negative and sum to 1"),
    ([0.5, 0.5], "2 mixing weights for a network of 3 styles"),
])
def test_bad_style_choices_are_one_line(weights, message):
    with pytest.raises(TexnetsError, match=message):
        multi_style_net().with_style(weights)


def test_a_single_style_network_still_scripts_and_a_baked_one_too():
    image = torch.rand(1, 3, 24, 28)
    for net in (TransformerNet(width=0.25).eval(), multi_style_net().with_style([0.5, 0.5, 0.0]).eval()):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scripted = torch.jit.script(net)
        with torch.no_grad():
            assert torch.allclose(scripted(image), net(image), atol=1e-6)
