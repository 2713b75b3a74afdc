"""Deep Image Prior: the skip network's shapes and upsampling modes, denoising that beats its noisy input,
super-resolution and inpainting end to end through train.py (restored.png + restored.json), the best-PSNR
output kept, a resumed run that continues its history, and one-line errors for bad input."""
import functools
import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

import train
from helpers import call_main, one_error_line
from texnets.errors import TexnetsError
from texnets.generators import GENERATORS, build_generator
from texnets.generators.skip_net import SkipNet, SkipNetConfig
from texnets.images import load_image, read_image, save_image
from texnets.quality import psnr_ssim, quantize
from texnets.tasks.prior import DeepImagePriorDataModule, DeepImagePriorTask, RestorationImages

REPO = Path(__file__).resolve().parents[1]
SMALL_NET = {"input_channels": 8, "levels": 3, "down_channels": 16, "up_channels": 16, "skip_channels": 4}
SMALL_NET_ARGS = [arg for key, value in SMALL_NET.items() for arg in (f"--model.generator.{key}", value)]

TINY_DIP_CONFIG = """\
# Deep Image Prior small enough for a test: a 3-level, 16-channel skip network and a few steps.
seed_everything: 0
model:
  class_path: texnets.tasks.prior.DeepImagePriorTask
  init_args:
    task: {task}
    generator: {{input_channels: 8, levels: 3, down_channels: 16, up_channels: 16, skip_channels: 4}}
    ema_decay: 0.5
    eval_every: 5
    snapshot_every: 10
data:
  class_path: texnets.tasks.prior.DeepImagePriorDataModule
  init_args:
    image: null
trainer:
  accelerator: cpu
  max_steps: 20
  log_every_n_steps: 1
  enable_progress_bar: false
  enable_model_summary: false
checkpoint_every: 10
"""


run_main = functools.partial(call_main, train.main)


def tiny_config(tmp_path: Path, task: str) -> Path:
    path = tmp_path / f"tiny_{task}.yaml"
    path.write_text(TINY_DIP_CONFIG.format(task=task))
    return path


def photo(tmp_path: Path, name: str, size: tuple[int, int], spec: str = "builtin:coffee") -> Path:
    """A small photo written to a PNG file (exact size, 8-bit)."""
    return save_image(load_image(spec, size), tmp_path / name)


def restored(run_dir: Path) -> tuple[torch.Tensor, dict]:
    return read_image(run_dir / "restored.png").unsqueeze(0), json.loads((run_dir / "restored.json").read_text())


# -- the network ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("upsample", ["bilinear", "nearest", "transposed"])
def test_skip_net_keeps_the_input_size_in_every_upsampling_mode(upsample):
    torch.manual_seed(0)
    net = SkipNet(SkipNetConfig(**SMALL_NET, upsample=upsample))
    output = net(torch.rand(2, 8, 32, 48) * 0.1)
    assert output.shape == (2, 3, 32, 48)
    assert 0 < output.min() and output.max() < 1  # sigmoid output
    transposed = [m for m in net.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(transposed) == (3 if upsample == "transposed" else 0)
    output.mean().backward()  # differentiable end to end
    assert all(p.grad is not None for p in net.parameters())


def test_skip_net_config_round_trips_and_refuses_bad_values():
    config = SkipNetConfig()
    # The paper's default architecture (denoising and super-resolution notebooks).
    assert (config.input_channels, config.levels, config.upsample, config.padding) == (32, 5, "bilinear", "reflect")
    assert config.down_channels == config.up_channels == [128] * 5 and config.skip_channels == [4] * 5
    net = build_generator("skip_net", SkipNet(**SMALL_NET).config_dict())
    assert GENERATORS["skip_net"] is SkipNet and net.config_dict() == SkipNet(**SMALL_NET).config_dict()
    assert SkipNet(levels=2, down_channels=[8, 16], up_channels=4).config.up_channels == [4, 4]
    with pytest.raises(TexnetsError, match="unknown skip-net hyper-parameter"):
        SkipNet.from_config({"levels": 3, "depth": 4})
    with pytest.raises(TexnetsError, match="upsample must be one of"):
        SkipNetConfig(upsample="bicubic")
    with pytest.raises(TexnetsError, match="lists 2 values for 3 levels"):
        SkipNetConfig(levels=3, down_channels=[8, 8])
    net = SkipNet(**SMALL_NET)  # 3 levels, reflection: multiples of 8, at least 16 px
    assert net.padded_size(36, 50) == (40, 56) and net.padded_size(5, 8) == (16, 16)
    with pytest.raises(TexnetsError, match="multiples of 8 and at least 16 px, not 50x36; pad the input to 56x40"):
        net(torch.rand(1, 8, 36, 50))


# -- the data ------------------------------------------------------------------------------------------

def test_the_data_module_synthesises_each_degradation_from_a_clean_image():
    noisy = DeepImagePriorDataModule(clean="builtin:coffee", add_noise_sigma=25, max_size=64).load("denoise")
    assert noisy.output_size == (43, 64) and noisy.ground_truth == "builtin:coffee"
    assert float((noisy.degraded - noisy.clean).std()) == pytest.approx(25 / 255, rel=0.15)  # clipped at 0 and 1
    # Resized for max_size to sides that the factor divides: 64x43 would not be.
    low_res = DeepImagePriorDataModule(clean="builtin:coffee", factor=4, max_size=64).load("super_resolve")
    assert low_res.output_size == (44, 64) and low_res.degraded.shape[-2:] == (11, 16) and low_res.factor == 4
    # A synthetic mask drops pixels of the image itself, which is then the ground truth.
    holes = DeepImagePriorDataModule(image="builtin:coffee", mask="bernoulli:0.5", max_size=64).load("inpaint")
    assert torch.equal(holes.clean, load_image("builtin:coffee", (43, 64)))
    assert 0.4 < float(holes.mask.mean()) < 0.6 and torch.equal(holes.degraded, holes.clean * holes.mask)
    with pytest.raises(TexnetsError, match="bernoulli:<p> with 0 < p < 1"):
        DeepImagePriorDataModule(image="builtin:coffee", mask="bernoulli:2").load("inpaint")


# -- the fitting loop ------------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:.*LeafSpec")  # Lightning internals vs newer torch (train.py silences it too)
def test_denoising_brings_the_output_closer_to_the_clean_image_than_the_noisy_input(tmp_path):
    pl.seed_everything(0, verbose=False)
    # 43x64 (coffee at 64 px): not a multiple of 8, so the noise input is padded and the output cropped.
    task = DeepImagePriorTask("denoise", generator=SMALL_NET, ema_decay=0.9, eval_every=10)
    data = DeepImagePriorDataModule(clean="builtin:coffee", add_noise_sigma=25, max_size=64)
    trainer = pl.Trainer(max_steps=120, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(task, data)

    image, report = restored(tmp_path)
    clean, noisy = task.images.clean, task.images.degraded
    assert image.shape == clean.shape == noisy.shape == (1, 3, 43, 64)
    mse_restored, mse_noisy = float(((image - clean) ** 2).mean()), float(((noisy - clean) ** 2).mean())
    assert mse_restored < 0.8 * mse_noisy, (mse_restored, mse_noisy)
    assert report["ground_truth"] and report["kept"] == "best_psnr"
    assert report["best"]["psnr"] > report["input_psnr"]["psnr"] + 1
    # restored.png is the best evaluated output, and the report's figures are the file's.
    assert report["best"]["psnr"] == max(entry["psnr"] for entry in report["history"])
    assert float(psnr_ssim(image, clean)[0][0]) == pytest.approx(report["best"]["psnr"], abs=1e-3)
    assert [entry["step"] for entry in report["history"]] == [1, *range(10, 121, 10)]


def test_the_best_psnr_output_is_kept_not_the_last():
    task = DeepImagePriorTask("denoise", generator=SMALL_NET)
    clean = load_image("builtin:coffee", (16, 24))
    noisy = (clean + 0.2 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    task.set_images(RestorationImages(noisy, (16, 24), clean=clean, ground_truth="test"))
    for step, output in enumerate([noisy, (clean + noisy) / 2, noisy], start=1):  # improves, then overfits
        task._average = output
        task._evaluate(step, None, None)
    report = task.result_report(3)
    assert report["kept_step"] == report["best"]["step"] == 2
    assert report["final"]["psnr"] < report["best"]["psnr"]
    assert torch.equal(task._best["image"], quantize((clean + noisy) / 2))


def test_front_door_denoises_a_noisy_file_against_a_clean_file(tmp_path, capsys):
    clean = photo(tmp_path, "clean.png", (32, 48))
    noisy = (read_image(clean) + 0.1 * torch.randn(3, 32, 48, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    save_image(noisy, tmp_path / "noisy.png")
    code, err = run_main(["--config", REPO / "configs" / "dip_denoise.yaml", "--data.image", tmp_path / "noisy.png",
                          "--data.clean", clean, "--output_dir", tmp_path / "runs", "--trainer.max_steps", 6,
                          "--trainer.enable_progress_bar", "false", *SMALL_NET_ARGS], capsys)
    assert code == 0, err
    image, report = restored(tmp_path / "runs" / "dip_denoise")
    assert image.shape == (1, 3, 32, 48)
    assert report["ground_truth_source"] == str(clean) and report["data"]["image"] == str(tmp_path / "noisy.png")
    assert report["history"][-1]["step"] == 6


def test_super_resolution_runs_end_to_end_and_reports_psnr_per_step(tmp_path, capsys):
    clean = photo(tmp_path, "clean.png", (64, 64))
    code, err = run_main(["--config", tiny_config(tmp_path, "super_resolve"), "--data.clean", clean,
                          "--data.factor", 4, "--output_dir", tmp_path / "runs"], capsys)
    assert code == 0, err
    run_dir = tmp_path / "runs" / "tiny_super_resolve"
    image, report = restored(run_dir)
    assert image.shape == (1, 3, 64, 64)  # 16x16 low-resolution input, x4
    assert report["task"] == "super_resolve" and report["size"] == [64, 64]
    assert report["input_psnr"]["of"].startswith("bicubic")
    assert [entry["step"] for entry in report["history"]] == [1, 5, 10, 15, 20]
    assert all(entry["psnr"] > 0 and 0 < entry["ssim"] <= 1 for entry in report["history"])
    assert report["wall_seconds"] > 0

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(run_dir))
    events.Reload()
    assert {"train/loss", "train/psnr", "train/ssim"} <= set(events.Tags()["scalars"])
    assert {"input", "ground_truth", "restored"} <= set(events.Tags()["images"])


def test_inpainting_runs_end_to_end_and_a_resumed_run_continues_its_history(tmp_path, capsys):
    clean = photo(tmp_path, "clean.png", (40, 40))
    mask = torch.ones(3, 40, 40)
    mask[:, 10:22, 14:30] = 0  # a black hole to fill in
    save_image(mask, tmp_path / "mask.png")
    damaged = read_image(clean) * mask
    save_image(damaged, tmp_path / "damaged.png")
    args = ["--config", tiny_config(tmp_path, "inpaint"), "--data.image", tmp_path / "damaged.png",
            "--data.mask", tmp_path / "mask.png", "--data.clean", clean, "--output_dir", tmp_path / "runs"]
    code, err = run_main(args + ["--trainer.max_steps", 10], capsys)
    assert code == 0, err
    run_dir = tmp_path / "runs" / "tiny_inpaint"
    image, report = restored(run_dir)
    assert image.shape == (1, 3, 40, 40) and report["steps"] == 10
    assert [entry["step"] for entry in report["history"]] == [1, 5, 10]

    code, err = run_main(args + ["--ckpt_path", run_dir / "last.ckpt", "--trainer.max_steps", 15], capsys)
    assert code == 0, err
    _, resumed = restored(run_dir)
    assert [entry["step"] for entry in resumed["history"]] == [1, 5, 10, 15]
    assert resumed["history"][:3] == report["history"]


def test_without_ground_truth_the_last_output_is_kept_and_the_report_says_so(tmp_path, capsys):
    code, err = run_main(["--config", tiny_config(tmp_path, "denoise"), "--data.image", photo(tmp_path, "a.png", (24, 24)),
                          "--trainer.max_steps", 3, "--output_dir", tmp_path / "runs"], capsys)
    assert code == 0, err
    image, report = restored(tmp_path / "runs" / "tiny_denoise")
    assert image.shape == (1, 3, 24, 24)
    assert not report["ground_truth"] and report["kept"] == "final" and report["kept_step"] == 3
    assert report["history"] == [] and any("no ground truth" in note for note in report["notes"])


# -- bad input ---------------------------------------------------------------------------------------------

def bad_inputs(tmp_path: Path) -> dict:
    photo(tmp_path, "a40.png", (40, 40))
    photo(tmp_path, "a30.png", (30, 30))
    save_image(torch.ones(3, 32, 40), tmp_path / "mask_32x40.png")
    save_image(torch.linspace(0, 1, 40).expand(3, 40, 40), tmp_path / "grey_mask.png")
    return {
        "mismatched mask": ("inpaint", ["--data.image", tmp_path / "a40.png", "--data.mask", tmp_path / "mask_32x40.png"],
                            "the mask is 40x32 but the image is 40x40; they must be the same size"),
        "grey mask": ("inpaint", ["--data.image", tmp_path / "a40.png", "--data.mask", tmp_path / "grey_mask.png"],
                      "is not binary"),
        "factor does not divide": ("super_resolve", ["--data.clean", tmp_path / "a30.png", "--data.factor", 4],
                                   "needs the clean image's sides to be multiples of 4, not 30x30"),
        "clean not factor x image": ("super_resolve", ["--data.image", tmp_path / "a30.png", "--data.clean",
                                                       tmp_path / "a40.png", "--data.factor", 2],
                                     "the clean image is 40x40 but should be 60x60"),
        "missing file": ("denoise", ["--data.image", tmp_path / "nowhere.png"], "image not found"),
        "noise on a given image": ("denoise", ["--data.image", tmp_path / "a40.png", "--data.add_noise_sigma", 25],
                                   "data.add_noise_sigma synthesises the noisy input from data.clean"),
    }


@pytest.mark.parametrize("case", ["mismatched mask", "grey mask", "factor does not divide", "clean not factor x image",
                                  "missing file", "noise on a given image"])
def test_bad_input_is_refused_with_one_line(case, tmp_path, capsys):
    task, args, message = bad_inputs(tmp_path)[case]
    code, err = run_main(["--config", tiny_config(tmp_path, task), *args, "--output_dir", tmp_path / "runs"], capsys)
    assert code == 2
    assert message in one_error_line(err)
    assert not (tmp_path / "runs" / f"tiny_{task}" / "restored.png").exists()


def test_a_nan_loss_stops_cleanly_and_writes_no_result(tmp_path, capsys):
    code, err = run_main(["--config", tiny_config(tmp_path, "denoise"), "--data.image", photo(tmp_path, "a.png", (24, 24)),
                          "--model.lr", "1e30", "--output_dir", tmp_path / "runs"], capsys)
    assert code == 2
    line = one_error_line(err)
    assert "the training loss became" in line and "training stopped" in line
    # It stopped before its first checkpoint, so train.py removed what it had begun (event file, report):
    # no restored image, and no folder that looks like a run.
    assert not (tmp_path / "runs" / "tiny_denoise").exists()


def test_super_resolution_can_fit_the_blur_bicubic_degradation():
    """degradation: blur_bicubic makes DIP's data term the networks' degradation: zero for the photo that made
    the input, and not zero under the default area model."""
    from texnets.degradation import low_resolution
    from texnets.tasks.prior import DeepImagePriorTask, RestorationImages
    photo = load_image("builtin:astronaut", 64)[..., :64, :64]
    small = low_resolution(photo, 4, 1.0)
    losses = {}
    for degradation in ("blur_bicubic", "area"):
        task = DeepImagePriorTask(task="super_resolve", degradation=degradation, generator={"levels": 2})
        task.set_images(RestorationImages(small, (64, 64), factor=4))
        losses[degradation] = float(task.data_loss(photo))
    assert losses["blur_bicubic"] < 1e-10 < losses["area"]
    with pytest.raises(TexnetsError, match="model.degradation must be one of area, blur_bicubic"):
        DeepImagePriorTask(task="super_resolve", degradation="lanczos")
