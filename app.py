#!/usr/bin/env python
"""texnets studio: a local web app over the trained networks and the Gatys optimisations.

Stylise photos and webcam video, enlarge photos, sample textures and solid slices, and watch a Gatys optimisation
converge.

    pip install ".[studio]"
    python app.py                                     # http://127.0.0.1:7860, the runs under checkpoints/
    python app.py --checkpoints runs/ --port 8080
    python app.py --host 0.0.0.0                      # reachable from other machines: see the README first

It offers each run folder under --checkpoints (its last.ckpt) by run name and model type, reads them with
``torch.load(weights_only=True)``, and never opens a path typed into the page. Its functions are also an API
(``/stylize``, ``/super_resolve``, ``/sample_texture``, ``/sample_solid``, ``/optimize``) for ``gradio_client``
scripts.
"""
from __future__ import annotations

import argparse
import ipaddress
import signal
import sys

from PIL import Image

from texnets.cli import main_guard, pick_device
from texnets.errors import TexnetsError
from texnets.studio import DEFAULT_MAX_MEGAPIXELS
from texnets.studio.kinds import MODEL_KINDS


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoints", default="checkpoints",
                        help="the folder of run folders that train.py writes (default checkpoints/)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every network)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 or mps")
    parser.add_argument("--max-megapixels", type=float, default=DEFAULT_MAX_MEGAPIXELS,
                        help=f"refuse uploads, and super-resolution outputs, larger than this (default "
                             f"{DEFAULT_MAX_MEGAPIXELS:g})")
    parser.add_argument("--concurrency", type=int, default=2,
                        help="requests of one kind served at once (optimisations: one at a time)")
    return parser.parse_args(argv)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@main_guard
def main(argv=None) -> int:
    args = parse_args(argv)
    if not 0 < args.port < 65536:
        raise TexnetsError(f"--port must be between 1 and 65535, not {args.port}")
    if args.max_megapixels <= 0 or args.concurrency < 1:
        raise TexnetsError("--max-megapixels must be positive and --concurrency at least 1")
    try:
        from texnets.studio.ui import build_app, launch
    except ImportError as exc:
        raise TexnetsError(f"the studio needs Gradio ({exc.name or exc} is missing): pip install '.[studio]'") from None
    from texnets.studio.catalog import Catalog

    device = pick_device(args.device)
    catalog = Catalog(args.checkpoints, device)
    for problem in catalog.problems():
        print(f"warning: skipped {problem}", file=sys.stderr)
    print(f"{len(catalog.names(MODEL_KINDS))} runs under {args.checkpoints}", file=sys.stderr)
    if not is_loopback(args.host):
        print(f"warning: listening on {args.host}: anyone who can reach port {args.port} of this machine can use the "
              "studio (run its networks and optimisations, upload images); there is no login", file=sys.stderr)
    # Pillow warns above its decompression-bomb limit (about 89 MP) and refuses twice that; a larger --max-megapixels
    # raises the limit to match, so the studio's own size check is the one that speaks.
    Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, int(args.max_megapixels * 1e6))
    demo = build_app(catalog, device=device, max_megapixels=args.max_megapixels)
    # A service manager stops the app with SIGTERM: exit through the finally below, so its results are removed.
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        launch(demo, args.host, args.port, args.concurrency)
    except OSError as exc:
        raise TexnetsError(f"cannot serve on {args.host}:{args.port} ({str(exc).splitlines()[0]}); "
                           "try another --port") from None
    finally:
        signal.signal(signal.SIGTERM, previous)
        demo.studio_workspace.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
