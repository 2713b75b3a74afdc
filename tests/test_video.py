"""Video I/O: probing, batched decoding, encoding with copied audio, atomic writes, one-line errors.

The clips are made here with PyAV (10 frames of a moving gradient, 64x48 at 12 fps, with a 16 kHz sine
as AAC), so the tests need no data files and run in about a second on a CPU.
"""
from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from helpers import CLIP_FPS, CLIP_FRAMES, CLIP_HEIGHT, CLIP_WIDTH, gradient_frames, make_clip
from texnets.errors import TexnetsError
from texnets.video import VIDEO_SUFFIXES, is_video, probe_video, read_frames, write_video
import texnets.video as video


def as_tensor(frames: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255


def decode_all(path) -> torch.Tensor:
    return torch.cat(list(read_frames(path, batch_size=3)))


def audio_packets(path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams.audio[0]) if p.pts is not None]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """(path of the 64x48 12 fps clip with audio, its frames as a (10, 3, 48, 64) tensor)."""
    frames = gradient_frames()
    path = make_clip(tmp_path_factory.mktemp("src") / "clip.mp4", frames)
    return path, as_tensor(frames)


def test_is_video_by_suffix():
    assert is_video("a/b/film.MP4") and is_video("x.webm") and all(is_video(f"v{s}") for s in VIDEO_SUFFIXES)
    assert not is_video("photo.png") and not is_video("builtin:coffee") and not is_video("mp4")


def test_probe_reports_size_rate_count_and_audio(clip, tmp_path):
    info = probe_video(clip[0])
    assert (info.width, info.height, info.fps, info.frames) == (CLIP_WIDTH, CLIP_HEIGHT, Fraction(CLIP_FPS), CLIP_FRAMES)
    assert info.has_audio and info.codec == "h264"
    silent = probe_video(make_clip(tmp_path / "silent.mkv", gradient_frames(3), audio=False))
    assert not silent.has_audio and silent.fps == Fraction(CLIP_FPS) and silent.frames is None  # mkv records no count


def test_read_frames_batches_match_the_source(clip):
    batches = list(read_frames(clip[0], batch_size=4))
    full = (3, CLIP_HEIGHT, CLIP_WIDTH)
    assert [b.shape for b in batches] == [(4, *full), (4, *full), (2, *full)]
    frames = torch.cat(batches)
    assert frames.dtype == torch.float32 and frames.min() >= 0 and frames.max() <= 1
    assert (frames - clip[1]).abs().mean() < 0.05
    assert (frames[0] - frames[1]).abs().mean() > 0.02  # consecutive, distinct frames, in order


def test_round_trip_copies_audio_and_keeps_rate_and_size(clip, tmp_path):
    src, _ = clip
    written = [1 - b for b in read_frames(src, batch_size=4)]
    report = write_video(tmp_path / "out.mp4", iter(written), fps=probe_video(src).fps, audio_from=src)
    assert report == {"path": str(tmp_path / "out.mp4"), "frames": CLIP_FRAMES, "fps": float(CLIP_FPS), "width": CLIP_WIDTH,
                      "height": CLIP_HEIGHT, "codec": "libx264", "audio": "copied"}
    info = probe_video(tmp_path / "out.mp4")
    assert (info.width, info.height, info.fps, info.has_audio) == (CLIP_WIDTH, CLIP_HEIGHT, Fraction(CLIP_FPS), True)
    decoded = decode_all(tmp_path / "out.mp4")
    assert decoded.shape[0] == CLIP_FRAMES  # counted by decoding, not from metadata
    assert (decoded - torch.cat(written)).abs().mean() < 0.05
    assert audio_packets(tmp_path / "out.mp4") == audio_packets(src)  # remuxed bit for bit, not re-encoded
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]  # no temporary file left over


def test_ntsc_rate_is_exact(tmp_path):
    frames = as_tensor(gradient_frames(4, 32, 16))
    report = write_video(tmp_path / "ntsc.mp4", [frames], fps=Fraction(30000, 1001))
    assert probe_video(tmp_path / "ntsc.mp4").fps == Fraction(30000, 1001)
    write_video(tmp_path / "float.mkv", [frames], fps=29.97)
    assert report["fps"] == pytest.approx(29.97003) and probe_video(tmp_path / "float.mkv").fps == Fraction(2997, 100)


def test_audio_is_reencoded_when_the_container_refuses_it(clip, tmp_path):
    src, frames = clip
    report = write_video(tmp_path / "out.webm", [frames[:4]], fps=CLIP_FPS, audio_from=src)  # WebM takes no AAC
    assert report["audio"] == "re-encoded" and report["codec"] == "libvpx-vp9"
    assert probe_video(tmp_path / "out.webm").has_audio and decode_all(tmp_path / "out.webm").shape[0] == 4


def test_audio_is_dropped_with_a_warning_when_nothing_fits(clip, tmp_path, monkeypatch):
    monkeypatch.setattr(video, "_AUDIO_FALLBACKS", ())
    with pytest.warns(UserWarning, match="dropping the audio"):
        report = write_video(tmp_path / "out.webm", [clip[1][:2]], fps=CLIP_FPS, audio_from=clip[0])
    assert report["audio"] is None and not probe_video(tmp_path / "out.webm").has_audio


def test_unavailable_codec_falls_back_with_a_warning(clip, tmp_path):
    with pytest.warns(UserWarning, match="no-such-codec is not available"):
        report = write_video(tmp_path / "out.mp4", [clip[1][:2]], fps=CLIP_FPS, codec="no-such-codec")
    assert report["codec"] == "libx264" and probe_video(tmp_path / "out.mp4").codec == "h264"


@pytest.mark.parametrize("max_size, expected",
                         [(32, (24, 32)), (23, (16, 22)), (9, (6, 8)), (100, (CLIP_HEIGHT, CLIP_WIDTH))])
def test_max_size_downscales_to_even_sides_keeping_the_aspect(clip, max_size, expected):
    frames = torch.cat(list(read_frames(clip[0], batch_size=4, max_size=max_size)))
    height, width = frames.shape[-2:]
    assert (height, width) == expected and height % 2 == 0 and width % 2 == 0 and max(height, width) <= max_size
    assert width / height == pytest.approx(CLIP_WIDTH / CLIP_HEIGHT, rel=0.05)
    assert frames.shape[0] == CLIP_FRAMES
    # Area averaging of a smooth clip matches the source shrunk the same way.
    shrunk = torch.nn.functional.interpolate(clip[1], size=(height, width), mode="area")
    assert (frames - shrunk).abs().mean() < 0.05


def test_odd_sizes_are_padded_by_replicating_the_last_row_and_column(tmp_path):
    frames = as_tensor(gradient_frames(3, width=33, height=31))
    report = write_video(tmp_path / "odd.mp4", [frames], fps=CLIP_FPS)
    assert (report["width"], report["height"]) == (34, 32)
    decoded = decode_all(tmp_path / "odd.mp4")
    assert decoded.shape == (3, 3, 32, 34)
    assert (decoded[..., :31, :33] - frames).abs().mean() < 0.05
    padded = torch.nn.functional.pad(frames, (0, 1, 0, 1), mode="replicate")
    assert (decoded[..., -1] - padded[..., -1]).abs().mean() < 0.05  # the new column copies the last one
    assert (decoded[..., -1, :] - padded[..., -1, :]).abs().mean() < 0.05


def test_rotated_clips_are_read_upright(tmp_path):
    frames = gradient_frames(2)
    path = make_clip(tmp_path / "phone.mp4", frames, audio=False, rotation=90)
    info = probe_video(path)
    assert (info.width, info.height) == (CLIP_HEIGHT, CLIP_WIDTH)  # displayed size
    upright = as_tensor([np.rot90(f).copy() for f in frames])  # 90 degrees counter-clockwise
    decoded = decode_all(path)
    assert decoded.shape == upright.shape and (decoded - upright).abs().mean() < 0.05


def test_non_video_and_missing_files_raise_one_line_errors(tmp_path):
    fake = tmp_path / "x.mp4"
    fake.write_bytes(b"this is not a video, just some text\n" * 20)
    for attempt in (lambda: probe_video(fake), lambda: list(read_frames(fake))):
        with pytest.raises(TexnetsError, match=r"^cannot decode video .*x\.mp4: ") as error:
            attempt()
        assert "\n" not in str(error.value)
    with pytest.raises(TexnetsError, match="video not found"):
        probe_video(tmp_path / "missing.mp4")
    with pytest.raises(TexnetsError, match="video not found"):
        write_video(tmp_path / "out.mp4", [torch.rand(1, 3, 8, 8)], fps=CLIP_FPS, audio_from=tmp_path / "missing.mp4")
    with pytest.raises(TexnetsError, match="unsupported video format"):
        write_video(tmp_path / "out.gif", [torch.rand(1, 3, 8, 8)], fps=CLIP_FPS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.mp4"]


@pytest.mark.parametrize("failure", [KeyboardInterrupt, TexnetsError])
def test_failure_midway_leaves_no_file(clip, tmp_path, failure):
    folder = tmp_path / "out"
    folder.mkdir()

    def batches():
        yield clip[1][:4]
        yield clip[1][4:8]
        raise failure("stopped")

    with pytest.raises(failure):
        write_video(folder / "video.mp4", batches(), fps=CLIP_FPS, audio_from=clip[0])
    assert list(folder.iterdir()) == []


def test_empty_input_is_an_error_and_writes_nothing(tmp_path):
    for empty in ([], iter(()), [torch.zeros(0, 3, 8, 8)]):
        with pytest.raises(TexnetsError, match="^no frames to write$"):
            write_video(tmp_path / "empty.mp4", empty, fps=CLIP_FPS)
    assert list(tmp_path.iterdir()) == []
