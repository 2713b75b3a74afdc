"""evaluate.py video (texnets.evaluation.video): the warping error of a stylised clip along the input's motion
and its floor; clips that cannot be compared are one line each, a variable frame rate a warning."""
import functools
import json
from fractions import Fraction

import av
import numpy as np
import pytest
import torch

import evaluate
from helpers import call_main, one_error_line
from texnets.clips import make_clip
from texnets.errors import TexnetsError
from texnets.evaluation.video import _match_size, evaluate_video
from texnets.images import load_image, save_image
from texnets.video import is_variable_frame_rate, write_video

pytest.importorskip("cv2", reason="motion estimation needs opencv-python-headless (requirements.txt installs it)")
run = functools.partial(call_main, evaluate.main)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """A noisy pan across a built-in photo, the clip itself, a flickering version and a shorter one."""
    folder = tmp_path_factory.mktemp("clips")
    clip = make_clip(load_image("builtin:astronaut")[0], frames=6, size=(48, 64), motion="pan", speed=2.0, noise=0.005)
    blotches = torch.nn.functional.interpolate(torch.randn(6, 3, 4, 6, generator=torch.Generator().manual_seed(0)),
                                               size=(48, 64), mode="bilinear", align_corners=False)
    paths = {"input": folder / "input.mp4", "flicker": folder / "flicker.mp4", "short": folder / "short.mp4",
             "wide": folder / "wide.mp4", "single": folder / "single.mp4"}
    write_video(paths["input"], [clip.frames], fps=12)
    write_video(paths["flicker"], [(clip.frames + 0.1 * blotches).clamp(0, 1)], fps=12)
    write_video(paths["short"], [clip.frames[:4]], fps=12)
    write_video(paths["wide"], [torch.nn.functional.pad(clip.frames, (0, 8))], fps=12)
    write_video(paths["single"], [clip.frames[:1]], fps=12)
    return paths


def test_flicker_shows_above_the_floor_and_the_clip_itself_sits_on_it(clips):
    flicker = evaluate_video(clips["input"], clips["flicker"])
    itself = evaluate_video(clips["input"], clips["input"])
    assert flicker["frames"] == 6 and flicker["pairs"] == 5 and flicker["size"] == [64, 48]
    assert itself["warping_error"] == pytest.approx(itself["floor"]) and itself["ratio"] == pytest.approx(1.0)
    assert flicker["warping_error"] > 2 * flicker["floor"], flicker  # measured 6.5x
    assert flicker["warping_error_lai"] > flicker["floor_lai"]
    assert flicker["reliable_pixels"] > 0.8 and "DIS" in flicker["flow"] and flicker["fps"] == 12


def test_the_command_prints_and_writes_a_report(clips, tmp_path, capsys):
    out = tmp_path / "temporal.json"
    code = evaluate.main(["video", "--input", str(clips["input"]), "--stylised", str(clips["flicker"]),
                          "--output", str(out), "--max-frames", "4"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "warping error" in captured.out and "floor" in captured.out
    report = json.loads(out.read_text())
    assert report["frames"] == 4 and report["command"] == "video" and report["warping_error"] > report["floor"]
    assert "Temporal consistency" in out.with_suffix(".md").read_text()


@pytest.mark.parametrize("first, second, message", [
    ("input", "short", "ends after 4 frames"),
    ("short", "input", "has more frames than"),
    ("input", "wide", "must have the input's frame size"),
    ("single", "single", "needs at least 2"),
])
def test_clips_that_cannot_be_compared_are_one_line(clips, first, second, message, capsys):
    # Counted while decoding (container headers can disagree with the streams), so these are the streaming checks.
    code, err = run(["video", "--input", clips[first], "--stylised", clips[second]], capsys)
    assert code == 2 and message in one_error_line(err), err


def test_an_encoders_one_pixel_padding_is_cropped_and_more_is_refused():
    frame = torch.rand(1, 3, 47, 63)
    padded = torch.nn.functional.pad(frame, (0, 1, 0, 1))
    assert torch.equal(_match_size(padded, (47, 63), ("a.mp4", "b.mp4")), frame)
    with pytest.raises(TexnetsError, match="frame size"):
        _match_size(torch.nn.functional.pad(frame, (0, 3)), (47, 63), ("a.mp4", "b.mp4"))


def test_a_still_image_is_not_a_clip(clips, tmp_path, capsys):
    image = tmp_path / "frame.png"
    save_image(load_image("builtin:astronaut", (48, 64)), image)
    code, err = run(["video", "--input", clips["input"], "--stylised", image], capsys)
    assert code == 2 and "is not a video" in one_error_line(err)


@pytest.mark.parametrize("flag, value", [("--max-frames", 1), ("--max-size", 8)])
def test_limits_too_small_are_one_line(clips, flag, value, capsys):
    code, err = run(["video", "--input", clips["input"], "--stylised", clips["input"], flag, value], capsys)
    assert code == 2 and flag in one_error_line(err)


def write_vfr(path, stamps):
    """A clip whose frames carry the given timestamps (in 1/24 s ticks)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 24)
        for index, stamp in enumerate(stamps):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 10 * index, np.uint8), format="rgb24")
            frame.pts = stamp
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def test_a_variable_frame_rate_is_detected_and_warned_about(tmp_path, capsys):
    steady = write_vfr(tmp_path / "steady.mp4", [0, 1, 2, 3, 4, 5])
    uneven = write_vfr(tmp_path / "uneven.mp4", [0, 1, 3, 4, 7, 8])
    assert not is_variable_frame_rate(steady)
    assert is_variable_frame_rate(uneven)
    code = evaluate.main(["video", "--input", str(uneven), "--stylised", str(uneven)])
    err = capsys.readouterr().err
    assert code == 0 and "variable frame rate" in err and "Traceback" not in err
