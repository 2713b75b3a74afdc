"""Helpers shared by the test modules (no test module imports another)."""
from __future__ import annotations

import contextlib
import functools
import json
import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path

import av
import numpy as np
import pytorch_lightning as pl
import torch
from PIL import Image
from torch import nn

from texnets.checkpoints import checkpoint_metadata
from texnets.generators import SolidTextureNet, SuperResolutionNet, TextureNet, TransformerNet
from texnets.generators.transformer_net import ConditionalInstanceNorm2d
from texnets.images import read_image, resize
from texnets.tasks.base import recalibrate_batch_norm
from texnets.tasks.solid import slab_batch


def one_error_line(err: str) -> str:
    """The single ``error:`` line of a front door's stderr; fails on a traceback or on several errors."""
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    return errors[0]


def call_main(main: Callable[[list[str]], int], argv: Sequence, capsys) -> tuple[int, str]:
    """Call a front door's ``main`` in-process with ``argv`` (anything str() takes); (exit code, stderr)."""
    code = main([str(arg) for arg in argv])
    return code, capsys.readouterr().err


def call_main_out(main: Callable[[list[str]], int], argv: Sequence, capsys) -> tuple[int, str, str]:
    """As ``call_main``, for front doors whose stdout matters too: (exit code, stdout, stderr)."""
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def pixels(path: Path) -> np.ndarray:
    """An image file's RGB pixels as int16 (so differences do not wrap around)."""
    return np.asarray(Image.open(path).convert("RGB")).astype(np.int16)


MULTISTYLE_NAMES = ("starry_night.jpg", "udnie.jpg", "composition_vii.jpg", "shipwreck_minotaur.jpg")


def make_transfer_checkpoint(path: Path, **config) -> Path:
    """A checkpoint as TransferTask writes it, around a random quarter-width TransformerNet whose
    InstanceNorm affine parameters are not the identity (so the output is not a plain function of the
    input's local contrast). With ``styles=N`` (up to 4) every style's row differs and the training styles are
    named from MULTISTYLE_NAMES."""
    torch.manual_seed(0)
    net = TransformerNet(**{"width": 0.25, **config})
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (torch.nn.InstanceNorm2d, ConditionalInstanceNorm2d)):
                module.weight.copy_(1 + 0.3 * torch.randn(module.weight.shape, generator=generator))
                module.bias.copy_(0.2 * torch.randn(module.bias.shape, generator=generator))
    state = {f"generator.{key}": value for key, value in net.state_dict().items()}
    training = {"style": "starry_night.jpg", "size": 32} if net.styles == 1 else \
        {"styles": [f"styles/{name}" for name in MULTISTYLE_NAMES[:net.styles]], "size": 32}
    torch.save({"state_dict": state, "global_step": 5,
                "texnets": checkpoint_metadata("transformer_net", net.config_dict(), training=training)}, path)
    return path


def make_sr_checkpoint(path: Path, loss: str = "feature", held_aside: Sequence = (), postprocess: str = "none",
                       **config) -> Path:
    """A checkpoint as SuperResolutionTask writes it, around a small random SuperResolutionNet (8 channels, one
    residual block) whose BatchNorm statistics and affine parameters are not the identity. ``postprocess``:
    ``none`` (the raw network, which the pixel-exact tests compare with) or ``histogram_matching`` (the task's
    default)."""
    torch.manual_seed(0)
    net = SuperResolutionNet(**{"channels": 8, "residual_blocks": 1, **config})
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.copy_(0.1 * torch.randn(module.running_mean.shape, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(module.running_var.shape, generator=generator))
                module.weight.copy_(1 + 0.3 * torch.randn(module.weight.shape, generator=generator))
                module.bias.copy_(0.2 * torch.randn(module.bias.shape, generator=generator))
    state = {f"generator.{key}": value for key, value in net.state_dict().items()}
    training = {"task": "super_resolution", "factor": net.factor, "loss": loss,
                "degradation": {"blur_sigma": 1.0, "downsampling": "bicubic"}, "postprocess": postprocess, "size": 32,
                "val_images": [str(photo) for photo in held_aside]}
    torch.save({"state_dict": state, "global_step": 5,
                "texnets": checkpoint_metadata("sr_net", net.config_dict(), training=training)}, path)
    return path


def make_texture_checkpoint(path: Path, **config) -> Path:
    """A checkpoint as a TextureTask writes it, around a random generator with non-trivial BatchNorm
    statistics and output_scale 1 (so samples are not a flat grey)."""
    torch.manual_seed(0)
    net = TextureNet(**{"scales": 3, "output_scale": 1.0, **config}).train()
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # running statistics = the exact average: well-normalised, textured output
    with torch.no_grad():
        for _ in range(3):
            net(net.noise_spec.sample(2, (32, 32)))
    state = {f"generator.{key}": value for key, value in net.state_dict().items()}
    torch.save({"state_dict": state, "global_step": 7,
                "texnets": checkpoint_metadata("texture_net", net.config_dict(), training={"size": [32, 32]})}, path)
    return path


def random_eval_net(**config) -> TextureNet:
    """A TextureNet with non-trivial BatchNorm statistics, in eval mode, output in [0, 1] units
    (output_scale 1) so differences are not hidden by the 1/255 output gain."""
    torch.manual_seed(0)
    net = TextureNet(output_scale=1.0, **config)
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(net.noise_spec.sample(2, (32, 32)))
    return net.eval()


def randomise_norms(net: TransformerNet, seed: int = 0) -> TransformerNet:
    """``net`` with non-trivial InstanceNorm affine parameters (a fresh net has weight 1, bias 0)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.InstanceNorm2d):
                module.weight.copy_(1 + 0.5 * torch.randn(module.weight.shape, generator=generator))
                module.bias.copy_(0.3 * torch.randn(module.bias.shape, generator=generator))
    return net


def calibrated_net(**config) -> SolidTextureNet:
    """A random SolidTextureNet whose BatchNorm statistics are exact averages over a few slab batches and
    whose output is in [0, 1] units (output_scale 1), so volumes are textured rather than flat grey."""
    torch.manual_seed(0)
    net = SolidTextureNet(**{"scales": 3, "output_scale": 1.0, **config})
    generator = torch.Generator().manual_seed(0)
    recalibrate_batch_norm(net, (tuple(slab_batch(net.noise_spec, axis, 24, 2, (1, 2, 3), generator))
                                 for axis in "xyz"))
    return net.eval()


def photo(path, size) -> torch.Tensor:
    """A real photo as a (1, 3, H, W) tensor of exactly ``size``."""
    return resize(read_image(path), tuple(size)).unsqueeze(0)


def report(run_dir: Path) -> dict:
    """A run folder's report.json (written by RunReport), parsed."""
    return json.loads((run_dir / "report.json").read_text())


def ckpt(path: Path) -> dict:
    """A checkpoint file as saved (on the CPU, weights only)."""
    return torch.load(path, map_location="cpu", weights_only=True)


# Clips made with PyAV: 10 frames of a moving gradient, 64x48 at 12 fps, with a 16 kHz sine as AAC.
CLIP_WIDTH, CLIP_HEIGHT, CLIP_FRAMES, CLIP_FPS = 64, 48, 10, 12


def gradient_frames(n=CLIP_FRAMES, width=CLIP_WIDTH, height=CLIP_HEIGHT) -> list[np.ndarray]:
    """Smooth frames (H.264 keeps them well) that differ from one another: a gradient sliding right."""
    x = np.arange(width)[None, :]
    y = np.arange(height)[:, None]
    frames = []
    for i in range(n):
        red = (x * 3 + i * 12) % 256 + 0 * y
        green = np.broadcast_to(y * 255 // max(1, height - 1), (height, width))
        blue = np.full((height, width), 64 + 16 * i)
        frames.append(np.stack([red, green, blue], axis=-1).astype(np.uint8))
    return frames


def make_clip(path, frames, fps=CLIP_FPS, audio=True, rotation=None):
    """Encode uint8 (H, W, 3) frames to ``path`` with PyAV, optionally with an AAC sine and a rotation."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        sound = None
        if audio:
            sound = out.add_stream("aac", rate=16000)
            sound.layout = "mono"
        for i, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
        if sound is not None:
            t = np.arange(16000 * len(frames) // fps) / 16000
            samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
            chunk = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
            chunk.sample_rate, chunk.pts = 16000, 0
            for packet in [*sound.encode(chunk), *sound.encode(None)]:
                out.mux(packet)
    return path


def ranks_in_sync(out_dir: Path) -> list[str]:
    """Check the two ranks' saved states (SaveRankState) hold identical weights; return what DDP ignored."""
    ranks = [torch.load(out_dir / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["world_size"] == 2 for r in ranks)
    assert ranks[0]["strategy"] == "DDPStrategy"
    # Gradients are all-reduced, so both processes hold the same weights after every step.
    for name, value in ranks[0]["params"].items():
        assert torch.equal(value, ranks[1]["params"][name]), name
    return ranks[0]["ignored"]


class SaveRankState(pl.Callback):
    """Loaded by the train.py processes (via a config): each rank records its final weights and
    what DDP was told to leave alone."""

    def __init__(self, out_dir: str):
        self.out_dir = out_dir

    def on_train_end(self, trainer, pl_module):
        wrapper = trainer.strategy.model  # the DistributedDataParallel module
        ignored = sorted(getattr(wrapper, "parameters_to_ignore", []))
        torch.save({"params": {k: v.detach().cpu() for k, v in pl_module.generator.named_parameters()},
                    "ignored": ignored, "world_size": trainer.world_size, "rank": trainer.global_rank,
                    "strategy": type(trainer.strategy).__name__},
                   Path(self.out_dir) / f"rank{trainer.global_rank}.pt")


def rank_state_config(tmp_path: Path) -> tuple[Path, dict]:
    """A train.py config that adds ``SaveRankState`` (writing to ``tmp_path``), and the environment in which
    the train.py processes can import it: (config path, environment)."""
    extra = tmp_path / "ddp.yaml"
    extra.write_text("trainer:\n  callbacks:\n    - class_path: helpers.SaveRankState\n"
                     f"      init_args: {{out_dir: '{tmp_path}'}}\n")
    tests = Path(__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests), str(tests.parent)]), "OMP_NUM_THREADS": "1"}
    return extra, env


def make_arbitrary_checkpoint(path: Path, model_type: str = "adain_net", **config) -> Path:
    """A checkpoint as AdaINTask / WCTTask writes it, around a random narrow decoder (or decoders)."""
    from texnets.generators import build_generator
    from texnets.images import load_image
    torch.manual_seed(0)
    net = build_generator(model_type, {"width": 0.125, **config})
    # A random decoder's output is nearly constant and mostly clipped; rescale each decoder's last convolution
    # so a photo decodes to mid-grey ± 0.2 per channel: outputs then vary and differences show.
    photo = load_image("builtin:astronaut", (64, 64))
    with torch.no_grad():
        for level, decoder in net.decoders.items():
            out = decoder(net.encode(photo, [level])[level])
            mean, std = out.mean((0, 2, 3)), out.std((0, 2, 3)).clamp_min(1e-6)
            last = decoder.body[-1]
            last.weight.mul_((0.2 / std).view(-1, 1, 1, 1))
            last.bias.copy_((last.bias - mean) * 0.2 / std + 0.5)
    state = {f"generator.{key}": value for key, value in net.state_dict().items()}
    torch.save({"state_dict": state, "global_step": 5,
                "texnets": checkpoint_metadata(model_type, net.config_dict(), training={"size": 32})}, path)
    return path


def make_solid_checkpoint(path: Path) -> Path:
    """A checkpoint as a SolidTextureTask writes it, around ``calibrated_net()`` (3 scales)."""
    net = calibrated_net()
    state = {f"generator.{key}": value for key, value in net.state_dict().items()}
    torch.save({"state_dict": state, "global_step": 5,
                "texnets": checkpoint_metadata(net.model_type, net.config_dict(), training={"size": [24, 24, 24]})},
               path)
    return path


def make_studio_runs(root: Path) -> Path:
    """A checkpoints folder as train.py leaves it, one tiny random run per studio model type, plus one corrupt run:
    starry (Johnson), mosaic (Johnson, 3 styles), adain (AdaIN), enlarge (x4 super-resolution, histogram-matched),
    pebbles (texture network), marble (solid texture), broken (truncated)."""
    makers = {"starry": make_transfer_checkpoint, "mosaic": functools.partial(make_transfer_checkpoint, styles=3),
              "adain": make_arbitrary_checkpoint,
              "enlarge": functools.partial(make_sr_checkpoint, postprocess="histogram_matching"),
              "pebbles": make_texture_checkpoint, "marble": make_solid_checkpoint}
    for name, make in makers.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        make(root / name / "last.ckpt")
    (root / "broken").mkdir(exist_ok=True)
    (root / "broken" / "last.ckpt").write_bytes((root / "starry" / "last.ckpt").read_bytes()[:300])
    return root


def free_port() -> int:
    """A loopback port that was free a moment ago (for a server a test starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def served_studio(runs: Path, scratch: Path, port: int | None = None):
    """The studio over the runs in ``runs``, served on loopback (``port``, else a free one), writing its results under
    ``scratch``; yields its address and stops it at the end."""
    from texnets.studio.catalog import Catalog
    from texnets.studio.functions import Workspace
    from texnets.studio.ui import build_app, launch
    demo = build_app(Catalog(runs), Workspace(scratch))
    port = port or free_port()
    launch(demo, "127.0.0.1", port, block=False)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()
        demo.studio_workspace.close()
