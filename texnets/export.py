"""Self-contained inference artefacts: TorchScript, ONNX, safetensors and a JSON manifest.

``export_generator(generator, directory)`` writes:
  * ``generator.torchscript.pt``: the generator compiled with TorchScript. ``torch.jit.load`` runs
    it with nothing but PyTorch installed: no texnets, no Lightning, no VGG.
  * ``generator.onnx`` (when the ``onnx`` package is installed: ``pip install texnets[onnx]``): the
    same network for ONNX Runtime, TensorRT and friends, with dynamic batch size and image size.
  * ``generator.safetensors``: the weights (and BatchNorm statistics), for any framework.
  * ``generator.json``: model type, hyper-parameters and how to feed it (noise pyramid or images).
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
ONNX_FILE = "generator.onnx"
ONNX_OPSET = 17
WEIGHTS_FILE = "generator.safetensors"
MANIFEST_FILE = "generator.json"


def _usage(generator) -> dict:
    if hasattr(generator, "layout"):  # solid textures: unpadded, fed noise windows of a global grid
        spec = generator.noise_spec
        return {
            "inputs": f"a list of {spec.scales} float32 noise tensors (N, {spec.channels}, d, h, w), finest first, "
                      f"and the crop offsets: {spec.scales - 1} lists of 3 ints (z, y, x), coarse to fine. "
                      "texnets.generators.solid_net.solid_layout(scales, origin, size) gives each level's "
                      "noise window and the offsets for the block [origin, origin + size)",
            "output": "(N, 3, D, H, W) RGB volume, nominally in [0, 1]: clamp before saving",
            "example": f"net = torch.jit.load('{TORCHSCRIPT_FILE}'); volume = net(noise, offsets).clamp(0, 1)",
            "onnx": "not exported: the crop offsets depend on where the block sits, which a traced graph "
                    "would freeze",
        }
    if hasattr(generator, "style_features"):  # arbitrary-style networks: the style is an input
        return {
            "inputs": f"two float32 tensors: photos (N, 3, H, W) and one style image (1, 3, Hs, Ws), RGB in [0, 1]; "
                      f"H and W multiples of {generator.size_multiple} (pad other sizes by reflection, crop after)",
            "output": "(N, 3, H, W) RGB, nominally in [0, 1]: clamp before saving",
            "example": f"net = torch.jit.load('{TORCHSCRIPT_FILE}'); stylised = net(photos, style).clamp(0, 1)",
            "onnx": "inputs 'content', 'style' -> outputs 'stylised'" if generator.transform == "adain" else
                    "not exported: WCT's eigendecomposition has no ONNX operator",
        }
    if hasattr(generator, "factor"):  # super-resolution
        return {
            "inputs": "one float32 tensor (N, 3, h, w): low-resolution RGB images in [0, 1], h and w of at least 8",
            "output": f"(N, 3, {generator.factor}h, {generator.factor}w) RGB, nominally in [0, 1]: clamp before saving",
            "example": f"net = torch.jit.load('{TORCHSCRIPT_FILE}'); upscaled = net(images).clamp(0, 1)",
            "onnx": "inputs 'images' (N, 3, h, w) -> outputs 'upscaled'",
        }
    if not hasattr(generator, "noise_spec"):  # image-to-image (transfer networks)
        return {
            "inputs": "one float32 tensor (N, 3, H, W): RGB images in [0, 1], any H and W of at least 16",
            "output": "(N, 3, H, W) RGB, nominally in [0, 1]: clamp before saving",
            "example": f"net = torch.jit.load('{TORCHSCRIPT_FILE}'); stylised = net(images).clamp(0, 1)",
            "onnx": "inputs 'images' (N, 3, H, W) -> outputs 'stylised'",
        }
    spec = generator.noise_spec
    return {
        "inputs": f"a list of {spec.scales} float32 tensors, finest first: level k has shape "
                  f"(N, {spec.channels}, H / 2**k, W / 2**k), uniform noise in [0, 1)",
        "size_multiple": generator.size_multiple,
        "output": "(N, 3, H, W) RGB, nominally in [0, 1]: clamp before saving",
        "example": (f"net = torch.jit.load('{TORCHSCRIPT_FILE}'); "
                    f"noise = [torch.rand(1, {spec.channels}, 256 >> k, 256 >> k) for k in range({spec.scales})]; "
                    f"image = net(noise).clamp(0, 1)"),
        "onnx": f"inputs 'noise0' (finest) ... 'noise{spec.scales - 1}' -> outputs 'image'",
    }


def _style_example(model: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    step = model.size_multiple
    return torch.rand(1, 3, 4 * step, 4 * step), torch.rand(1, 3, 4 * step, 4 * step)


def _to_torchscript(model: torch.nn.Module):
    """TorchScript by scripting, or by tracing for an arbitrary-style network, whose style statistics are
    Python dataclasses TorchScript cannot compile (the traced graph keeps the sizes dynamic)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of torch.export; tracer notes
        if hasattr(model, "style_features"):
            return torch.jit.trace(model, _style_example(model), check_trace=False)
        return torch.jit.script(model)


def export_onnx(model: torch.nn.Module, path: Path) -> bool:
    """Write ``model`` as ONNX with dynamic batch and spatial sizes; False when onnx is not installed."""
    try:
        import onnx  # noqa: F401 - torch.onnx needs it to serialise
    except ImportError:
        return False
    if hasattr(model, "layout"):  # solid textures: see _usage
        return False
    if hasattr(model, "style_features"):
        if model.transform != "adain":
            return False  # see _usage
        example, names, output = _style_example(model), ["content", "style"], "stylised"
    elif hasattr(model, "noise_spec"):
        spec = model.noise_spec
        example = (spec.sample(1, (2 * model.size_multiple,) * 2),)
        names = [f"noise{k}" for k in range(spec.scales)]
        output = "image"
    else:
        example = (torch.rand(1, 3, 64, 64),)
        names, output = ["images"], "upscaled" if hasattr(model, "factor") else "stylised"
    axes = {name: {0: "batch", 2: f"height_{name}", 3: f"width_{name}"} for name in names}
    axes[output] = {0: "batch", 2: "height", 3: "width"}
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter's constant-folding notes
        # dynamo=False: the TorchScript-based exporter needs only onnx, not onnxscript.
        torch.onnx.export(model, example, tmp, input_names=names, output_names=[output], dynamic_axes=axes,
                          opset_version=ONNX_OPSET, dynamo=False)
    return True


def export_generator(generator: torch.nn.Module, directory: str | os.PathLike, extra: dict | None = None) -> dict:
    """Write the three export files for ``generator`` into ``directory``; return their paths."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise TexnetsError(f"--export wants a folder, and {directory} is a file")
    directory.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(generator).cpu().float().eval()
    scripted = _to_torchscript(model)
    paths = {"torchscript": directory / TORCHSCRIPT_FILE, "weights": directory / WEIGHTS_FILE,
             "manifest": directory / MANIFEST_FILE}
    with atomic_path(paths["torchscript"]) as tmp:
        scripted.save(tmp)
    if export_onnx(model, directory / ONNX_FILE):
        paths["onnx"] = directory / ONNX_FILE
    state = {key: value.detach().contiguous() for key, value in model.state_dict().items()}
    header = {"model_type": model.model_type, "config": json.dumps(model.config_dict()), "texnets": __version__}
    with atomic_path(paths["weights"]) as tmp:
        save_file(state, tmp, metadata=header)
    save_json({"model_type": model.model_type, "config": model.config_dict(), "texnets_version": __version__,
               "files": {key: path.name for key, path in paths.items() if key != "manifest"},
               "usage": _usage(model), **(extra or {})}, paths["manifest"])
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


__all__ = ["MANIFEST_FILE", "ONNX_FILE", "TORCHSCRIPT_FILE", "WEIGHTS_FILE", "export_generator", "export_onnx",
           "load_exported_weights"]
