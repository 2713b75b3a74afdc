"""texnets.backends: each way of running a transfer network gives eager's output within float tolerance, and a
backend that cannot run says so in one line."""
import sys

import pytest
import torch

from helpers import randomise_norms
from texnets.backends import BACKENDS, OnnxRuntimeNetwork, prepare_network
from texnets.errors import TexnetsError
from texnets.generators import TransformerNet
from texnets.inference import Stylizer

CPU = torch.device("cpu")
# fp32 on both sides, with different kernels and summation orders: outputs in [0, 1] agree to well under one
# 8-bit level (1/255 = 4e-3).
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def network() -> TransformerNet:
    torch.manual_seed(0)
    return randomise_norms(TransformerNet(width=0.25)).eval()


def eager(network, images):
    with torch.no_grad():
        return network(images)


def test_eager_is_the_module_itself(network):
    assert prepare_network(network, "eager", CPU) is None
    assert BACKENDS == ("eager", "compile", "onnxruntime")


def test_onnxruntime_matches_eager_at_any_size_and_batch(network):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    run = prepare_network(network, "onnxruntime", CPU)
    assert isinstance(run, OnnxRuntimeNetwork)
    for shape in [(1, 3, 48, 64), (2, 3, 37, 50)]:   # dynamic batch and size, odd sizes too
        images = torch.rand(shape, generator=torch.Generator().manual_seed(sum(shape)))
        output = run(images)
        assert output.shape == shape
        assert (output - eager(network, images)).abs().max() < TOLERANCE


def test_compile_matches_eager_at_two_sizes(network):
    run = prepare_network(network, "compile", CPU)
    for shape in [(2, 3, 40, 48), (1, 3, 36, 52)]:   # a second size compiles a graph of its own
        images = torch.rand(shape, generator=torch.Generator().manual_seed(sum(shape)))
        with torch.no_grad():
            output = run(images)
        assert (output - eager(network, images)).abs().max() < TOLERANCE


def test_the_stylizer_runs_a_backend_and_tiles_eagerly(network):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    images = torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(2))
    reference = Stylizer(network, block=1024)(images)
    through_ort = Stylizer(network, block=1024, backend="onnxruntime")
    assert (through_ort(images) - reference).abs().max() < TOLERANCE
    # Larger than the block: tiles, run by the eager module (instance-norm statistics are frozen in it).
    tiled = Stylizer(network, block=32, backend="onnxruntime")(images)
    assert (tiled - Stylizer(network, block=32)(images)).abs().max() == 0


@pytest.mark.parametrize("kwargs, message", [
    ({"backend": "tensorrt"}, "--backend must be one of eager, compile, onnxruntime"),
    ({"backend": "onnxruntime", "device": torch.device("cuda")}, "runs on the CPU here"),
    ({"backend": "onnxruntime", "precision": "bf16"}, "runs fp32"),
    ({"backend": "onnxruntime", "channels_last": True}, "runs fp32"),
])
def test_a_backend_that_cannot_run_says_why(network, kwargs, message):
    arguments = {"backend": "eager", "device": CPU, **kwargs}
    with pytest.raises(TexnetsError, match=message):
        prepare_network(network, **arguments)


def test_onnxruntime_is_for_johnson_networks(network):
    class Wrapped(torch.nn.Module):   # e.g. an AdaIN network with its styles bound
        def forward(self, images):
            return images
    with pytest.raises(TexnetsError, match=r"runs Johnson networks \(transfer and super-resolution\)"):
        prepare_network(Wrapped(), "onnxruntime", CPU)


def test_onnxruntime_missing_is_one_line(network, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)   # import onnxruntime now raises ImportError
    with pytest.raises(TexnetsError, match=r"pip install '\.\[onnx\]'"):
        prepare_network(network, "onnxruntime", CPU)


def test_compile_and_another_backend_disagree(network):
    with pytest.raises(TexnetsError, match="disagree"):
        Stylizer(network, compile=True, backend="onnxruntime")
    assert Stylizer(network, compile=True).backend == "compile"
