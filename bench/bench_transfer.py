#!/usr/bin/env python
"""Benchmarks of the Johnson transfer networks (issue 4), written to BENCHMARKS.md.

    python -m bench.bench_transfer inference            # CPU: ms per image, 512² and 1024², eager / channels_last / compile
    python -m bench.bench_transfer overhead             # CPU: Lightning step time over a bare training step (target <= 1.15)
    python -m bench.bench_transfer quality [--steps N]  # CPU: configs/starry_cpu.yaml on ../shared/data (1500 steps)
    python -m bench.bench_transfer large                # CPU: an 8000x6000 photo in tiles, time and peak memory
    python -m bench.bench_transfer gpu --data DIR --json OUT.json   # on a GPU machine: fps at 1080p, steps/s
    python -m bench.bench_transfer quality --accelerator gpu        # the quality recipe on a GPU (minutes)
    python -m bench.bench_transfer record-gpu OUT.json  # write a gpu run's JSON into BENCHMARKS.md
    python -m bench.bench_transfer record-quality OUT.json   # likewise for a quality run made elsewhere

Each CPU section runs alone (two torch processes on two cores slow each other several-fold). The GPU
section needs no texnets data beyond a folder of photos and the style image (``--data`` is laid out
like ../shared/data: ``content/`` and ``styles/starry_night.jpg``); it prints and saves JSON, which
``record-gpu`` turns into the "Transfer networks on a GPU" section with the device name it ran on.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from bench._report import command_line, machine, peak_rss_mb, today, update_section
from texnets.cli import markdown_table, synchronize
from texnets.generators.transformer_net import TransformerNet
from texnets.images import save_json

REPO = Path(__file__).resolve().parents[1]
MODULE = "bench.bench_transfer"  # run as python -m bench.bench_transfer

SHARED = REPO.parent / "shared" / "data"
OUT = REPO / "bench" / "out"
RUN_NAME = "bench_starry_cpu"


def time_calls(fn, repeats: int, warmup: int, device: torch.device) -> float:
    """Median seconds per call of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class ChannelPaddedConv(torch.nn.Module):
    """An experiment, kept so its table rows can be reproduced: the two 9×9 full-resolution
    convolutions (3 -> 32 and 32 -> 3 channels) take about half of the GPU inference time at 1080p, so
    their RGB side is zero-padded to ``multiple`` channels (the same function) in the hope that cuDNN
    picks tensor-core kernels. On the H100 it made no difference, so the package does not do it."""

    def __init__(self, conv: torch.nn.Conv2d, multiple: int = 8):
        super().__init__()
        cin, cout = conv.in_channels, conv.out_channels
        self.pad_in = (-cin) % multiple if cin == 3 else 0
        self.out_channels = cout
        pad_out = (-cout) % multiple if cout == 3 else 0
        self.conv = torch.nn.Conv2d(cin + self.pad_in, cout + pad_out, conv.kernel_size, conv.stride).to(conv.weight)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.bias.zero_()
            self.conv.weight[:cout, :cin] = conv.weight
            self.conv.bias[:cout] = conv.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad_in:
            x = torch.nn.functional.pad(x, [0, 0, 0, 0, 0, self.pad_in])
        return self.conv(x)[:, :self.out_channels]


def pad_rgb_convs(net: TransformerNet, multiple: int = 8) -> TransformerNet:
    """An inference copy of ``net`` whose 3-channel convolutions are padded for tensor cores
    (:class:`ChannelPaddedConv`); outputs are identical up to float rounding."""
    import copy
    padded = copy.deepcopy(net)
    first, last = padded.encoder[0], padded.decoder[-1]
    first[1] = ChannelPaddedConv(first[1], multiple)
    last[1] = ChannelPaddedConv(last[1], multiple)
    return padded


def inference_variants(device: torch.device, variants) -> dict:
    """name -> the reference-width net (random weights: speed does not depend on them) in that mode:
    ``eager``, ``channels_last``, ``compile``, ``compile+channels_last``, and ``+padded`` for the
    tensor-core-friendly 3-channel convolutions (``pad_rgb_convs``)."""
    nets = {}
    for name in variants:
        net = TransformerNet().eval().to(device)
        if "padded" in name:
            net = pad_rgb_convs(net)
        if "channels_last" in name:
            net = net.to(memory_format=torch.channels_last)
        # dynamic=False: one specialised graph per input shape (a video has one shape), not a slower dynamic one.
        nets[name] = torch.compile(net, dynamic=False) if name.startswith("compile") else net
    return nets


@torch.no_grad()
def measure_inference(device: torch.device, dtype: torch.dtype, shapes, variants, repeats: int, warmup: int) -> list[dict]:
    rows = []
    for name, net in inference_variants(device, variants).items():
        for batch, height, width in shapes:
            images = torch.rand(batch, 3, height, width, device=device)
            if "channels_last" in name:
                images = images.contiguous(memory_format=torch.channels_last)

            def call():
                with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                    return net(images)

            start = time.perf_counter()
            call()  # first call: compilation for torch.compile
            synchronize(device)
            first = time.perf_counter() - start
            seconds = time_calls(call, repeats, warmup, device)
            rows.append({"mode": name, "batch": batch, "height": height, "width": width,
                         "ms_per_image": 1000 * seconds / batch, "images_per_second": batch / seconds,
                         "first_call_seconds": first})
            print(json.dumps(rows[-1]), flush=True)
    return rows


# --------------------------------------------------------------------------------------------------
# CPU sections

def section_inference(args) -> None:
    torch.manual_seed(0)
    shapes = [(1, 512, 512), (1, 1024, 1024)]
    rows = measure_inference(torch.device("cpu"), torch.float32, shapes, ("eager", "channels_last", "compile"),
                             repeats=args.repeats, warmup=1)
    save_results("inference", rows)
    update_section("bench_transfer_inference", inference_markdown(rows, args.repeats))


def inference_markdown(rows: list[dict], repeats: int) -> str:
    """The "CPU inference" section, from :func:`measure_inference`'s rows."""
    eager = {(r["height"]): r["ms_per_image"] for r in rows if r["mode"] == "eager"}
    table = markdown_table(["mode", "size", "ms per image", "vs eager", "first call (s)"],
                           [[row["mode"], f"{row['width']}²", f"{row['ms_per_image']:.0f}",
                             f"{eager[row['height']] / row['ms_per_image']:.2f}×", f"{row['first_call_seconds']:.1f}"]
                            for row in rows])
    lines = [f"Command: `{command_line(MODULE)}`; machine: {machine()}; date: {today()}.", "",
             "Reference-width transformer net (1,679,235 parameters), fp32, batch 1, median of "
             f"{repeats} runs after a warm-up; the first call of torch.compile includes compilation.", "", table]
    best = {size: min((r for r in rows if r["height"] == size), key=lambda r: r["ms_per_image"]) for size in eager}
    fastest = "; ".join(f"{size}²: {row['mode']} ({row['ms_per_image']:.0f} ms)" for size, row in best.items())
    lines += ["", f"Fastest: {fastest}."]
    return "## Transfer networks: CPU inference\n\n" + "\n".join(lines)


def child_large(height: int, width: int, block: int) -> dict:
    """In a fresh process: stylise one height x width photo (built-in astronaut, upscaled) in tiles."""
    from texnets.images import load_image
    from texnets.inference import Stylizer
    torch.manual_seed(0)
    photo = load_image("builtin:astronaut", (height, width))
    before = peak_rss_mb()
    stylizer = Stylizer(TransformerNet(), block=block)
    start = time.perf_counter()
    output = stylizer(photo)
    seconds = time.perf_counter() - start
    assert output.shape[-2:] == photo.shape[-2:]
    return {"height": height, "width": width, "block": block, "seconds": seconds, "peak_rss_mb": peak_rss_mb(),
            "rss_before_mb": before, "image_mb": photo.numel() * 4 / 2**20}


def section_large(args) -> None:
    height, width, block = 6000, 8000, 1024
    out = subprocess.check_output([sys.executable, "-m", "bench.bench_transfer", "child-large", f"{height},{width},{block}"],
                                  cwd=REPO, text=True)
    result = json.loads(out.strip().splitlines()[-1])
    print(json.dumps(result), flush=True)
    save_results("large", result)
    # One untiled pass would hold several full-resolution 32- and 64-channel activations at once.
    activation_gb = 32 * height * width * 4 / 1e9
    update_section("bench_transfer_large", "\n".join([
        "## Transfer networks: a very large image on the CPU", "",
        f"Command: `{command_line(MODULE)}`; machine: {machine()}; date: {today()}.", "",
        f"`synthesize.py`'s path (`Stylizer`, `--block {block}`) on a {width}×{height} photo (48 megapixels; the "
        f"built-in astronaut upscaled), reference-width net: **{result['seconds'] / 60:.1f} min, peak RSS "
        f"{result['peak_rss_mb'] / 1024:.1f} GB** (the float input and output images alone are "
        f"{2 * result['image_mb'] / 1024:.1f} GB). In one pass, a single full-resolution 32-channel activation would "
        f"take {activation_gb:.1f} GB and several are alive at once, beyond this machine's 24 GB. Besides the two "
        f"images, the peak is mostly the instance-norm calibration pass, which runs four full-resolution "
        f"{block + 120}² windows as one batch (about 0.7 GB per 32-channel activation); the tiles then run one "
        f"window at a time."]))


def _content_batch(size: int, batch: int, folder: Path = SHARED / "content") -> torch.Tensor:
    from texnets.images import read_image, resize
    paths = sorted(folder.glob("*.jpg"))[:batch]
    images = [resize(read_image(p), size)[:, :size, :size] for p in paths]
    return torch.stack(images)


def section_overhead(args) -> None:
    """Seconds per step through Trainer.fit (data loading from ../shared/data/content included) over a
    bare step (generator forward, VGG loss forward, backward, Adam) on one fixed batch, same process."""
    import pytorch_lightning as pl

    from texnets.tasks import ContentImageDataModule, TransferTask

    torch.manual_seed(0)
    size, batch, steps, warmup = 256, 4, args.steps or 20, 3
    style = str(SHARED / "styles" / "starry_night.jpg")

    def new_task():
        task = TransferTask(style=style, style_size=384, tv_weight=2.6e4)
        task.prepare_targets("fit")
        return task

    def bare(n: int) -> float:
        task = new_task()
        content = _content_batch(size, batch)
        optimizer = torch.optim.Adam(task.generator.parameters(), lr=1e-3)

        def step():
            optimizer.zero_grad(set_to_none=True)
            loss, _ = task.objective(content, task.generator(content))
            loss.backward()
            optimizer.step()
        return time_calls(step, n, warmup, torch.device("cpu"))

    class StepTimer(pl.Callback):
        def __init__(self):
            self.marks: list[float] = []

        def on_train_batch_end(self, trainer, *rest):
            self.marks.append(time.perf_counter())

    def lightning(n: int) -> float:
        task = new_task()
        data = ContentImageDataModule(folder=str(SHARED / "content"), size=size, batch_size=batch, num_workers=0,
                                      val_images=0)
        timer = StepTimer()
        trainer = pl.Trainer(accelerator="cpu", max_steps=warmup + n, logger=False, enable_checkpointing=False,
                             enable_progress_bar=False, enable_model_summary=False, callbacks=[timer],
                             limit_val_batches=0, num_sanity_val_steps=0)
        trainer.fit(task, datamodule=data)
        intervals = [b - a for a, b in zip(timer.marks[warmup - 1:], timer.marks[warmup:])]
        return statistics.median(intervals)

    bare_before = bare(steps)
    through_lightning = lightning(steps)
    bare_after = bare(steps)
    ratio = through_lightning / ((bare_before + bare_after) / 2)
    result = {"bare_seconds": [bare_before, bare_after], "lightning_seconds": through_lightning, "ratio": ratio,
              "size": size, "batch": batch, "steps": steps, "warmup": warmup, "peak_rss_mb": peak_rss_mb(),
              "machine": machine(), "command": command_line(MODULE)}
    print(json.dumps(result), flush=True)
    save_results("overhead", result)
    record_overhead(result)


def record_overhead(result: dict) -> None:
    bare_before, bare_after = result["bare_seconds"]
    ratio, drift = result["ratio"], abs(bare_after - bare_before) / min(bare_before, bare_after)
    verdict = "met" if ratio <= 1.15 else "NOT met"
    noise = (f" A ratio below 1 means Lightning's overhead is smaller than this measurement's noise: the bare step "
             f"itself moved by {100 * drift:.0f}% between its two measurements on this 2-core machine." if ratio < 1 else "")
    update_section("bench_transfer_overhead", "\n".join([
        "## Transfer networks: CPU training overhead", "",
        f"Command: `{result['command']}`; machine: {result['machine']}; date: {today()}.", "",
        f"One training step at {result['size']}², batch {result['batch']} (reference-width net, VGG-19 loss to "
        f"relu4_3), median of {result['steps']} steps after {result['warmup']} warm-up steps:", "",
        f"- bare step (generator forward, loss forward, backward, Adam; one fixed batch): "
        f"{bare_before:.2f} s before and {bare_after:.2f} s after the Lightning run;",
        f"- through `Trainer.fit` with `ContentImageDataModule` (JPEG decoding and random crops of "
        f"`../shared/data/content` in the training process, kornia flips, logging): {result['lightning_seconds']:.2f} s;",
        f"- **ratio {ratio:.3f}** against the mean bare step (target ≤ 1.15: {verdict}). Peak RSS "
        f"{result['peak_rss_mb']:.0f} MB.{noise}"]))


def section_quality(args) -> None:
    """configs/starry_cpu.yaml for ``--steps`` steps; losses on the held-aside photos before and after."""
    from texnets.checkpoints import load_generator
    from texnets.tasks import ContentImageDataModule, TransferTask

    steps = args.steps or 1500
    data_dir = Path(args.data) if args.data else SHARED
    run_dir = OUT / "runs" / RUN_NAME
    command = [sys.executable, "train.py", "--config", "configs/starry.yaml", "--config", "configs/starry_cpu.yaml",
               "--model.style", str(data_dir / "styles" / "starry_night.jpg"), "--data.folder", str(data_dir / "content"),
               "--trainer.max_steps", str(steps), "--trainer.enable_progress_bar", "false",
               "--output_dir", str(OUT / "runs"), "--run_name", RUN_NAME]
    if args.accelerator != "cpu":  # the same recipe on a GPU (for the README figure when the CPU run is too long)
        command += ["--trainer.accelerator", args.accelerator, "--data.num_workers", str(args.workers)]
    if args.resume and (run_dir / "last.ckpt").exists():
        command += ["--ckpt_path", str(run_dir / "last.ckpt")]
    elif not args.skip_training:
        command += ["--overwrite", "true"]
    start = time.perf_counter()
    if not args.skip_training:
        subprocess.run(command, cwd=REPO, check=True)
    wall = time.perf_counter() - start
    report = json.loads((run_dir / "report.json").read_text())

    # Losses of the untrained (seed-0) and the trained network on the held-aside photos, at 256².
    torch.manual_seed(0)
    task = TransferTask(style=str(data_dir / "styles" / "starry_night.jpg"), style_size=288, tv_weight=1.5e4)
    task.prepare_targets("fit")
    data = ContentImageDataModule(folder=str(data_dir / "content"), size=192, val_images=4, val_size=256)
    photos = data.validation_batch()
    torch.manual_seed(0)
    untrained = TransformerNet().eval()  # a fresh initialisation
    loaded = load_generator(run_dir / "last.ckpt")
    trained = loaded.generator
    losses = {}
    with torch.no_grad():
        for name, net in (("untrained", untrained), ("trained", trained), ("identity", None)):
            output = photos if net is None else net(photos)
            _, logs = task.objective(photos, output)
            losses[name] = {key: float(logs[key]) for key in ("style", "content", "tv", "total")}
    result = {"steps": report["final_step"], "checkpoint_step": loaded.global_step, "seconds": report["seconds"],
              "seconds_per_step": report["seconds_per_step"],
              "wall_seconds": wall, "losses": losses, "held_aside": data.validation_paths(),
              "loss_first10_mean": report["loss_first10_mean"], "loss_last10_mean": report["loss_last10_mean"],
              "device": report["environment"].get("gpu", "cpu"), "machine": machine(), "command": command_line(MODULE)}
    print(json.dumps(result, indent=1), flush=True)
    save_results("quality", result)
    if args.json:
        save_json(result, args.json)
    if args.accelerator == "cpu":
        record_quality(result)


def record_quality(result: dict) -> None:
    """The quality section; a GPU run (``record-quality FILE``) gets its own section, labelled."""
    losses, on_gpu = result["losses"], result.get("device", "cpu") != "cpu"
    names = ", ".join(Path(p).name for p in result["held_aside"])
    rows = []
    for name, label in (("identity", "the photo itself"), ("untrained", "untrained (fresh initialisation)"),
                        ("trained", f"trained ({result.get('checkpoint_step', result['steps'])} steps)")):
        value = losses[name]
        rows.append([label, f"{value['style']:.4g}", f"{value['content']:.4g}", f"{value['total']:.4g}"])
    table = markdown_table(["network", "style loss", "content loss", "total (5·style + content + TV)"], rows)
    update_section("bench_transfer_quality" + "_gpu" * on_gpu, "\n".join([
        f"## Transfer networks: quality run on {result['device'] if on_gpu else 'the CPU'}", "",
        f"Command: `{result['command']}` (train.py with `configs/starry.yaml` + `configs/starry_cpu.yaml`: 192² crops, "
        f"batch 4, reference-width net, Starry Night at 288 px, `../shared/data/content`); machine: {result['machine']}; "
        f"date: {today()}.", "",
        f"{result['steps']} steps in {result['seconds'] / 60:.1f} min ({result['seconds_per_step']:.2f} s per step). "
        f"Losses on the {len(result['held_aside'])} held-aside photos ({names}; never trained on), at 256², with the "
        f"training criterion:", "", table, *([""] + [result["notes"]] if result.get("notes") else [])]))


# --------------------------------------------------------------------------------------------------
# GPU section (run on a machine with CUDA; recorded here with record-gpu)

def section_gpu(args) -> None:
    import pytorch_lightning as pl

    from texnets.tasks import ContentImageDataModule, TransferTask

    if not torch.cuda.is_available():
        raise SystemExit("the gpu section needs CUDA")
    device = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    result = {"device": torch.cuda.get_device_name(), "machine": machine(), "date": today(),
              "torch": torch.__version__, "command": command_line(MODULE)}
    shapes = [(1, 1080, 1920), (8, 1080, 1920)]
    result["inference"] = []
    for dtype, name, variants in ((torch.float32, "fp32", ("eager", "compile+channels_last")),
                                  (torch.bfloat16, "bf16", ("eager", "channels_last", "channels_last+padded",
                                                            "compile+channels_last", "compile+channels_last+padded")),
                                  (torch.float16, "fp16", ("compile+channels_last+padded",))):
        rows = measure_inference(device, dtype, shapes, variants, repeats=20, warmup=3)
        result["inference"] += [dict(row, dtype=name) for row in rows]

    class StepTimer(pl.Callback):
        def __init__(self):
            self.marks: list[float] = []

        def on_train_batch_end(self, trainer, *rest):
            self.marks.append(time.perf_counter())

    data_dir = Path(args.data)
    style = data_dir / "styles" / "starry_night.jpg"
    training = []
    for precision, compile_ in (("bf16-mixed", False), ("32-true", False)):
        torch.manual_seed(0)
        task = TransferTask(style=str(style), style_size=384, tv_weight=2.6e4, channels_last=True, compile=compile_)
        data = ContentImageDataModule(folder=str(data_dir / "content"), size=256, batch_size=4,
                                      num_workers=args.workers, val_images=0)
        timer = StepTimer()
        steps = args.steps or 600
        trainer = pl.Trainer(accelerator="gpu", devices=1, precision=precision, max_steps=steps, logger=False,
                             enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                             callbacks=[timer], limit_val_batches=0, num_sanity_val_steps=0)
        start = time.perf_counter()
        trainer.fit(task, datamodule=data)
        wall = time.perf_counter() - start
        skip = min(100, steps // 3)
        rate = (len(timer.marks) - 1 - skip) / (timer.marks[-1] - timer.marks[skip])
        training.append({"precision": precision, "compile": compile_, "steps": steps, "steps_per_second": rate,
                         "fit_wall_seconds": wall, "minutes_for_40k": 40000 / rate / 60,
                         "peak_memory_gb": torch.cuda.max_memory_allocated() / 1e9})
        print(json.dumps(training[-1]), flush=True)
        torch.cuda.reset_peak_memory_stats()
    result["training"] = training
    result["bare_training"] = bare_gpu_steps(data_dir, steps)
    save_json(result, args.json or OUT / "transfer_gpu.json")


def bare_gpu_steps(data_dir: Path, steps: int) -> list[dict]:
    """The same step without Lightning or data loading (one fixed batch on the GPU): what the hardware
    and kernels allow, so the table shows how much the framework and pipeline cost."""
    from texnets.tasks import TransferTask
    device, rows = torch.device("cuda"), []
    content = _content_batch(256, 4, data_dir / "content").to(device).contiguous(memory_format=torch.channels_last)
    for precision, compile_ in (("bf16-mixed", False), ("bf16-mixed", True)):
        torch.manual_seed(0)
        task = TransferTask(style=str(data_dir / "styles" / "starry_night.jpg"), style_size=384,
                            tv_weight=2.6e4).to(device)
        task.prepare_targets("fit")
        task = task.to(memory_format=torch.channels_last)
        if compile_:
            task.generator.compile()
            task.criterion.encoder.compile()
        optimizer = torch.optim.Adam(task.generator.parameters(), lr=1e-3)

        def step():
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss, _ = task.objective(content, task.generator(content))
            loss.backward()
            optimizer.step()
        seconds = time_calls(step, steps, 20, device)
        rows.append({"precision": precision, "compile": compile_, "steps_per_second": 1 / seconds})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def record_gpu(path: str) -> None:
    result = json.loads(Path(path).read_text())
    lines = [f"## Transfer networks on a GPU ({result['device']})", "",
             f"Command: `{result['command']}`, run on the lent device ({result['device']}; {result['machine']}); "
             f"date: {result['date']}. Reference-width net (1,679,235 parameters).", "",
             "Inference at 1920×1080 (median of 20 calls after 3 warm-ups; the first call of torch.compile "
             "includes compilation):", "",
             markdown_table(["precision", "mode", "batch", "images/s (fps)", "ms per image", "first call (s)"],
                            [[row.get("dtype", "fp32"), row["mode"], f"{row['batch']}", f"{row['images_per_second']:.0f}",
                              f"{row['ms_per_image']:.2f}", f"{row['first_call_seconds']:.1f}"]
                             for row in result["inference"]])]
    lines += ["", "Training at the reference schedule's shape (256² crops, batch 4, Adam; VGG-19 loss to relu4_3; "
              "channels_last; JPEG decoding in DataLoader workers), through `Trainer.fit` (the first 100 steps "
              "untimed):", "",
              markdown_table(["precision", "torch.compile", "steps timed", "steps/s", "40k steps would take",
                              "peak GPU memory"],
                             [[row["precision"], "yes" if row.get("compile") else "no", f"{row['steps']}",
                               f"{row['steps_per_second']:.1f}", f"{row['minutes_for_40k']:.1f} min",
                               f"{row['peak_memory_gb']:.1f} GB"] for row in result["training"]])]
    if result.get("bare_training"):
        lines += ["", "The same step without Lightning and without data loading (one fixed batch already on the GPU):", ""]
        lines += [f"- {row['precision']}, compile {'yes' if row['compile'] else 'no'}: {row['steps_per_second']:.1f} "
                  f"steps/s ({40000 / row['steps_per_second'] / 60:.1f} min for 40k)" for row in result["bare_training"]]
    if result.get("notes"):
        lines += ["", result["notes"]]
    update_section("bench_transfer_gpu", "\n".join(lines))


def save_results(key: str, value) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "transfer_results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results[key] = {"value": value, "date": today(), "machine": machine(), "command": command_line(MODULE)}
    save_json(results, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("section", choices=["inference", "overhead", "quality", "large", "gpu", "record-gpu",
                                            "record-quality", "child-large"])
    parser.add_argument("path", nargs="?", help="record-gpu: the JSON a gpu run wrote")
    parser.add_argument("--steps", type=int, help="training steps (quality: 1500, overhead: 20, gpu: 600)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per inference figure")
    parser.add_argument("--resume", action="store_true", help="quality: continue an interrupted run")
    parser.add_argument("--skip-training", action="store_true", help="quality: re-measure the last run")
    parser.add_argument("--data", help="gpu, quality: a folder laid out like ../shared/data (content/, styles/)")
    parser.add_argument("--json", help="gpu, quality: also write the results to this JSON file")
    parser.add_argument("--accelerator", default="cpu", help="quality: cpu (the benchmark) or gpu")
    parser.add_argument("--workers", type=int, default=8, help="gpu: DataLoader workers")
    args = parser.parse_args()
    if args.section == "record-gpu":
        record_gpu(args.path)
        return 0
    if args.section == "child-large":
        print(json.dumps(child_large(*[int(v) for v in args.path.split(",")])))
        return 0
    if args.section == "record-quality":
        record_quality(json.loads(Path(args.path).read_text()))
        return 0
    {"inference": section_inference, "overhead": section_overhead, "quality": section_quality,
     "large": section_large, "gpu": section_gpu}[args.section](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
