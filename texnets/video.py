"""Video input and output for stylising a clip frame by frame.

Frames are decoded and encoded with PyAV, whose wheels bundle FFmpeg (libx264, libvpx-vp9, mpeg4, aac,
opus); torchvision no longer does video I/O. The design:

* Reading streams: ``read_frames`` yields (B, 3, H, W) float batches in [0, 1], as images are everywhere
  in texnets, so a long clip never has to fit in memory. Frames are scaled and converted to RGB by
  FFmpeg's swscale (``frame.reformat``), which is much faster than resizing tensors; a downscaled size is
  kept even so H.264 (yuv420p) can encode it. A display-matrix rotation (phones record portrait clips as
  rotated landscape) is applied, so frames come out upright, as players show them.
* Writing streams too: ``write_video`` encodes batches as they arrive (yuv420p, CRF quality, exact
  timestamps: the stream time base is 1/fps and frame i has pts i). Odd frame sizes are padded by
  replicating the last row/column, never cropped, so no stylised pixel is lost (33x31 is written as 34x32).
* Sound is copied, not re-encoded, from ``audio_from`` (normally the source clip): its audio packets are
  remuxed, interleaved with the video as it is written, and trimmed at the end of the video. Only when the
  output container cannot hold that codec is the audio re-encoded (aac, or opus for WebM), and when
  nothing fits it is dropped with a warning.
* Outputs are atomic (``texnets.images.atomic_path``): an error or Ctrl-C midway leaves neither a
  half-written video nor a temporary file. Every user-facing failure is a one-line ``TexnetsError``.
"""
from __future__ import annotations

import contextlib
import io
import itertools
import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F

from texnets.errors import TexnetsError, existing_file
from texnets.images import atomic_path

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")
# atomic_path's temporary file ends in .tmp, so FFmpeg cannot guess the container from the name.
_CONTAINER_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm",
                      ".avi": "avi"}
DEFAULT_CODEC = "libx264"
# Tried in order when the requested encoder is missing from this FFmpeg build or the container refuses it
# (WebM takes only VP8/VP9/AV1).
_VIDEO_FALLBACKS = ("libx264", "libvpx-vp9", "mpeg4")
# Audio encoders for when the source audio cannot be copied into the output container as it is.
_AUDIO_FALLBACKS = ("aac", "libopus")


def is_video(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a video file, judged by its suffix (case-insensitive)."""
    return Path(str(path)).suffix.lower() in VIDEO_SUFFIXES


@dataclass
class VideoInfo:
    """What ``probe_video`` reads from a file's first video stream.

    ``width`` and ``height`` are the displayed size: swapped when the stream carries a 90-degree
    rotation, matching the frames ``read_frames`` yields.
    """
    width: int
    height: int
    fps: Fraction | None      # average frame rate (FFmpeg's guess when the container records none)
    frames: int | None        # frame count from the container's metadata; None when it records none
    has_audio: bool
    codec: str


def _reason(exc: BaseException) -> str:
    """One line from an FFmpeg/PyAV error, without the errno and file-name decoration."""
    text = getattr(exc, "strerror", None) or str(exc).strip() or type(exc).__name__
    return str(text).splitlines()[0][:200]


def _open_input(path: str | os.PathLike):
    path = existing_file(path, "video")
    try:
        container = av.open(str(path), "r")
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise TexnetsError(f"cannot decode video {path}: {_reason(exc)}") from None
    if not container.streams.video:
        container.close()
        raise TexnetsError(f"cannot decode video {path}: it has no video stream")
    return container


def _quarter_turns(frame: av.VideoFrame) -> int:
    """Counter-clockwise quarter turns that make a decoded frame upright (its display-matrix rotation)."""
    return round((frame.rotation or 0) / 90) % 4


def _scaled_size(width: int, height: int, max_size: int | None) -> tuple[int, int]:
    """Fit the longer side within ``max_size``, keeping the aspect ratio; a scaled size is made even
    because yuv420p (H.264) halves the chroma resolution and cannot encode odd sizes."""
    if not max_size or max(width, height) <= max_size:
        return width, height
    # Aim the longer side at the largest even size within max_size, so rounding cannot overshoot it.
    scale = max(2, max_size - max_size % 2) / max(width, height)
    return max(2, 2 * round(width * scale / 2)), max(2, 2 * round(height * scale / 2))


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Read the first video stream's size, frame rate, frame count and codec, and whether there is audio.

    The first frame is decoded as well: it proves the file decodes (a header alone can parse) and carries
    the rotation that decides the displayed size.
    """
    with _open_input(path) as container:
        stream = container.streams.video[0]
        try:
            first = next(container.decode(stream), None)
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise TexnetsError(f"cannot decode video {path}: {_reason(exc)}") from None
        if first is None:
            raise TexnetsError(f"cannot decode video {path}: no frame could be decoded")
        width, height = first.width, first.height
        if _quarter_turns(first) % 2:
            width, height = height, width
        rate = stream.average_rate or stream.guessed_rate
        return VideoInfo(width=width, height=height, fps=Fraction(rate) if rate else None,
                         frames=stream.frames or None, has_audio=bool(container.streams.audio),
                         codec=stream.codec_context.name)


VFR_PACKETS = 500  # about 20 s at 25 fps


def is_variable_frame_rate(path: str | os.PathLike, tolerance: float = 0.05) -> bool:
    """Whether the first video stream's frames are unevenly spaced in time: the first ``VFR_PACKETS`` packets'
    timestamps are read (no decoding, so a film is not read through first) and their gaps compared; gaps
    differing by more than ``tolerance`` of the typical gap (beyond one tick of rounding) make it variable."""
    with _open_input(path) as container:
        stream = container.streams.video[0]
        try:
            packets = (packet.pts for packet in container.demux(stream) if packet.pts is not None)
            stamps = sorted(itertools.islice(packets, VFR_PACKETS))
        except (av.FFmpegError, OSError):
            return False  # unreadable timing is read_frames' error to report, not this check's
    gaps = np.diff(np.unique(stamps))
    if len(gaps) < 2:
        return False
    typical = float(np.median(gaps))
    return bool(np.any(np.abs(gaps - typical) > max(tolerance * typical, 1)))


def _stack(frames: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float().div_(255.0)


def read_frames(path: str | os.PathLike, batch_size: int = 8, max_size: int | None = None) -> Iterator[torch.Tensor]:
    """Decode a video into (B, 3, H, W) float batches in [0, 1] of consecutive frames, upright.

    The last batch may be smaller; so may one just before a mid-stream change of frame size, since a batch
    holds frames of one size. ``max_size`` downscales (area-averaged, aspect kept, even sides) frames whose
    longer side exceeds it.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    with _open_input(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame- and slice-threaded decoding: several times faster on HD clips
        pending: list[np.ndarray] = []
        decoded = 0
        try:
            for frame in container.decode(stream):
                width, height = _scaled_size(frame.width, frame.height, max_size)
                # AREA averages every source pixel into the smaller frame: antialiased, unlike bilinear.
                rgb = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA")
                array = rgb.to_ndarray()
                turns = _quarter_turns(frame)
                if turns:
                    array = np.ascontiguousarray(np.rot90(array, turns))
                if pending and pending[0].shape != array.shape:
                    yield _stack(pending)
                    pending = []
                pending.append(array)
                decoded += 1
                if len(pending) == batch_size:
                    yield _stack(pending)
                    pending = []
        except (av.FFmpegError, OSError) as exc:
            raise TexnetsError(f"cannot decode video {path}: {_reason(exc)} (after {decoded} frames)") from None
        if pending:
            yield _stack(pending)


# --------------------------------------------------------------------------------------------------
# Writing

def _as_fraction(fps) -> Fraction:
    if isinstance(fps, Fraction):
        rate = fps
    else:
        try:
            # Floats such as 29.97 become 2997/100, not a 53-bit binary fraction; mpeg4 caps the
            # time-base denominator at 65535.
            rate = Fraction(fps).limit_denominator(65535)
        except (TypeError, ValueError, OverflowError):  # None, "abc", nan, inf
            raise TexnetsError(f"invalid frame rate {fps!r}") from None
    if rate <= 0:
        raise TexnetsError(f"invalid frame rate {fps!r}: it must be positive")
    return rate


def _has_encoder(name: str) -> bool:
    try:
        av.Codec(name, "w")
    except (av.codec.codec.UnknownCodecError, ValueError):
        return False
    return True


def _pick_video_codec(codec: str, container) -> str:
    candidates = [codec] + [name for name in _VIDEO_FALLBACKS if name != codec]
    for name in candidates:
        if _has_encoder(name) and name in container.supported_codecs:
            if name != codec:
                missing = not _has_encoder(codec)
                if missing or codec != DEFAULT_CODEC:
                    why = "is not available in this FFmpeg build" if missing else \
                        f"cannot go into a {container.format.name} file"
                    warnings.warn(f"video codec {codec} {why}; encoding with {name}", stacklevel=3)
            return name
    raise TexnetsError(f"no video encoder for a {container.format.name} file (tried {', '.join(candidates)})")


def _add_video_stream(out, codec: str, rate: Fraction, width: int, height: int, crf: int):
    stream = out.add_stream(codec, rate=rate)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    # Frame i gets pts i in a 1/fps time base: exact timestamps at any rate, 30000/1001 included.
    stream.time_base = 1 / rate
    stream.codec_context.time_base = 1 / rate
    if codec == "libx264":
        stream.options = {"crf": str(crf)}
    elif codec == "libvpx-vp9":
        stream.options = {"crf": str(crf), "b": "0", "row-mt": "1", "deadline": "good", "cpu-used": "4"}
    elif codec == "mpeg4":
        # mpeg4 has no CRF; a fixed quantiser (2 best .. 31) near crf / 6 gives similar quality.
        stream.codec_context.qscale = min(31, max(2, round(crf / 6)))
    return stream


def _can_remux(template, fmt: str) -> bool:
    """Whether ``fmt`` accepts the audio stream ``template`` as it is: a header is written into memory,
    because a muxer refuses a codec only when it writes its header, too late to change course."""
    try:
        with av.open(io.BytesIO(), "w", format=fmt) as trial:
            trial.add_stream_from_template(template)
            trial.start_encoding()
    except Exception:  # any refusal (unknown tag, bad parameters) just means "re-encode instead"
        return False
    return True


def _audio_encoder(source, fmt: str) -> tuple[str, int] | None:
    """The first fallback audio encoder that this build has and the container takes, with its rate."""
    for name in _AUDIO_FALLBACKS:
        if not _has_encoder(name):
            continue
        rates = av.Codec(name, "w").audio_rates
        rate = source.rate if not rates or source.rate in rates else (48000 if 48000 in rates else max(rates))
        try:
            with av.open(io.BytesIO(), "w", format=fmt) as trial:
                stream = trial.add_stream(name, rate=rate)
                stream.layout = source.layout.name
                trial.start_encoding()
        except Exception:  # this encoder cannot go into this container (or at this layout); try the next
            continue
        return name, rate
    return None


class _AudioTrack:
    """The source's audio, copied (or re-encoded) into the output a little behind the video, so the
    muxer's interleaving buffer stays small and the audio ends where the video ends."""

    def __init__(self, source_container, out, fmt: str):
        self.mode: str | None = None
        self._packets: Iterator = iter(())
        self._next = None
        if not source_container.streams.audio:
            return
        audio = source_container.streams.audio[0]
        video = source_container.streams.video[0]
        # The output video starts at 0; shifting the audio by the source video's start keeps them in sync.
        start = video.start_time * video.time_base if video.start_time else 0
        shift = round(start / audio.time_base) if start else 0
        if _can_remux(audio, fmt):
            stream = out.add_stream_from_template(audio)
            self.mode, self._packets = "copied", self._copy(source_container, audio, stream, shift)
            return
        choice = _audio_encoder(audio, fmt)
        if choice is None:
            warnings.warn(f"dropping the audio: a {fmt} file takes neither {audio.codec_context.name} "
                          f"nor any of {', '.join(_AUDIO_FALLBACKS)}", stacklevel=3)
            return
        stream = out.add_stream(choice[0], rate=choice[1])
        stream.layout = audio.layout.name
        self.mode, self._packets = "re-encoded", self._encode(source_container, audio, stream, shift)

    @staticmethod
    def _copy(container, audio, stream, shift) -> Iterator:
        for packet in container.demux(audio):
            if packet.pts is None:  # the demuxer's final flush packet carries no data
                continue
            packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
            packet.stream = stream
            yield packet

    @staticmethod
    def _encode(container, audio, stream, shift) -> Iterator:
        for packet in container.demux(audio):
            for frame in packet.decode():  # the flush packet (pts None) drains the decoder
                if frame.pts is not None:
                    frame.pts -= shift
                yield from stream.encode(frame)
        yield from stream.encode(None)

    def mux_until(self, out, seconds: float) -> None:
        """Mux the audio packets that start before ``seconds``."""
        while True:
            if self._next is None:
                self._next = next(self._packets, None)
                if self._next is None:
                    return
            packet = self._next
            if packet.pts is not None and float(packet.pts * packet.time_base) >= seconds:
                return
            out.mux(packet)
            self._next = None


def _to_rgb24(batch: torch.Tensor, size: tuple[int, int] | None) -> np.ndarray:
    """(B, 3, H, W) float -> (B, H', W', 3) uint8 with H', W' even (odd sides get a replicated last row/col)."""
    if batch.ndim != 4 or batch.shape[1] != 3:
        raise ValueError(f"expected frames shaped (B, 3, H, W), got {tuple(batch.shape)}")
    height, width = batch.shape[-2:]
    if size is not None and (height, width) != size:
        raise TexnetsError(f"frame size changed from {size[1]}x{size[0]} to {width}x{height} midway")
    batch = batch.detach().float().clamp(0, 1)
    if height % 2 or width % 2:
        batch = F.pad(batch, (0, width % 2, 0, height % 2), mode="replicate")
    # Quantise on the frames' device so only uint8 crosses to the CPU.
    return batch.mul(255).round_().to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()


def write_video(path: str | os.PathLike, batches: Iterable[torch.Tensor], fps, audio_from=None,
                codec: str = DEFAULT_CODEC, crf: int = 18, progress: bool = False,
                total_frames: int | None = None) -> dict:
    """Encode (B, 3, H, W) float batches in [0, 1] into a video at ``fps`` (Fraction or float), atomically.

    Odd heights or widths are padded by one replicated row/column (yuv420p needs even sides), so the file
    can be one pixel taller and wider than the frames. With ``audio_from``, that file's audio is copied in
    (or re-encoded, or dropped with a warning, when the container cannot take it). An empty ``batches``
    is an error. Returns {path, frames, fps, width, height, codec, audio} where ``audio`` is "copied",
    "re-encoded" or None.
    """
    path = Path(path)
    fmt = _CONTAINER_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise TexnetsError(f"unsupported video format {path.suffix!r} for {path}; "
                           f"use one of {', '.join(VIDEO_SUFFIXES)}")
    rate = _as_fraction(fps)
    batches = iter(batches)
    # The first frames fix the size the encoder is opened with; an empty input must fail before a file exists.
    first = next((b for b in batches if b.shape[0] > 0), None)
    if first is None:
        raise TexnetsError("no frames to write")
    frame_size = tuple(first.shape[-2:])
    height, width = (s + s % 2 for s in frame_size)

    from tqdm.auto import tqdm  # imported here: only writers need it
    bar = tqdm(total=total_frames, unit="frame", desc=path.name, disable=not progress)
    written = 0
    try:
        with contextlib.ExitStack() as stack:
            tmp = stack.enter_context(atomic_path(path))
            source = stack.enter_context(_open_input(audio_from)) if audio_from is not None else None
            try:
                # faststart moves the index to the front so players and browsers can start before the end.
                options = {"movflags": "+faststart"} if fmt in ("mp4", "mov") else {}
                out = stack.enter_context(av.open(tmp, "w", format=fmt, options=options))
                codec_used = _pick_video_codec(codec, out)
                stream = _add_video_stream(out, codec_used, rate, width, height, crf)
                audio = _AudioTrack(source, out, fmt) if source is not None else None
                for batch in _chain(first, batches):
                    if batch.shape[0] == 0:
                        continue
                    for array in _to_rgb24(batch, frame_size):
                        frame = av.VideoFrame.from_ndarray(array, format="rgb24")
                        frame.pts = written
                        for packet in stream.encode(frame):
                            out.mux(packet)
                        written += 1
                        bar.update(1)
                    if audio is not None:
                        audio.mux_until(out, float(written / rate))
                for packet in stream.encode(None):  # drain the encoder's look-ahead
                    out.mux(packet)
                if audio is not None:
                    audio.mux_until(out, float(written / rate))
            except av.FFmpegError as exc:
                raise TexnetsError(f"cannot write video {path}: {_reason(exc)}") from None
    finally:
        bar.close()
    return {"path": str(path), "frames": written, "fps": float(rate), "width": width, "height": height,
            "codec": codec_used, "audio": audio.mode if audio is not None else None}


def _chain(first: torch.Tensor, rest: Iterator[torch.Tensor]) -> Iterator[torch.Tensor]:
    yield first
    yield from rest
