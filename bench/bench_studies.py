#!/usr/bin/env python
"""Wall time of every named study of ``optimize.py study`` on this machine, written to BENCHMARKS.md; the runs'
grids and reports stay in bench/out/studies/ for ``python docs/make_figures.py studies`` (docs/studies.md).

    python -m bench.bench_studies                    # every study at its defaults (built-in inputs)
    python -m bench.bench_studies --only texture-depth optimizers   # refresh these rows, keep the others
    python -m bench.bench_studies --render-only --note "..."           # rewrite the section from saved runs

Each study runs as a user would run it (``python optimize.py study NAME --output ...``, a fresh process), so
the time includes start-up and decoding the VGG19 weights (about 2 s).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench._report import command_line, machine, publish, run_front_door, today
from texnets.cli import markdown_table
from texnets.images import save_json
from texnets.studies import STUDIES

REPO = Path(__file__).resolve().parents[1]
MODULE = "bench.bench_studies"
OUT = REPO / "bench" / "out" / "studies"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(STUDIES), metavar="STUDY", help="these studies only")
    parser.add_argument("--render-only", action="store_true",
                        help="run nothing: rewrite the section from the runs saved in bench/out/studies")
    parser.add_argument("--note", help="a sentence added to the section (e.g. what else ran on the machine)")
    args = parser.parse_args(argv)
    for name in [] if args.render_only else args.only or STUDIES:
        seconds = run_front_door(["optimize.py", "study", name, "--output", str(OUT / name), "--quiet"])
        save_json({"wall_seconds": seconds, "command": command_line(MODULE), "machine": machine(), "date": today()},
                  OUT / name / "bench.json")
    rows = []
    for name, study in STUDIES.items():  # every study measured so far: --only refreshes some rows, keeps the rest
        if not (OUT / name / "bench.json").is_file():
            continue
        seconds = json.loads((OUT / name / "bench.json").read_text())["wall_seconds"]
        report = json.loads((OUT / name / "study.json").read_text())
        ran = [run for run in report["runs"] if "skipped" not in run]
        stops = sum(1 for run in ran if run.get("threshold_step"))
        diverged = sum(1 for run in ran if run.get("stopped_early"))
        rows.append([f"`{name}`", f"{len(ran)} of {len(study.runs)}", f"{report['size'][1]}x{report['size'][0]}",
                     f"{report['steps']} {study.optimizer}" + (f", {stops} stopped early" if study.stop_fraction else "")
                     + (f", {diverged} diverged" if diverged else ""), f"{seconds:.0f}"])
    lines = ["## Named studies (`optimize.py study`) on the CPU", "",
             f"Command: `{command_line(MODULE)}`; machine: {machine()}; date: {today()}.", "",
             "Each study at its defaults (its built-in input, size and steps), run as `python optimize.py study NAME` "
             "in a fresh process (start-up and weight decoding included). Runs that could not run here (VGG16's "
             "weights offline) are counted out; a run that diverged keeps its last finite image. The grids are in "
             "docs/studies.md.", "",
             markdown_table(["study", "runs", "size", "steps per run", "wall seconds"], rows)]
    publish("bench_studies", lines, args.note, after="bench_optimize")
    return 0


if __name__ == "__main__":
    sys.exit(main())
