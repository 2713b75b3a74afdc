"""texnets.checkpoints: files that are not checkpoints at all are called what they are, in one line,
before anything is unpickled; and a checkpoint written by an earlier texnets still loads, samples the same
image and resumes training (tests/data keeps one, with the config that wrote it)."""
import json
import shutil
from pathlib import Path

import pytest
import torch

import synthesize
import train
from helpers import call_main, one_error_line
from texnets.checkpoints import load_generator, read_checkpoint
from texnets.errors import TexnetsError
from texnets.tiling import generate

OLD = Path(__file__).resolve().parent / "data" / "texture_net_format1"


@pytest.mark.parametrize("name, content, message", [
    ("config.yaml", b"model:\n  class_path: texnets.tasks.TextureTask\n",
     "is not a checkpoint: it is a text file (a config goes to train.py --config)"),
    ("notes.txt", "x\u00e9".encode() * 300, "is not a checkpoint: it is a text file;"),  # UTF-8 cut mid-character
    ("picture.png", b"\x89PNG\r\n\x1a\n" + bytes(64), "neither a zip archive nor a pickle"),
    ("empty.ckpt", b"", "is not a checkpoint: it is empty"),
])
def test_a_file_that_is_not_a_checkpoint_is_called_what_it_is(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(TexnetsError, match="not a checkpoint") as info:
        read_checkpoint(path)
    assert message in str(info.value) and "pickled" not in str(info.value)


def test_real_checkpoints_still_load(tmp_path):
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": {}, "texnets": {"model_type": "texture_net"}}, path)
    assert read_checkpoint(path)["texnets"]["model_type"] == "texture_net"


def test_synthesize_given_a_yaml_config_as_checkpoint_says_so_in_one_line(tmp_path, capsys):
    config = tmp_path / "quickstart.yaml"
    config.write_text("trainer:\n  max_steps: 3\n")
    code, err = call_main(synthesize.main, ["--checkpoint", config, "--output", tmp_path / "x.png"], capsys)
    assert code == 2
    assert "quickstart.yaml is not a checkpoint: it is a text file" in one_error_line(err)
    assert not (tmp_path / "x.png").exists()


def test_a_checkpoint_from_texnets_0_1_0_loads_and_samples_the_same_image():
    expected = json.loads(OLD.with_suffix(".json").read_text())
    loaded = load_generator(OLD.with_suffix(".ckpt"))
    assert loaded.model_type == "texture_net" and loaded.global_step == 2
    image = generate(loaded.generator, tuple(expected["size"]), seed=expected["seed"], samples=[0])
    assert torch.allclose(image[0], torch.tensor(expected["sample"]), atol=1e-5)


def test_a_checkpoint_from_texnets_0_1_0_resumes_training(tmp_path, capsys):
    checkpoint = tmp_path / "old" / "last.ckpt"
    checkpoint.parent.mkdir()
    shutil.copy(OLD.with_suffix(".ckpt"), checkpoint)
    code, err = call_main(train.main, ["--config", OLD.with_suffix(".yaml"), "--ckpt_path", checkpoint,
                                       "--trainer.max_steps", 3], capsys)
    assert code == 0, err
    assert json.loads((checkpoint.parent / "report.json").read_text())["final_step"] == 3
