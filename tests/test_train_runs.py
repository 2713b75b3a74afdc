"""train.py's run folders: one run per folder (--overwrite leaves exactly one run's event files, a run that
fails before its first checkpoint leaves nothing), and no abbreviated options (the console display is in
test_callbacks.py)."""
import json

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
