"""texnets.checkpoints: files that are not checkpoints at all are called what they are, in one line,
before anything is unpickled."""
import pytest
import torch

import synthesize
from helpers import call_main, one_error_line
from texnets.checkpoints import read_checkpoint
from texnets.errors import TexnetsError


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
