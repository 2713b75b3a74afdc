"""texnets.studies through optimize.py study: every study's table is valid, a study runs end to end, depth
costs inversion fidelity, VGG16's absence offline is one line, bad requests are one line."""
import functools
import json
from pathlib import Path

import pytest
import torch

import optimize
from helpers import call_main_out, one_error_line
from texnets import studies
from texnets.vgg import check_layers

run = functools.partial(call_main_out, optimize.main)


def test_the_course_numbering_of_convolutions():
    assert [studies.conv(k) for k in (1, 4, 5, 8, 10, 16)] == [
        "conv1_1", "conv2_2", "conv3_1", "conv3_4", "conv4_2", "conv5_4"]
    assert studies.relu(5) == "relu3_1"


@pytest.mark.parametrize("name", list(studies.STUDIES))
def test_every_study_lists_valid_layers_and_losses(name):
    study = studies.STUDIES[name]
    studies.check_study(study)
    assert study.runs and study.source and study.shows and study.default_input.startswith("builtin:")
    assert len({run.label for run in study.runs}) == len(study.runs)  # labels tell the runs apart
    for entry in study.runs:
        assert list(entry.layers) == check_layers(entry.layers, entry.arch)


def test_a_study_runs_end_to_end_and_writes_its_grid_and_report(tmp_path, capsys):
    code, stdout, err = run(["study", "gram-vs-meanvar", "--size", "32", "--steps", "3", "--output", tmp_path / "s",
                             "--quiet"], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "s" / "study.json").read_text())
    assert [r["label"] for r in report["runs"]] == ["Gram", "MeanVar"]
    assert all(Path(r["image"]).is_file() and r["final_loss"] < r["first_loss"] for r in report["runs"])
    assert (tmp_path / "s" / "grid.png").is_file() and "Gram:" in stdout


def test_inversion_fidelity_falls_with_depth(tmp_path, capsys):
    code, _, err = run(["study", "inversion-depth", "--size", "48", "--steps", "30", "--output", tmp_path / "s",
                        "--quiet"], capsys)
    assert code == 0, err
    psnr = [r["psnr_db"] for r in json.loads((tmp_path / "s" / "study.json").read_text())["runs"]]
    assert psnr[0] > psnr[1] > psnr[2], psnr  # conv #1, #5, #10


def test_the_threshold_stop_and_the_run_table(tmp_path):
    study = studies.Study("tiny", "texture", "a test", "a test", (
        studies.StudyRun("N=2 relu1_1", ("relu1_1",), "moments2"), studies.StudyRun("MMD relu1_1", ("relu1_1",), "mmd")),
        "builtin:immunohistochemistry", steps=400, optimizer="adam", size=32, stop_fraction=0.5,
        table=("loss", "layers"), lr=1e-2)
    report = studies.run_study(study, studies.load_study_input(study, None, None), tmp_path / "t", progress=False)
    for entry in report["runs"]:
        assert entry["threshold_step"] is not None and entry["steps"] == entry["threshold_step"] < 400
        assert entry["final_loss"] < 0.5 * entry["first_loss"] * 1.01
    table = studies.run_table(report, "loss", "layers")
    assert table[0] == ["loss", "relu1_1"] and [row[0] for row in table[1:]] == ["moments, N=2", "MMD"]
    assert "under at" in table[1][1]


@pytest.mark.skipif((Path(torch.hub.get_dir()) / "checkpoints" / "vgg16-397923af.pth").exists(),
                    reason="VGG16 weights are cached here: nothing is missing")
def test_networks_study_runs_the_vgg19_half_offline_with_one_warning(tmp_path, capsys, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("no network")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    code, stdout, err = run(["study", "networks", "--size", "32", "--steps", "2", "--output", tmp_path / "n",
                             "--quiet"], capsys)
    assert code == 0
    warnings = [line for line in err.splitlines() if line.strip()]
    assert len(warnings) == 1 and warnings[0].startswith("warning: VGG16: skipped: torchvision vgg16 weights"), err
    runs = json.loads((tmp_path / "n" / "study.json").read_text())["runs"]
    assert "final_loss" in runs[0] and "skipped" in runs[1]


@pytest.mark.parametrize("argv, message", [
    (["study", "no-such-study", "--output", "OUT"], "unknown study 'no-such-study'"),
    (["study", "inversion-depth"], "--output DIR is required"),
    (["study", "inversion-depth", "--style", "builtin:brick", "--output", "OUT"], "it takes no --style"),
    (["study", "texture-depth", "--output", "OUT.png"], "a study writes a folder"),
    (["study", "--output", "OUT"], "name a study"),
])
def test_bad_study_requests_are_one_line(argv, message, tmp_path, capsys):
    argv = [str(tmp_path / "out") + a[3:] if a.startswith("OUT") else a for a in argv]
    code, _, err = run(argv, capsys)
    assert code == 2 and message in one_error_line(err)
    assert list(tmp_path.iterdir()) == []


def test_list_names_every_study(capsys):
    code, stdout, _ = run(["study", "--list"], capsys)
    assert code == 0 and all(f"| {name} |" in stdout for name in studies.STUDIES)
