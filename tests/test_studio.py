"""texnets.studio: the run catalog, the model-type table, the tabs' functions (called directly, on tiny checkpoints
made here), and the app through its API (``gradio_client`` against a server started on a free loopback port)."""
from __future__ import annotations

import json
import socket
import struct
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import app as app_front_door
from helpers import MULTISTYLE_NAMES, call_main, make_studio_runs, one_error_line, served_studio
from texnets.errors import TexnetsError
from texnets.generators import GENERATORS
from texnets.images import load_image, save_image, to_uint8
from texnets.studio import functions as studio
from texnets.studio.catalog import Catalog
from texnets.studio.kinds import MODEL_KINDS, STYLE_MIX, STYLIZE, SUPER_RESOLVE, model_types, run_controls

gr = pytest.importorskip("gradio", reason="the studio tests need the [studio] extra (gradio)")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    return make_studio_runs(tmp_path_factory.mktemp("checkpoints"))


@pytest.fixture(scope="module")
def catalog(runs) -> Catalog:
    return Catalog(runs)


@pytest.fixture
def workspace(tmp_path):
    space = studio.Workspace(tmp_path)
    yield space
    space.close()


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    return load_image("builtin:astronaut", (48, 64))   # (H, W): not square, so a transposed output shows


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A valid little PNG whose header claims width x height (a decompression bomb's shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


# --------------------------------------------------------------------------------------------------
# The table and the catalog

def test_every_model_kind_is_a_generator_and_every_stylize_kind_builds_a_network():
    assert set(MODEL_KINDS) <= set(GENERATORS)
    for name, kind in MODEL_KINDS.items():
        assert (kind.network is not None) == (kind.tab == STYLIZE), name


def test_a_large_style_image_is_brought_to_the_default_style_size(catalog):
    loaded = catalog.load("adain", MODEL_KINDS)
    large = torch.rand(1, 3, 600, 700)
    bound = MODEL_KINDS["adain_net"].network(loaded, large, 1.0)
    assert tuple(bound.style_images[0].shape[-2:]) == (512, 597)     # as synthesize.py --style-size 512
    small = torch.rand(1, 3, 40, 50)
    assert MODEL_KINDS["adain_net"].network(loaded, small, 1.0).style_images[0].shape == small.shape   # not enlarged


def test_catalog_lists_runs_by_name_and_type_and_reports_the_corrupt_one(catalog):
    assert {name: run.model_type for name, run in catalog.runs.items() if run.usable} == {
        "starry": "transformer_net", "mosaic": "transformer_net", "adain": "adain_net", "enlarge": "sr_net",
        "pebbles": "texture_net", "marble": "solid_texture_net"}
    [problem] = catalog.problems()
    assert problem.startswith("broken: ") and "corrupt or truncated" in problem
    assert sorted(catalog.names(model_types(STYLIZE))) == ["adain", "mosaic", "starry"]
    assert catalog.names(model_types(SUPER_RESOLVE)) == ["enlarge"]


def test_catalog_knows_each_runs_styles_and_factor_and_the_page_shows_the_controls_that_apply(catalog):
    assert catalog.runs["mosaic"].styles == MULTISTYLE_NAMES[:3] and catalog.runs["starry"].styles == ("starry_night.jpg",)
    assert catalog.runs["enlarge"].factor == 4 and catalog.runs["starry"].factor is None
    assert STYLE_MIX in run_controls(catalog.usable("mosaic"))
    assert STYLE_MIX not in run_controls(catalog.usable("starry"))      # one style: nothing to choose
    assert run_controls(catalog.usable("broken")) == run_controls(None) == frozenset()


@pytest.mark.parametrize("name", ["../starry", "/etc/passwd", "starry/last.ckpt", "broken", None])
def test_catalog_loads_only_listed_usable_runs(catalog, name):
    with pytest.raises(TexnetsError):
        catalog.load(name, MODEL_KINDS)


def test_catalog_refuses_a_run_of_another_tab_and_reloads_a_rewritten_checkpoint(tmp_path):
    runs = make_studio_runs(tmp_path)
    catalog = Catalog(runs)
    with pytest.raises(TexnetsError, match="does not run"):
        catalog.load("pebbles", model_types(STYLIZE))
    first = catalog.load("starry", model_types(STYLIZE))
    assert catalog.load("starry", model_types(STYLIZE)) is first            # loaded once
    checkpoint = runs / "starry" / "last.ckpt"
    checkpoint.write_bytes(checkpoint.read_bytes())                          # a new version of the file
    later = time.time() + 5
    import os
    os.utime(checkpoint, (later, later))
    assert catalog.load("starry", model_types(STYLIZE)) is not first


def test_a_link_out_of_the_checkpoints_folder_is_listed_not_read(tmp_path):
    runs = make_studio_runs(tmp_path / "runs")
    outside = tmp_path / "elsewhere"
    (runs / "starry").rename(outside)
    (runs / "linked").mkdir()
    (runs / "linked" / "last.ckpt").symlink_to(outside / "last.ckpt")
    (runs / "a" / "b" / "c" / "d").mkdir(parents=True)                  # deeper than the scan goes
    (runs / "a" / "b" / "c" / "d" / "last.ckpt").write_bytes((runs / "pebbles" / "last.ckpt").read_bytes())
    catalog = Catalog(runs)
    assert not catalog.runs["linked"].usable and "leads outside" in catalog.runs["linked"].problem
    assert "a/b/c/d" not in catalog.runs
    with pytest.raises(TexnetsError, match="leads outside"):
        catalog.load("linked", MODEL_KINDS)


def test_a_missing_checkpoints_folder_is_one_error_line(tmp_path, capsys):
    code, err = call_main(app_front_door.main, ["--checkpoints", tmp_path / "nowhere"], capsys)
    assert code == 2 and "is not a folder" in one_error_line(err)
    code, err = call_main(app_front_door.main, ["--checkpoints", tmp_path, "--port", "0"], capsys)
    assert code == 2 and "--port" in one_error_line(err)


def test_a_port_in_use_and_a_missing_gradio_are_one_error_line_each(runs, capsys, monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code, err = call_main(app_front_door.main, ["--checkpoints", runs, "--port", taken.getsockname()[1]], capsys)
    assert code == 2 and "cannot serve on 127.0.0.1" in one_error_line(err)
    monkeypatch.delitem(sys.modules, "texnets.studio.ui", raising=False)
    monkeypatch.setitem(sys.modules, "gradio", None)      # as if the [studio] extra were not installed
    code, err = call_main(app_front_door.main, ["--checkpoints", runs], capsys)
    assert code == 2 and "pip install '.[studio]'" in one_error_line(err)


# --------------------------------------------------------------------------------------------------
# Uploads

def test_uploads_are_read_in_any_mode_and_refused_in_one_line(tmp_path):
    rgba = tmp_path / "rgba.png"
    Image.new("RGBA", (40, 30), (200, 10, 10, 128)).save(rgba)
    assert studio.read_upload(rgba).shape == (1, 3, 30, 40)
    text = tmp_path / "notes.png"
    text.write_text("not pixels")
    with pytest.raises(TexnetsError, match="notes.png is not an image"):
        studio.read_upload(text, "photo")
    truncated = tmp_path / "cut.png"
    save_image(load_image("builtin:coffee", 64), tmp_path / "whole.png")
    truncated.write_bytes((tmp_path / "whole.png").read_bytes()[:400])
    with pytest.raises(TexnetsError, match="cut.png"):
        studio.read_upload(truncated, "photo", name="cut.png")
    with pytest.raises(TexnetsError, match="megapixels"):
        studio.read_upload(rgba, "photo", max_megapixels=0.001)
    with pytest.raises(TexnetsError, match="no photo"):
        studio.read_upload(None, "photo")


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path):
    over_limit = png_claiming(tmp_path / "big.png", 8000, 6000)     # 48 MP: over the studio's 40
    with pytest.raises(TexnetsError, match="48.0 megapixels"):
        studio.read_upload(over_limit, "photo")
    bomb = png_claiming(tmp_path / "bomb.png", 100_000, 100_000)   # over Pillow's own limit
    with pytest.raises(TexnetsError, match="decompression-bomb"):
        studio.read_upload(bomb, "photo")


# --------------------------------------------------------------------------------------------------
# The tabs' functions

def test_stylize_keeps_the_size_and_writes_the_image_and_its_report(catalog, workspace, photo):
    result = studio.stylize(catalog, workspace, "starry", photo, preserve_color=True, photo_name="astronaut.png")
    assert Image.open(result.image).size == (64, 48)
    report = json.loads(result.files[-1].read_text())
    assert report["endpoint"] == "/stylize" and report["checkpoint"] == "starry"
    assert report["model_type"] == "transformer_net" and report["size"] == [64, 48] and report["preserve_color"]
    assert report["outputs"] == ["stylized.png"] and report["ms_per_item"] > 0
    again = studio.stylize(catalog, workspace, "starry", photo)
    assert again.image.parent != result.image.parent    # every result in a folder of its own


def test_stylize_downscales_to_max_size_and_an_arbitrary_style_network_needs_a_style(catalog, workspace, photo):
    result = studio.stylize(catalog, workspace, "starry", photo, max_size=32)
    assert max(Image.open(result.image).size) == 32
    with pytest.raises(TexnetsError, match="style image"):
        studio.stylize(catalog, workspace, "adain", photo)
    style = load_image("builtin:immunohistochemistry", 48)
    full = studio.stylize(catalog, workspace, "adain", photo, style, alpha=1.0, style_name="ihc.png")
    none = studio.stylize(catalog, workspace, "adain", photo, style, alpha=0.0, style_name="ihc.png")
    assert json.loads(full.files[-1].read_text())["alpha"] == 1.0
    assert not np.array_equal(np.asarray(Image.open(full.image)), np.asarray(Image.open(none.image)))


def test_a_multi_style_network_runs_the_chosen_style_or_blend_and_reports_it(catalog, workspace, photo):
    network = catalog.load("mosaic", MODEL_KINDS).generator
    pixels = {}
    for key, choice in {"first": {}, "third": {"style_index": 2}, "half": {"blend_with": 2, "blend": 0.5},
                        "third_by_blend": {"blend_with": 2, "blend": 1.0}}.items():
        result = studio.stylize(catalog, workspace, "mosaic", photo, **choice)
        pixels[key] = np.asarray(Image.open(result.image))
        report = json.loads(result.files[-1].read_text())
        assert [style["name"] for style in report["styles"]] == list(MULTISTYLE_NAMES[:3])
        if key == "half":
            assert report["style_mix"] == [{"index": 0, "name": "starry_night.jpg", "weight": 0.5},
                                           {"index": 2, "name": "composition_vii.jpg", "weight": 0.5}]
            assert "50% starry_night.jpg + 50% composition_vii.jpg" in result.summary
    # What synthesize.py --style-index 2 computes, to the 8-bit PNG's rounding.
    with torch.no_grad():
        expected = to_uint8(network.with_style(2)(photo).clamp(0, 1)).permute(1, 2, 0).numpy()
    assert np.abs(pixels["third"].astype(int) - expected).max() <= 1
    assert np.array_equal(pixels["third"], pixels["third_by_blend"])
    assert not np.array_equal(pixels["first"], pixels["third"])
    assert not np.array_equal(pixels["half"], pixels["first"]) and not np.array_equal(pixels["half"], pixels["third"])
    assert network.styles == 3 and network.training is False         # the shared network is left as it was


def test_style_choices_are_checked_and_ignored_by_single_style_networks(catalog, workspace, photo):
    with pytest.raises(TexnetsError, match="style index 3 is out of range: this network knows 3 styles"):
        studio.stylize(catalog, workspace, "mosaic", photo, style_index=3)
    with pytest.raises(TexnetsError, match="style index 5 is out of range"):
        studio.stylize(catalog, workspace, "mosaic", photo, blend_with=5, blend=0.5)
    with pytest.raises(TexnetsError, match="the blend is between 0"):
        studio.stylize(catalog, workspace, "mosaic", photo, blend_with=1, blend=1.5)
    # A hidden control's leftover value (the page last showed a multi-style run) does not reach a plain network.
    plain = studio.stylize(catalog, workspace, "starry", photo, style_index=2, blend_with=1, blend=0.5)
    assert "style_mix" not in json.loads(plain.files[-1].read_text())
    assert studio.style_weights(3, 1, 0, 0.25).tolist() == [0.25, 0.75, 0.0]


def test_super_resolve_makes_exactly_factor_times_the_size_with_the_bicubic_baseline(catalog, workspace, photo):
    result = studio.super_resolve(catalog, workspace, "enlarge", photo, image_name="astronaut.png")
    assert Image.open(result.image).size == Image.open(result.baseline).size == (4 * 64, 4 * 48)
    report = json.loads(result.files[-1].read_text())
    assert report["endpoint"] == "/super_resolve" and report["factor"] == 4 and report["histogram_matching"]
    assert report["input_size"] == [64, 48] and report["size"] == [256, 192]
    assert report["outputs"] == ["x4.png", "bicubic_x4.png"] and result.baseline in result.files
    raw = studio.super_resolve(catalog, workspace, "enlarge", photo, histogram_match=False)
    assert not json.loads(raw.files[-1].read_text())["histogram_matching"] and "not histogram-matched" in raw.summary
    loaded = catalog.load("enlarge", MODEL_KINDS)
    with torch.no_grad():
        expected = to_uint8(loaded.generator(photo).clamp(0, 1)).permute(1, 2, 0).numpy()
    assert np.abs(np.asarray(Image.open(raw.image)).astype(int) - expected).max() <= 1   # the raw network
    assert not np.array_equal(np.asarray(Image.open(raw.image)), np.asarray(Image.open(result.image)))


def test_super_resolve_refuses_a_tiny_input_an_oversized_output_and_another_tab_s_run(catalog, workspace, photo):
    with pytest.raises(TexnetsError, match="too small: at least 8 pixels"):
        studio.super_resolve(catalog, workspace, "enlarge", torch.rand(1, 3, 6, 20))
    with pytest.raises(TexnetsError, match=r"x4 of a 64x48 image is 256x192 \(0.0492 megapixels\); this studio makes up "
                                           r"to 0.01 megapixels"):
        studio.super_resolve(catalog, workspace, "enlarge", photo, max_megapixels=0.01)
    with pytest.raises(TexnetsError, match="does not run"):
        studio.super_resolve(catalog, workspace, "starry", photo)
    assert not list(workspace.root.iterdir())                        # nothing half-written


def test_sample_texture_rounds_the_size_and_tiles_a_copy_of_the_shared_network(catalog, workspace):
    shared = catalog.load("pebbles", MODEL_KINDS)
    padding = shared.generator.config.padding
    result = studio.sample_texture(catalog, workspace, "pebbles", seed=3, height=50, width=70, tile=True)
    width, height = Image.open(result.image).size
    step = shared.generator.size_multiple
    assert (height, width) == (round(50 / step) * step, round(70 / step) * step) and "rounded" in result.summary
    assert json.loads(result.files[-1].read_text())["wraps"] is True
    assert shared.generator.config.padding == padding        # the other sessions' network is untouched
    same = studio.sample_texture(catalog, workspace, "pebbles", seed=3, height=height, width=width, tile=True)
    assert np.array_equal(np.asarray(Image.open(result.image)), np.asarray(Image.open(same.image)))
    with pytest.raises(TexnetsError, match="between 1 and"):
        studio.sample_texture(catalog, workspace, "pebbles", height=0)


def test_sample_solid_writes_the_volume_and_shows_the_chosen_slice(catalog, workspace):
    result = studio.sample_solid(catalog, workspace, "marble", seed=1, edge=24, axis="y", depth=5)
    volume_path = next(path for path in result.files if path.suffix == ".npy")
    volume = np.load(volume_path)
    assert volume.shape == (24, 24, 24, 3) and volume.dtype == np.uint8
    assert np.array_equal(np.asarray(Image.open(result.image).convert("RGB")), volume[:, 5])
    assert np.array_equal(studio.solid_slice(volume_path, "x", 99), volume[:, :, 23])    # depth clamped
    with pytest.raises(TexnetsError, match="axis"):
        studio.solid_slice(volume_path, "w", 0)
    before = set(workspace.root.iterdir())
    with pytest.raises(TexnetsError, match="axis"):
        studio.sample_solid(catalog, workspace, "marble", edge=24, axis="w")
    assert set(workspace.root.iterdir()) == before      # refused before anything was made


def test_an_optimisation_reports_progress_lowers_its_loss_and_stops_on_request(workspace):
    exemplar = load_image("builtin:immunohistochemistry", 64)
    run = studio.Optimization("texture", exemplar, size=48, steps=12, every=4)
    updates = [update for update in run.updates(workspace) if update is not None]
    # the newest progress only: a slow reader may skip one, never sees it out of order or after the result
    assert {update.step for update in updates[:-1]} <= {4, 8} and updates[:-1] == sorted(updates[:-1],
                                                                                         key=lambda u: u.step)
    final = updates[-1]
    assert final.result is not None and final.step == 12 and len(final.history) == 12
    assert final.history[-1] < 0.5 * final.history[0]
    assert json.loads(final.result.files[-1].read_text())["final_losses"]["total"] < final.history[0]

    stopped = studio.Optimization("texture", exemplar, size=48, steps=500, every=1)
    for update in stopped.updates(workspace):
        if update is not None and update.result is None and update.step >= 3:
            stopped.stop()
    # the worker may run a step or two more before the request reaches it (a loaded machine), never to the end
    assert update.result is not None and 4 <= update.step < 100
    assert f"stopped at step {update.step}" in update.result.summary
    assert Image.open(update.result.image).size == (48, 48)


def test_an_optimisation_whose_listener_goes_away_stops(workspace):
    """A closed browser tab closes the generator: the worker must not optimise on for nobody."""
    run = studio.Optimization("texture", load_image("builtin:immunohistochemistry", 64), size=48, steps=2000)
    updates = run.updates(workspace)
    next(updates)
    updates.close()
    run.worker.join(timeout=60)
    assert not run.worker.is_alive()       # it ended long before its 2000 steps


def test_an_optimisation_checks_its_settings():
    exemplar = load_image("builtin:immunohistochemistry", 64)
    with pytest.raises(TexnetsError, match="content photo"):
        studio.Optimization("style", exemplar)
    with pytest.raises(TexnetsError, match="size"):
        studio.Optimization("texture", exemplar, size=5000)
    with pytest.raises(TexnetsError, match="statistic"):
        studio.Optimization("texture", exemplar, loss="fourier")
    with pytest.raises(TexnetsError, match="crop it"):   # the size sets the shorter side: 5:1 would be 640x128
        studio.Optimization("texture", load_image("builtin:immunohistochemistry", (20, 100)))


def test_the_webcam_frame_size_adapts_to_the_time_budget(catalog):
    state = studio.LiveState(side=256, budget_ms=100)
    state.adapt(400)                 # four times too slow: shrink, by at most 20% a frame
    assert state.side == round(256 * 0.8 / 16) * 16
    for _ in range(50):
        state.adapt(1)               # far under budget: grow, up to the cap
    assert state.side == 1024
    frame = (np.random.default_rng(0).random((120, 160, 3)) * 255).astype(np.uint8)
    state = studio.LiveState(side=64)
    output, status = studio.stylize_frame(catalog, "starry", frame, state)
    assert output.shape == (48, 64, 3) and output.dtype == np.uint8 and "ms per frame" in status
    style = load_image("builtin:immunohistochemistry", 48)
    state = studio.LiveState(side=64)
    studio.stylize_frame(catalog, "adain", frame, state, style, "ihc.png")
    bound = state.network[1]
    second, _ = studio.stylize_frame(catalog, "adain", frame, state, style, "ihc.png")
    assert state.network[1] is bound and second.ndim == 3     # bound to its style once, not per frame


# --------------------------------------------------------------------------------------------------
# The app through its API

@pytest.fixture(scope="module")
def server(runs, tmp_path_factory):
    with served_studio(runs, tmp_path_factory.mktemp("studio")) as address:
        yield address


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client
    return Client(server, verbose=False)


@pytest.fixture(scope="module")
def photo_file(tmp_path_factory, photo) -> Path:
    return save_image(photo, tmp_path_factory.mktemp("uploads") / "astronaut.png")


def test_the_api_names_its_five_endpoints(client):
    from texnets.studio.ui import PUBLIC_ENDPOINTS
    named = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert set(named) == {f"/{name}" for name in PUBLIC_ENDPOINTS} == {
        "/stylize", "/super_resolve", "/sample_texture", "/sample_solid", "/optimize"}


def test_a_style_blend_through_the_api_and_a_style_that_is_not_an_index(client, photo_file):
    from gradio_client import handle_file
    image, summary, files = client.predict("mosaic", handle_file(photo_file), None, 1.0, False, 1024, 1, 2, 0.25,
                                           api_name="/stylize")
    report = json.loads(next(Path(path) for path in files if path.endswith(".json")).read_text())
    assert [(part["index"], part["weight"]) for part in report["style_mix"]] == [(1, 0.75), (2, 0.25)]
    assert Image.open(image).size == (64, 48) and "75% udnie.jpg + 25% composition_vii.jpg" in summary
    with pytest.raises(Exception, match="a style is chosen by its index"):
        client.predict("mosaic", handle_file(photo_file), None, 1.0, False, 1024, "udnie", 0, 0,
                       api_name="/stylize")


def test_super_resolve_through_the_api_gives_the_baseline_and_the_network_side_by_side(client, photo_file):
    from gradio_client import handle_file
    pair, summary, files = client.predict("enlarge", handle_file(photo_file), True, api_name="/super_resolve")
    bicubic, enlarged = pair
    assert Image.open(bicubic).size == Image.open(enlarged).size == (256, 192)
    assert "64x48 -> 256x192" in summary
    assert {Path(path).name for path in files} == {"x4.png", "bicubic_x4.png", "report.json"}


def test_sample_texture_through_the_api_gives_the_requested_size(client):
    image, summary, files = client.predict("pebbles", 2, 64, 96, False, api_name="/sample_texture")
    assert Image.open(image).size == (96, 64)
    assert {Path(path).name for path in files} == {"texture.png", "report.json"}


def test_a_non_image_upload_is_one_message_and_the_app_keeps_serving(client, tmp_path, photo_file):
    from gradio_client import handle_file
    bad = tmp_path / "holiday.jpg"
    bad.write_text("not a photo")
    with pytest.raises(Exception, match="holiday.jpg is not an image"):
        client.predict("starry", handle_file(bad), None, 1.0, False, 1024, api_name="/stylize")
    image, _, _ = client.predict("starry", handle_file(photo_file), None, 1.0, False, 1024, api_name="/stylize")
    assert Image.open(image).size == (64, 48)


def test_the_api_reads_no_file_but_uploads(server, tmp_path):
    """A request that names a file on the server instead of uploading it is refused (Gradio checks that a path is
    one of its uploads before the studio sees it)."""
    import httpx
    secret = tmp_path / "secret.png"
    save_image(load_image("builtin:coffee", 32), secret)
    payload = {"data": ["starry", {"path": str(secret), "meta": {"_type": "gradio.FileData"}}, None, 1.0, False, 0,
                        0, 0, 0]}
    with httpx.Client(timeout=60) as http:
        event = http.post(f"{server}gradio_api/call/stylize", json=payload).json()["event_id"]
        answer = http.get(f"{server}gradio_api/call/stylize/{event}").text
    assert "event: error" in answer and "stylized.png" not in answer


def test_a_bad_style_image_for_the_webcam_is_one_message(client, tmp_path):
    from gradio_client import handle_file
    bad = tmp_path / "style.png"
    bad.write_text("no pixels here")
    with pytest.raises(Exception, match="style image style.png is not an image"):
        client.predict(handle_file(bad), api_name="/live_style")


def test_sessions_do_not_see_each_others_results(server):
    """A volume sampled in one session is not what another session's slice control reads (its state is its own)."""
    from gradio_client import Client
    first, second = Client(server, verbose=False), Client(server, verbose=False)
    first.predict("marble", 0, 16, "z", 8, api_name="/sample_solid")
    assert Path(first.predict("z", 3, api_name="/solid_slice")).is_file()      # its own volume's slice
    assert not isinstance(second.predict("z", 3, api_name="/solid_slice"), str)  # no volume: no new image


def test_a_long_optimisation_does_not_block_the_other_tabs(server, photo_file):
    from gradio_client import Client, handle_file
    optimiser, sampler = Client(server, verbose=False), Client(server, verbose=False)
    job = optimiser.submit("texture", handle_file(photo_file), None, 64, 2000, 10, "gram", 0, api_name="/optimize")
    deadline = time.monotonic() + 60
    while not job.outputs() and time.monotonic() < deadline:   # wait until it is running
        time.sleep(0.1)
    assert job.outputs(), "the optimisation did not start within a minute"
    image, _, _ = sampler.predict("pebbles", 0, 32, 32, False, api_name="/sample_texture")
    assert Image.open(image).size == (32, 32)
    assert not job.done()                  # the texture came back while the optimisation was still running
    optimiser.predict(api_name="/stop")    # the same session's Stop button
    image, _, summary, files = job.result(timeout=60)
    assert "stopped at step" in summary and len(files) == 2
