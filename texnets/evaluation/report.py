"""Presentation: a figure as text, an evaluation as a markdown table."""
from __future__ import annotations

from texnets.cli import markdown_table
from texnets.evaluation.results import Evaluation


def format_value(value: float | None, std: float | None = None) -> str:
    if value is None:
        return "n/a"
    text = f"{value:.4g}"
    return f"{text} ± {std:.2g}" if std is not None else text


def evaluation_table(evaluation: Evaluation) -> str:
    """One row per figure, with its extractor and image count beside it; then why any standard extractor
    was not used."""
    rows = [[r.name, format_value(r.value, r.std), r.images, r.extractor, r.note] for r in evaluation.results]
    rows += [[metric, "skipped", "", "", reason] for metric, reason in evaluation.skipped.items()]
    notes = [f"\n{metric.upper()}: the standard extractor was not used: {reason}."
             for metric, reason in evaluation.fallbacks.items()]
    return "\n".join([markdown_table(["metric", "value", "images", "extractor", "note"], rows), *notes])


def print_evaluation(evaluation: Evaluation, prefix: str = "") -> None:
    """Each figure with its extractor and image count beside it."""
    for r in evaluation.results:
        note = f"; {r.note}" if r.note and r.metric in ("fid", "kid", "psnr") else ""
        print(f"{prefix}{r.name}: {format_value(r.value, r.std)}  [{r.images}; {r.extractor}{note}]")
    for metric, reason in evaluation.skipped.items():
        print(f"{prefix}{metric}: skipped ({reason})")
