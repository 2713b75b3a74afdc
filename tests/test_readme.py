"""The README as a test: every command in its code blocks runs, as written plus small size overrides,
from a clean copy of the repository with ``../shared`` beside it, and exits 0 (or, where it needs data
that is not here, gives its one expected ``error:`` line).

``COMMANDS`` holds one entry per command, keyed by the command's text as the README has it (continuation
lines joined, the trailing comment dropped). A new README command without an entry fails
``test_every_readme_command_has_an_entry``, and so does an entry whose command left the README: the table
and the README cannot drift apart. The end-to-end runs are marked slow (about 40 processes, each of which
imports torch); ``make test`` leaves them out and CI runs them (``make test-all``).
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import free_port, make_studio_runs, served_studio
from texnets.images import load_image, resize, save_image
from texnets.video import write_video

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SHARED = REPO.parent / "shared"


def strip_comment(line: str) -> str:
    """The line without a shell comment (a ``#`` outside quotes that starts a word)."""
    quote = None
    for index, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index]
    return line


def readme_blocks(text: str, languages: tuple[str, ...]) -> list[str]:
    return [match.group(2) for match in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M)
            if match.group(1) in languages]


def readme_commands(text: str) -> list[str]:
    """Each shell command of the README's bash blocks, continuation lines joined, whitespace collapsed."""
    commands = []
    for block in readme_blocks(text, ("bash", "sh", "shell")):
        pending = ""
        for raw in block.splitlines():
            line = strip_comment(raw).rstrip()
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            command = " ".join((pending + line).split())
            pending = ""
            if command and command not in commands:  # the quick start repeats two commands later on
                commands.append(command)
    return commands


@dataclass(frozen=True)
class Run:
    """How the test runs one README command.

    extra: arguments appended to the command (later flags override the README's: sizes and steps a test
        can afford); needs: files the command reads, made in the clean folder first (path -> kind, see
        ``prepare``); creates: files the command must have written; error: the one ``error:`` line expected
        instead of success (a substring of it); env: extra environment variables; serves: the command is a server
        (app.py): it runs on a free port until its page answers and lists the runs, then gets Ctrl-C.
    """

    extra: str = ""
    needs: dict = field(default_factory=dict)
    creates: tuple[str, ...] = ()
    error: str | None = None
    env: dict = field(default_factory=dict)
    serves: bool = False


TRAIN_TINY = "--trainer.max_steps 2 --trainer.enable_progress_bar false --trainer.num_sanity_val_steps 0"
TRANSFER_TINY = (f"{TRAIN_TINY} --data.size 32 --model.style_size 64 --data.num_workers 0 --data.val_images 2 "
                 "--trainer.accelerator cpu --trainer.precision 32-true --model.channels_last false "
                 "--model.generator.width 0.25")
SOLID_TINY = (f"{TRAIN_TINY} --model.generator.scales 3 --data.slice_size 16 --data.slices_per_axis 1 "
              "--data.exemplar_size 32 --data.val_size 16 --trainer.accelerator cpu")
DIP_TINY = f"{TRAIN_TINY} --model.generator.levels 2 --model.generator.down_channels 8 --model.generator.up_channels 8"
OPTIMIZE_TINY = "--size 32 --steps 2"
STARRY = "checkpoints/starry"
ARBITRARY_TINY = (f"{TRAIN_TINY} --data.size 32 --data.load_size 48 --data.batch_size 2 --data.num_workers 0 "
                  "--data.val_images 1 --trainer.accelerator cpu --model.channels_last false --model.generator.width 0.125")
ADAIN, WCT = "checkpoints/adain_cpu", "checkpoints/wct_cpu"
MULTISTYLE_TINY = (f"{TRAIN_TINY} --data.size 32 --model.style_size 48 --data.val_images 1 --model.generator.width "
                   "0.25")   # the width of conftest's multistyle run, which the extend command starts from
MULTISTYLE = "checkpoints/multistyle_cpu"
SR_TINY = (f"{TRAIN_TINY} --data.size 32 --data.val_size 32 --data.val_images 1 --model.generator.channels 8 "
           "--model.generator.residual_blocks 1")
SR = "checkpoints/sr_cpu"

COMMANDS: dict[str, Run] = {
    # Quick start. make's recipes are checked with -n (they are the quick-start commands below, run here on
    # their own); `make test` is this very suite.
    "make demo": Run(),
    "make test": Run(),
    "python3 -m venv .venv && . .venv/bin/activate": Run(creates=(".venv/bin/python",)),
    # --dry-run: resolve against the pins without reinstalling the running environment
    "pip install -r requirements.txt": Run(extra="--dry-run"),
    'pip install -e ".[dev]"': Run(extra="--dry-run"),
    "python train.py --config configs/quickstart.yaml": Run(
        extra=f"{TRAIN_TINY} --data.size 32", creates=("checkpoints/quickstart/last.ckpt",)),
    "python synthesize.py --checkpoint checkpoints/quickstart/last.ckpt --size 512 512 --output outputs/quickstart.png":
        Run(extra="--size 64 64", needs={"checkpoints/quickstart": "texture_run"},
            creates=("outputs/quickstart.png", "outputs/quickstart.json")),
    "python -m pytest": Run(extra="--collect-only -q tests/test_images.py"),
    # The studio (app.py): served on a free port until it answers, then stopped
    'pip install ".[studio]"': Run(extra="--dry-run"),
    "python app.py": Run(needs={"checkpoints": "studio_runs"}, serves=True),
    "python app.py --checkpoints runs/ --port 8080 --max-megapixels 20": Run(needs={"runs": "studio_runs"}, serves=True),
    "python -m pytest tests/test_studio_browser.py": Run(extra="--collect-only -q"),
    # Optimisation baselines
    "python optimize.py texture --style ../shared/data/textures/pebbles.jpg --size 256 --output out/pebbles.png":
        Run(extra=OPTIMIZE_TINY, creates=("out/pebbles.png", "out/pebbles.json")),
    "python optimize.py style --content builtin:coffee --style ../shared/data/styles/starry_night.jpg --size 256 "
    "--output out/coffee_starry.png": Run(extra=OPTIMIZE_TINY, creates=("out/coffee_starry.png",)),
    "python optimize.py style --content ../shared/data/content/tubingen.jpg --style "
    "../shared/data/styles/starry_night.jpg --size 512 --scales 3 --preserve-color --output out/tubingen_luminance.png":
        Run(extra="--size 64 --steps 2", creates=("out/tubingen_luminance.png",)),
    "python optimize.py invert --target builtin:astronaut --size 128 --layers relu1_1 relu2_1 relu3_1 relu4_1 relu5_1 "
    "--output out/inversion.png --grid out/inversion_grid.png": Run(extra=OPTIMIZE_TINY,
                                                                    creates=("out/inversion_grid.png",)),
    "python optimize.py texture --style ../shared/data/textures/red_peppers.jpg --size 128 --layers relu1_1 "
    "relu1_1,relu2_1 relu1_1,relu2_1,relu3_1,relu4_1 --loss gram meanvar sw --output out/study.png "
    "--grid out/study_grid.png": Run(extra=OPTIMIZE_TINY, creates=("out/study_grid.png",)),
    "python optimize.py texture --style builtin:brick --size 128 --layers relu1_1,relu2_1,relu3_1 relu1_1,pool1,pool2 "
    "--output out/relu_vs_pool.png --grid out/relu_vs_pool_grid.png": Run(extra=OPTIMIZE_TINY,
                                                                          creates=("out/relu_vs_pool_grid.png",)),
    "python optimize.py style --content builtin:coffee --style ../shared/data/styles/starry_night.jpg "
    "../shared/data/styles/udnie.jpg --style-weights 0.7 0.3 --size 256 --output out/coffee_blend.png": Run(
        extra="--size 48 --steps 2", creates=("out/coffee_blend.png",)),
    "python optimize.py style --content photo.jpg --style ../shared/data/styles/starry_night.jpg "
    "../shared/data/styles/udnie.jpg --mask sky.png ground.png --output out/photo_regions.png": Run(
        extra="--steps 2", needs={"photo.jpg": "photo", "sky.png": "mask", "ground.png": "inverse_mask"},
        creates=("out/photo_regions.png",)),
    "python optimize.py dream --content builtin:coffee --style ../shared/data/styles/starry_night.jpg --size 256 "
    "--output out/coffee_dream.png": Run(extra="--size 48 --steps 2", creates=("out/coffee_dream.png",)),
    "python optimize.py dream --content builtin:chelsea --mode maximise --layers relu4_2 --size 256 "
    "--output out/cat_dream.png": Run(extra="--size 48 --steps 1 --octaves 2", creates=("out/cat_dream.png",)),
    "python optimize.py study --list": Run(),
    "python optimize.py study inversion-depth --output out/inversion-depth": Run(
        extra="--size 32 --steps 2", creates=("out/inversion-depth/grid.png", "out/inversion-depth/study.json")),
    "python optimize.py study texture-depth --style ../shared/data/textures/red_peppers.jpg --output "
    "out/texture-depth": Run(extra="--size 32 --steps 1", creates=("out/texture-depth/grid.png",)),
    # Texture networks
    "tensorboard --logdir checkpoints": Run(extra="--inspect", needs={"checkpoints/quickstart": "texture_run"}),
    # Transfer networks
    "python train.py --config configs/starry.yaml --data.folder /data/coco/train2014": Run(
        error="content folder not found: /data/coco/train2014"),
    "python train.py --config configs/starry.yaml --model.style ../shared/data/styles/starry_night.jpg "
    "--data.folder ../shared/data/content": Run(extra=TRANSFER_TINY, creates=(f"{STARRY}/last.ckpt",)),
    "python train.py --config configs/starry.yaml --config configs/starry_cpu.yaml --model.style "
    "../shared/data/styles/starry_night.jpg --data.folder ../shared/data/content": Run(
        extra=TRANSFER_TINY, creates=("checkpoints/starry_cpu/last.ckpt",)),
    "python synthesize.py --checkpoint checkpoints/starry/last.ckpt --input photo.jpg --output outputs/photo.jpg": Run(
        needs={STARRY: "transfer_run", "photo.jpg": "photo"}, creates=("outputs/photo.jpg",)),
    "python synthesize.py --checkpoint checkpoints/starry/last.ckpt --input photos/ --output outputs/photos/": Run(
        needs={STARRY: "transfer_run", "photos": "photos"}, creates=("outputs/photos/a.jpg", "outputs/photos/b.png")),
    "python synthesize.py --checkpoint checkpoints/starry/last.ckpt --input photos/ --output outputs/photos_fast/ "
    "--backend compile": Run(needs={STARRY: "transfer_run", "photos": "photos"},
                             creates=("outputs/photos_fast/a.jpg", "outputs/photos_fast/b.png")),
    # The README's GPU command, run on the CPU: bf16 autocast and torch.compile work there too, only slower.
    "python synthesize.py --checkpoint checkpoints/starry/last.ckpt --input clip.mp4 --output outputs/clip.mp4 "
    "--precision bf16 --channels-last --compile": Run(
        needs={STARRY: "transfer_run", "clip.mp4": "clip"}, creates=("outputs/clip.mp4",)),
    # --block 48: the 96 px photo is stylised in tiles, as a huge one would be
    "python synthesize.py --checkpoint checkpoints/starry/last.ckpt --input huge.jpg --preserve-color --max-size 8000":
        Run(extra="--block 48", needs={STARRY: "transfer_run", "huge.jpg": "photo"},
            creates=("outputs/huge_starry.jpg",)),
    "python synthesize.py --checkpoint checkpoints/starry/last.ckpt --export exports/starry": Run(
        needs={STARRY: "transfer_run"}, creates=("exports/starry/report.json",)),
    # Flicker-free video
    "python evaluate.py video --input clip.mp4 --stylised outputs/clip.mp4 --output outputs/clip_temporal.json": Run(
        needs={"clip.mp4": "clip", "outputs/clip.mp4": "clip"},
        creates=("outputs/clip_temporal.json", "outputs/clip_temporal.md")),
    "python synthesize.py --checkpoint checkpoints/starry/last.ckpt --input clip.mp4 --output outputs/clip_blend.mp4 "
    "--temporal blend --temporal-strength 0.5": Run(
        needs={STARRY: "transfer_run", "clip.mp4": "clip"}, creates=("outputs/clip_blend.mp4", "outputs/clip_blend.json")),
    "python train.py --config configs/starry.yaml --config configs/starry_cpu.yaml --model.style "
    "../shared/data/styles/starry_night.jpg --data.folder ../shared/data/content --model.temporal_weight 1e6 "
    "--run_name starry_temporal": Run(extra=TRANSFER_TINY, creates=("checkpoints/starry_temporal/last.ckpt",)),
    # Many styles in one network
    "python train.py --config configs/multistyle_dumoulin2017.yaml --data.folder /data/coco/train2014": Run(
        error="content folder not found: /data/coco/train2014"),
    'python train.py --config configs/multistyle_dumoulin2017.yaml --config configs/multistyle_cpu.yaml --model.style '
    '"[../shared/data/styles/starry_night.jpg, ../shared/data/styles/composition_vii.jpg, '
    '../shared/data/styles/udnie.jpg, ../shared/data/styles/shipwreck_minotaur.jpg]" --data.folder ../shared/data/content':
        Run(extra=MULTISTYLE_TINY, creates=(f"{MULTISTYLE}/last.ckpt",)),
    "python synthesize.py --checkpoint checkpoints/multistyle_cpu/last.ckpt --list-styles": Run(
        needs={MULTISTYLE: "multistyle_run"}),
    "python synthesize.py --checkpoint checkpoints/multistyle_cpu/last.ckpt --input photo.jpg --style-index 1 "
    "--output outputs/photo_style1.jpg": Run(needs={MULTISTYLE: "multistyle_run", "photo.jpg": "photo"},
                                             creates=("outputs/photo_style1.jpg",)),
    "python synthesize.py --checkpoint checkpoints/multistyle_cpu/last.ckpt --input photo.jpg --mix 0=0.5 1=0.5 "
    "--output outputs/photo_half_half.jpg": Run(needs={MULTISTYLE: "multistyle_run", "photo.jpg": "photo"},
                                                creates=("outputs/photo_half_half.jpg",)),
    "python train.py --config configs/multistyle_dumoulin2017.yaml --config configs/multistyle_cpu.yaml "
    '--model.extend checkpoints/multistyle_cpu/last.ckpt --model.style "[../shared/data/styles/water_lilies.jpg]" '
    "--data.folder ../shared/data/content --trainer.max_steps 1000 --run_name multistyle_plus": Run(
        extra=MULTISTYLE_TINY, needs={MULTISTYLE: "multistyle_run"}, creates=("checkpoints/multistyle_plus/last.ckpt",)),
    # Super-resolution
    "python train.py --config configs/sr_johnson2016.yaml --data.folder /data/coco/train2014": Run(
        error="content folder not found: /data/coco/train2014"),
    "python train.py --config configs/sr_johnson2016.yaml --config configs/sr_cpu.yaml --data.folder "
    "../shared/data/content": Run(extra=SR_TINY, creates=(f"{SR}/last.ckpt",)),
    "python train.py --config configs/sr_johnson2016.yaml --config configs/sr_cpu.yaml --data.folder "
    "../shared/data/content --model.loss pixel --run_name sr_cpu_pixel": Run(
        extra=SR_TINY, creates=("checkpoints/sr_cpu_pixel/last.ckpt",)),
    "python synthesize.py --checkpoint checkpoints/sr_cpu/last.ckpt --input small.png --output outputs/large.png": Run(
        needs={SR: "sr_run", "small.png": "small_photo"}, creates=("outputs/large.png",)),
    "python evaluate.py sr --held-aside --checkpoint checkpoints/sr_cpu/last.ckpt checkpoints/sr_cpu_pixel/last.ckpt "
    "--methods bicubic dip --size 192 --output outputs/sr.png": Run(
        extra="--size 32 --dip-steps 1 --lpips-random-backbone",
        needs={SR: "sr_run", "checkpoints/sr_cpu_pixel": "sr_run"}, creates=("outputs/sr.png", "outputs/sr.md")),
    # Arbitrary-style networks
    "python train.py --config configs/adain_huang2017.yaml --data.content /data/coco/train2014 --data.styles "
    "/data/wikiart/train": Run(error="content folder not found: /data/coco/train2014"),
    "python train.py --config configs/adain_huang2017.yaml --data.content ../shared/data/content --data.styles "
    "../shared/data/styles": Run(extra=ARBITRARY_TINY, creates=("checkpoints/adain_huang2017/last.ckpt",)),
    "python train.py --config configs/adain_huang2017.yaml --config configs/adain_cpu.yaml --data.content "
    '../shared/data/content --data.styles "[../shared/data/styles, ../shared/data/textures]"': Run(
        extra=ARBITRARY_TINY, creates=("checkpoints/adain_cpu/last.ckpt",)),
    "python train.py --config configs/wct_li2017.yaml --data.content ../shared/data/content": Run(
        extra=ARBITRARY_TINY, creates=("checkpoints/wct_li2017/last.ckpt",)),
    "python train.py --config configs/wct_li2017.yaml --config configs/wct_cpu.yaml --data.content "
    "../shared/data/content": Run(extra=ARBITRARY_TINY, creates=("checkpoints/wct_cpu/last.ckpt",)),
    "python synthesize.py --checkpoint checkpoints/adain_cpu/last.ckpt --input photo.jpg --style "
    "../shared/data/styles/udnie.jpg": Run(needs={ADAIN: "adain_run", "photo.jpg": "photo"},
                                           creates=("outputs/photo_adain_cpu.jpg",)),
    "python synthesize.py --checkpoint checkpoints/adain_cpu/last.ckpt --input photo.jpg --style "
    "../shared/data/styles/udnie.jpg --alpha 0.6 --preserve-color --output outputs/photo_soft.jpg": Run(
        needs={ADAIN: "adain_run", "photo.jpg": "photo"}, creates=("outputs/photo_soft.jpg",)),
    "python synthesize.py --checkpoint checkpoints/wct_cpu/last.ckpt --input photo.jpg --output outputs/photo_mix.jpg "
    "--style ../shared/data/styles/udnie.jpg ../shared/data/styles/starry_night.jpg --style-weights 0.7 0.3": Run(
        needs={WCT: "wct_run", "photo.jpg": "photo"}, creates=("outputs/photo_mix.jpg",)),
    "python synthesize.py --checkpoint checkpoints/adain_cpu/last.ckpt --input photo.jpg --style a.jpg b.jpg "
    "--mask sky.png ground.png --output outputs/photo_regions.jpg": Run(
        needs={ADAIN: "adain_run", "photo.jpg": "photo", "a.jpg": "photo", "b.jpg": "small_photo",
               "sky.png": "mask", "ground.png": "mask"}, creates=("outputs/photo_regions.jpg",)),
    "python synthesize.py --checkpoint checkpoints/adain_cpu/last.ckpt --input clip.mp4 --style "
    "../shared/data/styles/udnie.jpg --output outputs/clip_udnie.mp4": Run(
        needs={ADAIN: "adain_run", "clip.mp4": "clip"}, creates=("outputs/clip_udnie.mp4",)),
    "python synthesize.py --checkpoint checkpoints/wct_cpu/last.ckpt --style ../shared/data/textures/pebbles.jpg "
    "--size 512 512": Run(extra="--size 48 48", needs={WCT: "wct_run"}, creates=("outputs/wct_cpu_texture.png",)),
    "python synthesize.py --checkpoint checkpoints/adain_cpu/last.ckpt --export exports/adain": Run(
        needs={ADAIN: "adain_run"}, creates=("exports/adain/report.json", "exports/adain/generator.torchscript.pt")),
    "python evaluate.py compare --style ../shared/data/styles/composition_vii.jpg --content "
    "../shared/data/content/amber_door.jpg --checkpoint checkpoints/adain_cpu/last.ckpt checkpoints/wct_cpu/last.ckpt "
    "--size 192 --output outputs/compare_arbitrary.png": Run(
        extra="--size 32 --steps 2", needs={ADAIN: "adain_run", WCT: "wct_run"},
        creates=("outputs/compare_arbitrary.png", "outputs/compare_arbitrary.json")),
    # Solid textures
    'python train.py --config configs/solid_cpu.yaml --data.exemplars "[../shared/data/solid/brown016.png]"': Run(
        extra=SOLID_TINY, creates=("checkpoints/solid_cpu/last.ckpt",)),
    'python train.py --config configs/solid_cpu.yaml --data.axes "[x, z]" --run_name solid_xz --data.exemplars '
    '"[../shared/data/solid/brick_wall.png, ../shared/data/solid/cobblestone.png]"': Run(
        extra=SOLID_TINY, creates=("checkpoints/solid_xz/last.ckpt",)),
    'python train.py --config configs/solid_gutierrez2020.yaml --data.exemplars "[../shared/data/solid/brown016.png]"':
        Run(extra=SOLID_TINY, creates=("checkpoints/solid_gutierrez2020/last.ckpt",)),
    "python synthesize.py --checkpoint checkpoints/solid_cpu/last.ckpt --size 256 256 256 --output outputs/solid.npy":
        Run(extra="--size 16 16 16", needs={"checkpoints/solid_cpu": "solid_run"},
            creates=("outputs/solid.npy", "outputs/solid_slices.png")),
    "python synthesize.py --checkpoint checkpoints/solid_cpu/last.ckpt --size 64 --origin 5000 -300 12 --seed 7": Run(
        extra="--size 16", needs={"checkpoints/solid_cpu": "solid_run"}, creates=("outputs/solid_cpu.npy",)),
    # Deep Image Prior
    "python train.py --config configs/dip_denoise.yaml --data.image noisy.png --data.clean clean.png": Run(
        extra=DIP_TINY, needs={"noisy.png": "photo", "clean.png": "photo"},
        creates=("checkpoints/dip_denoise/restored.png",)),
    "python train.py --config configs/dip_super_resolution.yaml --data.image small.png": Run(
        extra=DIP_TINY, needs={"small.png": "small_photo"}, creates=("checkpoints/dip_super_resolution/restored.png",)),
    "python train.py --config configs/dip_inpaint.yaml --data.image photo.png --data.mask mask.png": Run(
        extra=DIP_TINY, needs={"photo.png": "photo", "mask.png": "mask"},
        creates=("checkpoints/dip_inpaint/restored.png",)),
    "python train.py --config configs/dip_denoise.yaml --data.image null --run_name dip_denoise_kodim03 --data.clean "
    "../shared/data/content/kodim03.png --data.add_noise_sigma 25": Run(
        extra=f"{DIP_TINY} --data.max_size 48", creates=("checkpoints/dip_denoise_kodim03/restored.png",)),
    # Style-guided diffusion: the Stable Diffusion weights are not here (HF_HUB_OFFLINE: never a 4 GB download)
    'pip install ".[diffusion]"': Run(extra="--dry-run"),
    'python diffuse.py guided --model stable-diffusion-v1-5/stable-diffusion-v1-5 --prompt "a lighthouse on a cliff" '
    "--style ../shared/data/styles/starry_night.jpg --guidance-scale 0.3 --steps 50 --output outputs/lighthouse.png "
    "--intermediates outputs/lighthouse_steps": Run(error="it is not in the Hugging Face cache",
                                                    env={"HF_HUB_OFFLINE": "1"}),
    'python diffuse.py compare --model stable-diffusion-v1-5/stable-diffusion-v1-5 --prompt "a lighthouse on a cliff" '
    '--style ../shared/data/styles/starry_night.jpg --style-prompt "in the style of Van Gogh\'s The Starry Night" '
    "--output outputs/lighthouse_compare.png": Run(error="it is not in the Hugging Face cache",
                                                   env={"HF_HUB_OFFLINE": "1"}),
    # Evaluation
    "python train.py --config configs/texture_cpu.yaml --data.exemplar ../shared/data/textures/pebbles.jpg "
    "--run_name pebbles": Run(extra=f"{TRAIN_TINY} --data.size 32 --data.exemplar_size 64",
                              creates=("checkpoints/pebbles/last.ckpt",)),
    "python synthesize.py --checkpoint checkpoints/pebbles/last.ckpt --size 128 128 --count 16 "
    "--output outputs/samples/pebbles.png": Run(
        extra="--size 32 32 --count 3", needs={"checkpoints/pebbles": "texture_run"},
        creates=("outputs/samples/pebbles_000.png", "outputs/samples/pebbles_002.png")),
    "python evaluate.py --generated outputs/samples/ --reference ../shared/data/textures/pebbles.jpg "
    "--output outputs/eval.json": Run(extra="--size 48 --fid-size 64 --diversity-samples 3",
                                      needs={"outputs/samples": "samples"}, creates=("outputs/eval.json",)),
    "python evaluate.py compare --style ../shared/data/textures/pebbles.jpg --checkpoint checkpoints/pebbles/last.ckpt "
    "--size 128 --methods gram meanvar sw --output outputs/compare.png": Run(
        extra="--size 32 --steps 2 --samples 2", needs={"checkpoints/pebbles": "texture_run"},
        creates=("outputs/compare.png",)),
    "python evaluate.py compare --style ../shared/data/styles/starry_night.jpg --checkpoint checkpoints/starry/last.ckpt "
    "--content builtin:astronaut builtin:coffee builtin:chelsea --size 256 --output outputs/compare_transfer.png": Run(
        extra="--size 32 --steps 2", needs={STARRY: "transfer_run"}, creates=("outputs/compare_transfer.png",)),
    "python evaluate.py compare --style ../shared/data/textures/pebbles.jpg --checkpoint "
    "bench/out/evaluate_pebbles/last.ckpt --methods gram meanvar sw --size 128 --samples 4 --steps 200 "
    "--output bench/out/compare_pebbles.png --hide-exemplar": Run(
        extra="--size 32 --steps 2 --samples 2", needs={"bench/out/evaluate_pebbles": "texture_run"},
        creates=("bench/out/compare_pebbles.png",)),
}


def test_every_readme_command_has_an_entry():
    commands = readme_commands(README.read_text())
    missing = [command for command in commands if command not in COMMANDS]
    stale = [command for command in COMMANDS if command not in commands]
    assert not missing, "README commands with no entry in tests/test_readme.py COMMANDS:\n" + "\n".join(missing)
    assert not stale, "COMMANDS entries no longer in the README:\n" + "\n".join(stale)


def test_the_command_parser():
    text = "```bash\npython a.py --x 1 \\\n    --y '#not a comment'   # a comment\n# only a comment\nls\n```\n" \
           "```python\nprint(1)\n```\n```bash\nls\n```\n"
    assert readme_commands(text) == ["python a.py --x 1 --y '#not a comment'", "ls"]


# --------------------------------------------------------------------------------------------------
# Running them


def clean_checkout(target: Path) -> Path:
    """The repository's tracked files (a fresh clone's), copied to ``target/repo``, with ``target/shared``
    pointing at the real ../shared, so the README's relative paths mean what they mean in a checkout."""
    repo = target / "repo"
    try:
        files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
        paths = [REPO / name for name in files.decode().split("\0") if name]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: the source folders themselves
        paths = [path for path in REPO.rglob("*") if path.is_file() and not
                 {".venv", ".git", "checkpoints", "outputs", "out", "bench/out"} & set(path.relative_to(REPO).parts)]
    for path in paths:
        if path.is_file():  # a file deleted but not yet committed is skipped
            destination = repo / path.relative_to(REPO)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)
    if SHARED.is_dir():
        (target / "shared").symlink_to(SHARED)
    return repo


def write_photo(path: Path, size: tuple[int, int], name: str = "builtin:astronaut") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(resize(load_image(name), size), path)


def prepare(repo: Path, needs: dict, runs: dict) -> None:
    """Make each file or folder a command reads, at the path the README gives it."""
    for relative, kind in needs.items():
        path = repo / relative
        if kind.endswith("_run"):
            run_dir = runs[kind[:-len("_run")]]
            if run_dir is None:
                pytest.skip(f"needs a {kind} (trained on ../shared/data, which is not here)")
            shutil.copytree(run_dir, path)
        elif kind == "photo":
            write_photo(path, (80, 96))
        elif kind == "small_photo":
            write_photo(path, (24, 32))
        elif kind == "photos":
            write_photo(path / "a.jpg", (48, 64))
            write_photo(path / "b.png", (40, 40), "builtin:coffee")
        elif kind in ("mask", "inverse_mask"):
            mask = np.full((80, 96), 255, np.uint8)
            mask[30:50, 40:60] = 0  # black = missing, to be inpainted (or, as a style mask, outside the region)
            Image.fromarray(255 - mask if kind == "inverse_mask" else mask).save(path)
        elif kind == "clip":
            frames = resize(load_image("builtin:astronaut"), (48, 64))
            batches = [torch.roll(frames, shift, dims=-1) for shift in range(0, 12, 3)]
            write_video(path, iter(batches), 8, progress=False)
        elif kind == "studio_runs":
            make_studio_runs(path)
        elif kind == "samples":
            for index, name in enumerate(("builtin:brick", "builtin:gravel", "builtin:grass")):
                write_photo(path / f"sample_{index}.png", (48, 48), name)
        else:
            raise ValueError(kind)


def run_command(command: str, entry: Run, tmp_path: Path, runs: dict) -> subprocess.CompletedProcess:
    if "../shared/" in command and not SHARED.is_dir():
        pytest.skip(f"needs ../shared/data, which is not at {SHARED}")
    repo = clean_checkout(tmp_path)
    prepare(repo, entry.needs, runs)
    env = {**os.environ, **entry.env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for name in ("VIRTUAL_ENV", "MAKELEVEL", "MAKEFLAGS", "MFLAGS"):  # as a user's shell: not inside `make test`
        env.pop(name, None)
    script = f"{command} {entry.extra}".strip()
    if command.startswith("make "):  # what make would run, with the environment taken as built (-o: up to date)
        script = f"make --no-print-directory -n -o .venv/.installed {command.split()[1]}"
    return subprocess.run(["bash", "-c", script], cwd=repo, env=env, capture_output=True, text=True, timeout=600)


def serve_command(command: str, entry: Run, tmp_path: Path, runs: dict) -> tuple[int, str]:
    """Start a server command (app.py) on a free port in a clean checkout; once its page answers and its config
    lists the runs, send Ctrl-C. Returns (exit status, stderr)."""
    repo = clean_checkout(tmp_path)
    prepare(repo, entry.needs, runs)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    port = free_port()
    log = tmp_path / "server.log"
    with open(log, "w") as stderr:
        server = subprocess.Popen(["bash", "-c", f"exec {command} {entry.extra} --port {port}"], cwd=repo, env=env,
                                  stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            deadline, config = time.monotonic() + 180, None
            while time.monotonic() < deadline and server.poll() is None and config is None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=5) as response:
                        config = response.read().decode()
                except OSError:
                    time.sleep(0.5)
            assert config is not None, f"{command}: no page on port {port}\n{log.read_text()[-3000:]}"
            assert all(name in config for name in ("starry", "pebbles", "marble")), config[:2000]
            server.send_signal(signal.SIGINT)
            server.wait(timeout=60)
        finally:
            if server.poll() is None:
                server.kill()
    return server.returncode, log.read_text()


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def make_recipe_is_tested(output: str) -> None:
    """Each line make would run is a README command of this table (flags after it aside) or pytest."""
    for line in output.splitlines():
        command = line.replace(".venv/bin/python", "python")
        assert any(command.startswith(known) for known in COMMANDS) or command.startswith("python -m pytest"), line


@pytest.mark.slow
@pytest.mark.parametrize("command", list(COMMANDS), ids=lambda command: command[:70])
def test_readme_command(command, trained_runs, tmp_path):
    entry = COMMANDS[command]
    if entry.serves:
        code, stderr = serve_command(command, entry, tmp_path, trained_runs)
        assert "Traceback" not in stderr and code in (0, 130), stderr[-3000:]
        return
    result = run_command(command, entry, tmp_path, trained_runs)
    output = f"$ {command} {entry.extra}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr, output
    if entry.error:
        assert result.returncode == 2, output
        lines = error_lines(result.stderr)
        assert len(lines) == 1 and entry.error in lines[0], output
        for opening, closing in ("()", "[]"):  # a whole message, not one cut off inside a bracket
            assert lines[0].count(opening) == lines[0].count(closing), output
        # No wall of text before it: no indented or fenced block, no library advice on a connection retry.
        assert not any(line.startswith((" ", "\t", "`")) or "Couldn't connect" in line
                       for line in result.stderr.splitlines()), output
        return
    assert result.returncode == 0, output
    assert not error_lines(result.stderr), output
    if command.startswith("make "):
        make_recipe_is_tested(result.stdout)
    for relative in entry.creates:
        assert (tmp_path / "repo" / relative).exists(), f"{relative} was not written\n{output}"


@pytest.mark.slow
def test_readme_python_snippets_run(tmp_path):
    """The README's Python blocks run as written, in a fresh interpreter."""
    blocks = readme_blocks(README.read_text(), ("python",))
    assert blocks
    for block in blocks:
        with studio_for(block, tmp_path):
            result = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True,
                                    timeout=300)
        assert result.returncode == 0, f"{block}\n{result.stderr[-3000:]}"


@contextlib.contextmanager
def studio_for(block: str, tmp_path: Path):
    """For a snippet that calls the studio's API: the app at the address the README gives (port 7860), serving tiny
    runs that include the README's ``quickstart`` and ``sr_cpu``, and the ``small.png`` it uploads (in the snippet's
    working folder, ``tmp_path``); nothing for other snippets."""
    if "gradio_client" not in block:
        yield
        return
    root = make_studio_runs(tmp_path / "studio_runs")
    shutil.copytree(root / "pebbles", root / "quickstart")
    shutil.copytree(root / "enlarge", root / "sr_cpu")
    save_image(load_image("builtin:astronaut", 32), tmp_path / "small.png")
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 7860)) == 0:
            pytest.skip("port 7860, which the README's API snippet calls, is taken here")
    with served_studio(root, tmp_path, port=7860):
        yield
