"""Helpers shared by the test modules (no test module imports another)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from texnets.checkpoints import checkpoint_metadata
from texnets.generators import TransformerNet


def one_error_line(err: str) -> str:
    """The single ``error:`` line of a front door's stderr; fails on a traceback or on several errors."""
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    return errors[0]


def run_main(main: Callable[[list[str]], int], argv: Sequence, capsys) -> tuple[int, str]:
    """Call a front door's ``main`` in-process with ``argv`` (anything str() takes); (exit code, stderr)."""
    code = main([str(arg) for arg in argv])
    return code, capsys.readouterr().err


def make_transfer_checkpoint(path: Path, **config) -> Path:
    """A checkpoint as TransferTask writes it, around a random quarter-width TransformerNet whose
    InstanceNorm affine parameters are not the identity (so the output is not a plain function of the
    input's local contrast)."""
    torch.manual_seed(0)
    net = TransformerNet(**{"width": 0.25, **config})
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.InstanceNorm2d):
                module.weight.copy_(1 + 0.3 * torch.randn(module.weight.shape, generator=generator))
                module.bias.copy_(0.2 * torch.randn(module.bias.shape, generator=generator))
    state = {f"generator.{key}": value for key, value in net.state_dict().items()}
    torch.save({"state_dict": state, "global_step": 5,
                "texnets": checkpoint_metadata("transformer_net", net.config_dict(),
                                               training={"style": "starry_night.jpg", "size": 32})}, path)
    return path
