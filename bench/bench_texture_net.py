#!/usr/bin/env python
"""Benchmarks of Texture Networks (issue 3), written to the "Texture networks" section of BENCHMARKS.md.

    python bench/bench_texture_net.py                  # full run: 1000 CPU training steps (over an hour on 2 cores)
    python bench/bench_texture_net.py --steps 200      # shorter training; the section says so
    python bench/bench_texture_net.py --quick          # smoke run at toy sizes, prints only
    python bench/bench_texture_net.py --skip-training  # reuse the last run's checkpoint (re-measure the rest)
    python bench/bench_texture_net.py --resume         # continue an interrupted training run, then measure
    python bench/bench_texture_net.py --skip-training --reuse-baselines   # re-measure samples only

Figures:
  * CPU training: configs/texture_cpu.yaml (128², batch 4) on pebbles.jpg, wall time of train.py;
  * quality: the Gram loss (training criterion: relu1_1..relu5_1, Gram / CHW, max pooling) of 16 fresh
    128² samples, against an optimize.py texture baseline at 128² optimising that same criterion
    (300 L-BFGS steps), run here too. Target: samples within 3x of the baseline;
  * speed-up: optimize.py's time for one 256² texture (300 L-BFGS steps) over the time to sample one
    256² texture from the trained network, same run. Target >= 1000x;
  * sampling scale: time and peak memory for one 256², 1024² and 4096² sample on the CPU (fresh process
    each; 4096² is generated in 1024² tiles with a halo);
  * a side-by-side PNG of exemplar, baseline and samples in bench/out/ (inspection only, not committed).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench._report import machine, peak_rss_mb, run_front_door as run, today, update_section  # noqa: E402
from texnets.checkpoints import load_generator  # noqa: E402
from texnets.images import labelled_grid, load_image, save_image, save_json  # noqa: E402
from texnets.tiling import generate  # noqa: E402

# The training criterion's layers (configs/texture_cpu.yaml). texnets.optim is imported where it is
# used, so the sampling child processes load only torch and the generator.
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")

SHARED = REPO.parent / "shared" / "data"
EXEMPLAR = SHARED / "textures" / "pebbles.jpg"
OUT = REPO / "bench" / "out"
RUN_NAME = "bench_texture_cpu"


def exemplar_spec() -> str:
    return str(EXEMPLAR) if EXEMPLAR.exists() else "builtin:gravel"


def _segment(report: dict) -> dict:
    return {key: report.get(key) for key in ("start_step", "final_step", "seconds", "seconds_per_step", "stopped")}


def train(steps: int, size: int, resume: bool) -> dict:
    """Train with train.py; with ``resume``, continue an interrupted run from its last.ckpt. Every
    segment's fit time is kept, so the total includes any steps an interruption threw away."""
    run_dir = OUT / "runs" / RUN_NAME
    command = ["train.py", "--config", "configs/texture_cpu.yaml", "--data.exemplar", exemplar_spec(),
               "--data.size", str(size), "--data.exemplar_size", str(size), "--trainer.max_steps", str(steps),
               "--trainer.enable_progress_bar", "false", "--output_dir", str(OUT / "runs"), "--run_name", RUN_NAME]
    segments = []
    if resume and (run_dir / "last.ckpt").exists():
        if (run_dir / "report.json").exists():
            segments.append(_segment(json.loads((run_dir / "report.json").read_text())))
        command += ["--ckpt_path", str(run_dir / "last.ckpt")]
    else:
        command += ["--overwrite", "true"]
    wall = run(command)
    report = json.loads((run_dir / "report.json").read_text())
    segments.append(_segment(report))
    return {"wall_seconds": wall, "fit_seconds": sum(seg["seconds"] or 0 for seg in segments),
            "seconds_per_step": report["seconds_per_step"], "steps": report["final_step"], "segments": segments}


def baseline(size: int, layers: str, steps: int) -> dict:
    """optimize.py texture, optimising the training criterion (same layers, pooling, Gram normalisation)."""
    output = OUT / f"baseline_{size}.png"
    wall = run(["optimize.py", "texture", "--style", exemplar_spec(), "--size", str(size), "--layers", layers,
                "--pooling", "max", "--gram-normalize", "chw", "--steps", str(steps), "--device", "cpu",
                "--quiet", "--output", str(output)])
    report = json.loads(output.with_suffix(".json").read_text())
    return {"image": output, "wall_seconds": wall, "optimise_seconds": report["wall_seconds"],
            "report_style_loss": report["final_losses"]["style"]}


def gram_losses(images: torch.Tensor, exemplar: torch.Tensor) -> list[dict[str, float]]:
    """The training criterion per image (total and per layer), after 8-bit quantisation (what a PNG holds)."""
    from texnets import optim
    criterion = optim.texture_criterion(exemplar, STYLE_LAYERS, "gram", encoder={"pooling": "max"},
                                        loss_options={"normalize": "chw"})
    values = []
    with torch.no_grad():
        for image in images:
            image = (image.clamp(0, 1) * 255).round().unsqueeze(0) / 255
            _, logs = criterion(image)
            values.append({"total": float(logs["total"]),
                           **{layer: float(logs[f"style/{layer}"]) for layer in STYLE_LAYERS}})
    return values


def summarise(losses: list[dict[str, float]]) -> dict:
    totals = [entry["total"] for entry in losses]
    return {"mean": statistics.mean(totals), "min": min(totals), "max": max(totals),
            "layers": {layer: statistics.mean(entry[layer] for entry in losses) for layer in STYLE_LAYERS}}


def recalibrated_copy(generator, size: int, batch: int = 4, batches: int = 50):
    """The generator with BatchNorm statistics recomputed for its final weights, as train.py now does
    before every checkpoint (TextureTask.bn_recalibration_batches); for checkpoints made without it."""
    import copy

    from texnets.tasks.base import recalibrate_batch_norm
    copy_ = copy.deepcopy(generator)
    noise = torch.Generator().manual_seed(0)
    recalibrate_batch_norm(copy_, (copy_.noise_spec.sample(batch, (size, size), generator=noise)
                                   for _ in range(batches)))
    return copy_.eval()


def sample_seconds(generator, size: int, repeats: int) -> float:
    generate(generator, (size, size), seed=0, samples=[0])  # warm-up
    times = []
    for index in range(repeats):
        start = time.perf_counter()
        generate(generator, (size, size), seed=1, samples=[index])
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def child_sample(checkpoint: str, size: int) -> dict:
    """In a fresh process: one size x size sample (tiled above 1024), its time and this process's peak RSS."""
    generator = load_generator(checkpoint).generator
    before = peak_rss_mb()
    if size <= 1024:
        generate(generator, (size, size), seed=0, samples=[0])  # warm-up, at the same size
    start = time.perf_counter()
    image = generate(generator, (size, size), seed=1, samples=[0], block=1024)
    seconds = time.perf_counter() - start
    assert image.shape[-1] == size
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "rss_before_mb": before}


def sampling_scale(checkpoint: Path, sizes) -> list[dict]:
    rows = []
    for size in sizes:
        out = subprocess.check_output([sys.executable, __file__, "--child-sample", str(checkpoint), str(size)],
                                      cwd=REPO, text=True)
        rows.append({"size": size, **json.loads(out.strip().splitlines()[-1])})
        print(f"sample {size}²: {rows[-1]}", flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000, help="training steps (the issue's run: 1000)")
    parser.add_argument("--quick", action="store_true", help="toy sizes and few steps; do not write BENCHMARKS.md")
    parser.add_argument("--skip-training", action="store_true", help="reuse bench/out/runs/... from the last run")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted training run to --steps")
    parser.add_argument("--reuse-baselines", action="store_true",
                        help="take the optimize.py baselines from bench/out/texture_net_results.json")
    parser.add_argument("--render", action="store_true", help="only rewrite the section from the saved results")
    parser.add_argument("--child-sample", nargs=2, metavar=("CKPT", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_sample:
        print(json.dumps(child_sample(args.child_sample[0], int(args.child_sample[1]))))
        return 0
    if args.render:
        update_section("bench_texture_net", markdown(json.loads((OUT / "texture_net_results.json").read_text()),
                                                     args.steps, 300))
        return 0

    OUT.mkdir(parents=True, exist_ok=True)
    quick = args.quick
    size, speed_size = (64, 64) if quick else (128, 256)
    steps, baseline_steps = (10, 10) if quick else (args.steps, 300)
    scale_sizes = (256, 512) if quick else (256, 1024, 4096)
    results: dict = {"machine": machine(), "date": today(), "exemplar": exemplar_spec()}
    previous_path = OUT / "texture_net_results.json"
    previous = json.loads(previous_path.read_text()) if previous_path.exists() else {}

    threads = os.environ.get("OMP_NUM_THREADS")
    command = " ".join([f"OMP_NUM_THREADS={threads}"] * bool(threads) + ["python bench/bench_texture_net.py", *sys.argv[1:]])
    reusing = args.skip_training or args.reuse_baselines or args.resume
    results["commands"] = (previous.get("commands", []) if reusing else []) + [
        f"{command} (load average {os.getloadavg()[0]:.1f} at start)"]
    if args.skip_training:
        results["training"] = previous.get("training", {"reused": True})
    else:
        results["training"] = train(steps, size, args.resume)
        print(f"training: {results['training']}", flush=True)
    checkpoint = OUT / "runs" / RUN_NAME / "last.ckpt"
    loaded = load_generator(checkpoint)
    generator = loaded.generator
    recalibrated_in_training = bool(torch.load(checkpoint, map_location="cpu", weights_only=True)
                                    .get("hyper_parameters", {}).get("bn_recalibration_batches"))

    exemplar = load_image(exemplar_spec(), size)
    samples = torch.cat([generate(generator, (size, size), seed=123, samples=[i]) for i in range(16)])
    quality = {"samples": summarise(gram_losses(samples, exemplar)), "recalibrated_in_training": recalibrated_in_training}
    if not recalibrated_in_training and any(isinstance(m, torch.nn.BatchNorm2d) for m in generator.modules()):
        fixed = recalibrated_copy(generator, size)
        fixed_samples = torch.cat([generate(fixed, (size, size), seed=123, samples=[i]) for i in range(16)])
        quality["samples_recalibrated"] = summarise(gram_losses(fixed_samples, exemplar))
    base_image = OUT / f"baseline_{size}.png"
    if not (args.reuse_baselines and base_image.exists()):
        base_image = baseline(size, ",".join(STYLE_LAYERS), baseline_steps)["image"]
    quality["baseline"] = summarise(gram_losses(load_image(base_image), exemplar))
    quality["ratio"] = quality["samples"]["mean"] / quality["baseline"]["mean"]
    if "samples_recalibrated" in quality:
        quality["ratio_recalibrated"] = quality["samples_recalibrated"]["mean"] / quality["baseline"]["mean"]
    results["quality"] = quality
    print(f"quality: {json.dumps(quality)}", flush=True)
    grid = labelled_grid([exemplar, load_image(base_image), *samples[:4].clamp(0, 1)],
                         ["exemplar", f"optimize.py ({baseline_steps} L-BFGS)", "sample 1", "sample 2", "sample 3",
                          "sample 4"], cell=size)
    save_image(grid, OUT / "texture_net_side_by_side.png")

    if args.reuse_baselines and "speed" in previous:
        speed = previous["speed"]  # the pair measured together in that run, kept as it was
    else:
        run_ = baseline(speed_size, ",".join(STYLE_LAYERS), baseline_steps)
        one_sample = sample_seconds(generator, speed_size, repeats=10)
        speed = {"baseline_seconds": run_["optimise_seconds"], "baseline_wall_seconds": run_["wall_seconds"],
                 "sample_seconds": one_sample, "ratio": run_["optimise_seconds"] / one_sample, "date": today()}
    results["speed"] = speed
    print(f"speed: {speed}", flush=True)

    results["scale"] = sampling_scale(checkpoint, scale_sizes)
    save_json(results, previous_path)
    if quick:
        return 0
    update_section("bench_texture_net", markdown(results, steps, baseline_steps))
    return 0


def markdown(r: dict, steps: int, baseline_steps: int) -> str:
    t, q, s = r["training"], r["quality"], r["speed"]
    short = "" if t.get("steps", steps) >= 1000 else (
        f"\n**Reduced scale:** this run trained {t.get('steps')} steps, not the issue's 1000.\n")
    if "wall_seconds" not in t:
        training = "reused from an earlier run"
    elif len(t["segments"]) == 1:
        training = (f"{t['wall_seconds'] / 60:.1f} min wall for train.py ({t['fit_seconds'] / 60:.1f} min in `fit`, "
                    f"{t['seconds_per_step']:.2f} s per step)")
    else:
        parts = "; ".join(f"steps {seg['start_step']}→{seg['final_step']} in {seg['seconds'] / 60:.1f} min"
                          + (f" (stopped: {seg['stopped'].split(':')[0]})" if seg["stopped"] else "")
                          for seg in t["segments"])
        training = (f"{t['fit_seconds'] / 60:.1f} min in `fit` over {len(t['segments'])} segments, resumed with "
                    f"`--ckpt_path` from the last checkpoint after an interruption ({parts}; steps after the last "
                    f"checkpoint of an interrupted segment were redone, and their time is included)")
    recal = "samples_recalibrated" in q
    columns = ["samples (as saved)"] + (["samples (BN recalibrated)"] if recal else []) + ["optimize.py baseline"]
    rows = []
    for key in ("total", *STYLE_LAYERS):
        pick = (lambda summary: summary["mean"]) if key == "total" else (lambda summary: summary["layers"][key])
        values = [pick(q["samples"])] + ([pick(q["samples_recalibrated"])] if recal else []) + [pick(q["baseline"])]
        ratios = " / ".join(f"{value / values[-1]:.1f}×" for value in values[:-1])
        rows.append(f"| {'**total**' if key == 'total' else key} | " + " | ".join(f"{v:.4g}" for v in values)
                    + f" | {ratios} |")
    recal_note = ("" if not recal else
                  "\n\"BN recalibrated\": this checkpoint was trained before `TextureTask.bn_recalibration_batches` "
                  "existed, so its BatchNorm running statistics are momentum-0.1 averages that trail the final weights; "
                  "the column recomputes them over 50 fresh batches, as training now does before every checkpoint.\n")
    verdict = "met" if min(q["ratio"], q.get("ratio_recalibrated", q["ratio"])) <= 3 else "**not met**"
    scale_rows = "\n".join(f"| {row['size']}² | {row['seconds'] * 1000:.0f} | {row['peak_rss_mb']:.0f} "
                           f"| {row['rss_before_mb']:.0f} |" for row in r["scale"])
    return f"""## Texture networks

Machine: {r['machine']} · date: {r['date']} · commands, in order:
{chr(10).join(f"- `{c.split(' (load')[0]}` ({c.split(' (')[-1]}" for c in r.get('commands', []))}

One thread (`OMP_NUM_THREADS=1`) when other jobs share the two cores: with two OpenMP threads and a busy
neighbour, steps ran about 5× slower (spin-waiting threads).
{short}
**CPU training**: `configs/texture_cpu.yaml` (6-scale BatchNorm generator of 116,835 parameters, 128², batch 4,
Gram loss on relu1_1–relu5_1 with gradient normalisation, Adam 0.1 ×0.8 every 300 steps) on `pebbles.jpg`,
{t.get('steps')} steps: {training}.

**Quality** (target: samples within 3× of the baseline; {verdict} in this run): the training criterion
(Gram / CHW on relu1_1–relu5_1, max pooling, 8-bit images) of 16 fresh 128² samples, mean, against
`optimize.py texture` at 128² optimising that same criterion for {baseline_steps} L-BFGS steps.
Total {q['samples']['mean']:.4g} (min {q['samples']['min']:.4g}, max {q['samples']['max']:.4g}) against
{q['baseline']['mean']:.4g}.
{recal_note}
| layer | {' | '.join(columns)} | ratio |
|---|{'---|' * len(columns)}---|
{chr(10).join(rows)}

The per-image optimisation fits this one exemplar's statistics directly; the network must produce them for every
noise input and, with gradient normalisation, spreads its effort equally over the layers, while the total is
dominated by relu4_1. Side-by-side image (not committed): `bench/out/texture_net_side_by_side.png`.

**Speed-up** (target ≥ 1000×): `optimize.py texture` needs {s['baseline_seconds']:.0f} s for one 256² texture
({baseline_steps} L-BFGS steps; {s['baseline_wall_seconds']:.0f} s wall with start-up); the trained network samples one
256² texture in {s['sample_seconds'] * 1000:.0f} ms (noise and generator, median of 10): **{s['ratio']:.0f}×**
(both timed in the same run{', ' + s['date'] if s.get('date') else ''}).

**Sampling scale** (one sample, CPU, fresh process each; above 1024² the output is generated in 1024² tiles with a
160 px halo, identical to a one-shot pass; RSS includes the ~0.7 GB that importing this torch build takes):

| size | ms | peak RSS (MB) | RSS before sampling (MB) |
|---|---|---|---|
{scale_rows}

GPU figures: no GPU was lent to the session that produced this section.
"""


if __name__ == "__main__":
    sys.exit(main())
