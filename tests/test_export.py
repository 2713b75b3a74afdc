"""Export of generators (texnets.export): a solid generator exported to TorchScript reproduces a block
from the same noise and offsets, is not exported to ONNX (a traced graph would freeze the offsets), and
its manifest says how to build its inputs."""
import json

import torch

from texnets.checkpoints import load_generator
from texnets.export import TORCHSCRIPT_FILE, export_generator
from texnets.volumes import block_noise


def test_torchscript_export_reproduces_a_block(solid_checkpoint, tmp_path):
    generator = load_generator(solid_checkpoint).generator
    files = export_generator(generator, tmp_path / "export")
    assert "onnx" not in files   # offsets would be frozen into a traced graph: not exported
    scripted = torch.jit.load(str(tmp_path / "export" / TORCHSCRIPT_FILE))
    noise, offsets = block_noise(generator, (3, 1, -2), (6, 7, 8), seed=0)
    with torch.no_grad():
        torch.testing.assert_close(scripted(noise, offsets), generator(noise, offsets))
    manifest = json.loads((tmp_path / "export" / "generator.json").read_text())
    assert "solid_layout" in manifest["usage"]["inputs"]
