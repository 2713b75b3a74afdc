"""The training callbacks (texnets.callbacks) as train.py uses them: FinalStepCheckpoint keeps the last
step when a run ends between two checkpoint intervals, and the console display (StepProgressBar,
CompactModelSummary) counts steps, also on a resumed run, and shows no epochs, FLOPs column or advert."""
import functools
import re

import train
from helpers import call_main, ckpt, report
from texnets.checkpoints import load_generator

run_main = functools.partial(call_main, train.main)


def test_last_checkpoint_holds_the_final_step_between_checkpoint_intervals(texture_config, tmp_path, capsys):
    # Lightning alone would leave last.ckpt at step 3 here, dropping the run's last 2 steps.
    code, err = run_main(["--config", texture_config, "--output_dir", tmp_path, "--run_name", "r",
                          "--trainer.max_steps", 5, "--checkpoint_every", 3, "--trainer.logger", "false"], capsys)
    assert code == 0, err
    run_dir = tmp_path / "r"
    assert ckpt(run_dir / "last.ckpt")["global_step"] == 5 and ckpt(run_dir / "step=3.ckpt")["global_step"] == 3
    assert ckpt(run_dir / "step=5.ckpt")["global_step"] == 5
    assert load_generator(run_dir / "last.ckpt").global_step == report(run_dir)["final_step"] == 5


def test_the_console_counts_steps_and_shows_no_noise(texture_config, tmp_path, capfd):
    display = ["--trainer.enable_progress_bar", "true", "--trainer.enable_model_summary", "true"]
    code = train.main([str(a) for a in ["--config", texture_config, "--output_dir", tmp_path,
                                        "--trainer.max_steps", 4, *display]])
    out = "".join(capfd.readouterr())
    assert code == 0, out
    assert re.search(r"train: 100%.*\b4/4\b", out), out  # one bar over the run's steps ...
    assert "Epoch" not in out and "/-2" not in out  # ... not "Epoch 0/-2"
    assert "FLOPs" not in out and "Flops" not in out and "litlogger" not in out and "Tip" not in out, out
    assert re.search(r"encoder\s*\|\s*VGGEncoder\s*\|.*\beval\b", out), out
    # A resumed run's bar starts where the checkpoint left off.
    code = train.main([str(a) for a in ["--config", texture_config, "--output_dir", tmp_path, "--trainer.max_steps", 6,
                                        "--ckpt_path", tmp_path / "tiny" / "last.ckpt", *display]])
    out = "".join(capfd.readouterr())
    assert code == 0, out
    assert re.search(r"train:\s+67%.*\b4/6\b", out) and re.search(r"train: 100%.*\b6/6\b", out), out
    assert "Epoch" not in out
