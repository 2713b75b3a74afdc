"""AdaINTask, WCTTask and ContentStyleDataModule: pairs, held-out styles, falling losses, a train.py run."""
from pathlib import Path

import pytest
import torch

from helpers import ckpt
from texnets.images import load_image, save_image
from texnets.losses import make_style_loss
from texnets.tasks import AdaINTask, ContentStyleDataModule, WCTTask

LR = 3e-4  # a step size under which both decoders' losses fall step after step from the first (measured)


def image_folder(root: Path, names: list[str], size: int = 64) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        save_image(load_image(f"builtin:{name}", (size, size)), root / f"{name}.png")
    return root


@pytest.fixture
def folders(tmp_path) -> tuple[Path, Path]:
    content = image_folder(tmp_path / "photos", ["astronaut", "coffee", "chelsea"])
    styles = image_folder(tmp_path / "paintings", ["rocket", "immunohistochemistry", "brick"])
    return content, styles


def fixed_batch():
    content = torch.cat([load_image(f"builtin:{name}", (48, 48)) for name in ("astronaut", "coffee")])
    style = torch.cat([load_image(f"builtin:{name}", (48, 48)) for name in ("chelsea", "rocket")])
    return content, style


def losses_over_steps(task, inputs, steps: int = 12) -> list[float]:
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(task.generator.parameters(), lr=LR)
    losses = []
    for _ in range(steps):
        loss = task.objective(*inputs)[-2]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


def test_adain_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    losses = losses_over_steps(AdaINTask(generator={"width": 0.125}, lr=LR), fixed_batch())
    assert min(losses[-3:]) < 0.8 * losses[0], losses  # measured: ~0.6 after 12 steps


def test_wct_reconstruction_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    task = WCTTask(generator={"width": 0.125, "levels": ["relu1_1", "relu2_1"]}, lr=LR)
    losses = losses_over_steps(task, fixed_batch()[:1])
    assert min(losses[-3:]) < 0.5 * losses[0], losses  # measured: ~0.3 after 12 steps


def test_paired_meanvar_compares_each_item_with_its_own_style():
    content, style = fixed_batch()
    from texnets.vgg import VGGEncoder
    encoder = VGGEncoder(["relu1_1"])
    with torch.no_grad():
        target, own = encoder(style), encoder(style)
    paired = make_style_loss("meanvar", ["relu1_1"], target=target, paired=True)
    averaged = make_style_loss("meanvar", ["relu1_1"], target=target)
    assert float(paired(own)) < 1e-6 < float(averaged(own))  # each style matches itself, not the batch's mean
    assert not any(name.startswith("target_") for name in paired.state_dict())  # per batch: not checkpointed


def test_pairs_hold_styles_aside_and_never_train_on_them(folders):
    content, styles = folders
    data = ContentStyleDataModule(content=str(content), styles=[str(styles)], size=32, load_size=48, batch_size=2,
                                  held_out_styles=1, val_images=1, num_workers=0)
    data.setup("fit")
    held_out = data.held_out_style_paths()
    assert held_out == [str(styles / "brick.png")]  # the first in sorted order
    loader = data.train_dataloader()
    assert loader.dataset.style.exclude == set(held_out)  # the style stream skips the held-out files
    assert str(content / "astronaut.png") in loader.dataset.content.exclude  # the validation photo
    photos, paintings = next(iter(loader))
    assert photos.shape == paintings.shape == (2, 3, 32, 32)
    val_photos, val_styles = next(iter(data.val_dataloader()))
    assert val_photos.shape == val_styles.shape == (1, 3, 32, 32)
    assert data.summary()["held_out_styles"] == held_out
    brick = load_image(held_out[0], (32, 32))
    assert torch.allclose(val_styles[0], brick[0], atol=0.05)  # validation pairs use the held-out style


def test_photos_only_for_wct(folders):
    content, _ = folders
    data = ContentStyleDataModule(content=str(content), size=32, load_size=None, batch_size=2, val_images=1,
                                  num_workers=0)
    data.setup("fit")
    assert next(iter(data.train_dataloader())).shape == (2, 3, 32, 32)
    assert "styles" not in data.summary()


def test_a_missing_style_folder_is_one_line(folders, tmp_path):
    from texnets.errors import TexnetsError
    data = ContentStyleDataModule(content=str(folders[0]), styles=str(tmp_path / "nowhere"), size=32,
                                  val_images=1, num_workers=0)
    with pytest.raises(TexnetsError, match="style folder not found"):
        data.setup("fit")


@pytest.mark.parametrize("config, extra", [
    ("adain_huang2017.yaml", ["--model.generator.width", "0.125"]),
    ("wct_li2017.yaml", ["--model.generator.width", "0.125", "--model.generator.levels", "[relu1_1, relu2_1]"]),
])
def test_train_py_runs_the_reference_configs_and_checkpoints_the_decoders(config, extra, folders, tmp_path):
    import train
    content, styles = folders
    repo = Path(__file__).resolve().parents[1]
    args = ["--config", str(repo / "configs" / config), "--data.content", str(content), "--data.size", "32",
            "--data.load_size", "48", "--data.batch_size", "2", "--data.val_images", "1", "--data.num_workers", "0",
            "--trainer.max_steps", "2", "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false", "--model.channels_last", "false",
            "--output_dir", str(tmp_path / "runs"), "--run_name", "run", *extra]
    if config.startswith("adain"):
        args += ["--data.styles", str(styles), "--data.held_out_styles", "1"]
    assert train.main(args) == 0
    saved = ckpt(tmp_path / "runs" / "run" / "last.ckpt")
    assert all(key.startswith(("generator.decoders.",)) for key in saved["state_dict"])
    assert saved["texnets"]["model_type"] == ("adain_net" if config.startswith("adain") else "wct_net")
    if config.startswith("adain"):
        assert saved["texnets"]["training"]["held_out_styles"] == [str(styles / "brick.png")]
    else:
        assert saved["texnets"]["generator"]["levels"] == ["relu1_1", "relu2_1"]
    # resume for one more step, in bf16 autocast: the step count carries on and the decoders keep learning
    resumed = [*args, "--ckpt_path", str(tmp_path / "runs" / "run" / "last.ckpt"), "--trainer.max_steps", "3",
               "--trainer.precision", "bf16-mixed"]
    assert train.main(resumed) == 0
    after = ckpt(tmp_path / "runs" / "run" / "last.ckpt")
    assert after["global_step"] == 3
    assert any(not torch.equal(after["state_dict"][key], value) for key, value in saved["state_dict"].items())


def test_the_learning_rate_follows_the_reference_inverse_decay():
    task = AdaINTask(generator={"width": 0.125}, lr=1e-4, lr_decay=5e-5)
    setup = task.configure_optimizers()
    optimizer, scheduler = setup["optimizer"], setup["lr_scheduler"]["scheduler"]
    for _ in range(1000):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-4 / (1 + 5e-5 * 1000))
    assert WCTTask(generator={"width": 0.125, "levels": ["relu1_1"]}, lr_decay=0).configure_optimizers().__class__ \
        is torch.optim.Adam  # no decay: a bare optimiser


def test_without_held_out_styles_validation_pairs_the_first_style(folders):
    content, styles = folders
    data = ContentStyleDataModule(content=str(content), styles=str(styles), size=32, load_size=None, batch_size=2,
                                  held_out_styles=0, val_images=1, num_workers=0)
    data.setup("fit")
    assert data.held_out_style_paths() == [] and data.train_dataloader().dataset.style.exclude == set()
    _, val_styles = next(iter(data.val_dataloader()))
    assert torch.allclose(val_styles[0], load_image(str(styles / "brick.png"), (32, 32))[0], atol=0.05)


def test_adain_takes_the_temporal_term_with_its_own_styles():
    torch.manual_seed(0)
    task = AdaINTask(generator={"width": 0.125}, lr=LR, temporal_weight=10.0,
                     temporal={"mode": "noise", "noise": 0.05})
    _, loss, logs = task.objective(*fixed_batch(), seed=0)
    assert float(logs["temporal"]) > 0
    assert float(logs["total"]) == pytest.approx(float(logs["content"]) + 10.0 * float(logs["style"])
                                                 + 10.0 * float(logs["temporal"]), rel=1e-4)
    assert task.hparams.temporal["mode"] == "noise"  # plain data in the hyper-parameters
    assert task.training_summary()["temporal"] == {"weight": 10.0, **task.perturbation.as_dict()}  # in checkpoints
    # Without the term nothing is added, nothing logged.
    _, _, plain = AdaINTask(generator={"width": 0.125}).objective(*fixed_batch())
    assert "temporal" not in plain
