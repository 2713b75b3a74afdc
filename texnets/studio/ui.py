"""The studio's page: Gradio Blocks around ``texnets.studio.functions``, with stable API names.

``/stylize``, ``/super_resolve``, ``/sample_texture``, ``/sample_solid`` and ``/optimize`` are the public endpoints
(``gradio_client`` scripts call them by these names); the page's helpers (control visibility, slices, the Stop
button, the webcam) are callable but left out of the API page. Image inputs are handed over undecoded
(``preprocess=False``) so that texnets, not Gradio, reads them: a non-image, a corrupt file or an upload over the
size limit becomes one message in the page (``gr.Error``), and the app keeps serving.
"""
from __future__ import annotations

import functools
import html
import inspect
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd
import torch

from texnets.errors import TexnetsError
from texnets.images import load_image, save_image, to_uint8
from texnets.losses import STYLE_LOSSES
from texnets.studio import DEFAULT_MAX_MEGAPIXELS
from texnets.studio import functions as studio
from texnets.studio.catalog import Catalog
from texnets.studio.kinds import (ALPHA, MAX_SIZE, MODEL_KINDS, PRESERVE_COLOR, SOLID, STYLE_IMAGE, STYLE_MIX,
                                  STYLIZE, SUPER_RESOLVE, TEXTURE, TILE, model_types, run_controls)
from texnets.volumes import AXES

PUBLIC_ENDPOINTS = ("stylize", "super_resolve", "sample_texture", "sample_solid", "optimize")
HIDDEN = "undocumented"        # callable by the page, not listed on its API page
DEFAULT_CONCURRENCY = 2        # requests per event at once; optimisations run one at a time on top of that
WEBCAM_FRAME_SECONDS = 0.1     # how often the browser sends a webcam frame; the frame size adapts to keep up
INPUT_HEIGHT = 240             # pixels: keeps each tab's controls on one screen
OUTPUT_HEIGHT = 360            # results are shown scaled to this height (a 64 px slice is still visible)
# Results fill their frame: a small output (a 64³ solid's slice, a webcam frame) is scaled up, voxels kept sharp.
OUTPUT_CSS = (".texnets-output img {width: 100%; height: 100%; object-fit: contain} "
              "#solid-output img, #optimize-output img {image-rendering: pixelated}")
# (built-in image, shorter side): super-resolution starts from a small photo (x4 makes it 512 px)
BUILTIN_DEFAULTS = {"photo": ("coffee", 256), "texture": ("immunohistochemistry", 256),
                    "style": ("immunohistochemistry", 256), "small photo": ("astronaut", 128)}


def shown_in_page(function):
    """One ``gr.Error`` message per ``TexnetsError``, for plain and generator functions alike."""
    def message(exc: TexnetsError) -> gr.Error:
        return gr.Error(html.escape(str(exc), quote=False), print_exception=False)

    if inspect.isgeneratorfunction(function):
        @functools.wraps(function)
        def generator(*args, **kwargs):
            try:
                yield from function(*args, **kwargs)
            except TexnetsError as exc:
                raise message(exc) from None
        return generator

    @functools.wraps(function)
    def plain(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except TexnetsError as exc:
            raise message(exc) from None
    return plain


def upload_path(payload) -> tuple[str | None, str | None]:
    """(path, the name the user gave the file) of an image input handed over undecoded."""
    if not payload:
        return None, None
    if isinstance(payload, str):
        return payload, Path(payload).name
    path = payload.get("path")
    return path, payload.get("orig_name") or (Path(path).name if path else None)


def run_choices(catalog: Catalog, tab: str) -> list[tuple[str, str]]:
    """The picker's entries: the run's folder name and what it holds; the value is the name alone."""
    order = list(MODEL_KINDS)   # the table's order first (Johnson networks before arbitrary-style ones), then by name
    names = sorted(catalog.names(model_types(tab)), key=lambda name: (order.index(catalog.runs[name].model_type), name))
    return [(f"{name} · {run_label(catalog.runs[name])}", name) for name in names]


def run_label(run) -> str:
    """What the picker says a run holds: its kind, and a multi-style network's styles or a super-resolution
    network's factor."""
    if len(run.styles) > 1:
        return f"multi-style transfer network, {len(run.styles)} styles (Dumoulin et al. 2017)"
    label = MODEL_KINDS[run.model_type].label
    return f"{label}, x{run.factor}" if run.factor else label


def builtin_files(folder: Path) -> dict[str, str]:
    """The built-in images the page starts with, written once as PNG (Gradio shows files)."""
    paths = {}
    for role, (name, side) in BUILTIN_DEFAULTS.items():
        path = folder / f"{name}_{side}.png"
        if not path.exists():
            save_image(load_image(f"builtin:{name}", side), path)
        paths[role] = str(path)
    return paths


def result_column(label: str, name: str, downloads: str, middle: gr.Component | None = None, compare: bool = False
                  ) -> tuple[gr.Image | gr.ImageSlider, gr.Markdown, gr.File]:
    """A tab's right-hand column: the result image (``#<name>-output``; with ``compare``, a slider between a
    baseline and the result), ``middle`` if any (rendered here), a line saying what was done (``#<name>-summary``)
    and the downloads (``#<name>-files``)."""
    kind = gr.ImageSlider if compare else gr.Image
    image = kind(label=label, format="png", interactive=False, height=OUTPUT_HEIGHT, elem_id=f"{name}-output",
                 elem_classes="texnets-output")
    if middle is not None:
        middle.render()
    summary = gr.Markdown(elem_id=f"{name}-summary")
    files = gr.File(label=downloads, file_count="multiple", elem_id=f"{name}-files")
    return image, summary, files


def loss_frame(history: list[float]) -> pd.DataFrame:
    steps = np.arange(1, len(history) + 1)
    return pd.DataFrame({"step": steps, "log10 loss": np.log10(np.maximum(np.asarray(history, float), 1e-30))})


def build_app(catalog: Catalog, workspace: studio.Workspace | None = None, device: torch.device | str = "cpu",
              max_megapixels: float = DEFAULT_MAX_MEGAPIXELS) -> gr.Blocks:
    """The studio's page over the runs in ``catalog``. Results go to ``workspace`` (a private temporary folder)."""
    workspace = workspace or studio.Workspace()
    device = torch.device(device)
    defaults = builtin_files(workspace.root)

    def image_input(payload, what: str) -> tuple[torch.Tensor | None, str | None]:
        path, name = upload_path(payload)
        if path is None:
            return None, None
        return studio.read_upload(path, what, max_megapixels, name), name

    def result_outputs(result: studio.Result) -> tuple[str, str, list[str]]:
        return str(result.image), result.summary, [str(path) for path in result.files]

    # ---------------------------------------------------------------------------------------------- Stylise
    @shown_in_page
    def stylize(run, photo, style, alpha, preserve_color, max_size, style_index, blend_with, blend):
        image, photo_name = image_input(photo, "photo")
        if image is None:
            raise TexnetsError("no photo: upload one first")
        style_image, style_name = image_input(style, "style image") if STYLE_IMAGE in controls(run) else (None, None)
        result = studio.stylize(catalog, workspace, run, image, style_image, float(alpha), bool(preserve_color),
                                int(max_size or 0) or None, device, photo_name, style_name,
                                *style_choice(style_index, blend_with, blend))
        return result_outputs(result)

    def style_choice(style_index, blend_with, blend) -> tuple[int, int | None, float]:
        """The style controls as numbers (an API call may send them as text); one line when they are not."""
        try:
            return (int(style_index or 0), None if blend_with in (None, "") else int(blend_with),
                    float(blend or 0))
        except (TypeError, ValueError):
            raise TexnetsError(f"a style is chosen by its index (0, 1, ...), not {style_index!r} or "
                               f"{blend_with!r}") from None

    @shown_in_page
    def stylize_live(frame, run, alpha, preserve_color, style_index, blend_with, blend, state: studio.LiveState):
        # Webcam frames arrive decoded (Gradio encodes them itself), so this event keeps Gradio's preprocessing; the
        # style image is not among its inputs: remember_style reads it, once, when it changes.
        if frame is None or not run:
            return None, "", state
        if frame.size > max_megapixels * 1e6 * 3:
            raise TexnetsError(f"a webcam frame over {max_megapixels:g} megapixels")
        needs_style = STYLE_IMAGE in controls(run)
        if needs_style and state.style is None:   # said in the status line, not in a message every frame
            return None, "this network needs a style image: add one above", state
        style_path, style_image = state.style if needs_style else (None, None)
        output, status = studio.stylize_frame(catalog, run, frame, state, style_image, style_path, float(alpha),
                                              bool(preserve_color), device, *style_choice(style_index, blend_with,
                                                                                          blend))
        return output, status, state

    @shown_in_page
    def remember_style(style, state: studio.LiveState):
        path, name = upload_path(style)
        state.style = (path, studio.read_upload(path, "style image", max_megapixels, name)) if path else None
        return state

    def controls(run) -> frozenset[str]:
        """The optional controls of the run (none for an unknown run)."""
        return run_controls(catalog.usable(run))

    def stylize_controls(run):
        shown = controls(run)
        visibility = [gr.update(visible=name in shown) for name in (STYLE_IMAGE, ALPHA, PRESERVE_COLOR, MAX_SIZE)]
        # A multi-style network (Dumoulin et al.): its styles by file name, the first chosen, blended with the second
        run_styles = catalog.usable(run).styles if STYLE_MIX in shown else ()
        choices = [(name, index) for index, name in enumerate(run_styles)]
        mix = [gr.update(choices=choices, value=0, visible=bool(choices)),
               gr.update(choices=choices, value=min(1, len(choices) - 1) if choices else None, visible=bool(choices)),
               gr.update(value=0, visible=bool(choices))]
        return visibility + mix

    # ---------------------------------------------------------------------------------------------- Super-resolve
    @shown_in_page
    def super_resolve(run, small, histogram_match):
        image, name = image_input(small, "image")
        if image is None:
            raise TexnetsError("no image: upload one first")
        result = studio.super_resolve(catalog, workspace, run, image, bool(histogram_match), device, name,
                                      max_megapixels)
        return (str(result.baseline), str(result.image)), result.summary, [str(path) for path in result.files]

    # ---------------------------------------------------------------------------------------------- Textures
    @shown_in_page
    def sample_texture(run, seed, height, width, tile):
        return result_outputs(studio.sample_texture(catalog, workspace, run, int(seed), int(height), int(width),
                                                    bool(tile), device))

    @shown_in_page
    def sample_solid(run, seed, edge, axis, depth, state: dict):
        result = studio.sample_solid(catalog, workspace, run, int(seed), int(edge), axis, int(depth), device)
        return (*result_outputs(result), {**state, "volume": str(result.volume)})

    @shown_in_page
    def slice_solid(axis, depth, state: dict):
        volume = state.get("volume")
        if not volume or not workspace.owns(volume) or not Path(volume).is_file():
            return gr.update()   # nothing sampled yet in this session
        return studio.solid_slice(volume, axis, int(depth))

    def texture_controls(run):
        return gr.update(visible=TILE in controls(run))

    # ---------------------------------------------------------------------------------------------- Optimise
    @shown_in_page
    def optimize(method, exemplar, content, size, steps, every, loss, seed, state: dict):
        exemplar_image, _ = image_input(exemplar, "texture or style image")
        if exemplar_image is None:
            raise TexnetsError("no texture or style image: upload one first")
        content_image = image_input(content, "content photo")[0] if method == "style" else None
        run = studio.Optimization(method, exemplar_image, content_image, int(size), int(steps), int(every), loss,
                                  int(seed), device)
        state = {**state, "run": run}
        keep = gr.skip()
        yield keep, keep, "starting ...", None, state       # from here on, Stop reaches this run
        for progress in run.updates(workspace):
            if progress is None:                            # nothing new: lets Gradio close the run if the tab has gone
                yield keep, keep, keep, keep, state
                continue
            image = to_uint8(progress.image).permute(1, 2, 0).numpy()
            if progress.result is None:
                yield image, loss_frame(progress.history), f"step {progress.step} of {run.steps} ...", None, state
            else:
                yield (str(progress.result.image), loss_frame(progress.history), progress.result.summary,
                       [str(path) for path in progress.result.files], {**state, "run": None})

    def stop_optimization(state: dict):
        run = state.get("run")
        if run is not None:
            run.stop()
        return "stopping at the next step; the current image is kept"

    def problems_note() -> str:
        problems = catalog.problems()
        return ("**Could not be read:** " + "; ".join(html.escape(line) for line in problems)) if problems else ""

    def refresh():
        catalog.refresh()
        return (*(gr.update(choices=run_choices(catalog, tab)) for tab in (STYLIZE, SUPER_RESOLVE, TEXTURE, SOLID)),
                problems_note())

    # ---------------------------------------------------------------------------------------------- The page
    def first(tab: str) -> str | None:
        choices = run_choices(catalog, tab)
        return choices[0][1] if choices else None

    # No usage statistics leave this machine; Gradio's own copies of results are deleted after an hour.
    with gr.Blocks(title="texnets studio", analytics_enabled=False, delete_cache=(600, 3600)) as demo:
        gr.Markdown(f"## texnets studio\nRuns under `{html.escape(str(catalog.root))}`, read with "
                    f"`weights_only=True`. Uploads up to {max_megapixels:g} megapixels. Device: {device}.")
        with gr.Row():
            problems = gr.Markdown(problems_note(), elem_id="problems")
            refresh_button = gr.Button("Refresh the runs", size="sm", scale=0)

        with gr.Tab("Stylise", id="stylize"):
            with gr.Row():
                with gr.Column():
                    stylize_run = gr.Dropdown(run_choices(catalog, STYLIZE), value=first(STYLIZE), label="Network",
                                              elem_id="stylize-run")
                    photo = gr.Image(defaults["photo"], label="Photo", type="filepath", sources=["upload", "clipboard"],
                                     height=INPUT_HEIGHT, elem_id="stylize-photo")
                    style = gr.Image(defaults["style"], label="Style image", type="filepath",
                                     sources=["upload", "clipboard"], visible=False, height=INPUT_HEIGHT,
                                     elem_id="stylize-style")
                    alpha = gr.Slider(0, 1, 1, step=0.05, label="alpha: 0 the photo, 1 full style", visible=False)
                    with gr.Row():
                        # Values 0: the API's callers may leave them out; custom values: the choices are per run.
                        style_index = gr.Dropdown([], value=0, label="style", visible=False, allow_custom_value=True,
                                                  elem_id="stylize-style-index")
                        blend_with = gr.Dropdown([], value=0, label="blended with", visible=False,
                                                 allow_custom_value=True, elem_id="stylize-blend-with")
                    blend = gr.Slider(0, 1, 0, step=0.05, label="blend: 0 the style alone, 1 the second alone",
                                      visible=False, elem_id="stylize-blend")
                    preserve = gr.Checkbox(label="preserve color (stylise the luminance only)", visible=False)
                    max_size = gr.Slider(0, 4096, 1024, step=16, label="max size: downscale longer sides "
                                         "(0: full resolution)", visible=False)
                    stylize_button = gr.Button("Stylise", variant="primary", elem_id="stylize-button")
                with gr.Column():
                    stylized, stylize_summary, stylize_files = result_column("Stylised", "stylize",
                                                                             "Downloads: image and JSON report")
            with gr.Accordion("Webcam: live stylisation", open=False):
                gr.Markdown("The frame size adapts so each frame takes about "
                            f"{studio.LiveState().budget_ms:.0f} ms on this machine.")
                with gr.Row():
                    webcam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam",
                                      elem_id="webcam")
                    live = gr.Image(label="Live", format="jpeg", interactive=False, elem_id="live-output",
                                    elem_classes="texnets-output")
                live_status = gr.Markdown(elem_id="live-status")
                live_state = gr.State(studio.LiveState())

        with gr.Tab("Super-resolve", id="super-resolve"):
            with gr.Row():
                with gr.Column():
                    sr_run = gr.Dropdown(run_choices(catalog, SUPER_RESOLVE), value=first(SUPER_RESOLVE),
                                         label="Super-resolution network", elem_id="sr-run")
                    small = gr.Image(defaults["small photo"], label="Small photo (each side enlarged by the "
                                     "network's factor)", type="filepath", sources=["upload", "clipboard"],
                                     height=INPUT_HEIGHT, elem_id="sr-input")
                    histogram_match = gr.Checkbox(True, label="match each channel's histogram to the photo's (the "
                                                  "paper's post-processing; off: the network's raw output)",
                                                  elem_id="sr-match")
                    sr_button = gr.Button("Enlarge", variant="primary", elem_id="sr-button")
                with gr.Column():
                    enlarged, sr_summary, sr_files = result_column(
                        "Bicubic (left) and the network (right): drag to compare", "sr",
                        "Downloads: the image, the bicubic baseline and the JSON report", compare=True)

        with gr.Tab("Texture", id="texture"):
            with gr.Row():
                with gr.Column():
                    texture_run = gr.Dropdown(run_choices(catalog, TEXTURE), value=first(TEXTURE),
                                              label="Texture network", elem_id="texture-run")
                    texture_seed = gr.Number(0, precision=0, label="seed")
                    with gr.Row():
                        texture_height = gr.Slider(32, 2048, 256, step=32, label="height")
                        texture_width = gr.Slider(32, 2048, 256, step=32, label="width")
                    tile = gr.Checkbox(label="tile (wraps around seamlessly)")
                    texture_button = gr.Button("Sample", variant="primary", elem_id="texture-button")
                with gr.Column():
                    texture, texture_summary, texture_files = result_column("Texture", "texture",
                                                                            "Downloads: image and JSON report")
            gr.Markdown("### Solid texture")
            with gr.Row():
                with gr.Column():
                    solid_run = gr.Dropdown(run_choices(catalog, SOLID), value=first(SOLID), label="Solid texture",
                                            elem_id="solid-run")
                    solid_seed = gr.Number(0, precision=0, label="seed")
                    edge = gr.Slider(16, studio.MAX_SOLID_EDGE, 64, step=8, label="cube edge (voxels)")
                    axis = gr.Radio(list(AXES), value="z", label="slice across")
                    depth = gr.Slider(0, 63, 32, step=1, label="slice depth")
                    solid_button = gr.Button("Sample the volume", variant="primary", elem_id="solid-button")
                with gr.Column():
                    solid, solid_summary, solid_files = result_column(
                        "Slice", "solid", "Downloads: volume (.npy), slices and JSON report")
            solid_state = gr.State({})

        with gr.Tab("Optimise", id="optimize"):
            with gr.Row():
                with gr.Column():
                    method = gr.Radio(list(studio.OPTIMIZE_METHODS), value="texture",
                                      label="Gatys et al.: texture synthesis or style transfer")
                    exemplar = gr.Image(defaults["texture"], label="Texture or style image", type="filepath",
                                        sources=["upload", "clipboard"], height=INPUT_HEIGHT, elem_id="optimize-exemplar")
                    content = gr.Image(defaults["photo"], label="Content photo (style transfer)", type="filepath",
                                       visible=False,
                                       sources=["upload", "clipboard"], height=INPUT_HEIGHT, elem_id="optimize-content")
                    with gr.Row():
                        size = gr.Slider(32, studio.MAX_OPTIMIZE_SIDE, 128, step=16, label="size (shorter side)",
                                         elem_id="optimize-size")
                        steps = gr.Slider(1, studio.MAX_OPTIMIZE_STEPS, 100, step=1, label="L-BFGS steps",
                                          elem_id="optimize-steps")
                    with gr.Row():
                        every = gr.Slider(1, 50, 5, step=1, label="show every N steps")
                        loss = gr.Dropdown(list(STYLE_LOSSES), value="gram", label="style statistic")
                        optimize_seed = gr.Number(0, precision=0, label="seed")
                    with gr.Row():
                        optimize_button = gr.Button("Run", variant="primary", elem_id="optimize-button")
                        stop_button = gr.Button("Stop", variant="stop", elem_id="optimize-stop")
                with gr.Column():
                    curve = gr.LinePlot(x="step", y="log10 loss", label="loss", height=220, render=False)
                    optimized, optimize_summary, optimize_files = result_column(
                        "Current image", "optimize", "Downloads: image and JSON report", middle=curve)
            optimize_state = gr.State({})

        # Events. Image inputs reach the functions undecoded (preprocess=False): texnets reads them.
        raw = {"preprocess": False}
        stylize_inputs = [stylize_run, photo, style, alpha, preserve, max_size, style_index, blend_with, blend]
        stylize_controlled = [style, alpha, preserve, max_size, style_index, blend_with, blend]
        stylize_button.click(stylize, stylize_inputs, [stylized, stylize_summary, stylize_files],
                             api_name="stylize", **raw)
        stylize_run.change(stylize_controls, [stylize_run], stylize_controlled, api_name="controls",
                           api_visibility=HIDDEN, queue=False)
        webcam.stream(stylize_live, [webcam, stylize_run, alpha, preserve, style_index, blend_with, blend,
                                     live_state], [live, live_status, live_state], api_name="live", api_visibility=HIDDEN,
                      stream_every=WEBCAM_FRAME_SECONDS, time_limit=600)
        style.change(remember_style, [style, live_state], [live_state], api_name="live_style",
                     api_visibility=HIDDEN, **raw)
        sr_button.click(super_resolve, [sr_run, small, histogram_match], [enlarged, sr_summary, sr_files],
                        api_name="super_resolve", **raw)
        texture_button.click(sample_texture, [texture_run, texture_seed, texture_height, texture_width, tile],
                             [texture, texture_summary, texture_files], api_name="sample_texture")
        texture_run.change(texture_controls, [texture_run], [tile], api_name="texture_controls",
                           api_visibility=HIDDEN, queue=False)
        solid_button.click(sample_solid, [solid_run, solid_seed, edge, axis, depth, solid_state],
                           [solid, solid_summary, solid_files, solid_state], api_name="sample_solid")
        edge.change(lambda value: gr.update(maximum=int(value) - 1), [edge], [depth], api_name="solid_depth",
                    api_visibility=HIDDEN, queue=False)
        gr.on([axis.change, depth.change], slice_solid, [axis, depth, solid_state], [solid], api_name="solid_slice",
              api_visibility=HIDDEN)
        optimize_button.click(optimize, [method, exemplar, content, size, steps, every, loss, optimize_seed,
                                         optimize_state],
                              [optimized, curve, optimize_summary, optimize_files, optimize_state],
                              api_name="optimize", concurrency_limit=1, concurrency_id="optimize", **raw)
        method.change(lambda chosen: gr.update(visible=chosen == "style"), [method], [content], api_name="method",
                      api_visibility=HIDDEN, queue=False)
        stop_button.click(stop_optimization, [optimize_state], [optimize_summary], api_name="stop",
                          api_visibility=HIDDEN, queue=False)
        refresh_button.click(refresh, None, [stylize_run, sr_run, texture_run, solid_run, problems],
                             api_name="refresh", api_visibility=HIDDEN)
        demo.load(stylize_controls, [stylize_run], stylize_controlled, api_visibility=HIDDEN)
        demo.load(texture_controls, [texture_run], [tile], api_visibility=HIDDEN)
        demo.load(remember_style, [style, live_state], [live_state], api_visibility=HIDDEN, **raw)
    demo.studio_workspace = workspace
    return demo


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, concurrency: int = DEFAULT_CONCURRENCY,
           block: bool = True) -> gr.Blocks:
    """Serve ``demo`` with Gradio's queue (``concurrency`` requests per event at once; the Optimise tab's runs one
    at a time), on ``host``:``port``. ``block=False`` returns at once (tests)."""
    demo.queue(default_concurrency_limit=concurrency)
    demo.launch(server_name=host, server_port=port, prevent_thread_lock=not block, quiet=not block,
                max_file_size="256mb", show_error=False, css=OUTPUT_CSS)
    return demo


__all__ = ["PUBLIC_ENDPOINTS", "build_app", "launch", "loss_frame", "run_choices", "run_label", "shown_in_page",
           "upload_path"]
