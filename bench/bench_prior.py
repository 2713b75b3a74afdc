#!/usr/bin/env python
"""Deep Image Prior on the CPU (issue 7), written to the "Deep Image Prior (CPU)" section of BENCHMARKS.md.

    python -m bench.bench_prior               # 2 photos: sigma=25 denoising and x4 super-resolution, 128² crops
    python -m bench.bench_prior --steps 500   # shorter fits (default: the paper's 3000 and 2000); the section says so
    python -m bench.bench_prior --size 192    # bigger crops
    python -m bench.bench_prior --quick       # toy sizes, a small network, 20 steps; prints only, writes nothing
    python -m bench.bench_prior --figure      # docs/dip_restoration.jpg for the README, from a built-in photo
    python -m bench.bench_prior --figure --reuse-fits   # redraw that figure from the last fits

Each fit runs through the front door, ``train.py --config configs/dip_denoise.yaml`` (or
``dip_super_resolution.yaml``: the paper's network and settings) with ``--data.image null --data.clean
<crop>``, so the degraded input is synthesised from the clean crop exactly as a user's synthetic benchmark
would be: Gaussian noise of sigma 25/255 (fixed seed, clipped) or area downsampling by 4. Figures: PSNR
and SSIM of the 8-bit output against the clean crop, the best evaluated step (DIP's output is kept at its
best PSNR, an oracle stopping point, as in the paper's figures) and the last one, the fit time and the
wall time of the whole train.py run. Baselines in the same run, on the very same degraded inputs: a
Gaussian blur (kornia) with the best of a few sigmas (also chosen with the ground truth) for denoising,
bicubic upsampling for super-resolution.
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import kornia.filters
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF

from bench._report import machine, today, update_section
from texnets.cli import markdown_table
from texnets.images import load_image, save_image, save_json
from texnets.quality import psnr_ssim, quantize
from texnets.tasks.prior import DeepImagePriorDataModule

REPO = Path(__file__).resolve().parents[1]

CONTENT = REPO.parent / "shared" / "data" / "content"
PHOTOS = ("kodim03.png", "kodim08.png")      # Kodak: caps (smooth areas), a building facade (fine detail)
FALLBACK = ("builtin:coffee", "builtin:astronaut")
OUT = REPO / "bench" / "out"
NOISE_SIGMA = 25                             # the paper's denoising experiments: sigma = 25 (denoising.ipynb)
FACTOR = 4                                   # super-resolution.ipynb: factor = 4
PAPER_STEPS = {"denoise": 3000, "super_resolve": 2000}   # denoising.ipynb (F16), super-resolution.ipynb (x4)
CONFIGS = {"denoise": "configs/dip_denoise.yaml", "super_resolve": "configs/dip_super_resolution.yaml"}
BLUR_SIGMAS = (0.5, 0.75, 1.0, 1.5, 2.0)
QUICK_NET = ["--model.generator.levels", "3", "--model.generator.down_channels", "16",
             "--model.generator.up_channels", "16", "--model.generator.input_channels", "8"]


def photo_specs() -> list[str]:
    if all((CONTENT / name).is_file() for name in PHOTOS):
        return [str(CONTENT / name) for name in PHOTOS]
    print(f"(the shared photos are not at {CONTENT}: using built-in images)", file=sys.stderr)
    return list(FALLBACK)


def clean_crop(spec: str, size: int) -> torch.Tensor:
    """The photo with its shorter side resized to 2·size, then its centre size×size crop."""
    return TF.center_crop(load_image(spec, 2 * size), [size, size])


def measure(image: torch.Tensor, clean: torch.Tensor) -> dict:
    psnr, ssim = psnr_ssim(quantize(image), clean)
    return {"psnr": float(psnr[0]), "ssim": float(ssim[0])}


def blur_baseline(noisy: torch.Tensor, clean: torch.Tensor) -> dict:
    """Gaussian blur with the best of BLUR_SIGMAS (chosen with the ground truth)."""
    rows = []
    for sigma in BLUR_SIGMAS:
        kernel = 2 * math.ceil(3 * sigma) + 1
        blurred = kornia.filters.gaussian_blur2d(noisy, (kernel, kernel), (sigma, sigma), border_type="reflect")
        rows.append({"sigma": sigma, **measure(blurred, clean)})
    return max(rows, key=lambda row: row["psnr"])


def bicubic_baseline(low_res: torch.Tensor, clean: torch.Tensor) -> dict:
    upsampled = F.interpolate(low_res, size=tuple(clean.shape[-2:]), mode="bicubic", align_corners=False)
    return measure(upsampled, clean)


def fit(task: str, clean_path: Path, steps: int, runs: Path, run_name: str, quick: bool) -> dict:
    """One DIP fit through train.py, as a user runs it; PSNR figures from its restored.json."""
    command = [sys.executable, "train.py", "--config", CONFIGS[task], "--data.image", "null",
               "--data.clean", str(clean_path), "--data.max_size", "null", "--trainer.max_steps", str(steps),
               "--checkpoint_every", str(steps), "--trainer.enable_progress_bar", "false",
               "--output_dir", str(runs), "--run_name", run_name, "--overwrite", "true"]
    command += ["--data.add_noise_sigma", str(NOISE_SIGMA)] if task == "denoise" else ["--data.factor", str(FACTOR)]
    command += QUICK_NET if quick else []
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"train.py failed ({' '.join(command)}):\n{result.stderr[-3000:]}")
    report = json.loads((runs / run_name / "restored.json").read_text())
    return {"steps": report["steps"], "best": report["best"], "final": report["final"], "input": report["input_psnr"],
            "fit_seconds": report["wall_seconds"], "wall_seconds": round(wall, 1)}


def bench_photo(spec: str, size: int, steps: dict, work: Path, quick: bool) -> dict:
    name = Path(spec).stem if not spec.startswith("builtin:") else spec.split(":", 1)[1]
    clean = clean_crop(spec, size)
    clean_path = save_image(clean, work / f"prior_{name}_{size}_clean.png")
    clean = load_image(clean_path)  # the 8-bit crop every method is measured against
    # The degraded inputs exactly as the data module synthesises them for the DIP runs (same seed).
    noisy = DeepImagePriorDataModule(clean=str(clean_path), add_noise_sigma=NOISE_SIGMA).load("denoise").degraded
    low_res = DeepImagePriorDataModule(clean=str(clean_path), factor=FACTOR).load("super_resolve").degraded
    row = {"photo": spec, "name": name, "size": size}
    row["denoise"] = {"noisy": measure(noisy, clean), "blur": blur_baseline(noisy, clean),
                      "dip": fit("denoise", clean_path, steps["denoise"], work / "runs", f"bench_prior_{name}_denoise",
                                 quick)}
    row["super_resolve"] = {"bicubic": bicubic_baseline(low_res, clean),
                            "dip": fit("super_resolve", clean_path, steps["super_resolve"], work / "runs",
                                       f"bench_prior_{name}_sr{FACTOR}", quick)}
    print(json.dumps(row, indent=1), flush=True)
    return row


def markdown(results: dict) -> str:
    rows = []
    for row in results["photos"]:
        dn, sr = row["denoise"], row["super_resolve"]
        for task, inputs, baseline, dip in (
                (f"denoising, sigma {NOISE_SIGMA}", f"{dn['noisy']['psnr']:.2f}",
                 f"blur sigma {dn['blur']['sigma']}: {dn['blur']['psnr']:.2f} / {dn['blur']['ssim']:.3f}", dn["dip"]),
                (f"super-resolution x{FACTOR}", "–",
                 f"bicubic: {sr['bicubic']['psnr']:.2f} / {sr['bicubic']['ssim']:.3f}", sr["dip"])):
            rows.append([row["name"], task, inputs, baseline,
                         f"**{dip['best']['psnr']:.2f}** / {dip['best']['ssim']:.3f} (step {dip['best']['step']})",
                         f"{dip['final']['psnr']:.2f}", f"{dip['fit_seconds'] / 60:.1f}",
                         f"{dip['wall_seconds'] / 60:.1f}"])
    steps = results["steps"]
    paper = "at the paper's step counts" if steps == PAPER_STEPS else "not the paper's 3000 and 2000 steps"
    network = ("a 3-level, 16-channel network (--quick)" if results.get("quick") else
               "the paper's network (5 levels of 128 channels, 2.2 M parameters) and settings")
    table = markdown_table(["photo", "task", "input PSNR", "baseline PSNR / SSIM", "DIP best PSNR / SSIM",
                            "DIP final PSNR", "fit (min)", "train.py run (min)"], rows)
    return f"""## Deep Image Prior (CPU)

`{results['command']}` on {machine()}, {today()}.

Centre {results['size']}² crops of {', '.join(f"`content/{Path(r['photo']).name}`" for r in results['photos'])}
(shorter side first resized to {2 * results['size']} px). Each fit is `train.py` with `configs/dip_denoise.yaml`
({steps['denoise']} steps) or `configs/dip_super_resolution.yaml` ({steps['super_resolve']} steps): {network},
{paper}. The degraded inputs are synthesised from the clean crop: Gaussian noise of sigma {NOISE_SIGMA}/255
(fixed seed, clipped to [0, 1]) or area downsampling by {FACTOR}. PSNR (dB) / SSIM of the 8-bit outputs
against the clean crop. DIP keeps its best output among evaluations every 10 steps, chosen with the ground
truth (an oracle stopping point, as in the paper's figures); "final" is the last step's. The baselines run
on the very same inputs: a Gaussian blur (kornia) with the best sigma of {', '.join(map(str, BLUR_SIGMAS))}
(also chosen with the ground truth), and bicubic upsampling.

{table}
"""


def readme_figure(spec: str, size: int, steps: int, refit: bool = True) -> Path:
    """docs/dip_restoration.jpg: denoising and x4 super-resolution of a built-in photo (a committed figure
    must not reproduce a ../shared image), each row input | baseline | DIP | clean, labelled with PSNR."""
    from texnets.images import labelled_grid
    name = spec.split(":", 1)[1]
    clean = clean_crop(spec, size)
    clean_path = save_image(clean, OUT / f"prior_{name}_{size}_clean.png")
    clean = load_image(clean_path)
    noisy = DeepImagePriorDataModule(clean=str(clean_path), add_noise_sigma=NOISE_SIGMA).load("denoise").degraded
    low_res = DeepImagePriorDataModule(clean=str(clean_path), factor=FACTOR).load("super_resolve").degraded
    sigma = blur_baseline(noisy, clean)["sigma"]
    kernel = 2 * math.ceil(3 * sigma) + 1
    blurred = kornia.filters.gaussian_blur2d(noisy, (kernel, kernel), (sigma, sigma), border_type="reflect")
    bicubic = F.interpolate(low_res, size=tuple(clean.shape[-2:]), mode="bicubic", align_corners=False)
    nearest = F.interpolate(low_res, size=tuple(clean.shape[-2:]), mode="nearest")
    restored = {}
    for task, run in (("denoise", f"figure_{name}_denoise"), ("super_resolve", f"figure_{name}_sr{FACTOR}")):
        if refit or not (OUT / "runs" / run / "restored.png").exists():
            fit(task, clean_path, steps, OUT / "runs", run, quick=False)
        restored[task] = load_image(OUT / "runs" / run / "restored.png")

    def psnr(image):
        return f"{measure(image, clean)['psnr']:.1f} dB"
    images = [noisy, blurred, restored["denoise"], clean, nearest, bicubic, restored["super_resolve"], clean]
    labels = [f"noisy {psnr(noisy)}", f"blur {psnr(blurred)}", f"DIP {psnr(restored['denoise'])}",
              "clean", f"x{FACTOR} input", f"bicubic {psnr(bicubic)}", f"DIP {psnr(restored['super_resolve'])}",
              "clean"]
    target = REPO / "docs" / "dip_restoration.jpg"
    save_image(labelled_grid(images, labels, columns=4), target.with_suffix(".png"))
    from PIL import Image  # JPEG keeps the figure small
    with Image.open(target.with_suffix(".png")) as grid:
        grid.convert("RGB").save(target, quality=90)
    target.with_suffix(".png").unlink()
    print(f"wrote {target.relative_to(REPO)} ({target.stat().st_size / 1024:.0f} KB)")
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, help="steps of every fit (default: 3000 denoising, 2000 super-resolution)")
    parser.add_argument("--size", type=int, default=128, help="crop size in pixels (default 128)")
    parser.add_argument("--quick", action="store_true", help="toy sizes and a small network; prints only")
    parser.add_argument("--figure", action="store_true", help="write docs/dip_restoration.jpg (built-in photo)")
    parser.add_argument("--reuse-fits", action="store_true", help="with --figure: redraw from the last fits")
    args = parser.parse_args()
    if args.figure:
        readme_figure("builtin:chelsea", args.size, args.steps or 1000, refit=not args.reuse_fits)
        return 0
    command = " ".join(["python -m bench.bench_prior", *sys.argv[1:]])
    if args.quick:  # everything in a temporary folder; the section is printed, not written
        steps = {task: args.steps or 20 for task in PAPER_STEPS}
        with tempfile.TemporaryDirectory() as folder:
            results = {"command": command, "size": 32, "steps": steps, "quick": True,
                       "photos": [bench_photo(spec, 32, steps, Path(folder), quick=True) for spec in photo_specs()]}
        print(markdown(results))
        return 0
    steps = {task: args.steps or default for task, default in PAPER_STEPS.items()}
    OUT.mkdir(parents=True, exist_ok=True)
    results = {"command": command, "size": args.size, "steps": steps, "machine": machine(), "date": today(),
               "photos": [bench_photo(spec, args.size, steps, OUT, quick=False) for spec in photo_specs()]}
    save_json(results, OUT / "prior_results.json")
    update_section("prior-cpu", markdown(results))
    print("updated BENCHMARKS.md (prior-cpu)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
