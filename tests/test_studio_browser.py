"""The studio in a real browser: headless Chromium (Debian's ``chromium``, driven by Playwright for Python through
its ``executable_path``) against the app served on a free loopback port, on tiny checkpoints made here.

Skipped, with the reason, where Chromium or Playwright is absent; ``.ci/run`` installs Chromium so CI runs them.
``TEXNETS_CHROMIUM`` names another Chromium binary. With ``TEXNETS_SCREENSHOTS=DIR`` each tab's screenshot is also
written to DIR (``docs/`` for the README's figures).
"""
from __future__ import annotations

import os
import re
import shutil
import threading
import time
from pathlib import Path

import pytest

from helpers import make_studio_runs, served_studio
from texnets.images import load_image, save_image

pytest.importorskip("gradio", reason="the studio tests need the [studio] extra (gradio)")
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
CHROMIUM = os.environ.get("TEXNETS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (apt-get install chromium)")
# Without the background-networking flags Chromium keeps trying to reach Google's hosts, which this closed network
# refuses; as root it needs --no-sandbox. The fake media flags give it a synthetic camera, allowed without a prompt.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--use-fake-device-for-media-stream",
                  "--use-fake-ui-for-media-stream"]
VIEWPORT = {"width": 1100, "height": 760}
# Tiny uploads keep the test fast; the README's screenshots show a photo one can see.
PHOTO = (240, 320) if os.environ.get("TEXNETS_SCREENSHOTS") else (60, 80)   # (H, W)
STOP_AT = 60 if os.environ.get("TEXNETS_SCREENSHOTS") else 1                 # the live view's step to stop after
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def studio_url(tmp_path_factory):
    runs = os.environ.get("TEXNETS_STUDIO_CHECKPOINTS") or make_studio_runs(tmp_path_factory.mktemp("checkpoints"))
    with served_studio(Path(runs), tmp_path_factory.mktemp("studio")) as address:
        yield address


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, studio_url):
    context = browser.new_context(viewport=VIEWPORT, permissions=["camera"])
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(studio_url)
    page.wait_for_selector("#stylize-button")
    yield page
    context.close()


@pytest.fixture(scope="module")
def uploads(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("uploads")
    files = {"astronaut": save_image(load_image("builtin:astronaut", PHOTO), folder / "astronaut.png"),
             "chelsea": save_image(load_image("builtin:chelsea", (64, 48)), folder / "chelsea.png")}
    files["tiny"] = save_image(load_image("builtin:coffee", (6, 6)), folder / "tiny.png")
    files["notes"] = folder / "notes.png"
    files["notes"].write_text("these are notes, not pixels")
    return files


def screenshot(page, name: str, tmp_path: Path) -> Path:
    path = tmp_path / f"studio_{name}.jpg"
    page.screenshot(path=path, type="jpeg", quality=80, full_page=True)
    assert path.stat().st_size > 10_000      # a rendered page, not a blank one
    target = os.environ.get("TEXNETS_SCREENSHOTS")
    if target:
        shutil.copy(path, Path(target) / path.name)
    return path


def output_size(page, element: str, previous: str | None = None) -> list[int]:
    """The natural size of the image shown in ``element``, once it differs from ``previous`` and has loaded (read in
    the same check: a live view replaces its image between frames)."""
    size = page.wait_for_function(
        "([selector, previous]) => { const img = document.querySelector(selector);"
        " return img && img.complete && img.naturalWidth > 0 && img.src !== previous"
        " ? [img.naturalWidth, img.naturalHeight] : null; }", arg=[f"#{element} img", previous])
    return size.json_value()


def test_stylise_a_photo_then_a_non_image_then_a_photo_again(page, uploads, tmp_path):
    page.locator("#stylize-photo input[type=file]").set_input_files(uploads["astronaut"])
    page.click("#stylize-button")
    assert output_size(page, "stylize-output") == [PHOTO[1], PHOTO[0]]
    first = page.locator("#stylize-output img").get_attribute("src")
    page.locator("#stylize-files").get_by_text("report").first.wait_for()    # the JSON report is offered too
    screenshot(page, "stylize", tmp_path)

    page.locator("#stylize-photo input[type=file]").set_input_files(uploads["notes"])
    page.click("#stylize-button")
    page.get_by_text("the photo notes.png is not an image").first.wait_for()
    assert page.get_by_text("Traceback").count() == 0

    page.locator("#stylize-photo input[type=file]").set_input_files(uploads["chelsea"])
    page.click("#stylize-button")
    assert output_size(page, "stylize-output", first) == [48, 64]


def test_the_webcam_is_stylised_live_with_its_milliseconds_shown(page):
    """Chromium's synthetic camera streams into the Stylise tab; stylised frames come back with their timing."""
    page.get_by_text("Webcam: live stylisation").click()
    page.locator("#webcam").get_by_text("Click to Access Webcam").click()
    page.locator("#webcam button", has_text="Record").click()
    page.locator("#live-status").get_by_text("ms per frame").wait_for()
    width, height = output_size(page, "live-output")
    assert width > height >= 16           # the camera's landscape frame, at the size that keeps up
    page.locator("#webcam button", has_text="Stop").click()


def test_the_controls_follow_the_chosen_networks_type(page):
    """Only an arbitrary-style network (AdaIN, WCT) shows the style image and alpha."""
    style = page.locator("#stylize-style")
    page.locator("#stylize-run input").click()
    labels = [text.split("\n")[-1] for text in page.get_by_role("option").all_inner_texts()]   # after any "✓"
    johnson = [label for label in labels if "Johnson" in label]
    arbitrary = [label for label in labels if "arbitrary style" in label]
    if not (johnson and arbitrary):
        pytest.skip("these runs lack a Johnson or an arbitrary-style network")
    page.get_by_role("option", name=arbitrary[0]).click()
    style.wait_for(state="visible")
    page.locator("#stylize-run input").click()
    page.get_by_role("option", name=johnson[0]).click()
    style.wait_for(state="hidden")


def test_a_multi_style_network_offers_its_styles_by_name_and_blends_two(page, tmp_path):
    """A Johnson network with several styles (Dumoulin et al.) shows its styles by file name and a blend slider;
    a single-style one does not."""
    page.locator("#stylize-run input").click()
    labels = [text.split("\n")[-1] for text in page.get_by_role("option").all_inner_texts()]
    several = [label for label in labels if "styles (Dumoulin" in label]
    single = [label for label in labels if "Johnson" in label and "styles (Dumoulin" not in label]
    if not (several and single):
        pytest.skip("these runs lack a multi-style or a single-style Johnson network")
    page.get_by_role("option", name=several[0]).click()
    style = page.locator("#stylize-style-index")
    style.wait_for(state="visible")
    style.locator("input").click()
    names = [text.split("\n")[-1] for text in style.get_by_role("option").all_inner_texts()]
    assert len(names) >= 2 and all(name.endswith((".jpg", ".png")) for name in names)
    style.get_by_role("option", name=names[-1]).click()           # the last style, blended with the second
    blend = page.locator("#stylize-blend input[type=number]")
    blend.fill("0.5")
    blend.press("Enter")
    page.click("#stylize-button")
    mix = "50% " + " + 50% ".join([names[1], names[-1]] if len(names) > 2 else [names[0], names[1]])
    page.locator("#stylize-summary").get_by_text(mix).wait_for()
    output_size(page, "stylize-output")
    screenshot(page, "styles", tmp_path)
    page.locator("#stylize-run input").click()
    page.get_by_role("option", name=single[0]).click()
    style.wait_for(state="hidden")


def test_super_resolve_enlarges_the_photo_beside_bicubic_and_refuses_a_tiny_one(page, uploads, tmp_path):
    page.get_by_role("tab", name="Super-resolve").click()
    if page.locator("#sr-run input").input_value() == "":
        pytest.skip("these runs have no super-resolution network")
    page.click("#sr-button")                   # the built-in small photo, 128 px per side
    page.locator("#sr-summary").get_by_text(re.compile(r"128x128 -> \d+x\d+")).wait_for()
    width, height = output_size(page, "sr-output")
    assert width == height and width in (256, 512, 1024)          # x2, x4 or x8, exactly
    screenshot(page, "super_resolve", tmp_path)
    page.locator("#sr-input input[type=file]").set_input_files(uploads["tiny"])
    page.click("#sr-button")
    page.get_by_text("low-resolution input is too small").first.wait_for()
    assert page.get_by_text("Traceback").count() == 0


def test_texture_and_solid_slices(page, tmp_path):
    page.get_by_role("tab", name="Texture").click()
    page.click("#texture-button")
    assert output_size(page, "texture-output") == [256, 256]
    page.click("#solid-button")
    assert output_size(page, "solid-output") == [64, 64]
    screenshot(page, "texture", tmp_path)


def test_optimise_shows_progress_and_stop_keeps_the_image(page, tmp_path):
    page.get_by_role("tab", name="Optimise").click()
    steps = page.locator("#optimize-steps input[type=number]")
    steps.fill("1000")
    steps.press("Enter")
    page.click("#optimize-button")
    page.wait_for_function("(least) => { const shown = document.querySelector('#optimize-summary').innerText"
                           ".match(/step (\\d+) of/); return shown && Number(shown[1]) >= least; }", arg=STOP_AT)
    assert output_size(page, "optimize-output") == [128, 128]
    page.click("#optimize-stop")
    page.locator("#optimize-summary").get_by_text("stopped at step").wait_for()
    assert output_size(page, "optimize-output") == [128, 128]
    screenshot(page, "optimize", tmp_path)


def test_closing_the_tab_stops_its_optimisation(browser, studio_url):
    """The optimisation belongs to its page: when the page goes, its worker thread ends instead of running on."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(studio_url)
    page.get_by_role("tab", name="Optimise").click()
    steps = page.locator("#optimize-steps input[type=number]")
    steps.fill("2000")
    steps.press("Enter")
    page.click("#optimize-button")
    page.locator("#optimize-summary").get_by_text(re.compile(r"step \d+ of")).wait_for()
    assert any(thread.name == "texnets-optimize" for thread in threading.enumerate())
    context.close()
    deadline = time.monotonic() + 90
    while any(thread.name == "texnets-optimize" for thread in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not any(thread.name == "texnets-optimize" for thread in threading.enumerate())
