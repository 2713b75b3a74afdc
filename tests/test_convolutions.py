"""texnets.generators.convolutions: the space-to-depth convolution is the plain one, to float tolerance, in its
output and in every gradient; where it does not apply it is the plain one exactly."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from texnets.generators import TransformerNet
from texnets.generators.convolutions import FewOutputsConv2d, space_to_depth_kernel


def twins(cin: int, cout: int, kernel: int, seed: int = 0) -> tuple[nn.Conv2d, FewOutputsConv2d]:
    torch.manual_seed(seed)
    plain = nn.Conv2d(cin, cout, kernel)
    recast = FewOutputsConv2d(cin, cout, kernel)
    recast.load_state_dict(plain.state_dict())
    return plain, recast


def outputs_and_gradients(conv: nn.Conv2d, x: torch.Tensor, target: torch.Tensor) -> list[torch.Tensor]:
    x = x.clone().requires_grad_(True)
    output = conv(x)
    loss = (output - target).square().mean()
    return [output.detach(), *torch.autograd.grad(loss, (x, conv.weight, conv.bias))]


@pytest.mark.parametrize("cin, cout, kernel, size", [(32, 3, 9, (40, 36)), (8, 3, 3, (18, 22)), (5, 1, 5, (12, 16))])
def test_space_to_depth_matches_the_plain_convolution(cin, cout, kernel, size):
    plain, recast = twins(cin, cout, kernel)
    x = torch.randn(2, cin, *size)
    target = torch.randn(2, cout, size[0] - kernel + 1, size[1] - kernel + 1)
    for expected, got in zip(outputs_and_gradients(plain, x, target), outputs_and_gradients(recast, x, target)):
        assert got.shape == expected.shape
        assert (got - expected).abs().max() <= 1e-5 * expected.abs().max()   # only the order of the sums differs


def test_the_kernel_holds_the_original_weights_once_each():
    weight = torch.arange(1.0, 1 + 3 * 2 * 9 * 9).reshape(3, 2, 9, 9)
    kernel = space_to_depth_kernel(weight)
    assert kernel.shape == (12, 8, 5, 5)
    # Each output phase uses every original tap exactly once; the rest of its kernel is zeros.
    for phase in range(4):
        taps = kernel[phase::4]   # output channels o·4 + phase
        assert torch.equal(taps[taps != 0].sort().values, weight.flatten().sort().values)


@pytest.mark.filterwarnings("ignore::FutureWarning")   # torch.jit is deprecated, and still what exports use
def test_where_it_does_not_apply_the_plain_convolution_runs():
    plain, recast = twins(4, 3, 3)
    odd = torch.randn(1, 4, 11, 12)   # an odd side cannot be split into 2×2 blocks
    assert torch.equal(recast(odd), plain(odd))
    plain_even, recast_even = twins(4, 3, 4)   # an even kernel would give odd output sides
    assert torch.equal(recast_even(odd[..., :10, :]), plain_even(odd[..., :10, :]))
    traced = torch.jit.trace(recast, torch.randn(1, 4, 12, 12))
    assert "pixel_unshuffle" not in str(traced.graph)   # exports (tracing, ONNX) see the plain convolution
    assert torch.equal(torch.jit.script(recast)(odd), plain(odd))


def test_the_transfer_network_uses_it_for_its_output_layer_only():
    network = TransformerNet(width=0.25)
    recast = [name for name, module in network.named_modules() if isinstance(module, FewOutputsConv2d)]
    assert recast == ["decoder.2.1"]
    assert "decoder.2.1.weight" in network.state_dict()   # checkpoints keep their keys
    images = torch.rand(1, 3, 32, 40)
    plain = F.conv2d   # the network's output equals the one computed with the plain convolution
    layer = network.decoder[2][1]
    with torch.no_grad():
        recast_output = network(images)
        layer.forward = lambda x: plain(x, layer.weight, layer.bias)
        plain_output = network(images)
    assert (recast_output - plain_output).abs().max() < 1e-5
