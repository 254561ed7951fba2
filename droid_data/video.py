"""MP4 encode / decode with PyAV (H.264, AV1, MPEG-4 part 2 as in the DROID raw release) and resizing.

Frames are uint8 RGB, channels last: [N, H, W, 3]. Frame index i is the i-th frame in presentation order,
counted from the stream's first frame; in DROID it matches row i of ``trajectory.h5``.
"""

from __future__ import annotations

import dataclasses
import fractions
import os
from collections.abc import Iterator, Sequence

import av
import numpy as np
import torch

# What PyAV / our decoder raise for a broken or truncated file.
VIDEO_ERRORS = (av.error.FFmpegError, OSError, ValueError, IndexError, EOFError)

__all__ = [
    "VIDEO_ERRORS",
    "VideoInfo",
    "center_crop_resize",
    "decode_frames",
    "encode_video",
    "iter_frames",
    "probe_video",
]


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    num_frames: int  # counted from the demuxed packets, not trusted from the header
    fps: float
    height: int
    width: int
    codec: str


def _video_stream(container, path) -> av.video.stream.VideoStream:
    """The first video stream; a truncated MP4 (its index cut off) can open with none."""
    if not container.streams.video:
        raise ValueError(f"{path}: expected a video stream, found none (truncated or not a video)")
    return container.streams.video[0]


def probe_video(path: str | os.PathLike, count_packets: bool = True) -> VideoInfo:
    """Read a video's frame count, fps and size without decoding pixels.

    With ``count_packets`` the frame count comes from demuxing every packet, which also detects a file whose
    data ends before its header says; otherwise the container header's count is used when present.
    """
    with av.open(str(path)) as container:
        stream = _video_stream(container, path)
        fps = float(stream.average_rate) if stream.average_rate else float("nan")
        num_frames = stream.frames
        if count_packets or not num_frames:
            num_frames = sum(1 for packet in container.demux(stream) if packet.size > 0)
        return VideoInfo(num_frames, fps, stream.height, stream.width, stream.codec_context.name)


def _frame_index(frame: av.VideoFrame, stream, start_pts: int) -> float | None:
    if frame.pts is None or not stream.average_rate or stream.time_base is None:
        return None
    return float((frame.pts - start_pts) * stream.time_base * stream.average_rate)


def _iter_decoded(path: str, first: int = 0) -> Iterator[tuple[int, av.VideoFrame]]:
    """Yield (frame index, frame) in order, starting at or before index `first`.

    Seeks to the keyframe before `first` when the stream has a constant frame rate and timestamps; if the
    timestamps turn out unusable (missing, fractional, or the seek overshoots), decodes from the start and
    counts frames instead.
    """
    last_yielded = -1
    if first > 0:
        with av.open(path) as container:
            stream = _video_stream(container, path)
            stream.thread_type = "AUTO"
            start_pts = stream.start_time or 0
            if stream.average_rate and stream.time_base:
                target = start_pts + int(first / (stream.average_rate * stream.time_base))
                container.seek(target, stream=stream, backward=True, any_frame=False)
                usable = True
                for frame in container.decode(stream):
                    position = _frame_index(frame, stream, start_pts)
                    if (
                        position is None
                        or abs(position - round(position)) > 0.25
                        or round(position) <= last_yielded
                        or (last_yielded < 0 and round(position) > first)
                    ):
                        usable = False
                        break
                    last_yielded = round(position)
                    yield last_yielded, frame
                if usable:
                    return
    with av.open(path) as container:
        stream = _video_stream(container, path)
        stream.thread_type = "AUTO"
        for index, frame in enumerate(container.decode(stream)):
            if index > last_yielded:  # after a failed seek, never repeat a frame already yielded
                yield index, frame


def decode_frames(path: str | os.PathLike, indices: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """Decode frames `indices` (any order, repeats allowed; None = all) -> uint8 [N, H, W, 3].

    Seeks to the keyframe before the first wanted frame when timestamps allow it. Raises IndexError naming
    the file when an index is past the last decodable frame.
    """
    path = str(path)
    if indices is None:
        frames = [frame.to_ndarray(format="rgb24") for _, frame in _iter_decoded(path)]
        if not frames:
            raise ValueError(f"{path}: no decodable video frames")
        return np.stack(frames)

    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    if indices.size == 0:
        raise ValueError(f"{path}: expected at least one frame index, got none")
    if indices.min() < 0:
        raise IndexError(f"{path}: frame indices must be >= 0, got {int(indices.min())}")
    wanted = {int(i) for i in indices}
    last = int(indices.max())
    found: dict[int, np.ndarray] = {}
    for index, frame in _iter_decoded(path, int(indices.min())):
        if index in wanted:
            found[index] = frame.to_ndarray(format="rgb24")
        if index >= last:
            break
    missing = sorted(wanted - set(found))
    if missing:
        raise IndexError(
            f"{path}: frame index {missing[0]} is past the last decodable frame (wanted up to {last})"
        )
    return np.stack([found[int(i)] for i in indices])


def iter_frames(
    path: str | os.PathLike, start: int = 0, count: int | None = None, batch_size: int = 32
) -> Iterator[np.ndarray]:
    """Yield uint8 [<=batch_size, H, W, 3] batches of frames start, start+1, ... (`count` of them, or to the end).

    Memory stays bounded by one batch, whatever the video's length and resolution.
    """
    batch: list[np.ndarray] = []
    stop = None if count is None else start + count
    for index, frame in _iter_decoded(str(path), start):
        if index < start:
            continue
        if stop is not None and index >= stop:
            break
        batch.append(frame.to_ndarray(format="rgb24"))
        if len(batch) == batch_size:
            yield np.stack(batch)
            batch = []
    if batch:
        yield np.stack(batch)


def encode_video(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: float = 15.0,
    codec: str = "libx264",
    crf: int = 17,
) -> None:
    """Write uint8 frames [T, H, W, 3] as a standard MP4 (yuv420p, constant frame rate `fps`).

    ``codec``: "libx264" (H.264, default), "libsvtav1" (AV1) or "mpeg4" (MPEG-4 part 2, as DROID's cv2
    writer produced). H and W must be even (a yuv420p requirement). ``crf`` sets quality (lower = better).
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(
            f"{path}: frames must be uint8 [T, H, W, 3], got {frames.dtype} {tuple(frames.shape)}"
        )
    if frames.shape[0] == 0:
        raise ValueError(f"{path}: frames must contain at least one frame, got 0")
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(f"{path}: frame height and width must be even for yuv420p, got {height}x{width}")
    rate = fractions.Fraction(fps).limit_denominator(1001)
    options = {"crf": str(crf)} if codec in ("libx264", "libsvtav1") else {}
    if codec == "libsvtav1":
        options["svtav1-params"] = "log-level=0"
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=rate, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "mpeg4":
            stream.bit_rate = max(200_000, 8 * height * width * round(fps))
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


def center_crop_resize(
    frames: np.ndarray, size: int | tuple[int, int], crop_aspect: float = 1.0
) -> np.ndarray:
    """Center-crop uint8 frames [N, H, W, 3] to aspect `crop_aspect` (width / height), then resize.

    ``size`` is an int (square output) or (height, width). The crop keeps the full height when the frame is
    wider than `crop_aspect`, else the full width. The resize is bilinear with antialiasing. The official
    V-JEPA 2-AC training pipeline effectively crops width = round(1.35 H) then squashes to square
    (``crop_aspect=1.35``); its planning code uses a square crop (``crop_aspect=1.0``, the default).
    """
    frames = np.asarray(frames)
    out_h, out_w = (size, size) if isinstance(size, int) else size
    height, width = frames.shape[1:3]
    if width > crop_aspect * height:
        crop_h, crop_w = height, min(width, max(1, round(crop_aspect * height)))
    else:
        crop_h, crop_w = min(height, max(1, round(width / crop_aspect))), width
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    frames = frames[:, top : top + crop_h, left : left + crop_w]
    if (crop_h, crop_w) == (out_h, out_w):
        return np.ascontiguousarray(frames)
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    x = torch.nn.functional.interpolate(
        x, size=(out_h, out_w), mode="bilinear", antialias=True, align_corners=False
    )
    return x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
