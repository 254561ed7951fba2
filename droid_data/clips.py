"""Clip sampling as V-JEPA 2-AC's DROID loader does it, with its off-by-ones fixed.

For an episode of `num_frames` frames recorded at `video_fps`:

- ``stride = ceil(video_fps / fps)`` frames between clip frames (15 fps video, fps 4 -> stride 4, an effective
  3.75 Hz; the official rounding). ``fps=None`` keeps every frame (stride 1).
- The clip is ``indices = start + stride * arange(frames_per_clip)``; frame k of the clip is video frame
  ``indices[k]`` and goes with h5 row ``indices[k]`` (the DROID 1:1 frame/row convention).
- States are taken at ``indices[::frameskip]`` (``frameskip=1``, what the official trainer uses: one state per
  frame; use the tubelet size, 2, when latents are computed per 2-frame tubelet, so state j is the state at the
  tubelet's first frame). Actions are ``pose_diffs`` of those states: action j moves state j to state j+1, i.e.
  it is the *net* motion over ``stride * frameskip`` control steps. So a clip has ``T = frames_per_clip``
  frames, ``T / frameskip`` states and extrinsics, ``T / frameskip - 1`` actions.
- ``start`` is uniform over every valid window, ``0 .. num_frames - span`` with
  ``span = (frames_per_clip - 1) * stride + 1``.

Differences to the official loader, which are bugs there: it draws ``end ~ randint(fpc*stride, num_frames)``
and ``start = end - fpc*stride``, so the last ``stride`` frames of a video are never used, and an episode of
exactly ``fpc*stride`` frames crashes (hidden by its retry loop). Here an episode needs only ``span`` frames.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from droid_data.conventions import pose_diffs, to_camera_frame

__all__ = ["Clip", "ClipSpec", "clip_stride", "cut_clip", "sample_clip_indices"]


@dataclasses.dataclass(frozen=True)
class ClipSpec:
    """How clips are cut. Defaults are the released V-JEPA 2-AC DROID config (8 frames at 4 fps)."""

    frames_per_clip: int = 8
    fps: float | None = 4.0  # target rate; None keeps the video's rate
    frameskip: int = (
        1  # states/actions every `frameskip` clip frames (the tubelet size if latents are per tubelet)
    )

    def __post_init__(self):
        if self.frames_per_clip < 2:
            raise ValueError(f"ClipSpec.frames_per_clip: expected >= 2, got {self.frames_per_clip}")
        if self.frameskip < 1 or self.frames_per_clip % self.frameskip:
            raise ValueError(
                f"ClipSpec.frameskip: expected a divisor of frames_per_clip={self.frames_per_clip}, got {self.frameskip}"
            )
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"ClipSpec.fps: expected > 0 or None, got {self.fps}")


def clip_stride(video_fps: float, fps: float | None) -> int:
    """Frames between consecutive clip frames: ceil(video_fps / fps) as in the official loader, at least 1."""
    if fps is None:
        return 1
    return max(1, math.ceil(video_fps / fps - 1e-9))


def clip_span(spec: ClipSpec, video_fps: float) -> int:
    """Number of consecutive video frames one clip covers (first to last clip frame, inclusive)."""
    return (spec.frames_per_clip - 1) * clip_stride(video_fps, spec.fps) + 1


def sample_clip_indices(
    num_frames: int, video_fps: float, spec: ClipSpec, rng: np.random.Generator
) -> np.ndarray:
    """Frame indices int64 [frames_per_clip] of a uniformly random valid window. ValueError if too short."""
    stride = clip_stride(video_fps, spec.fps)
    span = clip_span(spec, video_fps)
    if num_frames < span:
        raise ValueError(
            f"episode has {num_frames} frames; a clip of {spec.frames_per_clip} frames every {stride} "
            f"needs at least {span}"
        )
    start = int(rng.integers(0, num_frames - span + 1))
    return start + stride * np.arange(spec.frames_per_clip, dtype=np.int64)


@dataclasses.dataclass
class Clip:
    indices: np.ndarray  # int64 [T] video frame indices
    states: np.ndarray  # float64 [T / frameskip, 7]
    actions: np.ndarray  # float64 [T / frameskip - 1, 7]
    extrinsics: np.ndarray | None  # float64 [T / frameskip, 6] or None


def cut_clip(
    states: np.ndarray,
    indices: np.ndarray,
    spec: ClipSpec,
    extrinsics: np.ndarray | None = None,
    camera_frame: bool = False,
) -> Clip:
    """States/actions/extrinsics of a clip from an episode's states [L, 7] (and extrinsics [L, 6]).

    With ``camera_frame`` the states are first expressed in the camera's frame at each step
    (`to_camera_frame`, the official loader's option), so the actions are too.
    """
    rows = indices[:: spec.frameskip]
    clip_states = np.asarray(states)[rows]
    clip_extrinsics = None if extrinsics is None else np.asarray(extrinsics)[rows]
    if camera_frame:
        if clip_extrinsics is None or not np.isfinite(clip_extrinsics).all():
            raise ValueError(
                "camera_frame=True needs finite camera extrinsics for every clip step; this clip has none"
            )
        clip_states = to_camera_frame(clip_states, clip_extrinsics)
    return Clip(
        indices=indices, states=clip_states, actions=pose_diffs(clip_states), extrinsics=clip_extrinsics
    )
