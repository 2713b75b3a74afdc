"""TransformerNet (Johnson et al. 2016): the reference parameter count, any input size, the output
range, a receptive margin that bounds the real one and one-line config errors (tiled stylisation is in
test_tiling.py, colour preservation in test_color.py)."""
import pytest
import torch
from torch import nn

from helpers import randomise_norms
from texnets.errors import TexnetsError
from texnets.generators import TransformerNet, TransformerNetConfig, build_generator
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
