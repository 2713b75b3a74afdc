"""Temporal consistency of a stylised video against its input (``evaluate.py video``).

Both clips are streamed frame by frame, so any length fits in memory. For each pair of consecutive frames
the motion is estimated on the *input* clip (backward and forward, ``texnets.flow``), pixels whose motion
fails the forward-backward check are left out, and the warping error (``texnets.temporal.warping_error``) is
taken for the stylised clip and, as its floor, for the input clip itself: what sensor noise, compression and
flow error leave even without stylisation. The ratio of the two says how much the stylisation flickers.
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch

from texnets.cli import markdown_table
from texnets.errors import TexnetsError
from texnets.flow import MIN_FLOW_SIDE, flow_estimator
from texnets.temporal import consistency_mask, warping_error
from texnets.video import VIDEO_SUFFIXES, is_variable_frame_rate, is_video, probe_video, read_frames


def _frames(path, max_size: int | None) -> Iterator[torch.Tensor]:
    for batch in read_frames(path, batch_size=8, max_size=max_size):
        yield from batch.split(1)


def _match_size(stylised: torch.Tensor, size: tuple[int, int], paths) -> torch.Tensor:
    """The stylised frame cropped to the input's size: an encoder pads odd sides by one pixel (yuv420p)."""
    height, width = size
    if stylised.shape[-2:] == (height, width):
        return stylised
    if 0 <= stylised.shape[-2] - height <= 1 and 0 <= stylised.shape[-1] - width <= 1:
        return stylised[..., :height, :width]
    raise TexnetsError(f"{paths[1]} is {stylised.shape[-1]}x{stylised.shape[-2]} but {paths[0]} is {width}x{height}: "
                       "the stylised clip must have the input's frame size")


def evaluate_video(input_path: str | Path, stylised_path: str | Path, flow: str = "dis", max_size: int | None = None,
                   max_frames: int | None = None, device=None) -> dict:
    """Warping error of ``stylised_path`` and of ``input_path`` (the floor) along the input's motion."""
    paths = (Path(input_path), Path(stylised_path))
    for path in paths:
        if not is_video(path):
            raise TexnetsError(f"{path} is not a video ({', '.join(VIDEO_SUFFIXES)}): evaluate.py video compares two clips")
    if max_size is not None and max_size < MIN_FLOW_SIDE:
        raise TexnetsError(f"--max-size must be at least {MIN_FLOW_SIDE}")
    if max_frames is not None and max_frames < 2:
        raise TexnetsError("--max-frames must be at least 2")
    # Frame counts are taken from the decoded streams, not the containers' headers, which can disagree with them.
    infos = [probe_video(path) for path in paths]
    for path in paths:
        if is_variable_frame_rate(path):
            warnings.warn(f"{path} has a variable frame rate: consecutive frames are unevenly spaced in time, so "
                          "the warping error mixes intervals", stacklevel=2)
    estimate = flow_estimator(flow, device)
    start = time.perf_counter()
    errors: dict[str, list[float]] = {"stylised": [], "input": [], "stylised_squared": [], "input_squared": []}
    reliable: list[float] = []
    previous = None
    count = 0
    inputs, stylised_frames = _frames(paths[0], max_size), _frames(paths[1], max_size)
    for frame in inputs:
        styled = next(stylised_frames, None)
        if styled is None:
            raise TexnetsError(f"{paths[1]} ends after {count} frames, before {paths[0]}: the stylised clip must be "
                               "the input, frame for frame")
        styled = _match_size(styled, tuple(frame.shape[-2:]), paths)
        if min(frame.shape[-2:]) < MIN_FLOW_SIDE:
            raise TexnetsError(f"{paths[0]}'s frames are {frame.shape[-1]}x{frame.shape[-2]}: motion needs at least "
                               f"{MIN_FLOW_SIDE} pixels a side")
        count += 1
        if previous is not None and previous[0].shape == frame.shape:
            backward = estimate(frame, previous[0])
            mask = consistency_mask(backward, estimate(previous[0], frame))
            reliable.append(float(mask.mean()))
            if mask.sum() > 0:
                for name, (before, after) in {"input": (previous[0], frame), "stylised": (previous[1], styled)}.items():
                    errors[name].append(float(warping_error(before, after, backward, mask)))
                    errors[f"{name}_squared"].append(float(warping_error(before, after, backward, mask, squared=True)))
        previous = (frame, styled)
        if max_frames is not None and count >= max_frames:
            break
    else:
        if next(stylised_frames, None) is not None:
            raise TexnetsError(f"{paths[1]} has more frames than {paths[0]} ({count}): the stylised clip must be the "
                               "input, frame for frame")
    if count < 2:
        raise TexnetsError(f"{paths[0]} has {count} frame: temporal consistency needs at least 2")
    if not errors["input"]:
        raise TexnetsError("no pair of frames had any pixel with reliable motion: nothing to measure")
    seconds = time.perf_counter() - start
    mean = {name: sum(values) / len(values) for name, values in errors.items()}
    return {"input": str(paths[0]), "stylised": str(paths[1]), "frames": count, "pairs": len(errors["input"]),
            "size": [int(previous[0].shape[-1]), int(previous[0].shape[-2])],
            "warping_error": round(mean["stylised"], 4), "floor": round(mean["input"], 4),
            "ratio": round(mean["stylised"] / mean["input"], 3) if mean["input"] > 0 else None,
            "warping_error_lai": mean["stylised_squared"], "floor_lai": mean["input_squared"],
            "units": "warping_error, floor: mean absolute difference on 0..255 over the pixels visible in both "
                     "frames; *_lai: Lai et al. 2018's mean squared difference on [0, 1]",
            "reliable_pixels": round(sum(reliable) / len(reliable), 4), "flow": estimate.label,
            "fps": float(infos[0].fps) if infos[0].fps else None,
            "evaluated_fps": round(count / seconds, 2), "seconds": round(seconds, 3)}


def video_report(result: dict, command: str) -> str:
    """The markdown report of ``evaluate_video``'s result: the stylised clip against its floor."""
    ratio = f"{result['ratio']}x" if result["ratio"] is not None else "n/a"
    rows = [[f"`{result['stylised']}` (stylised)", f"{result['warping_error']:.3f}",
             f"{result['warping_error_lai']:.3g}", str(result["frames"])],
            [f"`{result['input']}` (input: the floor)", f"{result['floor']:.3f}", f"{result['floor_lai']:.3g}",
             str(result["frames"])]]
    table = markdown_table(["clip", "warping error (0..255)", "Lai et al. E_warp", "frames"], rows)
    return (f"# Temporal consistency\n\nCommand: `{command}` · motion: {result['flow']} · ratio to the floor: "
            f"{ratio}\n\n{table}\n")


def video_summary(result: dict) -> str:
    """One line for the terminal."""
    ratio = f"{result['ratio']}x" if result["ratio"] is not None else "ratio n/a"
    return (f"warping error {result['warping_error']:.2f} (input's own, the floor: {result['floor']:.2f}; {ratio}) "
            f"on 0..255 over {result['pairs']} frame pairs, {100 * result['reliable_pixels']:.0f}% of pixels with "
            f"reliable motion ({result['flow']}); {result['evaluated_fps']} frames/s evaluated")


__all__ = ["evaluate_video", "video_report", "video_summary"]
