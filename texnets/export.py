"""Self-contained inference artefacts: TorchScript + safetensors + a JSON manifest.

``export_generator(generator, directory)`` writes:
  * ``generator.torchscript.pt``: the generator compiled with TorchScript. ``torch.jit.load`` runs
    it with nothing but PyTorch installed: no texnets, no Lightning, no VGG.
  * ``generator.safetensors``: the weights (and BatchNorm statistics), for any framework.
  * ``generator.json``: model type, hyper-parameters and how to feed it (the noise pyramid).

ONNX would need the ``onnx`` package, which texnets does not depend on; TorchScript covers PyTorch
deployments and the safetensors file covers re-implementations.
"""
from __future__ import annotations

import copy
import json
import os
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from texnets import __version__
from texnets.errors import TexnetsError
from texnets.generators import build_generator
from texnets.images import atomic_path, save_json

TORCHSCRIPT_FILE = "generator.torchscript.pt"
WEIGHTS_FILE = "generator.safetensors"
MANIFEST_FILE = "generator.json"


def _noise_usage(generator) -> dict:
    spec = generator.noise_spec
    return {
        "inputs": f"a list of {spec.scales} float32 tensors, finest first: level k has shape "
                  f"(N, {spec.channels}, H / 2**k, W / 2**k), uniform noise in [0, 1)",
        "size_multiple": generator.size_multiple,
        "output": "(N, 3, H, W) RGB, nominally in [0, 1]: clamp before saving",
        "example": (f"net = torch.jit.load('{TORCHSCRIPT_FILE}'); "
                    f"noise = [torch.rand(1, {spec.channels}, 256 >> k, 256 >> k) for k in range({spec.scales})]; "
                    f"image = net(noise).clamp(0, 1)"),
    }


def export_generator(generator: torch.nn.Module, directory: str | os.PathLike, extra: dict | None = None) -> dict:
    """Write the three export files for ``generator`` into ``directory``; return their paths."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise TexnetsError(f"--export wants a folder, and {directory} is a file")
    directory.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(generator).cpu().float().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated in favour of torch.export
        scripted = torch.jit.script(model)
    paths = {"torchscript": directory / TORCHSCRIPT_FILE, "weights": directory / WEIGHTS_FILE,
             "manifest": directory / MANIFEST_FILE}
    with atomic_path(paths["torchscript"]) as tmp:
        scripted.save(tmp)
    state = {key: value.detach().contiguous() for key, value in model.state_dict().items()}
    header = {"model_type": model.model_type, "config": json.dumps(model.config_dict()), "texnets": __version__}
    with atomic_path(paths["weights"]) as tmp:
        save_file(state, tmp, metadata=header)
    save_json({"model_type": model.model_type, "config": model.config_dict(), "texnets_version": __version__,
               "files": {key: path.name for key, path in paths.items() if key != "manifest"},
               "usage": _noise_usage(model), **(extra or {})}, paths["manifest"])
    return {key: str(path) for key, path in paths.items()}


def load_exported_weights(directory: str | os.PathLike) -> torch.nn.Module:
    """Rebuild the generator from ``generator.json`` + ``generator.safetensors`` (texnets needed,
    training code not). ``torch.jit.load(directory / TORCHSCRIPT_FILE)`` needs neither."""
    directory = Path(directory)
    try:
        manifest = json.loads((directory / MANIFEST_FILE).read_text())
        state = load_file(directory / WEIGHTS_FILE)
    except (OSError, ValueError) as exc:
        raise TexnetsError(f"{directory} is not a readable texnets export ({exc})".splitlines()[0]) from None
    generator = build_generator(manifest["model_type"], manifest["config"])
    generator.load_state_dict(state)
    return generator.eval()


__all__ = ["MANIFEST_FILE", "TORCHSCRIPT_FILE", "WEIGHTS_FILE", "export_generator", "load_exported_weights"]
