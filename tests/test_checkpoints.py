"""texnets.checkpoints: files that are not checkpoints at all are called what they are, in one line,
before anything is unpickled; and a checkpoint laid out as texnets 0.1.0 wrote it still loads and resumes
training (tests/data keeps that layout and the config that wrote it, never the weights)."""
import json
from pathlib import Path

import pytest
import torch

import synthesize
import train
from helpers import call_main, call_main_out, one_error_line
from texnets.checkpoints import load_generator, matches_histograms, read_checkpoint
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


def format1_parts(seed: int = 0, old: Path = OLD) -> dict:
    """The model parts of a checkpoint laid out as texnets 0.1.0 wrote them (tests/data/<model>_format1.json:
    metadata, hyper-parameters, state-dict keys, shapes and dtypes), filled with seeded values. No weights
    are kept in the repository, only the layout, which is what a refactor can break."""
    layout = json.loads(old.with_suffix(".json").read_text())
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, spec in layout["state_dict"].items():
        shape, dtype = tuple(spec["shape"]), getattr(torch, spec["dtype"])
        if dtype == torch.int64:
            state[key] = torch.full(shape, 2, dtype=dtype)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(shape, generator=generator)  # a variance is positive
        else:
            state[key] = 0.1 * torch.randn(shape, generator=generator)
    return {"state_dict": state, "hyper_parameters": layout["hyper_parameters"], "texnets": layout["texnets"],
            "global_step": layout["global_step"]}


def test_a_checkpoint_laid_out_as_texnets_0_1_0_wrote_it_still_loads(tmp_path):
    path = tmp_path / "format1.ckpt"
    parts = format1_parts()
    torch.save(parts, path)
    loaded = load_generator(path)
    assert loaded.model_type == "texture_net" and loaded.global_step == 2
    assert loaded.generator.config_dict() == parts["texnets"]["generator"]
    prefix = parts["texnets"]["generator_prefix"]
    assert {prefix + key for key in loaded.generator.state_dict()} == {
        key for key in parts["state_dict"] if key.startswith(prefix)}  # every stored weight, and only those
    image = generate(loaded.generator, (16, 16), seed=3, samples=[0])
    assert image.shape == (1, 3, 16, 16) and torch.isfinite(image).all()


def test_a_checkpoint_laid_out_as_texnets_0_1_0_wrote_it_resumes_training(tmp_path, capsys):
    """A run of the current code, its model parts replaced by the 0.1.0 layout: the task accepts them
    (generator config, state-dict keys, loss buffers) and training continues from step 2."""
    runs = tmp_path / "runs"
    code, err = call_main(train.main, ["--config", OLD.with_suffix(".yaml"), "--output_dir", runs, "--run_name", "r"],
                          capsys)
    assert code == 0, err
    checkpoint = runs / "r" / "last.ckpt"
    current = torch.load(checkpoint, weights_only=True)
    current.update(format1_parts())
    torch.save(current, checkpoint)
    code, err = call_main(train.main, ["--config", OLD.with_suffix(".yaml"), "--ckpt_path", checkpoint,
                                       "--trainer.max_steps", 3], capsys)
    assert code == 0, err
    assert json.loads((runs / "r" / "report.json").read_text())["final_step"] == 3


OLD_TRANSFER = OLD.parent / "transformer_net_format1"   # written before transfer networks learnt several styles


def test_a_transfer_checkpoint_from_before_multi_style_loads_as_a_one_style_network(tmp_path, capsys):
    path = tmp_path / "format1.ckpt"
    parts = format1_parts(old=OLD_TRANSFER)
    torch.save(parts, path)
    loaded = load_generator(path)
    assert loaded.generator.styles == 1
    assert loaded.generator.config_dict() == {**parts["texnets"]["generator"], "styles": 1}
    assert {"generator." + key for key in loaded.generator.state_dict()} == {
        key for key in parts["state_dict"] if key.startswith("generator.")}
    code, out, _ = call_main_out(synthesize.main, ["--checkpoint", path, "--list-styles"], capsys)
    assert code == 0 and out.strip() == "0: builtin:brick"


def test_a_transfer_checkpoint_from_before_multi_style_resumes_training(shared_data, tmp_path, capsys):
    runs, content = tmp_path / "runs", ["--data.folder", shared_data / "content"]
    code, err = call_main(train.main, ["--config", OLD_TRANSFER.with_suffix(".yaml"), *content, "--output_dir", runs,
                                       "--run_name", "r"], capsys)
    assert code == 0, err
    checkpoint = runs / "r" / "last.ckpt"
    current = torch.load(checkpoint, weights_only=True)
    current.update(format1_parts(old=OLD_TRANSFER))
    torch.save(current, checkpoint)
    code, err = call_main(train.main, ["--config", OLD_TRANSFER.with_suffix(".yaml"), *content, "--ckpt_path",
                                       checkpoint, "--trainer.max_steps", 3], capsys)
    assert code == 0, err
    assert json.loads((runs / "r" / "report.json").read_text())["final_step"] == 3


def test_super_resolution_checkpoints_from_before_the_post_processing_was_recorded_match_histograms():
    # Johnson et al. 2016 match every output's histograms; a checkpoint that records nothing follows the paper.
    assert matches_histograms({"training": {"task": "super_resolution"}})
    assert matches_histograms({"training": {"postprocess": "histogram_matching"}})
    assert not matches_histograms({"training": {"postprocess": "none"}})
