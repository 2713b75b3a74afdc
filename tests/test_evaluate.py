"""evaluate.py end to end: reports carry every figure with its extractor and image count, the offline
extractor is labelled, each bad input stops with one line, and compare times and scores the
optimisation baselines against a tiny texture network trained here."""
import functools
import json
import urllib.error
from pathlib import Path

import pytest
import torch
import yaml

import evaluate
from helpers import call_main_out, make_arbitrary_checkpoint, make_texture_checkpoint, make_transfer_checkpoint
from texnets.errors import TexnetsError
from texnets.images import load_image, save_image

SIZE = 32
# Truncated networks everywhere: fast, and still the real code paths.
FAST = ["--style-layers", "relu1_1", "relu2_1", "--sifid-layer", "pool1", "--fid-layer", "pool2",
        "--fid-size", str(SIZE), "--quiet", "--device", "cpu"]


run = functools.partial(call_main_out, evaluate.main)


def write_crops(folder: Path, name: str, count: int, seed: int, prefix: str = "img") -> list[Path]:
    image = load_image(f"builtin:{name}", 96)
    rng = torch.Generator().manual_seed(seed)
    paths = []
    for i in range(count):
        y, x = (int(torch.randint(0, s - SIZE + 1, (1,), generator=rng)) for s in image.shape[-2:])
        paths.append(save_image(image[..., y:y + SIZE, x:x + SIZE], folder / f"{prefix}{i:02d}.png"))
    return paths


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    write_crops(root / "generated", "gravel", 4, seed=0)
    write_crops(root / "references", "gravel", 4, seed=1)
    save_image(load_image("builtin:gravel", SIZE), root / "exemplar.png")
    return root


def single_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.fixture
def no_inception(monkeypatch):
    """The standard Inception is unavailable, as on any machine without torch-fidelity or its weights."""
    def unavailable():
        raise TexnetsError("the InceptionV3 FID weights are not cached and could not be downloaded (test)")
    monkeypatch.setattr("texnets.evaluation.evaluator.load_inception", unavailable)


# --------------------------------------------------------------------------------------------------
# evaluate.py --generated ... --reference ...

def test_exemplar_mode_reports_each_figure_with_extractor_and_count(data, tmp_path, capsys, no_inception):
    out = tmp_path / "eval.json"
    code, stdout, _ = run(["--generated", data / "generated", "--reference", data / "exemplar.png",
                           "--lpips-random-backbone", "--output", out, *FAST, "--sifid-layer", "auto"], capsys)
    assert code == 0
    report = json.loads(out.read_text())
    names = set(report["metrics"])
    assert {"SiFID-VGG19(pool1, 64-d)", "Gram distance relu1_1", "SW distance relu2_1"} <= names
    assert report["generated_count"] == 4 and report["reference_mode"] == "exemplar"
    assert report["fallbacks"]["sifid"].startswith("the InceptionV3")
    diversity = report["metrics"]["LPIPS-alex(RANDOM backbone: tests only, not LPIPS) diversity"]
    assert diversity["count"] == 6 and diversity["value"] > 0
    for entry in report["metrics"].values():
        assert entry["value"] is not None and entry["extractor"]
    figure_lines = [line for line in stdout.splitlines() if ": " in line and not line.startswith("->")]
    assert len(figure_lines) == len(names)
    assert all(("generated vs 1 exemplar" in line or "pairs among 4" in line) and "[" in line for line in figure_lines)
    table = out.with_suffix(".md").read_text()
    assert "| SiFID-VGG19(pool1, 64-d) |" in table and "4 generated vs 1 exemplar" in table


def test_reference_set_fid_kid_offline_are_labelled_vgg_never_plain_fid(data, tmp_path, capsys, no_inception):
    out = tmp_path / "fid.json"
    code, stdout, err = run(["--generated", str(data / "generated" / "*.png"), "--reference", data / "references",
                             "--output", out, "--metrics", "fid", "kid", *FAST], capsys)
    assert code == 0
    report = json.loads(out.read_text())
    assert set(report["metrics"]) == {"FID-VGG19(pool2)", "KID-VGG19(pool2)"}
    fid = report["metrics"]["FID-VGG19(pool2)"]
    assert fid["images"] == "4 generated vs 4 reference" and "small sample" in fid["note"]
    assert "VGG19" in fid["extractor"] and "not comparable with published FIDs" in fid["extractor"]
    assert "InceptionV3" in report["fallbacks"]["fid"]
    assert "FID-VGG19(pool2):" in stdout and "4 generated vs 4 reference" in stdout
    assert "FID-VGG19(pool2)" in err  # the fallback warning names the label used instead
    assert "| FID-VGG19(pool2) |" in out.with_suffix(".md").read_text()


def test_identical_pairs_score_perfectly(data, tmp_path, capsys):
    out = tmp_path / "pairs.md"
    code, _, _ = run(["--generated", data / "generated", "--reference", data / "generated", "--pairs", "name",
                      "--metrics", "psnr", "ssim", "lpips", "sifid", "--lpips-random-backbone", "--output", out, *FAST],
                     capsys)
    assert code == 0
    report = json.loads(out.with_suffix(".json").read_text())["metrics"]
    assert report["PSNR"]["value"] is None and "infinite" in report["PSNR"]["note"]
    assert report["SSIM"]["value"] == pytest.approx(1.0, abs=1e-4)
    assert report["LPIPS-alex(RANDOM backbone: tests only, not LPIPS) distance"]["value"] == pytest.approx(0, abs=1e-6)
    assert abs(report["SiFID-VGG19(pool1, 64-d)"]["value"]) < 1e-4
    assert report["SSIM"]["images"] == "4 generated vs 4 paired references"


@pytest.fixture
def bad_inputs(data, tmp_path):
    """name -> (argv, expected part of the one error line)."""
    empty = tmp_path / "empty"
    empty.mkdir()
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "a.png").write_bytes(b"this is not a png")
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    png = (data / "generated" / "img00.png").read_bytes()
    (truncated / "img00.png").write_bytes(png[: len(png) // 2])
    renamed = tmp_path / "renamed"
    write_crops(renamed, "gravel", 4, seed=2, prefix="other")
    bigger = tmp_path / "bigger"  # the generated names, 40x40 instead of 32x32
    for i in range(4):
        save_image(torch.rand(1, 3, 40, 40), bigger / f"img{i:02d}.png")
    single = tmp_path / "single"
    save_image(torch.rand(1, 3, SIZE, SIZE), single / "img00.png")
    gen, ref, exemplar = data / "generated", data / "references", data / "exemplar.png"
    return {
        "empty set": (["--generated", empty, "--reference", exemplar], "no images in the generated images"),
        "missing folder": (["--generated", tmp_path / "nope", "--reference", exemplar], "generated images not found"),
        "missing exemplar": (["--generated", gen, "--reference", tmp_path / "nope.png"], "image not found"),
        "not an image": (["--generated", corrupt, "--reference", exemplar], "not an image file"),
        "truncated image": (["--generated", truncated, "--reference", exemplar], "truncated or corrupt"),
        "unmatched names": (["--generated", gen, "--reference", renamed, "--pairs", "name"], "mismatched pairs"),
        "unequal counts": (["--generated", single, "--reference", ref, "--pairs", "order"], "the counts differ"),
        "pair sizes differ": (["--generated", bigger, "--reference", gen, "--pairs", "name", "--metrics", "psnr"],
                              "mismatched pair: img00.png is 40x40"),
        "fid vs one exemplar": (["--generated", gen, "--reference", exemplar, "--metrics", "fid"],
                                "FID needs a reference set"),
        "pairs vs one exemplar": (["--generated", gen, "--reference", exemplar, "--pairs", "name"],
                                  "--pairs needs a folder"),
        "bad output suffix": (["--generated", gen, "--reference", exemplar, "--output", tmp_path / "x.txt"],
                              "--output must end in .json or .md"),
    }


@pytest.mark.parametrize("case", ["empty set", "missing folder", "missing exemplar", "not an image", "truncated image",
                                  "unmatched names", "unequal counts", "pair sizes differ", "fid vs one exemplar",
                                  "pairs vs one exemplar", "bad output suffix"])
def test_bad_input_is_one_error_line(case, bad_inputs, tmp_path, capsys):
    argv, expected = bad_inputs[case]
    if "--output" not in argv:
        argv = [*argv, "--output", tmp_path / "out.json"]
    code, _, err = run([*argv, *FAST], capsys)
    assert code == 2
    assert expected in single_error_line(err)
    assert not (tmp_path / "out.json").exists()


def test_lpips_requested_without_weights_is_one_error_line(data, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network (test)")
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    base = ["--generated", data / "generated", "--reference", data / "exemplar.png", "--output", tmp_path / "out.json",
            *FAST]
    for asked in (["--metrics", "lpips"], ["--metrics", "diversity", "--diversity-extractor", "lpips"]):
        code, _, err = run(base + asked, capsys)
        assert code == 2
        line = single_error_line(err)
        assert "LPIPS needs torchvision's ImageNet alex weights" in line and "alexnet-owt-7be5be79.pth" in line
        assert not (tmp_path / "out.json").exists()
    # Diversity by default: LPIPS' formula on the bundled VGG19 instead, with a warning and a label that
    # never says LPIPS; the reason is kept in the report.
    code, _, err = run(base, capsys)
    report = json.loads((tmp_path / "out.json").read_text())
    assert code == 0 and "warning: LPIPS unavailable for diversity" in err
    assert "alexnet-owt-7be5be79.pth" in report["fallbacks"]["diversity"] and "diversity" not in report["skipped"]
    diversity = report["metrics"]["Diversity-VGG19(uniform weights)"]
    assert diversity["metric"] == "diversity" and diversity["count"] == 6 and diversity["value"] > 0
    assert "not LPIPS" in diversity["extractor"] and "SiFID-VGG19(pool1, 64-d)" in report["metrics"]


# --------------------------------------------------------------------------------------------------
# evaluate.py compare

@pytest.fixture
def tiny_checkpoint(texture_config, tmp_path, capsys):
    """A texture network trained by train.py for 3 steps on 32² patches (conftest's tiny config):
    enough to load, sample and time, and still ignoring its noise."""
    import train
    code = train.main(["--config", str(texture_config), "--output_dir", str(tmp_path / "runs"), "--run_name", "tiny",
                       "--trainer.max_steps", "3", "--trainer.logger", "false"])
    capsys.readouterr()
    assert code == 0
    return tmp_path / "runs" / "tiny" / "last.ckpt"


def test_compare_times_and_scores_baselines_and_texture_net(tiny_checkpoint, tmp_path, capsys):
    config = tmp_path / "compare.yaml"
    config.write_text(yaml.safe_dump({"style": "builtin:immunohistochemistry", "checkpoint": str(tiny_checkpoint),
                                      "size": SIZE, "samples": 2, "steps": 3, "layers": "relu1_1,pool1",
                                      "methods": ["gram", "meanvar"]}))
    grid = tmp_path / "out" / "compare.png"
    code, stdout, _ = run(["compare", "--config", config, "--output", grid, "--lpips-random-backbone", *FAST], capsys)
    assert code == 0, stdout
    report = json.loads(grid.with_suffix(".json").read_text())
    methods = report["methods"]
    assert report["method_order"] == ["gram", "meanvar", "net"]  # the checkpoint adds the net
    assert report["baseline"] == "gram" and methods["gram"]["speedup"] == pytest.approx(1.0)
    for key, method in methods.items():
        assert len(method["samples"]) == 2 and all(Path(p).is_file() for p in method["samples"])
        assert method["seconds_per_image"] > 0
        # The report rounds seconds to 5 decimals (+-5e-6 s), so two rounded figures give the unrounded speed-up
        # only to within their relative rounding errors: a fast net's ~1 ms per image broke a flat rel=1e-3.
        baseline, seconds = methods["gram"]["seconds_per_image"], method["seconds_per_image"]
        assert method["speedup"] == pytest.approx(baseline / seconds, rel=1e-6 + 5e-6 / baseline + 5e-6 / seconds)
        names = set(method["evaluation"]["metrics"])
        assert {"SiFID-VGG19(pool1, 64-d)", "Gram distance relu2_1", "MeanVar distance relu1_1"} <= names
    diversity = "LPIPS-alex(RANDOM backbone: tests only, not LPIPS) diversity"
    # A network trained for 3 steps still ignores its noise; optimisation from different seeds does not.
    net_diversity = methods["net"]["evaluation"]["metrics"][diversity]["value"]
    # 0.071x (1 thread) and 0.076x (2 threads) measured: the 3-step net moves with the CPU's path, so a wider bound.
    assert net_diversity < 0.25 * methods["gram"]["evaluation"]["metrics"][diversity]["value"]
    assert methods["net"]["details"]["training"]["exemplar"] == "builtin:immunohistochemistry"
    table = grid.with_suffix(".md").read_text()
    assert "speed-up vs Gram optimisation" in table and "SiFID-VGG19(pool1, 64-d) ↓ (n=2)" in table
    assert all(f"| {label} |" in table for label in ("Gram optimisation", "MeanVar optimisation", "texture net"))
    image = load_image(str(grid))
    assert image.shape[-1] > 4 * SIZE and image.shape[-2] > 2 * SIZE  # 4 columns (exemplar + 3), 2 rows


@pytest.mark.parametrize("argv, expected", [
    (["--style", "builtin:gravel", "--methods", "net"], "the net method needs --checkpoint"),
    (["--style", "builtin:gravel", "--checkpoint", "missing.ckpt"], "checkpoint not found"),
    (["--checkpoint", "x.ckpt"], "compare needs --style"),
])
def test_compare_bad_input_is_one_error_line(argv, expected, tmp_path, capsys):
    code, _, err = run(["compare", *argv, "--output", tmp_path / "grid.png", "--steps", "1", "--samples", "1",
                        "--size", SIZE, "--layers", "relu1_1", *FAST], capsys)
    assert code == 2 and expected in single_error_line(err)


# Style transfer: --content photos, a transfer network, Gatys et al. 2016 optimisation.
TRANSFER = ["--style", "builtin:immunohistochemistry", "--content", "builtin:astronaut", "builtin:coffee",
            "--size", "48", "--layers", "relu1_1,relu2_1", "--content-layers", "relu2_1"]


def test_compare_with_content_photos_scores_style_transfer(tmp_path, capsys):
    checkpoint = make_transfer_checkpoint(tmp_path / "transfer.ckpt")
    grid = tmp_path / "out" / "transfer.png"
    code, stdout, _ = run(["compare", *TRANSFER, "--checkpoint", checkpoint, "--methods", "gram", "--steps", 5,
                           "--output", grid, *FAST], capsys)
    assert code == 0, stdout
    report = json.loads(grid.with_suffix(".json").read_text())
    methods = report["methods"]
    assert report["task"] == "transfer" and report["method_order"] == ["photo", "gram", "net"]
    assert report["content"] == ["builtin:astronaut", "builtin:coffee"]
    for method in methods.values():
        assert len(method["samples"]) == 2
        assert all(load_image(p).shape[-2:] == (48, 48) for p in method["samples"])
        assert not any("diversity" in name for name in method["evaluation"]["metrics"])  # different photos

    def figure(method, name):
        return methods[method]["evaluation"]["metrics"][name]["value"]

    def gram_total(method):
        return sum(figure(method, f"Gram distance {layer}") for layer in ("relu1_1", "relu2_1"))

    content = "Content distance relu2_1"
    # The photo is where every method starts: no content distance, the largest style distance.
    assert figure("photo", content) < 0.01 * figure("gram", content)
    assert gram_total("gram") < 0.5 * gram_total("photo")
    assert figure("net", content) > figure("photo", content)
    assert methods["photo"]["speedup"] is None and methods["gram"]["speedup"] == pytest.approx(1.0)
    assert methods["net"]["speedup"] > 0 and methods["net"]["details"]["training"]["style"] == "starry_night.jpg"
    table = grid.with_suffix(".md").read_text()
    assert table.startswith("# Style transfer") and f"{content} ↓ (n=2)" in table
    assert all(f"| {label} |" in table for label in ("the photo (unstylised)", "Gram optimisation", "transfer net"))
    image = load_image(str(grid))
    assert image.shape[-1] >= 4 * 48 and image.shape[-2] >= 2 * 48  # style, photo, gram, net; one row per photo


def test_compare_refuses_a_network_of_the_other_task(tmp_path, capsys):
    texture, transfer = make_texture_checkpoint(tmp_path / "t.ckpt"), make_transfer_checkpoint(tmp_path / "s.ckpt")
    common = ["--output", tmp_path / "g.png", "--steps", "1", "--samples", "1", *FAST]
    code, _, err = run(["compare", *TRANSFER, "--checkpoint", texture, *common], capsys)
    assert code == 2 and "a texture network: leave out --content" in single_error_line(err)
    code, _, err = run(["compare", "--style", "builtin:gravel", "--size", SIZE, "--checkpoint", transfer, *common],
                       capsys)
    assert code == 2 and "a transfer network: give --content photos" in single_error_line(err)
    code, _, err = run(["compare", *TRANSFER[:3], str(tmp_path / "missing.jpg"), *common], capsys)
    assert code == 2 and "missing.jpg" in single_error_line(err)
    assert not (tmp_path / "g.png").exists()


def test_compare_config_with_unknown_key_is_refused(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("style: builtin:gravel\nstpes: 3\n")
    code, _, err = run(["compare", "--config", config, "--output", tmp_path / "g.png"], capsys)
    assert code == 2 and "unknown key 'stpes'" in single_error_line(err)


# Arbitrary-style networks (AdaIN, WCT) beside the optimisation and a Johnson network: the same photos, the
# compare's style image, one checkpoint per model type.
def retrain_metadata(checkpoint: Path, **training) -> Path:
    """``checkpoint`` with its recorded training set-up replaced (as AdaINTask records its style folders)."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    state["texnets"]["training"] = training
    torch.save(state, checkpoint)
    return checkpoint


def test_compare_scores_adain_and_wct_beside_optimisation_and_transfer_net(tmp_path, capsys):
    styles = tmp_path / "styles"  # AdaIN's training styles: the compare's style is the held-out one
    style = save_image(load_image("builtin:immunohistochemistry", 64), styles / "held_out.png")
    save_image(load_image("builtin:gravel", 64), styles / "seen.png")
    adain = retrain_metadata(make_arbitrary_checkpoint(tmp_path / "adain.ckpt"), size=32, styles=[str(styles)],
                             held_out_styles=[str(style)])
    wct = make_arbitrary_checkpoint(tmp_path / "wct.ckpt", "wct_net", levels=["relu1_1", "relu2_1"])
    transfer = make_transfer_checkpoint(tmp_path / "transfer.ckpt")
    grid = tmp_path / "out" / "arbitrary.png"
    code, stdout, _ = run(["compare", "--style", style, *TRANSFER[2:], "--checkpoint", transfer, adain, wct,
                           "--methods", "gram", "adain", "wct", "--steps", 2, "--output", grid, *FAST], capsys)
    assert code == 0, stdout
    report = json.loads(grid.with_suffix(".json").read_text())
    methods = report["methods"]
    assert report["method_order"] == ["photo", "gram", "adain", "wct", "net"]  # the unasked checkpoint comes last
    assert report["arguments"]["checkpoint"] == [str(transfer), str(adain), str(wct)]
    content = "Content distance relu2_1"
    for key in ("adain", "wct", "net"):
        method = methods[key]
        assert len(method["samples"]) == 2 and all(load_image(p).shape[-2:] == (48, 48) for p in method["samples"])
        assert method["seconds_per_image"] > 0 and len(method["seconds"]) == 2 and method["speedup"] > 0
        assert method["details"]["batch_size"] == 1 and method["evaluation"]["metrics"][content]["value"] > 0
        assert "Gram distance relu2_1" in method["evaluation"]["metrics"]
    adain_details, wct_details = methods["adain"]["details"], methods["wct"]["details"]
    assert adain_details["checkpoint"] == str(adain) and wct_details["checkpoint"] == str(wct)
    assert adain_details["style_in_training"] is False and "held out" in adain_details["style_in_training_reason"]
    assert wct_details["style_in_training"] is False and "photos only" in wct_details["style_in_training_reason"]
    assert wct_details["levels"] == ["relu2_1", "relu1_1"] and adain_details["style_seconds"] > 0
    assert methods["adain"]["label"] == "AdaIN net (style unseen in training)"
    assert methods["adain"]["source"].startswith("Huang & Belongie 2017")
    table = grid.with_suffix(".md").read_text()
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines() if line.startswith("| ")}
    for label in ("AdaIN net (style unseen in training)", "WCT net (style unseen in training)", "transfer net",
                  "Gram optimisation", "the photo (unstylised)"):
        assert label in rows, table
    assert f"{content} ↓ (n=2)" in table and "WCT trains on photos only" in table
    image = load_image(str(grid))
    assert image.shape[-1] >= 6 * 48 and image.shape[-2] >= 2 * 48  # style, photo, gram, adain, wct, net


@pytest.mark.parametrize("style, training, expected", [
    ("styles/a/seen.png", {"styles": ["styles/a", "styles/b"], "held_out_styles": ["styles/a/held.png"]}, True),
    ("styles/a/held.png", {"styles": ["styles/a"], "held_out_styles": ["styles/a/held.png"]}, False),
    ("elsewhere/seen.png", {"styles": "styles", "held_out_styles": []}, False),
    ("builtin:chelsea", {"styles": ["styles"], "held_out_styles": []}, False),
    ("styles/a/seen.png", {"size": 32}, None),
])
def test_compare_says_whether_adain_saw_the_style_in_training(style, training, expected, tmp_path, monkeypatch):
    from texnets.evaluation.compare import style_in_training
    monkeypatch.chdir(tmp_path)  # recorded paths are relative to where training ran
    seen, reason = style_in_training(style, "adain_net", training)
    assert seen is expected and reason
    assert style_in_training(style, "wct_net", training)[0] is False


def test_compare_refuses_unusable_arbitrary_networks_in_one_line(tmp_path, capsys):
    adain = make_arbitrary_checkpoint(tmp_path / "adain.ckpt")
    other = make_arbitrary_checkpoint(tmp_path / "other.ckpt", width=0.25)
    common = ["--output", tmp_path / "g.png", "--steps", "1", "--samples", "1", *FAST]
    cases = [
        ([*TRANSFER, "--checkpoint", adain, other], "both hold an 'adain_net' model: give one checkpoint per model type"),
        (["--style", "builtin:gravel", "--size", SIZE, "--checkpoint", adain], "it stylises photos, give --content"),
        (["--style", "builtin:gravel", "--size", SIZE, "--methods", "gram", "wct"], "the wct method stylises photos"),
        ([*TRANSFER, "--methods", "gram", "adain"], "the adain method needs --checkpoint"),
        ([*TRANSFER, "--methods", "adain", "--checkpoint", make_transfer_checkpoint(tmp_path / "s.ckpt")],
         "the adain method needs an 'adain_net' checkpoint in --checkpoint (given: 'transformer_net')"),
    ]
    for argv, expected in cases:
        code, _, err = run(["compare", *argv, *common], capsys)
        assert code == 2 and expected in single_error_line(err), argv
    assert not (tmp_path / "g.png").exists() and not (tmp_path / "g_samples").exists()
