"""How synthesize.py runs a transfer network: eager PyTorch, ``torch.compile``, or ONNX Runtime.

    eager        the ``nn.Module`` as it is (the default, and the reference the others are tested against)
    compile      ``torch.compile`` (inductor). On a CPU, inference freezes the weights into the graph, so inductor
                 hands oneDNN pre-packed convolutions with bias and ReLU fused: a 1024² image in 0.6-0.7x eager's
                 time on 2 cores (BENCHMARKS.md, "head to head with pytorch/examples"). The first call of each new
                 size compiles (10-25 s there), so it pays for videos and folders of same-sized photos.
    onnxruntime  the network exported to ONNX in memory (texnets.export's exporter, dynamic batch and size) and
                 run by ONNX Runtime's CPU provider with torch's thread count. Johnson networks, fp32, on the CPU.

Each backend's output matches eager within float tolerance (tests/test_backends.py). Images tiled because they
exceed ``--block`` always run eagerly: tiling freezes instance-norm statistics inside the module, which neither a
compiled graph nor an exported one can follow.
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from texnets.errors import TexnetsError

BACKENDS = ("eager", "compile", "onnxruntime")


def prepare_network(network: torch.nn.Module, backend: str, device: torch.device, precision: str = "fp32",
                    channels_last: bool = False) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """``network`` (in eval mode, on ``device``) behind ``backend``; None for eager (run the module itself)."""
    if backend not in BACKENDS:
        raise TexnetsError(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if backend == "eager":
        return None
    if backend == "compile":
        if device.type != "cpu":   # GPUs keep inductor's defaults, which BENCHMARKS.md measured
            return torch.compile(network)
        # Freezing is for inference. With it, inductor in torch 2.14 fails to compile the dynamic-shape graph it
        # makes on meeting a second size, so each size gets a static graph of its own (dynamic=False).
        return torch.compile(network, dynamic=False, options={"freezing": True})
    return OnnxRuntimeNetwork(network, device, precision, channels_last)


class OnnxRuntimeNetwork:
    """A Johnson network exported to ONNX and run by ONNX Runtime; called like the module, on (N, 3, H, W)."""

    def __init__(self, network: torch.nn.Module, device: torch.device, precision: str = "fp32",
                 channels_last: bool = False):
        if getattr(network, "model_type", None) not in ("transformer_net", "sr_net"):
            raise TexnetsError("--backend onnxruntime runs Johnson networks (transfer and super-resolution); AdaIN "
                               "and WCT networks take eager or compile")
        if device.type != "cpu":
            raise TexnetsError("--backend onnxruntime runs on the CPU here (onnxruntime's CPU build): add --device cpu")
        if precision != "fp32" or channels_last:
            raise TexnetsError("--backend onnxruntime runs fp32 in its own memory layout: drop --precision and "
                               "--channels-last")
        try:
            import onnxruntime
        except ImportError:
            raise TexnetsError("--backend onnxruntime needs onnx and onnxruntime: pip install '.[onnx]'") from None
        from texnets.export import export_onnx
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()   # the same threads as eager, for a fair comparison
        options.inter_op_num_threads = 1
        with tempfile.TemporaryDirectory() as scratch:   # the session reads the file once; nothing is left behind
            path = Path(scratch) / "generator.onnx"
            if not export_onnx(network, path):
                raise TexnetsError("--backend onnxruntime needs onnx and onnxruntime: pip install '.[onnx]'")
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        pixels = images.detach().to("cpu", torch.float32).contiguous().numpy()
        (output,) = self.session.run(None, {self.input_name: pixels})
        return torch.from_numpy(output)


__all__ = ["BACKENDS", "OnnxRuntimeNetwork", "prepare_network"]
