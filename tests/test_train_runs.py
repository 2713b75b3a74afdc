"""train.py's run folders and console: one run per folder (--overwrite leaves exactly one run's event files,
a run that fails before its first checkpoint leaves nothing), no abbreviated options, and a display that
counts steps, lists the frozen encoder in eval mode and carries no empty FLOPs column or advert."""
import json
import re

import train
from helpers import call_main, one_error_line


def event_files(run_dir):
    return sorted(run_dir.glob("events.out.tfevents.*"))


def test_overwrite_leaves_exactly_one_runs_files(texture_config, tmp_path, capsys):
    args = ["--config", texture_config, "--output_dir", tmp_path, "--trainer.max_steps", 4]
    code, err = call_main(train.main, args, capsys)
    assert code == 0, err
    run_dir = tmp_path / "tiny"
    first_events = event_files(run_dir)
    assert len(first_events) == 1
    code, err = call_main(train.main, [*args, "--trainer.max_steps", 2], capsys)
    assert code == 2 and "already holds a run" in one_error_line(err) and "--overwrite true" in err
    code, err = call_main(train.main, [*args, "--trainer.max_steps", 2, "--overwrite", "true"], capsys)
    assert code == 0, err
    assert "removed the previous run" in err
    events = event_files(run_dir)
    assert len(events) == 1 and events != first_events  # the new run's file, and only it
    assert sorted(path.name for path in run_dir.glob("*.ckpt")) == ["last.ckpt", "step=2.ckpt"]
    assert json.loads((run_dir / "report.json").read_text())["final_step"] == 2


def test_a_run_that_fails_before_its_first_checkpoint_leaves_nothing(texture_config, tmp_path, capsys):
    output_dir = tmp_path / "runs"
    # An absurd learning rate makes the second step's loss non-finite, long before the first checkpoint.
    code, err = call_main(train.main, ["--config", texture_config, "--output_dir", output_dir, "--model.lr", "1e30",
                                       "--checkpoint_every", 100], capsys)
    assert code == 2 and "training stopped" in one_error_line(err)
    assert not output_dir.exists()  # no run folder with a stray event file or report, and no checkpoints/


def test_abbreviated_options_are_refused(texture_config, tmp_path, capsys):
    code, err = call_main(train.main, ["--config", texture_config, "--output_dir", tmp_path,
                                       "--trainer.max_step", 3], capsys)
    assert code == 2 and "unrecognized arguments: --trainer.max_step 3" in one_error_line(err)
    assert not (tmp_path / "tiny").exists()


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
