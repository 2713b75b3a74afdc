"""The latency texnets studio adds over calling the model directly (BENCHMARKS.md, "texnets studio: latency").

    OMP_NUM_THREADS=2 python -m bench.bench_studio

In one process, on one 512² built-in photo, interleaved round by round (so drift hits all three alike):
  * model: the Johnson network alone (``Stylizer`` on the decoded tensor), what synthesize.py times;
  * function: ``texnets.studio.functions.stylize`` on the uploaded file's tensor, which also writes the PNG and the
    JSON report;
  * API: one request through the app's HTTP API on loopback, as curl would make it (Gradio's REST routes): upload
    the photo, call ``/stylize`` through the queue, read the result event, download the stylised image;
  * gradio_client: the same request through Gradio's Python client, whose own machinery (a listener thread per
    job, a heartbeat) adds a fixed cost on the caller's side.
The ratio API / model is the issue's figure (target at most 1.2 at 512², reference width). The networks are random
(latency does not depend on the weights), built at the reference width and at the quarter width the CPU recipes use.
"""
from __future__ import annotations

import argparse
import json
import socket
import statistics
import tempfile
import time
from pathlib import Path

import torch

from bench._report import command_line, machine, publish, today
from texnets.checkpoints import checkpoint_metadata, load_generator
from texnets.generators import TransformerNet
from texnets.images import load_image, save_image
from texnets.inference import Stylizer
from texnets.studio import functions as studio
from texnets.studio.catalog import Catalog
from texnets.studio.ui import build_app, launch

WIDTHS = {"reference": 1.0, "quarter": 0.25}


def write_run(root: Path, name: str, width: float) -> None:
    torch.manual_seed(0)
    net = TransformerNet(width=width)
    (root / name).mkdir(parents=True)
    torch.save({"state_dict": {f"generator.{k}": v for k, v in net.state_dict().items()}, "global_step": 0,
                "texnets": checkpoint_metadata("transformer_net", net.config_dict())}, root / name / "last.ckpt")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rest_stylize(http, base: str, run: str, photo_file: Path) -> bytes:
    """/stylize over plain HTTP: upload, call, wait for the result event, download the image."""
    with open(photo_file, "rb") as handle:
        uploaded = http.post(f"{base}/upload", files={"files": (photo_file.name, handle, "image/png")}).json()[0]
    photo = {"path": uploaded, "orig_name": photo_file.name, "meta": {"_type": "gradio.FileData"}}
    # Over plain HTTP every input is sent: the last three are a multi-style network's style, second style and blend.
    data = [run, photo, None, 1.0, False, 0, 0, 0, 0.0]
    event = http.post(f"{base}/call/stylize", json={"data": data}).json()["event_id"]
    with http.stream("GET", f"{base}/call/stylize/{event}") as stream:
        text = "".join(stream.iter_text())
    if "event: complete" not in text:
        raise RuntimeError(f"/stylize failed: {text[:300]}")
    outputs = json.loads(text.split("event: complete", 1)[1].split("data:", 1)[1].strip().splitlines()[0])
    return http.get(outputs[0]["url"]).content


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--note", help="a last paragraph for the section")
    args = parser.parse_args(argv)
    import httpx
    from gradio_client import Client, handle_file

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "checkpoints"
        for name, width in WIDTHS.items():
            write_run(root, name, width)
        photo_file = save_image(load_image("builtin:astronaut", (args.size, args.size)), Path(folder) / "photo.png")
        photo = studio.read_upload(photo_file)
        catalog = Catalog(root)
        workspace = studio.Workspace(folder)
        demo = build_app(catalog, workspace)
        port = free_port()
        launch(demo, "127.0.0.1", port, block=False)
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        http = httpx.Client(timeout=120)
        rows = []
        try:
            for name in WIDTHS:
                stylizer = Stylizer(load_generator(root / name / "last.ckpt").generator, block=None)
                paths = {
                    "model": lambda: stylizer(photo),
                    "function": lambda: studio.stylize(catalog, workspace, name, studio.read_upload(photo_file)),
                    "API": lambda: rest_stylize(http, f"http://127.0.0.1:{port}/gradio_api", name, photo_file),
                    "gradio_client": lambda: client.predict(name, handle_file(photo_file), None, 1.0, False, 0,
                                                            api_name="/stylize"),
                }
                for run in paths.values():     # warm-up: first-call allocations, the catalog's load, the queue
                    run()
                seconds = {path: [] for path in paths}
                for _ in range(args.repeats):
                    for path, run in paths.items():
                        seconds[path].append(timed(run))
                medians = {path: statistics.median(values) for path, values in seconds.items()}
                rows.append((name, WIDTHS[name], medians))
                print(name, {path: f"{1000 * value:.0f} ms" for path, value in medians.items()})
        finally:
            demo.close()
            workspace.close()

    lines = ["## texnets studio: latency the app adds (CPU)", "",
             f"Command: `{command_line('bench.bench_studio')}`; machine: {machine()}; date: {today()}.", "",
             f"One {args.size}² built-in photo (astronaut) through a random Johnson network, in one process, median "
             f"of {args.repeats} interleaved rounds after a warm-up. *model*: the network alone on the decoded "
             "tensor; *function*: `texnets.studio.functions.stylize` (also writes the PNG and the JSON report); "
             "*API*: one request to `/stylize` through the app's HTTP API on loopback, as curl makes it (upload, "
             "queue, decode, the function, the result event, the image's download); *gradio_client*: the same "
             "request through Gradio's Python client.", "",
             "| network | model (ms) | function (ms) | API (ms) | API / model | target | gradio_client (ms) | "
             "gradio_client / model |", "|---|---|---|---|---|---|---|---|"]
    for name, width, medians in rows:
        target = "≤ 1.2" if name == "reference" else "—"
        lines.append(f"| {name} width ({width:g}) | {1000 * medians['model']:.0f} | {1000 * medians['function']:.0f} "
                     f"| {1000 * medians['API']:.0f} | {medians['API'] / medians['model']:.2f}× | {target} "
                     f"| {1000 * medians['gradio_client']:.0f} | {medians['gradio_client'] / medians['model']:.2f}× |")
    publish("bench_studio", lines, args.note)


if __name__ == "__main__":
    main()
