"""Tiny synthetic DROID-format episodes for tests, demos and benchmarks (no downloads needed).

Frame t of camera c has flat brightness `frame_brightness(t, c)` plus a mild horizontal ramp, so decoded
frames can be matched back to their index; states are a smooth random walk covering the full rotation range.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np

from droid_data.writer import write_episode

__all__ = ["frame_brightness", "frame_index_of", "make_frames", "random_states", "write_synthetic_episode"]


def frame_brightness(t: int, camera: int = 0, length: int = 20) -> float:
    """Brightness of frame t of camera `camera`; spans [20, 215] whatever the episode length."""
    return 20.0 + 190.0 * t / max(length - 1, 1) + 5.0 * (camera % 2)


def make_frames(length: int, size: tuple[int, int] = (32, 32), camera: int = 0) -> np.ndarray:
    """uint8 [T, H, W, 3] frames whose brightness encodes the frame index (compresses well)."""
    height, width = size
    ramp = np.linspace(-8, 8, width)[None, None, :, None]
    levels = np.array([frame_brightness(t, camera, length) for t in range(length)])
    frames = levels[:, None, None, None] + ramp + np.zeros((length, height, width, 3))
    return np.clip(frames, 0, 255).round().astype(np.uint8)


def frame_index_of(frame: np.ndarray, length: int, camera: int = 0) -> int:
    """The index t whose encoded brightness is nearest to a decoded frame's mean (uint8 [H, W, 3])."""
    levels = np.array([frame_brightness(t, camera, length) for t in range(length)])
    return int(np.argmin(np.abs(levels - np.asarray(frame, dtype=np.float64).mean())))


def random_states(rng: np.random.Generator, length: int) -> np.ndarray:
    """A smooth random trajectory [T, 7]: xyz random walk, Euler angles wrapping around ±pi, gripper in [0, 1]."""
    xyz = 0.4 + np.cumsum(rng.normal(scale=0.01, size=(length, 3)), axis=0)
    euler = np.cumsum(rng.normal(scale=0.3, size=(length, 3)), axis=0) + rng.uniform(-np.pi, np.pi, 3)
    euler = (euler + np.pi) % (2 * np.pi) - np.pi
    euler[:, 1] /= 2  # pitch within scipy's [-pi/2, pi/2] so the angles are canonical
    gripper = np.clip(np.cumsum(rng.normal(scale=0.2, size=length)), 0, 1)
    return np.concatenate([xyz, euler, gripper[:, None]], axis=1)


def write_synthetic_episode(
    out_dir: str | os.PathLike,
    length: int = 20,
    cameras: tuple[str, ...] = ("11111111", "22222222"),
    size: tuple[int, int] = (32, 32),
    seed: int = 0,
    **kwargs,
) -> tuple[pathlib.Path, np.ndarray]:
    """Write one synthetic episode with `write_episode` -> (episode folder, states [T, 7])."""
    rng = np.random.default_rng(seed)
    states = random_states(rng, length)
    frames = {serial: make_frames(length, size, camera=i) for i, serial in enumerate(cameras)}
    kwargs.setdefault("joint_position", rng.normal(size=(length, 7)))
    path = write_episode(out_dir, states[:, :6], states[:, 6], frames, **kwargs)
    return path, states
