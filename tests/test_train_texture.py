"""train.py and the TextureTask: a config trains and the loss falls, checkpoints are loadable and small,
runs resume (also after SIGKILL) with the right step and learning rate, NaN stops cleanly, and bad
configs or checkpoints are refused with one line."""
import functools
import json
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

import train
from helpers import call_main, ckpt, one_error_line, report
from texnets.checkpoints import load_generator
from texnets.tasks import AtomicCheckpointIO, NoiseDataModule, NonFiniteLossError, TextureTask
from texnets.tasks.base import recalibrate_batch_norm

REPO = Path(__file__).resolve().parents[1]
LR, LR_STEP, LR_GAMMA = 0.1, 3, 0.5  # as in the tiny config (conftest.py)


def expected_lr(step: int) -> float:
    return LR * LR_GAMMA ** (step // LR_STEP)


run_main = functools.partial(call_main, train.main)


def test_train_py_from_a_config_writes_a_small_loadable_checkpoint_and_the_loss_falls(texture_config, tmp_path):
    # The tiny config halves the learning rate every 3 steps, which stalls 10 steps at ~0.69x the start;
    # halving once, after 6 steps, reaches ~0.35-0.5x without the overshoot a constant 0.1 shows at step 8.
    result = subprocess.run([sys.executable, "train.py", "--config", texture_config, "--output_dir", tmp_path / "runs",
                             "--trainer.max_steps", "10", "--model.lr_step", "6"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "runs" / "tiny"
    losses = [loss for _, loss in report(run_dir)["loss_history"]]
    assert len(losses) == 10
    # Medians of the first and last three steps (each step draws fresh noise): 1.0 if nothing trains.
    assert statistics.median(losses[-3:]) < 0.75 * statistics.median(losses[:3]), losses

    loaded = load_generator(run_dir / "last.ckpt")
    assert loaded.model_type == "texture_net" and loaded.global_step == 10
    assert loaded.metadata["generator"]["scales"] == 3
    assert loaded.metadata["training"]["exemplar"] == "builtin:immunohistochemistry"
    with torch.no_grad():
        assert loaded.generator(loaded.generator.noise_spec.sample(1, (64, 64))).shape == (1, 3, 64, 64)
    state = ckpt(run_dir / "last.ckpt")["state_dict"]
    assert not any(key.startswith("encoder.") for key in state)  # VGG weights stay out of checkpoints
    # BatchNorm statistics were recalibrated over 20 fresh batches just before the save.
    assert {int(v) for k, v in state.items() if k.endswith("num_batches_tracked")} == {20}
    assert (run_dir / "last.ckpt").stat().st_size < 1_000_000
    assert {p.name for p in run_dir.glob("step=*.ckpt")} == {f"step={n}.ckpt" for n in (2, 4, 6, 8, 10)}
    assert (run_dir / "config.yaml").exists() and (run_dir / "hparams.yaml").exists()

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(run_dir))
    events.Reload()
    tags = events.Tags()
    assert {"train/loss", "train/style/relu1_1", "train/style/relu2_1", "lr-Adam", "val/loss",
            "hp_metric"} <= set(tags["scalars"])
    assert {"samples", "exemplar"} <= set(tags["images"])


def test_resume_continues_with_the_right_step_and_learning_rate(texture_config, tmp_path, capsys):
    runs = tmp_path / "runs"
    code, err = run_main(["--config", texture_config, "--output_dir", runs, "--trainer.max_steps", 4], capsys)
    assert code == 0, err
    run_dir = runs / "tiny"
    code, err = run_main(["--config", texture_config, "--ckpt_path", run_dir / "last.ckpt",
                          "--trainer.max_steps", 7], capsys)
    assert code == 0, err
    assert "resuming at step 4" in err
    resumed = report(run_dir)
    assert resumed["start_step"] == 4 and resumed["final_step"] == 7
    assert resumed["start_lr"] == pytest.approx(expected_lr(4))
    assert ckpt(run_dir / "last.ckpt")["lr_schedulers"][0]["_last_lr"][0] == pytest.approx(expected_lr(7))

    # A fresh run into the same folder is refused rather than mixed with the old one.
    code, err = run_main(["--config", texture_config, "--output_dir", runs], capsys)
    assert code == 2 and "already holds a run" in one_error_line(err)

    # --overwrite starts afresh: the old checkpoints go, and last.ckpt is the new run's (not last-v1.ckpt).
    code, err = run_main(["--config", texture_config, "--output_dir", runs, "--overwrite", "true",
                          "--trainer.max_steps", 2], capsys)
    assert code == 0, err
    assert sorted(path.name for path in run_dir.glob("*.ckpt")) == ["last.ckpt", "step=2.ckpt"]
    assert ckpt(run_dir / "last.ckpt")["global_step"] == 2


def test_a_sigkilled_run_resumes_from_its_last_checkpoint(texture_config, tmp_path, capsys):
    runs = tmp_path / "runs"
    last = runs / "tiny" / "last.ckpt"
    process = subprocess.Popen([sys.executable, "train.py", "--config", str(texture_config), "--output_dir", str(runs),
                                "--trainer.max_steps", "10000", "--checkpoint_every", "2"],
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        killed_at = 0
        while time.monotonic() < deadline and killed_at < 6:
            time.sleep(0.2)
            if last.exists():
                killed_at = ckpt(last)["global_step"]  # atomic writes: never a half-written file
        assert killed_at >= 6, "training never reached step 6"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    saved_step = ckpt(last)["global_step"]  # may be later than killed_at: the run went on until the kill
    code, err = run_main(["--config", texture_config, "--ckpt_path", last, "--trainer.max_steps", saved_step + 3],
                         capsys)
    assert code == 0, err
    resumed = report(runs / "tiny")
    assert resumed["start_step"] == saved_step and resumed["final_step"] == saved_step + 3
    assert resumed["start_lr"] == pytest.approx(expected_lr(saved_step))


def test_a_nan_loss_stops_training_with_one_line(texture_config, tmp_path, capsys):
    # An absurd learning rate blows the weights up after the first step.
    code, err = run_main(["--config", texture_config, "--output_dir", tmp_path, "--model.lr", "1e30",
                          "--checkpoint_every", 1], capsys)
    assert code == 2
    line = one_error_line(err)
    assert "the training loss became" in line and "training stopped" in line
    assert json.loads((tmp_path / "tiny" / "report.json").read_text())["stopped"].startswith("NonFiniteLossError")


class PoisonWeights(pl.Callback):
    """Simulate a divergence: NaN weights from a given step on."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            with torch.no_grad():
                pl_module.generator.to_rgb.weight.fill_(float("nan"))


def test_the_last_good_checkpoint_survives_a_nan(tmp_path):
    task = TextureTask(generator={"scales": 3}, layers=["relu1_1"])
    data = NoiseDataModule("builtin:brick", size=32, batch_size=2, exemplar_size=32, val_samples=0)
    trainer = pl.Trainer(max_steps=20, accelerator="cpu", logger=False, enable_progress_bar=False,
                         enable_model_summary=False, limit_val_batches=0, plugins=[AtomicCheckpointIO()],
                         callbacks=[ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=1, save_last=True),
                                    PoisonWeights(step=3)])
    with pytest.raises(NonFiniteLossError, match="at step 3.*last good checkpoint is .*last.ckpt"):
        trainer.fit(task, data)
    good = load_generator(tmp_path / "last.ckpt")
    assert good.global_step == 3
    assert all(torch.isfinite(p).all() for p in good.generator.parameters())


class RecordMetrics(pl.Callback):
    def __init__(self):
        self.history = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.history.append({k: float(v) for k, v in trainer.callback_metrics.items()})


def test_instance_norm_with_the_diversity_term_trains():
    pl.seed_everything(0, verbose=False)
    task = TextureTask(generator={"scales": 3, "norm": "instance"}, layers=["relu1_1", "relu2_1"],
                       diversity_weight=0.5, diversity_layer="relu2_1")
    data = NoiseDataModule("builtin:brick", size=32, batch_size=3, exemplar_size=32, val_samples=0)
    record = RecordMetrics()
    trainer = pl.Trainer(max_steps=4, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                         log_every_n_steps=1, callbacks=[record])
    trainer.fit(task, data)
    assert all("train/diversity" in step and torch.isfinite(torch.tensor(step["train/diversity"]))
               for step in record.history)
    # The total is the style loss minus the weighted entropy.
    last = record.history[-1]
    assert last["train/loss"] == pytest.approx(last["train/style"] - 0.5 * last["train/diversity"], rel=1e-4)
    # The better of the last two steps, well below the first (0.43-0.62x measured over seeds; 1.0 untrained).
    styles = [step["train/style"] for step in record.history]
    assert min(styles[-2:]) < 0.85 * styles[0], styles


def test_batch_norm_recalibration_gives_exact_averages_and_restores_the_module():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).eval()
    batches = [torch.randn(2, 3, 8, 8) * (i + 1) + i for i in range(3)]
    assert recalibrate_batch_norm(net, batches)
    with torch.no_grad():
        outputs = [net[0](x) for x in batches]
    bn = net[1]
    assert torch.allclose(bn.running_mean, torch.stack([o.mean((0, 2, 3)) for o in outputs]).mean(0), atol=1e-5)
    assert torch.allclose(bn.running_var, torch.stack([o.var((0, 2, 3)) for o in outputs]).mean(0), atol=1e-4)
    assert bn.momentum == 0.1 and not net.training
    assert not recalibrate_batch_norm(torch.nn.Conv2d(3, 3, 1), batches)


def test_atomic_checkpoint_writes_never_clobber_the_previous_file(tmp_path):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": torch.tensor(1)}, path)
    before = path.read_bytes()
    with pytest.raises(Exception):
        io.save_checkpoint({"step": torch.tensor(2), "unpicklable": lambda: None}, path)  # fails mid-save
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]
    io.save_checkpoint({"step": torch.tensor(3)}, path)
    assert int(torch.load(path, weights_only=True)["step"]) == 3


def test_bf16_mixed_and_channels_last_are_accepted(texture_config, tmp_path, capsys):
    code, err = run_main(["--config", texture_config, "--output_dir", tmp_path, "--trainer.max_steps", 2,
                          "--trainer.precision", "bf16-mixed", "--model.channels_last", "true"], capsys)
    assert code == 0, err
    assert load_generator(tmp_path / "tiny" / "last.ckpt").global_step == 2


@pytest.mark.parametrize("extra, message", [
    (["--model.bogus", "3"], "Option 'bogus' is not accepted"),
    (["--trainer.max_stepz", "3"], "unrecognized arguments"),
    (["--data.exemplar", "/no/such/texture.png"], "image not found"),
    (["--model.layers", "[relu9_1]"], "unknown vgg19 layer"),
    (["--model.generator.norm", "group"], "generator norm must be one of"),
    (["--data.size", "30"], "multiple of 4"),
])
def test_bad_configs_are_refused_with_one_line(texture_config, tmp_path, capsys, extra, message):
    code, err = run_main(["--config", texture_config, "--output_dir", tmp_path, *extra], capsys)
    assert code == 2
    assert message in one_error_line(err)
    assert len(err.splitlines()) <= 4, err  # no usage wall


def test_unknown_keys_in_a_yaml_file_are_refused(texture_config, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(texture_config.read_text().replace("lr_step: 3", "lr_stepp: 3"))
    code, err = run_main(["--config", bad, "--output_dir", tmp_path], capsys)
    assert code == 2 and "Option 'lr_stepp' is not accepted" in one_error_line(err)


def test_bad_checkpoints_are_refused_with_one_line(texture_config, tmp_path, capsys):
    truncated = tmp_path / "truncated.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1000)}}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:300])
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(3)}}, foreign)
    for path, message in ((truncated, "corrupt or truncated"), (foreign, "not a texnets checkpoint"),
                          (tmp_path / "missing.ckpt", "checkpoint not found")):
        code, err = run_main(["--config", texture_config, "--output_dir", tmp_path, "--ckpt_path", path], capsys)
        assert code == 2 and message in one_error_line(err)


def test_resuming_with_a_different_generator_is_refused(texture_config, tmp_path, capsys):
    code, err = run_main(["--config", texture_config, "--output_dir", tmp_path, "--trainer.max_steps", 2], capsys)
    assert code == 0, err
    code, err = run_main(["--config", texture_config, "--ckpt_path", tmp_path / "tiny" / "last.ckpt",
                          "--model.generator.scales", 4, "--trainer.max_steps", 4], capsys)
    assert code == 2 and "scales=3 (config: 4)" in one_error_line(err)
