"""SuperResolutionTask (Johnson et al. 2016, section 4.2): a few steps lower the loss on a fixed batch with either
objective, inputs are made on the fly by the paper's degradation, train.py trains configs/sr_johnson2016.yaml +
sr_cpu.yaml at a tiny size and writes a checkpoint synthesize.py reads, and bad settings are one line."""
import functools
import statistics
from pathlib import Path

import pytest
import torch

import train
from helpers import call_main, one_error_line
from texnets.checkpoints import load_generator
from texnets.degradation import low_resolution
from texnets.errors import TexnetsError
from texnets.images import load_image
from texnets.tasks import SuperResolutionTask

REPO = Path(__file__).resolve().parents[1]
SMALL = {"channels": 8, "residual_blocks": 1}
run_main = functools.partial(call_main, train.main)


def fixed_batch(size: int = 48) -> torch.Tensor:
    """Two built-in photos, centre-cropped to size², as one high-resolution batch."""
    crops = []
    for name in ("astronaut", "coffee"):
        image = load_image(f"builtin:{name}", size)
        top, left = (image.shape[-2] - size) // 2, (image.shape[-1] - size) // 2
        crops.append(image[..., top:top + size, left:left + size])
    return torch.cat(crops)


def losses_over_steps(task: SuperResolutionTask, batch: torch.Tensor, steps: int) -> list[float]:
    optimizer = torch.optim.Adam(task.generator.parameters(), lr=task.hparams.lr)
    values = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss, _ = task.objective(batch, task.generator(task.degrade(batch)))
        loss.backward()
        optimizer.step()
        values.append(float(loss.detach()))
    return values


@pytest.mark.parametrize("loss", ["feature", "pixel"])
def test_a_few_steps_lower_the_loss_on_a_fixed_batch(loss):
    torch.manual_seed(0)
    task = SuperResolutionTask(generator=SMALL, loss=loss, lr=3e-3)
    values = losses_over_steps(task, fixed_batch(), 30)
    first, last = statistics.median(values[:5]), statistics.median(values[-5:])
    assert last < 0.8 * first, (loss, values)


def test_the_objective_logs_every_term_and_the_weights_choose():
    torch.manual_seed(0)
    batch = fixed_batch(32)
    feature = SuperResolutionTask(generator=SMALL, loss="feature", tv_weight=10.0)
    pixel = SuperResolutionTask(generator=SMALL, loss="pixel")
    pixel.generator.load_state_dict(feature.generator.state_dict())
    with torch.no_grad():
        restored = feature.generator(feature.degrade(batch))
        total_f, logs_f = feature.objective(batch, restored)
        total_p, logs_p = pixel.objective(batch, restored)
    assert set(logs_f) >= {"feature", "pixel", "tv", "total"} and set(logs_p) >= {"feature", "pixel", "total"}
    assert torch.allclose(total_f, logs_f["feature"] + 10.0 * logs_f["tv"])
    assert torch.allclose(total_p, logs_p["pixel"])           # the feature term is reported, not trained on
    assert torch.allclose(logs_f["feature"], logs_p["feature"])
    smooth = SuperResolutionTask(generator=SMALL, loss="pixel", tv_weight=1e3, pixel_tv_weight=0.5)
    with torch.no_grad():
        total_s, logs_s = smooth.objective(batch, restored)
    assert torch.allclose(total_s, logs_s["pixel"] + 0.5 * logs_s["tv"])   # its own TV weight, not tv_weight


def test_inputs_are_the_papers_degradation_made_on_the_fly():
    task = SuperResolutionTask(generator={**SMALL, "factor": 2}, blur_sigma=0.5)
    batch = fixed_batch(32)
    assert torch.equal(task.degrade(batch), low_resolution(batch, 2, 0.5))
    assert task.task_summary() == {"task": "super_resolution", "factor": 2, "loss": "feature",
                                   "degradation": {"blur_sigma": 0.5, "downsampling": "bicubic"},
                                   "postprocess": "histogram_matching"}


@pytest.mark.parametrize("options, message", [
    ({"loss": "gram"}, "model.loss must be one of feature, pixel"),
    ({"blur_sigma": -1.0}, "blur_sigma must be >= 0"),
    ({"tv_weight": -1.0}, "non-negative loss weights"),
    ({"generator": {"factor": 3}}, "factor must be one of 2, 4, 8"),
])
def test_bad_settings_are_one_line(options, message):
    with pytest.raises(TexnetsError, match=message):
        SuperResolutionTask(**options)


def sr_args(folder, out, steps, *extra) -> list:
    return ["--config", REPO / "configs" / "sr_johnson2016.yaml", "--config", REPO / "configs" / "sr_cpu.yaml",
            "--data.folder", folder, "--data.size", 32, "--data.val_size", 32, "--data.val_images", 1,
            "--model.generator.channels", 8, "--model.generator.residual_blocks", 1, "--trainer.max_steps", steps,
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
            "--output_dir", out, "--run_name", "r", *extra]


def test_train_py_trains_the_cpu_recipe_and_synthesize_reads_the_checkpoint(shared_data, tmp_path, capsys):
    code, err = run_main(sr_args(shared_data / "content", tmp_path, 2), capsys)
    assert code == 0, err
    loaded = load_generator(tmp_path / "r" / "last.ckpt")
    assert loaded.model_type == "sr_net" and loaded.generator.factor == 4
    training = loaded.metadata["training"]
    assert training["loss"] == "feature" and training["degradation"]["blur_sigma"] == 1.0
    assert training["val_images"] and training["size"] == 32


def test_a_patch_size_that_is_not_a_multiple_of_the_factor_is_one_line(shared_data, tmp_path, capsys):
    code, err = run_main(sr_args(shared_data / "content", tmp_path, 2, "--data.size", 30), capsys)
    assert code == 2
    assert "data.size (30) must be a multiple of the factor 4" in one_error_line(err)
    assert not list(tmp_path.rglob("*.ckpt"))


def test_a_transfer_checkpoint_does_not_resume_a_super_resolution_run(shared_data, trained_runs, tmp_path, capsys):
    other = trained_runs["transfer"] / "last.ckpt"
    code, err = run_main(sr_args(shared_data / "content", tmp_path, 2, "--ckpt_path", other), capsys)
    assert code == 2
    assert "holds a 'transformer_net' model, but this run trains a 'sr_net'" in one_error_line(err)


def test_batch_norm_statistics_are_recalibrated_on_the_last_training_inputs():
    torch.manual_seed(0)
    task = SuperResolutionTask(generator=SMALL, bn_recalibration_batches=2)
    norm = task.generator.head[2]
    untouched = norm.running_mean.clone()
    task.recalibrate()                                   # no training inputs yet (a resumed run): nothing changes
    assert torch.equal(norm.running_mean, untouched)
    batch = fixed_batch(32)
    inputs = [task.degrade(batch[:1]), task.degrade(batch[1:])]
    task._recent_inputs.extend(inputs)
    task.recalibrate()
    with torch.no_grad():
        head = task.generator.head
        activations = torch.cat([head[1](head[0](x - 0.5)) for x in inputs])
    assert torch.allclose(norm.running_mean, activations.mean((0, 2, 3)), atol=1e-5)
    assert norm.momentum == 0.1 and task.generator.training   # restored after the exact average


@pytest.mark.parametrize("matching", [True, False])
def test_validation_scores_what_synthesize_writes_and_the_checkpoint_records_it(matching, monkeypatch):
    torch.manual_seed(0)
    task = SuperResolutionTask(generator=SMALL, histogram_matching=matching)
    logged = {}
    monkeypatch.setattr(task, "log_validation_step", lambda logs, batch_size: logged.update(logs))
    task.eval()
    with torch.no_grad():
        task.validation_step(fixed_batch(32), 1)
    assert task.task_summary()["postprocess"] == ("histogram_matching" if matching else "none")
    assert ("psnr_unmatched" in logged) == matching
    if matching:   # the scored output is the matched one, not the network's own
        assert abs(float(logged["psnr"]) - float(logged["psnr_unmatched"])) > 0.01
