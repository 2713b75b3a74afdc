"""texnets against pytorch/examples' fast_neural_style on the CPU, each run as its own program (BENCHMARKS.md,
"Transfer networks: head to head with pytorch/examples on the CPU").

    OMP_NUM_THREADS=2 python -m bench.bench_peer --peer /path/to/pytorch-examples

Their code never lives in this repository: ``--peer`` is a checkout of https://github.com/pytorch/examples, and
without one the script says so in one line and stops. The same step for both: the same photos, 256² crops, batch 4,
VGG16 to relu4_3 with the same random weights (none can be downloaded here: the peer finds them in a private torch
hub cache under the name torchvision would download, texnets reads them as a state-dict path), the same thread
count. Runs are interleaved (peer, texnets, peer, texnets ...); a short run's wall time is subtracted from a long
run's, so start-up, the style target and the final save cancel, and the difference over the extra steps is the time
per step.

Four training programs: the peer as it is and with glibc told to keep freed memory (``GLIBC_TUNABLES``, the same
setting texnets.allocator makes inside every texnets front door), and texnets as it is and with
``TEXNETS_MALLOC=system``. So the table says how much of texnets' lead is that setting, and what the peer would
gain from it.

Inference: each program stylises a 1024² photo with a reference-width network (the one its own short training run
saved) on the CPU, texnets with each ``--backend``; a 32² run's wall time is subtracted, so start-up and loading
cancel. texnets' backends are also timed on a folder of copies of the photo (a warm backend's cost per image).

    OMP_NUM_THREADS=2 python -m bench.bench_peer --peer /path/to/pytorch-examples --parts

times the parts of one training step in this process instead (the peer's modules imported from the checkout, the
same random VGG16 in both): the generator's forward and backward, VGG16 to relu4_3 forward and backward on its
output, and the content image's VGG pass, with freed memory kept for both (texnets.allocator; TEXNETS_MALLOC=system
times them with the system allocator). That says where the programs' difference comes from.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench._report import BENCHMARKS, command_line, machine, publish, today
from texnets.backends import BACKENDS
from texnets.images import load_image, save_image

REPO = BENCHMARKS.parent
PHOTOS = REPO.parent / "shared" / "data" / "content"
STYLE = REPO.parent / "shared" / "data" / "styles" / "starry_night.jpg"
PEER_SCRIPT = Path("fast_neural_style") / "neural_style" / "neural_style.py"
VGG16_CACHE_NAME = "vgg16-397923af.pth"   # what torchvision's VGG16_Weights.IMAGENET1K_V1 is cached as
BATCH, CROP = 4, 256
# glibc's own form of texnets.allocator's setting, read when a program starts: the peer with the same allocator.
KEEP_TUNABLES = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483647"
PEER_KEPT = "pytorch/examples, freed memory kept (GLIBC_TUNABLES)"
TEXNETS_SYSTEM = "texnets, system malloc (TEXNETS_MALLOC=system)"
FOLDER_EXTRA = 2   # the folder runs: 1 photo against 1 + FOLDER_EXTRA


def photo_folder(folder: Path, images: int) -> Path:
    """``images`` photos (the shared content photos, repeated as needed) in ImageFolder's layout (one class)."""
    sources = sorted(PHOTOS.glob("*.jpg"))
    target = folder / "photos" / "all"
    target.mkdir(parents=True)
    for index in range(images):
        shutil.copy(sources[index % len(sources)], target / f"{index:04d}.jpg")
    return folder / "photos"


def timed_run(command: list[str], env: dict, cwd: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"error: {' '.join(command[:3])} ... failed:\n{result.stderr[-2000:]}")
    return seconds


def median_seconds(function, repeats: int) -> float:
    function()   # warm-up
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def step_parts(peer_dir: Path, repeats: int, note: str | None) -> None:
    """The parts of one training step, in this process, texnets beside the peer's own modules."""
    import torchvision

    from texnets.allocator import keep_freed_memory
    from texnets.generators import TransformerNet
    from texnets.vgg import VGGEncoder
    allocator = keep_freed_memory()   # the same allocator for both sides, in this one process
    sys.path.insert(0, str(peer_dir))   # their modules, read from their checkout (never copied here)
    from transformer_net import TransformerNet as PeerTransformerNet
    torch.manual_seed(0)
    photos = torch.rand(BATCH, 3, CROP, CROP)
    layers = ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]
    with tempfile.TemporaryDirectory() as scratch:
        weights = Path(scratch) / "vgg16.pth"
        torch.save(torchvision.models.vgg16().state_dict(), weights)
        ours_vgg = VGGEncoder(layers, arch="vgg16", weights=str(weights))
        peer_vgg = torchvision.models.vgg16()
        peer_vgg.load_state_dict(torch.load(weights, weights_only=True))
        peer_vgg = peer_vgg.features[:23].requires_grad_(False)   # to relu4_3, as their Vgg16 slices it
    peer_net, ours_net = PeerTransformerNet(), TransformerNet()

    def generator(net, scale):
        net(photos * scale).mean().backward()

    def vgg_ours():
        features = ours_vgg(photos.clone().requires_grad_(True), layers)
        sum(feature.mean() for feature in features.values()).backward()

    def vgg_peer():
        peer_vgg((photos * 255).requires_grad_(True)).mean().backward()

    rows = []
    with torch.no_grad():
        content = (median_seconds(lambda: peer_vgg(photos * 255), repeats),
                   median_seconds(lambda: ours_vgg(photos, ["relu2_2"]), repeats))
    rows.append(("generator, forward and backward", median_seconds(lambda: generator(peer_net, 255), repeats),
                 median_seconds(lambda: generator(ours_net, 1), repeats)))
    rows.append(("VGG16 to relu4_3 on the output, forward and backward", median_seconds(vgg_peer, repeats),
                 median_seconds(vgg_ours, repeats)))
    rows.append(("the content image's VGG pass (peer: to relu4_3; texnets: to relu2_2, no graph)", *content))
    total = (sum(row[1] for row in rows), sum(row[2] for row in rows))
    lines = ["## Transfer networks: the parts of a training step, texnets beside pytorch/examples (CPU)", "",
             f"Command: `{command_line('bench.bench_peer')}`; machine: {machine()}; date: {today()}.", "",
             f"In one process, median of {repeats} after a warm-up; {CROP}² crops, batch {BATCH}, reference-width "
             f"networks, the same random VGG16; the peer's modules imported from its checkout; {allocator}.", "",
             "| part | pytorch/examples (s) | texnets (s) | texnets / peer |", "|---|---|---|---|"]
    lines += [f"| {name} | {peer:.2f} | {ours:.2f} | {ours / peer:.2f}× |" for name, peer, ours in rows]
    lines.append(f"| sum | {total[0]:.2f} | {total[1]:.2f} | {total[1] / total[0]:.2f}× |")
    publish("bench_peer_parts", lines, note, after="bench_peer")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peer", help="a checkout of github.com/pytorch/examples")
    parser.add_argument("--steps", type=int, nargs=2, default=(5, 25), metavar=("SHORT", "LONG"))
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (medians are reported)")
    parser.add_argument("--parts", action="store_true", help="time the parts of one step in this process instead")
    parser.add_argument("--note", help="a last paragraph for the section")
    args = parser.parse_args(argv)
    if not args.peer or not (Path(args.peer) / PEER_SCRIPT).is_file():
        print(f"skipped: pass --peer DIR, a checkout of github.com/pytorch/examples (with {PEER_SCRIPT})")
        return
    if not PHOTOS.is_dir() or not STYLE.is_file():
        print(f"skipped: needs the shared photos and painting beside this checkout ({PHOTOS.parent})")
        return
    threads = os.environ.get("OMP_NUM_THREADS") or str(torch.get_num_threads())
    peer_dir = (Path(args.peer) / PEER_SCRIPT).parent.resolve()
    if args.parts:
        step_parts(peer_dir, 3, args.note)
        return
    short, long = args.steps
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        # One random VGG16, in torchvision's layout, for both programs.
        torch.manual_seed(0)
        import torchvision
        weights = scratch / "torch" / "hub" / "checkpoints" / VGG16_CACHE_NAME
        weights.parent.mkdir(parents=True)
        torch.save(torchvision.models.vgg16().state_dict(), weights)
        env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
               "TORCH_HOME": str(scratch / "torch"), "PYTHONWARNINGS": "ignore"}
        for name in ("GLIBC_TUNABLES", "TEXNETS_MALLOC", "LD_PRELOAD"):
            env.pop(name, None)   # every program starts from the system allocator; the variants say what differs
        folders = {steps: photo_folder(scratch / f"data{steps}", steps * BATCH) for steps in (short, long)}

        def peer_train(steps: int) -> list[str]:
            return [sys.executable, str(peer_dir / "neural_style.py"), "train", "--dataset", str(folders[steps]),
                    "--style-image", str(STYLE), "--save-model-dir", str(scratch / f"peer_model{steps}"),
                    "--epochs", "1", "--batch-size", str(BATCH), "--image-size", str(CROP),
                    "--log-interval", "1000000"]

        def texnets_train(steps: int) -> list[str]:
            return [sys.executable, "train.py", "--config", "configs/starry.yaml", "--model.style", str(STYLE),
                    "--data.folder", str(folders[steps] / "all"), "--data.size", str(CROP),
                    "--data.batch_size", str(BATCH), "--data.num_workers", "0", "--data.val_images", "1",
                    "--model.encoder", f'{{"arch": "vgg16", "weights": "{weights}"}}',
                    "--model.channels_last", "false", "--trainer.accelerator", "cpu",
                    "--trainer.max_steps", str(steps), "--trainer.num_sanity_val_steps", "0",
                    "--trainer.enable_progress_bar", "false", "--output_dir", str(scratch / "runs"),
                    "--run_name", f"texnets{steps}", "--overwrite", "true"]

        # name -> (command, extra environment, working directory)
        variants = {"pytorch/examples": (peer_train, {}, peer_dir),
                    PEER_KEPT: (peer_train, {"GLIBC_TUNABLES": KEEP_TUNABLES}, peer_dir),
                    "texnets": (texnets_train, {}, REPO),
                    TEXNETS_SYSTEM: (texnets_train, {"TEXNETS_MALLOC": "system"}, REPO)}
        train_seconds = {name: {short: [], long: []} for name in variants}
        for round_index in range(args.rounds):
            for steps in (short, long):
                for name, (command, extra, cwd) in variants.items():
                    seconds = timed_run(command(steps), {**env, **extra}, cwd)
                    train_seconds[name][steps].append(seconds)
                    print(f"round {round_index + 1}: {name} {steps} steps: {seconds:.1f} s", flush=True)

        # Inference with the networks the short runs saved.
        peer_model = next((scratch / f"peer_model{short}").glob("*.model"))
        texnets_checkpoint = scratch / "runs" / f"texnets{short}" / "last.ckpt"
        photo = sorted(PHOTOS.glob("*.jpg"))[0]
        images = {side: save_image(load_image(photo, (side, side)), scratch / f"photo{side}.png") for side in (32, 1024)}
        # The same 1024² photo, repeated: a folder's steady state. JPEG, so that the mirrored outputs are JPEG too.
        folder_photo = save_image(load_image(images[1024]), scratch / "photo1024.jpg")
        for copies in (1, 1 + FOLDER_EXTRA):
            (scratch / f"folder{copies}").mkdir()
            for index in range(copies):
                shutil.copy(folder_photo, scratch / f"folder{copies}" / f"{index}.jpg")

        def texnets_infer(source: Path, backend: str) -> list[str]:
            output = scratch / ("texnets_out" if source.is_dir() else "texnets_out.jpg")
            shutil.rmtree(output, ignore_errors=True)
            return [sys.executable, "synthesize.py", "--checkpoint", str(texnets_checkpoint), "--input", str(source),
                    "--output", str(output), "--device", "cpu", "--backend", backend, "--quiet"]   # JPEG out

        single = {"pytorch/examples": {32: [], 1024: []}, **{backend: {32: [], 1024: []} for backend in BACKENDS}}
        folder = {backend: {1: [], 1 + FOLDER_EXTRA: []} for backend in BACKENDS}
        for _ in range(args.rounds):
            for side, image in images.items():
                peer = [sys.executable, str(peer_dir / "neural_style.py"), "eval", "--content-image", str(image),
                        "--model", str(peer_model), "--output-image", str(scratch / "peer_out.jpg")]
                single["pytorch/examples"][side].append(timed_run(peer, env, peer_dir))
                for backend in BACKENDS:
                    single[backend][side].append(timed_run(texnets_infer(image, backend), env, REPO))
            for copies in folder[BACKENDS[0]]:
                for backend in BACKENDS:
                    folder[backend][copies].append(timed_run(texnets_infer(scratch / f"folder{copies}", backend),
                                                             env, REPO))

    def per_unit(table: dict[int, list[float]], small: int, large: int, units: int) -> float:
        return (statistics.median(table[large]) - statistics.median(table[small])) / units

    step = {name: per_unit(table, short, long, long - short) for name, table in train_seconds.items()}
    image = {name: per_unit(table, 32, 1024, 1) for name, table in single.items()}
    steady = {backend: per_unit(table, 1, 1 + FOLDER_EXTRA, FOLDER_EXTRA) for backend, table in folder.items()}
    peer_step, peer_image = step["pytorch/examples"], image["pytorch/examples"]
    best = min(BACKENDS, key=lambda backend: min(image[backend], steady[backend]))
    best_seconds = min(image[best], steady[best])
    lines = ["## Transfer networks: head to head with pytorch/examples on the CPU", "",
             f"Command: `{command_line('bench.bench_peer')}` (`--peer`: a pytorch/examples checkout); machine: "
             f"{machine()}; date: {today()}.", "",
             f"Each program run as its own process, interleaved, {args.rounds} round{'s' * (args.rounds > 1)}, medians: "
             "`neural_style.py train` and `neural_style.py eval` against `train.py --config configs/starry.yaml` and "
             f"`synthesize.py`. The same photos, {CROP}² crops, batch {BATCH}, VGG16 to relu4_3 with the same random "
             f"weights, {threads} threads, fp32. Training: the {short}-step run's wall time subtracted from the "
             f"{long}-step run's, over {long - short} steps.", "",
             "| training | s per step | / pytorch/examples | target |", "|---|---|---|---|"]
    for name in variants:
        target = "≤ 0.8×" if name == "texnets" else ""
        lines.append(f"| {name} | {step[name]:.2f} | {step[name] / peer_step:.2f}× | {target} |")
    lines += ["", "Inference: a 1024² photo, JPEG out on both sides, reference width. *One image*: each program run "
              "on it once, a 32² run's wall time subtracted (start-up, loading, exporting cancel). *In a folder*: "
              f"synthesize.py on a folder of {1 + FOLDER_EXTRA} JPEG copies of the photo, the 1-photo folder's wall time "
              f"subtracted, over {FOLDER_EXTRA} images: what each further image costs once the backend is warm "
              "(compile's first call of a size compiles).", "",
              "| inference 1024² | s per image, one image | / peer | s per image, in a folder | / peer | target |",
              "|---|---|---|---|---|---|",
              f"| pytorch/examples, eager | {peer_image:.2f} | 1.00× | | | |"]
    for backend in BACKENDS:
        target = "≤ 0.6× (best path)" if backend == best else ""
        lines.append(f"| texnets, {backend} | {image[backend]:.2f} | {image[backend] / peer_image:.2f}× | "
                     f"{steady[backend]:.2f} | {steady[backend] / peer_image:.2f}× | {target} |")
    lines += ["", f"texnets' best CPU path: {best}, {best_seconds:.2f} s per image, "
              f"{best_seconds / peer_image:.2f}× the peer's eager time."]
    publish("bench_peer", lines, args.note, after="bench_transfer_large")


if __name__ == "__main__":
    main()
