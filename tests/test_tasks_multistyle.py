"""Many styles in one transfer network (Dumoulin et al. 2017) through TransferTask and train.py: a list of style
images trains one network with a row of scales and shifts per style; each style's loss falls; adding a style to a
trained network trains its new row only and leaves the other styles' outputs unchanged; synthesize.py chooses
styles by index or mix, lists them and refuses bad choices in one line."""
import functools
import statistics
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import synthesize
import train
from helpers import call_main, call_main_out, make_sr_checkpoint, one_error_line
from texnets.checkpoints import load_generator
from texnets.errors import TexnetsError
from texnets.images import load_image
from texnets.tasks import TransferTask

REPO = Path(__file__).resolve().parents[1]
PAINTINGS = ("starry_night.jpg", "udnie.jpg", "composition_vii.jpg")
train_main = functools.partial(call_main, train.main)
synthesize_main = functools.partial(call_main, synthesize.main)


def tiny(shared_data, out, steps, styles, *extra) -> list:
    """configs/multistyle_*.yaml at a test's size: 32 px crops, a 48 px style, an eighth-width network."""
    listed = "[" + ", ".join(str(shared_data / "styles" / name) for name in styles) + "]"
    return ["--config", REPO / "configs" / "multistyle_dumoulin2017.yaml", "--config", REPO / "configs" /
            "multistyle_cpu.yaml", "--model.style", listed, "--data.folder", shared_data / "content",
            "--data.size", 32, "--data.val_images", 1, "--model.style_size", 48, "--model.generator.width", 0.125,
            "--trainer.max_steps", steps, "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false", "--output_dir", out, *extra]


@pytest.fixture(scope="module")
def three_styles(shared_data, tmp_path_factory) -> Path:
    """A three-style network trained for two steps by train.py: its run folder."""
    out = tmp_path_factory.mktemp("multistyle")
    assert train.main([str(a) for a in tiny(shared_data, out, 2, PAINTINGS, "--run_name", "three")]) == 0
    return out / "three"


def test_a_list_of_styles_trains_one_network_with_a_row_per_style(three_styles):
    loaded = load_generator(three_styles / "last.ckpt")
    assert loaded.generator.styles == 3 and loaded.metadata["generator"]["styles"] == 3
    assert [Path(p).name for p in loaded.metadata["training"]["styles"]] == list(PAINTINGS)
    state = torch.load(three_styles / "last.ckpt", weights_only=True)["state_dict"]
    targets = [key for key in state if key.startswith("criterion.terms.style.losses.")]
    assert {key.split(".")[4] for key in targets} == {"0", "1", "2"}   # every style's Gram targets are kept
    assert state["generator.encoder.0.2.weight"].shape[0] == 3


def test_each_styles_loss_falls_on_a_fixed_batch(shared_data):
    torch.manual_seed(0)
    styles = [str(shared_data / "styles" / name) for name in PAINTINGS[:2]]
    task = TransferTask(style=styles, style_size=48, generator={"width": 0.125, "residual_blocks": 1},
                        style_layers=["relu1_2", "relu2_2"], content_layers=["relu2_2"], lr=1e-2)
    task.prepare_targets("fit")
    photos = torch.cat([load_image(f"builtin:{name}", 32)[..., :32, :32] for name in ("astronaut", "coffee")])
    optimizer = torch.optim.Adam(task.generator.parameters(), lr=1e-2)
    history = {0: [], 1: []}
    for _ in range(25):
        assignment = torch.tensor([0, 1])
        optimizer.zero_grad()
        loss, _ = task.objective(photos, task.generator(photos, assignment), assignment)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            for style in (0, 1):
                both = torch.full((2,), style)
                history[style].append(float(task.objective(photos, task.generator(photos, both), both)[1]["style"]))
    for style, values in history.items():
        assert statistics.median(values[-5:]) < 0.7 * statistics.median(values[:5]), (style, values)


def test_adding_a_style_trains_its_row_only(three_styles, shared_data, tmp_path, capsys):
    extra = ["--model.extend", three_styles / "last.ckpt", "--run_name", "plus", "--model.lr", "0.05"]
    code, err = train_main(tiny(shared_data, tmp_path, 3, ["water_lilies.jpg"], *extra), capsys)
    assert code == 0, err
    before = load_generator(three_styles / "last.ckpt").generator
    after = load_generator(tmp_path / "plus" / "last.ckpt")
    assert after.generator.styles == 4
    assert [Path(p).name for p in after.metadata["training"]["styles"]] == [*PAINTINGS, "water_lilies.jpg"]
    photo = load_image("builtin:astronaut", 40)[..., :40, :40]
    with torch.no_grad():
        for style in range(3):   # the trained styles are exactly as they were
            index = torch.tensor([style])
            assert torch.equal(after.generator(photo, index), before(photo, index)), style
        # The new row started from the mean of the others and moved.
        start = before.with_style([1 / 3] * 3)(photo)
        assert not torch.allclose(after.generator(photo, torch.tensor([3])), start, atol=1e-4)


def test_extending_needs_a_transfer_checkpoint_and_the_same_network(three_styles, shared_data, tmp_path, capsys):
    other = make_sr_checkpoint(tmp_path / "sr.ckpt")
    code, err = train_main(tiny(shared_data, tmp_path, 2, ["udnie.jpg"], "--model.extend", other), capsys)
    assert code == 2 and "holds a sr-net; styles are added to transfer networks" in one_error_line(err)
    code, err = train_main(tiny(shared_data, tmp_path, 2, ["udnie.jpg"], "--model.extend", three_styles / "last.ckpt",
                                "--model.generator.width", 0.25), capsys)
    assert code == 2 and "width is 0.25 here but 0.125 there" in one_error_line(err)
    assert not [path for path in tmp_path.rglob("*.ckpt") if path.name != "sr.ckpt"]


@pytest.mark.parametrize("batch", [4, 6, 3])
def test_balanced_sampling_gives_every_style_its_share_of_each_batch(batch):
    task = TransferTask(style=["builtin:brick", "builtin:grass", "builtin:gravel", "builtin:rough_wall"],
                        generator={"width": 0.125, "residual_blocks": 1}, style_layers=["relu1_2"],
                        content_layers=["relu1_2"])
    assert task.hparams.style_sampling == "balanced"
    torch.manual_seed(0)
    counts = torch.stack([torch.bincount(task.draw_styles(batch), minlength=4) for _ in range(400)])
    assert counts.min(1).values.ge(batch // 4).all() and counts.max(1).values.le(-(-batch // 4)).all()
    if batch % 4:   # which styles get the extra images varies, so every style gets its share over a run
        assert counts.sum(0).min() > 0.8 * counts.sum(0).max()
    task.hparams.style_sampling = "random"   # magenta's: a batch of 4 often lacks a style
    drawn = torch.stack([torch.bincount(task.draw_styles(4), minlength=4) for _ in range(400)])
    assert (drawn == 0).any(1).float().mean() > 0.5
    with pytest.raises(TexnetsError, match="model.style_sampling must be one of balanced, random"):
        TransferTask(style=["builtin:brick", "builtin:grass"], style_sampling="cyclic")


def test_a_styles_count_that_disagrees_with_the_images_is_one_line():
    with pytest.raises(TexnetsError, match="model.generator.styles is 3 but 2 style images are given"):
        TransferTask(style=["builtin:brick", "builtin:grass"], generator={"styles": 3})


# --------------------------------------------------------------------------------------------------
# synthesize.py

def test_list_styles_prints_them_by_file_name(three_styles, capsys):
    code, out, err = call_main_out(synthesize.main, ["--checkpoint", three_styles / "last.ckpt", "--list-styles"],
                                   capsys)
    assert code == 0, err
    assert [line.split("  ")[0] for line in out.splitlines()] == [f"{i}: {name}" for i, name in enumerate(PAINTINGS)]


def test_a_style_index_and_a_mix_choose_what_the_network_computes(three_styles, tmp_path, capsys):
    source = tmp_path / "photo.png"
    Image.fromarray(np.asarray((load_image("builtin:coffee", 40)[0, :, :40, :48].permute(1, 2, 0) * 255)
                               .round().byte())).save(source)
    network = load_generator(three_styles / "last.ckpt").generator
    image = load_image(source)
    for extra, weights in ((["--style-index", 2], [0.0, 0.0, 1.0]), (["--mix", "0=0.25", "1=0.75"], [0.25, 0.75, 0.0])):
        out = tmp_path / f"out_{extra[0][2:]}.png"
        code, err = synthesize_main(["--checkpoint", three_styles / "last.ckpt", "--input", source, "--output", out,
                                     *extra], capsys)
        assert code == 0, err
        with torch.no_grad():
            expected = (network(image, torch.tensor(weights)).clamp(0, 1)[0] * 255).round().permute(1, 2, 0).numpy()
        assert np.abs(np.asarray(Image.open(out)).astype(int) - expected.astype(int)).max() <= 1
    report = (tmp_path / "out_mix.json").read_text()
    assert '"name": "udnie.jpg"' in report and '"weight": 0.75' in report


@pytest.mark.parametrize("extra, message", [
    (["--style-index", "3"], "style index 3 is out of range: this network knows 3 styles (0 to 2)"),
    (["--mix", "0=0.5", "1=0.6"], "must be non-negative and sum to 1"),
    (["--mix", "zero=1"], "--mix takes INDEX=WEIGHT pairs such as 0=0.7 1=0.3, not 'zero=1'"),
    (["--mix", "0=1", "--style-index", "0"], "--style-index and --mix both choose the style"),
    (["--export", "EXPORT"], "knows 3 styles and exports one at a time: add --style-index K or --mix"),
])
def test_bad_style_choices_are_one_line_and_write_nothing(three_styles, tmp_path, capsys, extra, message):
    out = tmp_path / "out" / "x.png"
    extra = [str(tmp_path / "export") if item == "EXPORT" else item for item in extra]
    code, err = synthesize_main(["--checkpoint", three_styles / "last.ckpt", "--input", "builtin:astronaut",
                                 "--output", out, *extra], capsys)
    assert code == 2
    assert message in one_error_line(err)
    assert not out.parent.exists() and not (tmp_path / "export").exists()


def test_style_options_on_another_family_are_one_line(tmp_path, capsys):
    code, err = synthesize_main(["--checkpoint", make_sr_checkpoint(tmp_path / "sr.ckpt"), "--list-styles"], capsys)
    assert code == 2 and "--style-index, --mix and --list-styles are for transfer networks" in one_error_line(err)


def test_export_bakes_the_chosen_style(three_styles, tmp_path, capsys):
    code, err = synthesize_main(["--checkpoint", three_styles / "last.ckpt", "--export", tmp_path / "export",
                                 "--style-index", 1], capsys)
    assert code == 0, err
    scripted = torch.jit.load(str(tmp_path / "export" / "generator.torchscript.pt"))
    network, photo = load_generator(three_styles / "last.ckpt").generator, load_image("builtin:astronaut", 32)
    with torch.no_grad():
        assert torch.allclose(scripted(photo), network(photo, torch.tensor([1])), atol=1e-5)
