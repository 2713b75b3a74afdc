"""``evaluate.py compare``: for one exemplar (or style image and a few photos), run the optimisation baselines
and trained networks, time them, save their outputs, score them with one ``Evaluator``, and write a labelled
grid, a markdown table and a JSON report. The front door parses the flags; this module does the work.

With photos (``--content``) the networks may be a Johnson transfer network (trained for one style) and the
arbitrary-style AdaIN and WCT networks, which stylise the same photos with the compare's style image; the
report says whether that style was among the AdaIN network's training styles."""
from __future__ import annotations

import argparse
import dataclasses
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from texnets import optim
from texnets.cli import environment, layer_list, markdown_table, parse_size, report_path, synchronize
from texnets.errors import TexnetsError
from texnets.evaluation.distances import STYLE_STATISTICS
from texnets.evaluation.evaluator import Evaluator, MetricOptions
from texnets.evaluation.report import format_value, print_evaluation
from texnets.evaluation.results import Evaluation, MetricResult, RunningStat
from texnets.evaluation.sources import Reference, find_images, is_image_set
from texnets.images import labelled_grid, load_image, resize, save_image, save_json, write_text
from texnets.vgg import GATYS_STYLE_LAYERS, GATYS_TEXTURE_LAYERS, check_layers

# The optimisation baselines compare can run: key -> (style loss, label, source).
OPTIMISATION_METHODS = {
    "gram": ("gram", "Gram optimisation", "Gatys et al. 2015 (texture), 2016 (transfer)"),
    "meanvar": ("meanvar", "MeanVar optimisation", "mean/std statistics, Huang & Belongie 2017"),
    "sw": ("sw", "SW optimisation", "sliced Wasserstein, Heitz et al. 2021"),
}
NET_METHOD = "net"
# The arbitrary-style networks compare can run on the photos, with the compare's style image:
# key -> (checkpoint model type, label, source).
ARBITRARY_METHODS = {
    "adain": ("adain_net", "AdaIN net", "Huang & Belongie 2017, one forward pass, any style"),
    "wct": ("wct_net", "WCT net", "Li et al. 2017, one forward pass per level, any style"),
}
NETWORK_METHODS = (NET_METHOD, *ARBITRARY_METHODS)   # the methods a --checkpoint provides
COMPARE_METHODS = (*OPTIMISATION_METHODS, *NETWORK_METHODS)
# What compare does with a texture exemplar alone, and with content photos: the checkpoint's model type,
# the network's row label and source, and the report's title.
COMPARE_TASKS = {
    "texture": {"model_type": "texture_net", "label": "texture net", "source": "Ulyanov et al. 2016, one forward pass",
                "title": "Texture synthesis: feed-forward network vs optimisation"},
    "transfer": {"model_type": "transformer_net", "label": "transfer net",
                 "source": "Johnson et al. 2016, one forward pass",
                 "title": "Style transfer: feed-forward network vs optimisation"},
}
# Transfer: the unstylised photo, scored like the methods: the style distance a method starts from.
PHOTO_METHOD = "photo"


@dataclass
class MethodRun:
    """One compared method: its outputs (held and as saved), their timings and, once scored, their evaluation."""

    label: str
    source: str
    images: list[torch.Tensor]
    paths: list[Path]
    seconds: list[float]
    seconds_per_image: float | None      # None for the unstylised photo: not timed
    details: dict
    speedup: float | None = None         # vs the baseline optimisation; set once every method has run
    evaluation: Evaluation | None = None


def sample_texture_net(generator: torch.nn.Module, count: int, size: tuple[int, int], seed: int,
                       device: torch.device, first: int = 0) -> Iterator[torch.Tensor]:
    """Samples ``first``, ``first + 1``, ... of the noise field ``seed``, one at a time (batch 1: the
    latency a user sees): the very images ``synthesize.py --seed SEED --count N`` writes.

    The one place that knows how a checkpoint's generator is driven, so a change in the generator API
    is adapted here only."""
    from texnets.tiling import generate  # synthesize.py's sampler: hashed noise, tiled when large
    for index in range(first, first + count):
        yield generate(generator, size, seed=seed, samples=[index], device=device).clamp(0, 1)


def quoted(model_type: str) -> str:
    """``a 'texture_net'``, ``an 'adain_net'``: a model type with its article."""
    return f"{'an' if model_type[:1] in 'aeiou' else 'a'} {model_type!r}"


def network_method(model_type: str, task: str) -> str | None:
    """The compare method a checkpoint of ``model_type`` runs as in ``task``; None if it is no method there."""
    if model_type == COMPARE_TASKS[task]["model_type"]:
        return NET_METHOD
    if task == "transfer":
        return next((key for key, (kind, _, _) in ARBITRARY_METHODS.items() if kind == model_type), None)
    return None


def load_network(checkpoint: str, task: str, device: torch.device):
    """The checkpoint's generator, checked to suit ``task`` (texture or transfer), on ``device``."""
    from texnets.checkpoints import load_generator  # only compare needs it
    start = time.perf_counter()
    loaded = load_generator(checkpoint)
    if network_method(loaded.model_type, task) is None:
        hint = {"transformer_net": "a transfer network: give --content photos for it to stylise",
                "texture_net": "a texture network: leave out --content",
                **dict.fromkeys(("adain_net", "wct_net"),
                                "an arbitrary-style network: it stylises photos, give --content photos for it to stylise"),
                }.get(loaded.model_type, "not comparable here")
        raise TexnetsError(f"{checkpoint} holds {quoted(loaded.model_type)} model, {hint}")
    loaded.generator.to(device)
    return loaded, time.perf_counter() - start


def load_networks(checkpoints: list[str], task: str, device: torch.device) -> dict[str, tuple]:
    """Every checkpoint's generator on ``device``, keyed by the method it runs as (``net``, ``adain``,
    ``wct``): method -> (loaded generator, load seconds, checkpoint path). One checkpoint per method."""
    networks: dict[str, tuple] = {}
    for checkpoint in checkpoints:
        loaded, seconds = load_network(checkpoint, task, device)
        method = network_method(loaded.model_type, task)
        if method in networks:
            raise TexnetsError(f"{networks[method][2]} and {checkpoint} both hold {quoted(loaded.model_type)} model: "
                               f"give one checkpoint per model type")
        networks[method] = (loaded, seconds, str(checkpoint))
    return networks


def network_methods(methods: list[str], networks: dict[str, tuple]) -> list[str]:
    """The methods asked for, then those of the checkpoints not asked for (in --checkpoint order); a network
    method without its checkpoint is one line."""
    for method in methods:
        if method in NETWORK_METHODS and method not in networks:
            kind = ARBITRARY_METHODS[method][0] if method in ARBITRARY_METHODS else "transformer_net"
            given = ", ".join(f"{loaded.model_type!r}" for loaded, _, _ in networks.values())
            raise TexnetsError(f"the {method} method needs {quoted(kind)} checkpoint in --checkpoint (given: {given})")
    return [*methods, *(method for method in networks if method not in methods)]


def style_in_training(style: str, model_type: str, training: dict) -> tuple[bool | None, str]:
    """Whether the style image ``style`` was among a network's training styles, and why: (True, False or
    None when the checkpoint does not say, a reason). WCT trains on photos only; an AdaIN checkpoint records
    its style folders (``styles``) and the files held out of training (``held_out_styles``), as paths
    relative to where it was trained: they are resolved against the current folder."""
    if model_type == "wct_net":
        return False, "WCT trains on photos only (its decoders invert the encoder): every style is unseen"
    folders, held_out = training.get("styles"), training.get("held_out_styles")
    if folders is None or held_out is None:
        return None, "the checkpoint does not record its training styles (no styles or held_out_styles)"
    folders = [folders] if isinstance(folders, str) else list(folders)
    if str(style).startswith(("builtin:", "http://", "https://")):
        return False, f"{style} is not a file of the training style folders ({', '.join(map(str, folders))})"
    path = Path(style).resolve()
    if path in {Path(p).resolve() for p in held_out}:
        return False, "held out of training (one of the checkpoint's held_out_styles, a validation style)"
    if any(path.is_relative_to(Path(folder).resolve()) for folder in folders):
        return True, f"a file of the training style folders ({', '.join(map(str, folders))}), not held out"
    return False, f"not under the training style folders ({', '.join(map(str, folders))})"


def run_texture_net(loaded, load_seconds: float, count: int, size, seed: int, device) -> tuple[list, list, dict]:
    generator = loaded.generator
    next(sample_texture_net(generator, 1, size, seed, device, first=count))  # warm-up: allocator, thread pools
    images, seconds = [], []
    samples = sample_texture_net(generator, count, size, seed, device)
    for _ in range(count):
        start = time.perf_counter()
        image = next(samples)
        synchronize(device)
        seconds.append(time.perf_counter() - start)
        images.append(image.cpu())
    details = {"load_seconds": round(load_seconds, 4), "global_step": loaded.global_step,
               "training": loaded.metadata.get("training", {}), "generator": loaded.metadata.get("generator", {}),
               "batch_size": 1, "warm_up": "one sample before timing",
               "noise": f"synthesize.py --seed {seed}: samples 0..{count - 1} of that noise field"}
    return images, seconds, details


def run_optimisation(loss: str, exemplar: torch.Tensor, args, encoder, size, device) -> tuple[list, list, dict]:
    images, seconds, finals = [], [], []
    for i in range(args.samples):
        torch.manual_seed(args.seed + i)  # SW draws its projections from the global generator: reproducible runs
        start = time.perf_counter()
        result = optim.synthesize_texture(
            exemplar, size, args.layers, loss, steps=args.steps, optimizer=args.optimizer, lr=args.lr,
            seed=args.seed + i, encoder=encoder, device=device,
            progress=False if args.quiet else f"{loss} sample {i + 1}/{args.samples}")
        synchronize(device)
        seconds.append(time.perf_counter() - start)
        images.append(result.image)
        finals.append(result.losses["total"])
    details = {"loss": loss, "layers": list(args.layers), "steps": args.steps, "optimizer": args.optimizer,
               "pooling": args.pooling, "final_losses": finals}
    return images, seconds, details


def load_photos(specs: list[str], count: int, size: tuple[int, int]) -> tuple[list[torch.Tensor], list[str]]:
    """The first ``count`` content photos of ``specs`` (image sets expanded in sorted order), each scaled
    so that it covers ``size`` and centre-cropped to it: every method stylises the very same pixels."""
    from kornia.geometry.transform import center_crop
    sources = [str(p) for spec in specs for p in (find_images(spec, "content photos") if is_image_set(spec) else [spec])]
    photos = []
    for source in sources[:count]:
        image = load_image(source, what="content photo")
        scale = max(size[0] / image.shape[-2], size[1] / image.shape[-1])
        if scale > 1:
            warnings.warn(f"the content photo {source} is {image.shape[-1]}x{image.shape[-2]}, smaller than "
                          f"{size[1]}x{size[0]}: it is upsampled", stacklevel=2)
        cover = (max(size[0], round(image.shape[-2] * scale)), max(size[1], round(image.shape[-1] * scale)))
        photos.append(center_crop(resize(image[0], cover).unsqueeze(0), size))
    return photos, sources[:count]


def run_transfer_net(loaded, load_seconds: float, photos: list[torch.Tensor], device,
                     generator: torch.nn.Module | None = None) -> tuple[list, list, dict]:
    """Each photo through the network (``generator``, default the checkpoint's) one at a time, as
    synthesize.py stylises it (texnets.inference)."""
    from texnets.inference import Stylizer
    if generator is None:
        generator = loaded.generator
        if generator.styles > 1:   # a multi-style network: its first style, baked into a plain one
            warnings.warn(f"the transfer network knows {generator.styles} styles: compare uses style 0", stacklevel=2)
            generator = generator.with_style(0)
    stylizer = Stylizer(generator, device=device)
    stylizer(photos[0])  # warm-up: allocator, thread pools
    images, seconds = [], []
    for photo in photos:
        start = time.perf_counter()
        images.append(stylizer(photo))
        seconds.append(time.perf_counter() - start)
    details = {"load_seconds": round(load_seconds, 4), "global_step": loaded.global_step,
               "training": loaded.metadata.get("training", {}), "generator": loaded.metadata.get("generator", {}),
               "batch_size": 1, "warm_up": "the first photo once before timing"}
    return images, seconds, details


def run_arbitrary_net(loaded, load_seconds: float, style: torch.Tensor, style_spec: str,
                      photos: list[torch.Tensor], device) -> tuple[list, list, dict]:
    """An AdaIN or WCT network bound to the style image (α = 1, every trained level), then run on the photos
    exactly as a transfer network is (``run_transfer_net``): the seconds per image are the network's alone.
    The style's features, computed once per style image, are timed apart (``style_seconds``)."""
    from texnets.arbitrary_inference import StyledNetwork
    styled = StyledNetwork(loaded.generator, [style])
    loaded.generator.to(device)
    synchronize(device)
    start = time.perf_counter()
    styled.styles(device)  # computed once and kept: the photos below reuse it
    synchronize(device)
    style_seconds = time.perf_counter() - start
    images, seconds, details = run_transfer_net(loaded, load_seconds, photos, device, generator=styled)
    seen, reason = style_in_training(style_spec, loaded.model_type, loaded.metadata.get("training", {}))
    details.update({"model_type": loaded.model_type, "alpha": styled.alpha, "levels": list(styled.levels),
                    "style_size": list(style.shape[-2:]), "style_seconds": round(style_seconds, 5),
                    "style_seconds_note": "the style image's features, once per style (the first call: includes "
                                          "allocation); not in the seconds per image",
                    "style_in_training": seen, "style_in_training_reason": reason})
    return images, seconds, details


def arbitrary_label(label: str, seen: bool | None) -> str:
    """``AdaIN net (style unseen in training)``: the row label says which case the figures are."""
    return label if seen is None else f"{label} (style {'seen' if seen else 'unseen'} in training)"


def run_transfer_optimisation(loss: str, style: torch.Tensor, photos: list[torch.Tensor], args, encoder,
                              device) -> tuple[list, list, dict]:
    images, seconds, finals = [], [], []
    for i, photo in enumerate(photos):
        torch.manual_seed(args.seed + i)
        start = time.perf_counter()
        result = optim.transfer_style(
            photo, style, args.content_layers, args.layers, loss, args.content_weight, args.style_weight,
            steps=args.steps, optimizer=args.optimizer, lr=args.lr, seed=args.seed + i, encoder=encoder,
            device=device, progress=False if args.quiet else f"{loss} photo {i + 1}/{len(photos)}")
        synchronize(device)
        seconds.append(time.perf_counter() - start)
        images.append(result.image)
        finals.append(result.losses["total"])
    details = {"loss": loss, "style_layers": list(args.layers), "content_layers": list(args.content_layers),
               "content_weight": args.content_weight, "style_weight": args.style_weight, "steps": args.steps,
               "optimizer": args.optimizer, "pooling": args.pooling, "init": "content", "final_losses": finals}
    return images, seconds, details


def photo_features(evaluator: Evaluator, photos: list[torch.Tensor], layers) -> list[dict]:
    """The content photos' VGG features, computed once for every method's content distance."""
    with torch.no_grad():
        return [evaluator.vgg(layers)(photo.to(evaluator.device), layers) for photo in photos]


def content_distance(evaluator: Evaluator, paths: list[Path], targets: list[dict], layers) -> MetricResult:
    """The content loss (Gatys et al. 2016; Johnson et al. 2016's feature reconstruction loss) of each
    saved output against its photo's features: mean squared difference, summed over ``layers``."""
    from texnets.losses import ContentLoss
    encoder, stat = evaluator.vgg(layers), RunningStat()
    with torch.no_grad():
        for path, target in zip(paths, targets):
            output = encoder(load_image(path).to(evaluator.device), layers)  # as saved: 8-bit, like the style scores
            stat.add(float(ContentLoss(layers, target=target)(output)))
    return MetricResult(f"Content distance {'+'.join(layers)}", "content", stat.mean, stat.std, stat.count,
                        f"{stat.count} outputs vs their photos",
                        f"VGG19 ({evaluator.options.weights}, max pooling) {', '.join(layers)}, 0..255 pixel scale",
                        note="about 0 for the photo itself (8-bit rounding of the saved file)")


def compare_table(runs: dict[str, MethodRun], baseline: str | None, samples: int) -> str:
    """Quality and speed, one row per method; every column names its extractor and sample count."""
    first: Evaluation = next(iter(runs.values())).evaluation
    sifid = next(iter(first.by_metric("sifid")), None)
    diversity = next(iter(first.by_metric("diversity")), None)
    content = next(iter(first.by_metric("content")), None)
    style_layers = [r.layer for r in first.by_metric("gram")]
    header = ["method", "s / image", f"speed-up vs {runs[baseline].label}" if baseline else "speed-up"]
    if content:
        header.append(f"{content.name} ↓ (n={samples})")
    if sifid:
        header.append(f"{sifid.name} ↓ (n={samples})")
    if diversity:
        header.append(f"{diversity.name} ↑ ({diversity.count} pairs)")
    if style_layers:
        header += [f"{title} Σ{len(style_layers)} layers ↓ (n={samples})" for title in STYLE_STATISTICS.values()]
    rows = []
    for run in runs.values():
        evaluation: Evaluation = run.evaluation
        timed = run.seconds_per_image is not None
        cells = [run.label, f"{run.seconds_per_image:.3g}" if timed else "—",
                 f"{run.speedup:.3g}×" if run.speedup else "—"]
        for metric, present in (("content", content), ("sifid", sifid), ("diversity", diversity)):
            if present:
                r = evaluation.by_metric(metric)[0]
                cells.append(format_value(r.value, r.std))
        if style_layers:
            # The sum over layers is the style loss with uniform layer weights.
            cells += [format_value(sum(r.value for r in evaluation.by_metric(stat))) for stat in STYLE_STATISTICS]
        rows.append(cells)
    return markdown_table(header, rows)


def per_layer_tables(runs: dict[str, MethodRun]) -> str:
    blocks = []
    for stat, title in STYLE_STATISTICS.items():
        layers = [r.layer for r in next(iter(runs.values())).evaluation.by_metric(stat)]
        if not layers:
            continue
        rows = [[run.label, *(format_value(r.value, r.std) for r in run.evaluation.by_metric(stat))]
                for run in runs.values()]
        blocks.append(markdown_table([f"{title} distance", *layers], rows))
    return "\n\n".join(blocks)


def compare_grid(exemplar: torch.Tensor, runs: dict[str, MethodRun], rows: int, hide_exemplar: bool) -> torch.Tensor:
    """Columns: the exemplar or style image (unless hidden; first row only), then each run (transfer: the
    photo first); rows: the first samples (transfer: the photos)."""
    rows = max(1, min(rows, min(len(run.images) for run in runs.values())))
    blank = torch.ones_like(next(iter(runs.values())).images[0])
    images, labels = [], []
    for row in range(rows):
        if not hide_exemplar:
            images.append(exemplar if row == 0 else blank)
            labels.append(("style" if PHOTO_METHOD in runs else "exemplar") if row == 0 else "")
        for key, run in runs.items():
            images.append(run.images[row])
            timing = f" {run.seconds_per_image:.3g}s" if run.seconds_per_image is not None else ""
            labels.append(f"{key}{timing}" if row == 0 else f"{key} #{row + 1}")
    columns = len(runs) + (0 if hide_exemplar else 1)
    cell = min(256, max(im.shape[-2] for im in images))
    return labelled_grid(images, labels, columns=columns, cell=cell)


def resolve_compare(args: argparse.Namespace) -> tuple[str, list[str]]:
    """(task, methods): ``transfer`` when content photos are given, else ``texture``. ``args.checkpoint``
    becomes a list (a config's single string included); the methods of the checkpoints not asked for are
    added by ``run_compare`` once it has loaded them and knows their model types."""
    if not args.style:
        raise TexnetsError("compare needs --style (the exemplar or style image), on the command line or in --config")
    if not args.output:
        raise TexnetsError("compare needs --output (the grid image, e.g. out/compare.png)")
    if Path(args.output).suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise TexnetsError(f"--output must end in .png or .jpg (it is the grid), not {Path(args.output).suffix!r}")
    if args.samples < 1 or args.steps < 1:
        raise TexnetsError("--samples and --steps must be at least 1")
    task = "transfer" if args.content else "texture"
    if isinstance(args.checkpoint, (str, Path)):
        args.checkpoint = [str(args.checkpoint)]
    args.checkpoint = [str(checkpoint) for checkpoint in args.checkpoint or []] or None
    methods = list(dict.fromkeys(args.methods or ["gram", "meanvar"]))
    for method in methods:
        if method in ARBITRARY_METHODS and task == "texture":
            raise TexnetsError(f"the {method} method stylises photos: give --content photos (and its checkpoint)")
        if method in NETWORK_METHODS and not args.checkpoint:
            network = ("an arbitrary-style network" if method in ARBITRARY_METHODS else
                       "a transfer network" if task == "transfer" else "a texture network")
            kind = f"{ARBITRARY_METHODS[method][0]}, " if method in ARBITRARY_METHODS else ""
            raise TexnetsError(f"the {method} method needs --checkpoint ({kind}{network} written by train.py)")
    default_layers = GATYS_STYLE_LAYERS if task == "transfer" else GATYS_TEXTURE_LAYERS
    args.layers = check_layers(layer_list(args.layers) if args.layers else default_layers)
    args.content_layers = check_layers(layer_list(args.content_layers))
    return task, methods


def run_compare(args: argparse.Namespace, argv: list[str], task: str, methods: list[str], device: torch.device,
                options: MetricOptions) -> int:
    """Run, time, save and score every method; write the grid, the markdown table and the JSON report."""
    transfer = task == "transfer"
    size = parse_size(args.size)
    size = (size, size) if isinstance(size, int) else size
    networks = load_networks(args.checkpoint or [], task, device)  # every checkpoint, before any work
    methods = network_methods(methods, networks)
    if NET_METHOD in networks and not transfer:
        networks[NET_METHOD][0].generator.check_size(size)
    exemplar = load_image(args.style, parse_size(args.style_size) or min(size),
                          what="style image" if transfer else "exemplar")
    photos, photo_sources = load_photos(args.content, args.samples, size) if transfer else ([], [])
    output = Path(args.output)
    samples_root = output.with_name(f"{output.stem}_samples")
    layers = [*args.content_layers, *args.layers] if transfer else args.layers
    encoder = optim.VGGEncoder(check_layers(layers), pooling=args.pooling, weights=args.weights).to(device)
    if any(m in OPTIMISATION_METHODS for m in methods):  # warm-up: thread pools and allocator, not timed
        if transfer:
            optim.transfer_style(photos[0], exemplar, args.content_layers, args.layers, steps=1, encoder=encoder,
                                 device=device, progress=False)
        else:
            optim.synthesize_texture(exemplar, size, args.layers, steps=1, encoder=encoder, device=device,
                                     progress=False)

    def save_outputs(method: str, images: list) -> list[Path]:
        return [save_image(image, samples_root / method / f"sample_{i:02d}.png") for i, image in enumerate(images)]

    runs: dict[str, MethodRun] = {}
    if transfer:  # the unstylised photos, scored like the methods: where every method starts from
        runs[PHOTO_METHOD] = MethodRun("the photo (unstylised)", "the input", photos, save_outputs(PHOTO_METHOD, photos),
                                       [], None, {"sources": photo_sources})
    for method in methods:
        if method == NET_METHOD:
            loaded, load_seconds, checkpoint = networks[method]
            if transfer:
                images, seconds, details = run_transfer_net(loaded, load_seconds, photos, device)
            else:
                images, seconds, details = run_texture_net(loaded, load_seconds, args.samples, size, args.seed, device)
            details["checkpoint"] = checkpoint
            label, source = COMPARE_TASKS[task]["label"], COMPARE_TASKS[task]["source"]
        elif method in ARBITRARY_METHODS:
            loaded, load_seconds, checkpoint = networks[method]
            images, seconds, details = run_arbitrary_net(loaded, load_seconds, exemplar, args.style, photos, device)
            details["checkpoint"] = checkpoint
            _, label, source = ARBITRARY_METHODS[method]
            label = arbitrary_label(label, details["style_in_training"])
        else:
            loss, label, source = OPTIMISATION_METHODS[method]
            if transfer:
                images, seconds, details = run_transfer_optimisation(loss, exemplar, photos, args, encoder, device)
            else:
                images, seconds, details = run_optimisation(loss, exemplar, args, encoder, size, device)
        runs[method] = MethodRun(label, source, images, save_outputs(method, images), seconds,
                                 sum(seconds) / len(seconds), details)
        print(f"{label}: {runs[method].seconds_per_image:.3g} s/image over {len(images)} "
              f"{'photos' if transfer else 'samples'} -> {samples_root / method}")

    baseline = next((m for m in ("gram", "meanvar", "sw") if m in runs), None)
    for run in runs.values():
        timed = baseline and run.seconds_per_image is not None
        run.speedup = runs[baseline].seconds_per_image / run.seconds_per_image if timed else None

    # Scoring: the samples as saved, against the exemplar, with one set of networks for every method.
    # Outputs stylised from different photos differ by design, so transfer leaves diversity out.
    if transfer and not args.metrics:
        options = dataclasses.replace(options, metrics=["sifid", "style"])
    evaluator = Evaluator(options)
    reference = Reference("exemplar", args.style, image=exemplar)
    targets = photo_features(evaluator, photos, args.content_layers) if transfer else []
    for method, run in runs.items():
        run.evaluation = evaluator.evaluate(run.paths, reference)
        if transfer:
            distance = content_distance(evaluator, run.paths, targets, args.content_layers)
            run.evaluation.results.insert(0, distance)
            run.evaluation.extractors["content"] = distance.extractor
        print_evaluation(run.evaluation, prefix=f"{run.label}: ")

    grid = compare_grid(exemplar, runs, args.grid_samples, args.hide_exemplar)
    save_image(grid, output)
    md_path = output.with_suffix(".md")
    write_text(compare_markdown(args, argv, task, runs, baseline, exemplar, size, device), md_path)
    h, w = exemplar.shape[-2:]
    save_json({"command": "compare", "task": task, "arguments": vars(args),
               "exemplar": {"source": args.style, "size": [h, w]}, "content": photo_sources,
               "size": list(size), "baseline": baseline, "grid": str(output), "table": str(md_path),
               "method_order": list(runs),
               "methods": {key: {"label": run.label, "source": run.source,
                                 "seconds_per_image": (round(run.seconds_per_image, 5)
                                                       if run.seconds_per_image is not None else None),
                                 "seconds": [round(s, 5) for s in run.seconds], "speedup": run.speedup,
                                 "samples": [str(p) for p in run.paths], "details": run.details,
                                 "evaluation": run.evaluation.as_dict()} for key, run in runs.items()},
               "device": str(device), "environment": environment()}, report_path(output))
    print(f"-> {output}, {md_path}, {report_path(output)}")
    return 0


def yes_no(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "unknown"}[value]


def compare_markdown(args, argv: list[str], task: str, runs: dict[str, MethodRun], baseline: str | None,
                     exemplar: torch.Tensor, size, device) -> str:
    """The compare report: settings, the quality-and-speed table, extractors, per-layer tables."""
    h, w = exemplar.shape[-2:]
    evaluation: Evaluation = next(iter(runs.values())).evaluation
    extractors = "; ".join(f"{metric}: {text}" for metric, text in evaluation.extractors.items())
    notes = [f"- {metric} skipped: {reason}" for metric, reason in evaluation.skipped.items()]
    notes += [f"- {metric}: standard extractor not used: {reason}" for metric, reason in evaluation.fallbacks.items()]
    arbitrary = [run for key, run in runs.items() if key in ARBITRARY_METHODS]
    notes += [f"- {run.label}: style seen in training: {yes_no(run.details['style_in_training'])}: "
              f"{run.details['style_in_training_reason']}" for run in arbitrary]
    if task == "transfer":
        photos = runs[PHOTO_METHOD].details["sources"]
        any_style = (" AdaIN/WCT nets: this style image, α 1, every trained level; its features are computed once "
                     "before the photos and timed apart (style_seconds in the JSON)." if arbitrary else "")
        setting = (f"Style `{args.style}` ({w}×{h}); {len(photos)} content photos ({', '.join(photos)}), each "
                   f"centre-cropped to {size[1]}×{size[0]}; optimisation (Gatys et al. 2016, from the photo): "
                   f"{args.optimizer} {args.steps} steps, content {', '.join(args.content_layers)} × "
                   f"{args.content_weight:g}, style {', '.join(args.layers)} × {args.style_weight:g} "
                   f"({args.pooling} pooling); device {device}. Speed is wall time per photo measured in this run "
                   f"(networks: batch 1 after a warm-up photo, training not included; optimisation: the whole "
                   f"run); quality is mean ± std over the photos: the content distance against each photo, the "
                   f"style distances against the style image. The unstylised photo is scored too, as the "
                   f"starting point.{any_style}")
    else:
        setting = (f"Exemplar `{args.style}` ({w}×{h}); samples {size[1]}×{size[0]}, {args.samples} per method "
                   f"(optimisation seeds {args.seed}–{args.seed + args.samples - 1}; texture net samples 0–"
                   f"{args.samples - 1} of noise seed {args.seed}); optimisation: {args.optimizer} {args.steps} "
                   f"steps on {', '.join(args.layers)} ({args.pooling} pooling); device {device}. Speed is wall "
                   f"time per image measured in this run (texture net: batch 1 after a warm-up sample, training "
                   f"not included; optimisation: the whole run); quality is mean ± std over each method's samples, "
                   f"each against the exemplar.")
    return (f"# {COMPARE_TASKS[task]['title']}\n\n{setting}\n\nCommand: `python evaluate.py compare {' '.join(argv)}`"
            f"\n\n{compare_table(runs, baseline, args.samples if task == 'texture' else len(photos))}\n\n"
            f"Extractors: {extractors}.\n" + "".join(f"\n{note}" for note in notes)
            + f"\n\n## Style distances per layer\n\n{per_layer_tables(runs)}\n")
