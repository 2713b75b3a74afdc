"""SuperResolutionNet (Johnson et al. 2016, section 4.2): factor x the input's size for every factor and option, in
[0, 1]; bad hyper-parameters and inputs too small are one line; a few steps of training lower the loss."""
import pytest
import torch
import torch.nn.functional as F

from texnets.degradation import low_resolution
from texnets.errors import TexnetsError
from texnets.generators import GENERATORS, SuperResolutionNet, build_generator

SMALL = {"channels": 8, "residual_blocks": 1}


@pytest.mark.parametrize("factor", [2, 4, 8])
@pytest.mark.parametrize("upsample, norm", [("nearest", "batch"), ("transposed", "instance")])
def test_the_output_is_factor_times_the_input(factor, upsample, norm):
    net = SuperResolutionNet(factor=factor, upsample=upsample, norm=norm, **SMALL).eval()
    with torch.no_grad():
        output = net(torch.rand(2, 3, 9, 12))   # odd and even sides
    assert output.shape == (2, 3, 9 * factor, 12 * factor)
    assert output.min() >= 0 and output.max() <= 1   # 0.5 + 0.5 tanh


def test_the_reference_network_has_the_papers_layout():
    net = SuperResolutionNet()
    assert net.config.factor == 4 and len(net.residuals) == 4 and len(net.upsampling) == 2
    assert all(isinstance(module, torch.nn.BatchNorm2d) for module in net.upsampling.modules()
               if "Norm" in type(module).__name__)
    assert GENERATORS["sr_net"] is SuperResolutionNet
    rebuilt = build_generator("sr_net", net.config_dict())
    assert rebuilt.config == net.config


@pytest.mark.parametrize("overrides, message", [
    ({"factor": 3}, "factor must be one of 2, 4, 8"),
    ({"norm": "group"}, "norm must be one of batch, instance"),
    ({"upsample": "pixelshuffle"}, "upsample must be one of"),
    ({"channels": 0}, "channels must be positive"),
])
def test_bad_hyper_parameters_are_one_line(overrides, message):
    with pytest.raises(TexnetsError, match=message):
        SuperResolutionNet(**overrides)


def test_an_input_too_small_for_the_network_is_one_line():
    net = SuperResolutionNet(**SMALL)
    net.check_input((8, 8))
    with pytest.raises(TexnetsError, match="7x6 low-resolution input is too small: at least 8 pixels"):
        net.check_input((6, 7))


def test_a_few_steps_lower_the_pixel_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    high = F.interpolate(torch.rand(4, 3, 8, 8), size=(32, 32), mode="bilinear", align_corners=False)  # smooth photos
    low = low_resolution(high, 4)
    net = SuperResolutionNet(factor=4, **SMALL)
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        optimiser.zero_grad()
        loss = F.mse_loss(net(low), high)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    # Robust summaries, not the path: the last five steps against the first five.
    assert sum(losses[-5:]) < 0.5 * sum(losses[:5])


@pytest.mark.parametrize("factor, upsample", [(2, "nearest"), (4, "nearest"), (4, "transposed"), (8, "nearest")])
def test_receptive_margin_bounds_what_one_output_pixel_reads(factor, upsample):
    """Perturbing one input pixel changes outputs only within the margin (in low-resolution pixels), and the
    margin is not loose: the farthest changed output sits near it."""
    torch.manual_seed(0)
    net = SuperResolutionNet(factor=factor, upsample=upsample, **SMALL).eval()
    margin = net.receptive_margin()
    size, centre = 2 * margin + 12, margin + 6
    image = torch.rand(1, 3, size, size)
    with torch.no_grad():
        base = net(image)
        poked = image.clone()
        poked[..., centre, centre] += 0.5
        changed = (net(poked) - base).abs().amax(1)[0] > 0
    rows, cols = changed.nonzero(as_tuple=True)
    reach = max(int((rows // factor - centre).abs().max()), int((cols // factor - centre).abs().max()))
    assert 0 < reach <= margin, (reach, margin)
    assert reach >= margin - 2, (reach, margin)
